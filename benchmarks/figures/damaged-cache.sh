#!/usr/bin/env bash
# A damaged cached featurizer graph never reaches a model (issue 12, class 1), on hymenoptera_data, whole process:
#  1. a clean train with a fresh cache, evaluated on val/;
#  2. bytes flipped inside the cached graph's weights; train again with that cache: it must warn, rebuild, and save a
#     model that evaluates exactly as the clean one (the report of the hostile test: val accuracy 1.0 from poisoned
#     cached features, while the saved zip scored 0.54 with log-loss 15.8);
#  3. the graph's info file edited, then the graph truncated: each later train rebuilds and succeeds.
#   bash benchmarks/figures/damaged-cache.sh [out-folder]      (about 3 minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/../.."
out="${1:-$(mktemp -d)}"
mkdir -p "$out"
hym=$(cd ../shared/data/hymenoptera_data && pwd)
dotnet build src/MlNetTransfer.Cli -c Release -v q -nologo >/dev/null
cli="dotnet src/MlNetTransfer.Cli/bin/Release/net10.0/mlnet-transfer.dll"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
cache="$out/cache"
rm -rf "$cache"
export MLNETTRANSFER_CACHE="$cache"

train() { # name
  /usr/bin/time -v -o "$out/$1.time" $cli train "$hym/train" --mode feature-extraction --out "$out/$1.zip" --no-color > "$out/$1.log" 2>&1
  local evaluated
  evaluated=$($cli evaluate "$out/$1.zip" "$hym/val" --json | python3 -c 'import json,sys; r=json.load(sys.stdin); print("val accuracy %.4f, log-loss %.4f (%d images)" % (r["microAccuracy"], r["logLoss"], r["count"]))')
  printf '%-10s exit 0, wall %-8s | saved zip on val/: %s\n' "$1" "$(grep 'Elapsed (wall' "$out/$1.time" | awk '{print $NF}')" "$evaluated"
  grep -i "damaged\|rebuilt\|info file" "$out/$1.log" | sed 's/^/           /' || true
}

train clean
graph=$(ls "$cache"/graphs/*.onnx | head -1)
python3 - "$graph" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, 'rb').read())
for i in range(64):
    b[len(b) // 2 + i * 997] ^= 0x5a
open(p, 'wb').write(b)
print("flipped 64 bytes inside", p)
PY
train flipped
printf '{ "Key": "edited" }' > "$graph.info.json"
train edited-info
head -c 1000 "$graph" > "$graph.cut" && mv "$graph.cut" "$graph"
train truncated
for name in flipped edited-info truncated; do
  if cmp -s <($cli predict "$out/clean.zip" "$hym/val" --json) <($cli predict "$out/$name.zip" "$hym/val" --json); then
    echo "$name: predictions on val/ identical to the clean run's"
  else
    echo "$name: predictions on val/ DIFFER from the clean run's"; exit 1
  fi
done
