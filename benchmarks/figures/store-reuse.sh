#!/usr/bin/env bash
# What the one featurization pipeline and its per-image store save, whole-process (/usr/bin/time -v), on hymenoptera_data:
#  1. fine-tuning stage4 on all but 10 training images (cold cache), then on all of them with that cache: the second
#     run computes the frozen part for the 10 new images only; then a cold run on all of them for comparison;
#  2. views per second through the conv base in a cold feature-extraction run and a cold fine-tuning run (the same
#     pipeline at two cuts: the whole base with plain + mirror views, the prefix before stage4 with plain + 4 crops);
#  3. the torch-mlp head twice on the same images: the second run reads every view from the cache.
#   bash benchmarks/figures/store-reuse.sh [out-folder]      (about 10 minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/../.."
out="${1:-$(mktemp -d)}"
mkdir -p "$out"
hym=$(cd ../shared/data/hymenoptera_data && pwd)
dotnet build src/MlNetTransfer.Cli -c Release -v q -nologo >/dev/null
cli="dotnet src/MlNetTransfer.Cli/bin/Release/net10.0/mlnet-transfer.dll"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), vector extensions: $(grep -o 'avx512[a-z_]*\|avx2' /proc/cpuinfo | sort -u | tr '\n' ' ')"

# Manifests of the same files: all of them, and all but 10 training images (5 ants, 5 bees).
all="$out/all.csv"; fewer="$out/fewer.csv"
echo "path,label,split" > "$all"
for split in train val; do
  for label in ants bees; do
    find "$hym/$split/$label" -type f | sort | while read -r f; do echo "\"$f\",$label,$([ $split = val ] && echo val || echo train)"; done
  done
done >> "$all"
{ echo "path,label,split"; tail -n +2 "$all" | awk -F, '$NF == "train" && $2 != last { n = 0; last = $2 } $NF == "train" && n++ < 5 { next } { print }'; } > "$fewer"
echo "images: $(($(wc -l < "$all") - 1)) in all.csv, $(($(wc -l < "$fewer") - 1)) in fewer.csv"

run() {
  local name=$1 cache=$2; shift 2
  MLNETTRANSFER_CACHE="$cache" /usr/bin/time -v -o "$out/$name.time" $cli "$@" --out "$out/$name.zip" --no-color > "$out/$name.log" 2>&1
  printf '%-16s wall %-8s peak RSS %5d MiB  %s | %s\n' "$name" "$(grep 'Elapsed (wall' "$out/$name.time" | awk '{print $NF}')" \
    $(($(grep 'Maximum resident' "$out/$name.time" | awk '{print $NF}') / 1024)) "$(grep 'featurize train:' "$out/$name.log" | tail -1 | sed 's/^ *//')" \
    "$(grep -m1 -A1 '^Saved' "$out/$name.log" | tr '\n' ' ' | sed 's/.*); //; s/ Metrics:.*//; s/ Images in.*//')"
}

ft=(--mode fine-tune --unfreeze stage4)
rm -rf "$out/cache-a" "$out/cache-b" "$out/cache-c" "$out/cache-d"
run ft-fewer-cold "$out/cache-a" train "$fewer" "${ft[@]}"
run ft-all-warm   "$out/cache-a" train "$all" "${ft[@]}"
run ft-all-cold   "$out/cache-b" train "$all" "${ft[@]}"
run fe-all-cold   "$out/cache-c" train "$all" --mode feature-extraction
run mlp-cold      "$out/cache-d" train "$all" --mode feature-extraction --head torch-mlp
run mlp-warm      "$out/cache-d" train "$all" --mode feature-extraction --head torch-mlp --lr 5e-3
