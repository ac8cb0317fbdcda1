#!/usr/bin/env bash
# A real scheduler runs the shards: brings up a one-node Slurm cluster on this machine (Debian's slurm-wlm and munge,
# installed when missing; every file of it in a temp folder, daemons on ports of their own, torn down on exit), then
#  1. featurizes the data set as a 4-task job array, each task `featurize <data> --shard auto` with its own cache
#     (its own "machine"), writing features-<i>-of-4.shard under the default name;
#  2. a job that depends on the array (--dependency=afterok:<array job>) merges the 4 shards and trains
#     (`train <data> --features ... --seed 1`), with a fresh cache;
#  3. the same `train <data> --seed 1` on one machine without Slurm, with a fresh cache of its own;
#  4. checks that the two models give the same probabilities (`predict --json` on every image of the data set) and
#     that the merged run ran no image through the conv base; prints the jobs, their logs and the timings.
#   bash benchmarks/slurm/run-local-slurm.sh [fashion|hymenoptera|<data folder>] [out-folder]
# fashion (default): data/fashion-mnist-sample, 400 images (about 2 minutes on 2 cores); hymenoptera:
# ../shared/data/hymenoptera_data, 397 photos (slower). Needs root, or sudo -n, for apt-get and the daemons.
# SLURM_NODE_CPUS (default: nproc) is the node's CPUs (so at most that many tasks at once); MLNT_THREADS (default 1)
# the --threads of every run (the same everywhere: same seed, data and threads give the same model).
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)
case "${1:-fashion}" in
  fashion) data="$repo/data/fashion-mnist-sample" ;;
  hymenoptera) data=$(cd ../shared/data/hymenoptera_data && pwd) ;;
  *) data=$(cd "$1" && pwd) ;;
esac
out="${2:-$(mktemp -d /tmp/slurm-run.XXXXXX)}"
mkdir -p "$out"; out=$(cd "$out" && pwd)
tasks=4
cpus="${SLURM_NODE_CPUS:-$(nproc)}"
threads="${MLNT_THREADS:-1}"
sudo=""; [ "$(id -u)" != 0 ] && sudo="sudo -n"
t0=$(date +%s)
stamp() { echo "[$(( $(date +%s) - t0 ))s] $*"; }

# --- Slurm and munge from Debian's packages ---
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
  stamp "installing slurm-wlm and munge (apt-get)"
  $sudo apt-get install -y -qq slurm-wlm munge >/dev/null 2>&1 \
    || { $sudo apt-get update -qq >/dev/null && $sudo apt-get install -y -qq slurm-wlm munge >/dev/null; }
fi
echo "slurm: $(sinfo --version 2>/dev/null || dpkg-query -W -f '${Version}' slurm-wlm), munge: $(munged --version 2>&1 | head -1)"

# --- the console, built once ---
bin="${MLNT_BIN:-$out/bin}"
stamp "building the console into $bin"
dotnet build src/MlNetTransfer.Cli -c Release -v q -nologo -o "$bin" >/dev/null
cli="dotnet $bin/mlnet-transfer.dll"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); data: $data ($(find "$data" -type f | wc -l) files)"

# --- a one-node cluster in $run ---
run="$out/slurm"
rm -rf "$run"; mkdir -p "$run"/{munge,state,spool,logs,shards} "$out/merged" "$out/single"
chmod 711 "$run/munge"
node=$(hostname -s)
pids=()
teardown() {
  local rc=$?
  stamp "tearing down (exit $rc)"
  # Daemons first (they were started by this script: their pids only), then whatever jobs they left.
  for pid in "${pids[@]}"; do $sudo kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do for _ in $(seq 50); do $sudo kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done; done
  exit $rc
}
trap teardown EXIT INT TERM

# munge: a key and a socket of this run's own, so the machine's munge (if any) is neither used nor disturbed.
$sudo dd if=/dev/urandom of="$run/munge/munge.key" bs=1024 count=1 status=none
$sudo chmod 400 "$run/munge/munge.key"
socket="$run/munge/munge.socket"
$sudo munged --force --foreground --key-file="$run/munge/munge.key" --socket="$socket" \
  --pid-file="$run/munge/munged.pid" --log-file="$run/munge/munged.log" --seed-file="$run/munge/munged.seed" 2>"$run/munge/munged.stderr" &
