#!/usr/bin/env bash
# Fine-tuning at scale: peak memory and seconds per epoch as the training set grows.
#
#   benchmarks/scale/fine-tune-scale.sh [sizes...]      (default: 1000 2500 5000 10000 training images)
#
# For each size N: a synthetic set (`MlNetTransfer.Benchmarks synthetic-set`: SOURCE's training photos in turn under new
# names with a seeded jitter, N training images; SOURCE's validation photos once each, jittered: the same 153 at every
# size), then one whole `mlnet-transfer train <set> --mode fine-tune --unfreeze stage4 --no-cache` (4 augmented views an
# image, the default) under /usr/bin/time -v. Prints, per size: peak RSS, wall time, the frozen part's views/s, seconds
# per fine-tuning epoch (each image once, in one of its views) and per head epoch, and the views' bytes on disk.
# Environment: VIEWS (disk-fp16; memory / disk to compare), EPOCHS (1), HEAD_EPOCHS (1), SEED (1),
# SOURCE (../shared/data/hymenoptera_data beside the repository), SCALE_OUT (/tmp/mlnet-scale), BIN (SCALE_OUT/bin; rebuilt
# with BUILD=1; not OUTDIR, which MSBuild would take for its OutDir property), KEEP_SETS=1 keeps the generated sets (about 45 KB an image).
# Run it alone on the machine: the epoch times are compared across sizes.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
SIZES="${*:-1000 2500 5000 10000}"
VIEWS="${VIEWS:-disk-fp16}"
EPOCHS="${EPOCHS:-1}"
HEAD_EPOCHS="${HEAD_EPOCHS:-1}"
SEED="${SEED:-1}"
SOURCE="${SOURCE:-$REPO/../shared/data/hymenoptera_data}"
SOURCE="$(cd "$SOURCE" && pwd)"
SCALE_OUT="${SCALE_OUT:-/tmp/mlnet-scale}"
BIN="${BIN:-$SCALE_OUT/bin}"
TIME=/usr/bin/time
[ -x "$TIME" ] || { echo "fine-tune-scale.sh: $TIME missing (apt-get install -y time)" >&2; exit 1; }
mkdir -p "$SCALE_OUT"
if [ "${BUILD:-0}" = 1 ] || [ ! -f "$BIN/cli/mlnet-transfer.dll" ]; then
  echo "building into $BIN"
  dotnet build "$REPO/src/MlNetTransfer.Cli" -c Release -o "$BIN/cli" -nologo -v q >/dev/null
  dotnet build "$REPO/benchmarks/MlNetTransfer.Benchmarks" -c Release -o "$BIN/bench" -nologo -v q >/dev/null
fi
{
  echo "cpu: $(lscpu | sed -n 's/^Model name: *//p' | head -1); cores: $(nproc); memory: $(free -g | awk '/^Mem:/ {print $2}') GB"
  echo "commit: $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?'); views: $VIEWS; head epochs: $HEAD_EPOCHS; epochs: $EPOCHS; seed: $SEED; source: $SOURCE"
} | tee "$SCALE_OUT/machine.txt"

FAILED=0
for n in $SIZES; do
  set_dir="$SCALE_OUT/set-$n"
  if [ ! -d "$set_dir/train" ]; then
    dotnet "$BIN/bench/MlNetTransfer.Benchmarks.dll" synthetic-set "$SOURCE" "$set_dir" --images "$n" --seed "$SEED"
  fi
  log="$SCALE_OUT/train-$n-$VIEWS.log"
  cache="$(mktemp -d "$SCALE_OUT/cache-XXXXXX")"
  echo "training on $n images ($VIEWS) -> $log"
  ( cd "$SCALE_OUT" && MLNETTRANSFER_CACHE="$cache" "$TIME" -v dotnet "$BIN/cli/mlnet-transfer.dll" train "$set_dir" --mode fine-tune --unfreeze stage4 \
      --no-cache --no-color --force --views "$VIEWS" --epochs "$EPOCHS" --head-epochs "$HEAD_EPOCHS" --patience 100 --seed "$SEED" \
      --out "$SCALE_OUT/model-$n-$VIEWS.zip" ) >"$log" 2>&1 || { echo "train on $n images failed: see $log" >&2; FAILED=$((FAILED + 1)); }
  rm -rf "$cache"
  [ "${KEEP_SETS:-0}" = 1 ] || rm -rf "$set_dir"
done

echo
printf '| training images | peak RSS (MiB) | wall (s) | frozen part (views/s) | s / fine-tune epoch | s / head epoch | views (MiB) | val accuracy |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n'
for n in $SIZES; do
  log="$SCALE_OUT/train-$n-$VIEWS.log"
  [ -f "$log" ] || continue
  rss=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2 / 1024}' "$log")
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, t, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + t[i]; printf "%.0f", s}' "$log")
  rate=$(sed -n 's/.*featurize train: 0 from the cache.*(\([0-9.]*\) views\/s).*/\1/p' "$log" | head -1)
  ft=$(awk '$1 == "fine-tune" && $2 ~ /\// {sub(/s$/, "", $8); s += $8; k++} END {if (k) printf "%.1f", s / k}' "$log")
  head=$(awk '$1 == "head" && $2 ~ /\// {sub(/s$/, "", $8); s += $8; k++} END {if (k) printf "%.1f", s / k}' "$log")
  where=$(sed -n 's/.*view(s) of \[.*\] at [^:]*: \([0-9]*\) MiB.*/\1/p' "$log" | head -1)
  acc=$(sed -n 's/.*validation accuracy \([0-9.]*\)$/\1/p' "$log" | tail -1)
  printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$n" "$rss" "$wall" "${rate:-?}" "${ft:-?}" "${head:-?}" "${where:-?}" "${acc:-?}"
done
exit "$FAILED"
