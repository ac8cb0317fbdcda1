#!/usr/bin/env bash
# Whole-process memory of reading hostile files (issue 12, class 5), /usr/bin/time -v:
#  1. validate and train (no cache) on a folder of 4 images in 2 classes, each a small JPEG followed by 199 MB of
#     trailing bytes (accepted: under the 200 MB file limit); a decode holds one copy of its file;
#  2. validate on a manifest that is a link to /dev/zero, and on a FIFO named .csv (both refused at once).
# With a second CLI (an older build) as $2 the same runs are made with it, side by side.
#   bash benchmarks/figures/hostile-reads.sh [out-folder] [other-cli.dll]
set -euo pipefail
cd "$(dirname "$0")/../.."
out="${1:-$(mktemp -d)}"
mkdir -p "$out"
dotnet build src/MlNetTransfer.Cli -c Release -v q -nologo >/dev/null
clis=("src/MlNetTransfer.Cli/bin/Release/net10.0/mlnet-transfer.dll")
[ -n "${2:-}" ] && clis+=("$2")
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"

trailing="$out/trailing/photos"
mkdir -p "$trailing"
for i in 1 2 3 4; do
  class=$([ $i -le 2 ] && echo a || echo b)
  mkdir -p "$trailing/$class"
  cp tests/MlNetTransfer.Tests/Fixtures/images/gray.jpg "$trailing/$class/$i.jpg"
  head -c $((199 * 1024 * 1024)) /dev/urandom >> "$trailing/$class/$i.jpg"
done
ln -sfn /dev/zero "$out/zero.csv"
rm -f "$out/fifo.csv"; mkfifo "$out/fifo.csv"

for cli in "${clis[@]}"; do
  echo "== $cli"
  for run in "validate $trailing" "train $trailing --mode feature-extraction --no-cache --out $out/trailing.zip" "validate $out/zero.csv" "validate $out/fifo.csv"; do
    target=$(echo "$run" | cut -d' ' -f1-2)
    set +e
    # shellcheck disable=SC2086
    timeout 60 /usr/bin/time -v -o "$out/run.time" dotnet "$cli" $run --no-color > "$out/run.log" 2>&1
    rc=$?
    set -e
    printf '  %-40s exit %-3s wall %-8s peak RSS %6d MiB  %s\n' "${target/$out\//}" "$rc" \
      "$(grep 'Elapsed (wall' "$out/run.time" 2>/dev/null | awk '{print $NF}' || echo '-')" \
      $(( $(grep 'Maximum resident' "$out/run.time" 2>/dev/null | awk '{print $NF}' || echo 0) / 1024 )) \
      "$( (grep -m1 'error:' "$out/run.log" || tail -1 "$out/run.log") | cut -c1-110)"
  done
done
rm -f "$out/fifo.csv"
