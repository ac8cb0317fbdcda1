#!/usr/bin/env bash
# How much a figure moves with the seed alone: the same command with seeds 1..N, each from an empty cache, by one
# console build (the accuracy on the reported split, or on a given evaluation folder). Compares two builds side by side
# when BEFORE names another build's mlnet-transfer.dll (e.g. one of the commit before a change), with its own flags.
#   bash benchmarks/figures/seed-spread.sh <seeds> <eval-folder|-> -- <train args...>
#   BEFORE=/path/to/old/mlnet-transfer.dll BEFORE_ARGS="..." bash benchmarks/figures/seed-spread.sh ...
set -euo pipefail
cd "$(dirname "$0")/../.."
seeds=$1 evaldir=$2; shift 2; [ "$1" = "--" ] && shift
out=$(mktemp -d)
dotnet build src/MlNetTransfer.Cli -c Release -v q -nologo >/dev/null
accuracy() { # <dll> <zip> <log>
  if [ "$evaldir" = "-" ]; then grep -A1 '^Saved' "$3" | tr '\n' ' ' | grep -o 'accuracy [0-9.]*' | awk '{print $2}'
  else MLNETTRANSFER_CACHE="$out/eval-cache" dotnet "$1" evaluate "$2" "$evaldir" --json | python3 -c 'import json,sys; print("%.4f" % json.load(sys.stdin)["microAccuracy"])'; fi
}
for build in after before; do
  dll=src/MlNetTransfer.Cli/bin/Release/net10.0/mlnet-transfer.dll; args=("$@")
  if [ $build = before ]; then [ -n "${BEFORE:-}" ] || continue; dll=$BEFORE; read -r -a args <<< "$BEFORE_ARGS"; fi
  values=()
  for s in $(seq 1 "$seeds"); do
    rm -rf "$out/cache"
    MLNETTRANSFER_CACHE="$out/cache" dotnet "$dll" "${args[@]}" --seed "$s" --out "$out/m.zip" --no-color > "$out/log" 2>&1
    values+=("$(accuracy "$dll" "$out/m.zip" "$out/log")")
  done
  python3 -c 'import sys,statistics as s; v=[float(x) for x in sys.argv[2:]]; print(f"{sys.argv[1]:6}: seeds 1..{len(v)}: " + " ".join(f"{x:.4f}" for x in v) + f"  mean {s.mean(v):.4f} sd {s.stdev(v):.4f}")' "$build" "${values[@]}"
done
rm -rf "$out"