pids+=($!)
for _ in $(seq 50); do [ -S "$socket" ] && break; sleep 0.1; done
[ -S "$socket" ] || { echo "error: munged did not start:" >&2; cat "$run/munge/munged.stderr" >&2; exit 1; }

mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 * 9 / 10 ))
cat > "$run/slurm.conf" <<EOF
# One node on 127.0.0.1, written by benchmarks/slurm/run-local-slurm.sh.
ClusterName=local
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=16817
SlurmdPort=16818
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$socket
CredType=cred/munge
StateSaveLocation=$run/state
SlurmdSpoolDir=$run/spool/%n
SlurmctldPidFile=$run/slurmctld.pid
SlurmdPidFile=$run/slurmd.pid
SlurmctldLogFile=$run/logs/slurmctld.log
SlurmdLogFile=$run/logs/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$run/logs/jobcomp.log
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
MinJobAge=3600
# A job whose dependency can no longer be met (a failed array task) is cancelled, not left pending: sbatch --wait returns.
DependencyParameters=kill_invalid_depend
SchedulerType=sched/backfill
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF="$run/slurm.conf"

# Low OS priority for the daemons and so for every job they start: other work on the machine goes first.
$sudo env SLURM_CONF="$SLURM_CONF" nice -n 10 slurmctld -D -i -f "$SLURM_CONF" > "$run/logs/slurmctld.stdout" 2>&1 &
pids+=($!)
$sudo env SLURM_CONF="$SLURM_CONF" nice -n 10 slurmd -D -f "$SLURM_CONF" -N "$node" > "$run/logs/slurmd.stdout" 2>&1 &
pids+=($!)
stamp "waiting for node $node to be idle"
state=""
for _ in $(seq 60); do
  state=$(sinfo -h -n "$node" -o '%t' 2>/dev/null || true)
  [ "$state" = idle ] && break
  sleep 1
done
if [ "$state" != idle ]; then
  echo "error: node $node is '${state:-not answering}' after 60 s; the daemons' logs:" >&2
  tail -n 30 "$run"/logs/slurmctld.log "$run"/logs/slurmd.log "$run"/logs/*.stdout >&2 || true
  exit 1
fi
sinfo
stamp "cluster up"

# --- 1. the featurization array: each task its own cache ("machine"), the default shard name in shards/ ---
common=(--mode feature-extraction --threads "$threads" --no-color)
cat > "$run/featurize.sbatch" <<EOF
#!/bin/bash
#SBATCH --job-name=featurize
#SBATCH --array=0-$((tasks - 1))
#SBATCH --cpus-per-task=1
#SBATCH --output=$run/logs/featurize-%A_%a.out
set -euo pipefail
export MLNETTRANSFER_CACHE="$out/cache-task-\$SLURM_ARRAY_TASK_ID"
rm -rf "\$MLNETTRANSFER_CACHE"
echo "task \$SLURM_ARRAY_TASK_ID (\$SLURM_ARRAY_TASK_MIN-\$SLURM_ARRAY_TASK_MAX, count \$SLURM_ARRAY_TASK_COUNT) on \$(hostname -s), started \$(date -Is)"
cd "$run/shards"
/usr/bin/time -f 'task wall %e s, peak RSS %M KiB' $cli featurize "$data" --shard auto ${common[*]}
EOF
array=$(sbatch --parsable "$run/featurize.sbatch")
stamp "submitted featurization array: job $array"

# --- 2. merge and train, after every task of the array succeeded ---
cat > "$run/train.sbatch" <<EOF
#!/bin/bash
#SBATCH --job-name=merge-train
#SBATCH --cpus-per-task=$cpus
#SBATCH --output=$run/logs/merge-train-%j.out
set -euo pipefail
export MLNETTRANSFER_CACHE="$out/cache-merged"
rm -rf "\$MLNETTRANSFER_CACHE"
features=()
for f in "$run"/shards/features-*-of-$tasks.shard; do features+=(--features "\$f"); done
echo "merging \$(( \${#features[@]} / 2 )) shards"
/usr/bin/time -f 'train wall %e s, peak RSS %M KiB' $cli train "$data" "\${features[@]}" --seed 1 ${common[*]} --out "$out/merged/merged.zip"
EOF
set +e
merge_out=$(timeout "${SLURM_WAIT_S:-3600}" sbatch --parsable --wait --dependency=afterok:"$array" "$run/train.sbatch")
merge_rc=$?
set -e
merge=${merge_out%%;*}
stamp "merge-and-train job $merge done (sbatch --wait exit $merge_rc)"

echo; echo "=== jobs (scontrol show job) ==="
for j in "$array" "$merge"; do
  scontrol show job "$j" | grep -E 'JobId=|JobState=|RunTime=|StartTime=|Dependency=|ArrayTaskId=' | sed 's/^ */  /'
done
echo; echo "=== job completion log ($run/logs/jobcomp.log) ==="
cat "$run/logs/jobcomp.log" 2>/dev/null || echo "(none)"
for f in "$run"/logs/featurize-*.out "$run"/logs/merge-train-*.out; do
  echo; echo "=== $(basename "$f") ==="; cat "$f"
done
[ "$merge_rc" = 0 ] || { echo "error: the Slurm jobs failed (see above)" >&2; exit 1; }
ls -l "$run"/shards

# --- 3. the same training on one machine, no Slurm, no shards ---
stamp "single-machine train"
s0=$(date +%s)
MLNETTRANSFER_CACHE="$out/cache-single" $cli train "$data" --seed 1 "${common[@]}" --out "$out/single/single.zip" > "$out/single.log" 2>&1 \
  || { cat "$out/single.log"; exit 1; }
single_s=$(( $(date +%s) - s0 ))
grep -E 'featurize (train|test|validation):|^Saved' "$out/single.log" || true
stamp "single-machine train done in ${single_s} s"

# --- 4. the same model? ---
echo; echo "=== merged (Slurm) vs single-machine ==="
merged_log=$(ls "$run"/logs/merge-train-*.out)
grep -E 'imported .* shard|featurize (train|test|validation):' "$merged_log" || true
through=$(grep 'through the conv base' "$merged_log" | grep -vc ' 0 through the conv base' || true)
for z in merged single; do
  $cli predict "$out/$z/$z.zip" "$data" --json --top 10 > "$out/$z.predict.json"
  # Per entry of the zip: its CRC-32 and name.
  unzip -v "$out/$z/$z.zip" | awk 'NF == 8 && $7 ~ /^[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]$/ {print $7, $8}' | sort -k2 > "$out/$z.entries"
done
images=$(grep -c '"path"' "$out/single.predict.json")
differing=$(join -1 2 -2 2 "$out/merged.entries" "$out/single.entries" | awk '$2 != $3 {print $1}' | tr '\n' ' ')
echo "entries of the zips that differ (CRC-32): ${differing:-none}"
graph_and_head_equal=yes
for e in TransformerChain/Transform_000/Transform_002/OnnxModel TransformerChain/Transform_001/Model/Model.key; do
  case " $differing " in *" $e "*) graph_and_head_equal=no ;; esac
  echo "  $e: merged $(awk -v e="$e" '$2 == e {print $1}' "$out/merged.entries"), single $(awk -v e="$e" '$2 == e {print $1}' "$out/single.entries")"
done
echo "predictions (--json --top 10 on $images images): merged sha256 $(sha256sum < "$out/merged.predict.json" | cut -c1-16), single $(sha256sum < "$out/single.predict.json" | cut -c1-16)"
if cmp -s "$out/merged.predict.json" "$out/single.predict.json" && [ "$through" = 0 ] && [ "$graph_and_head_equal" = yes ]; then
  echo "EQUAL: the model trained on the $tasks Slurm shards has the same ONNX graph and head weights as the single-machine one and gives the same probabilities on all $images images; its run ran no image through the conv base"
else
  echo "DIFFERENT: predictions equal: $(cmp -s "$out/merged.predict.json" "$out/single.predict.json" && echo yes || echo no), graph and head equal: $graph_and_head_equal, merged-run lines with images through the conv base: $through" >&2
  diff "$out/merged.predict.json" "$out/single.predict.json" | head -20 >&2 || true
  exit 1
fi
stamp "all done; results in $out"
