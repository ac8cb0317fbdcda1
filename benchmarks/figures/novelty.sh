#!/usr/bin/env bash
# The Novelty column's separation of photos of none of a model's classes from its own: a caltech101_6 model scoring
# every hymenoptera photo against its test/ split, and a hymenoptera model scoring every caltech101_6 photo against its
# val/ split (through the saved zip, `predict --json`): AUROC, and the share of each side the stored threshold calls
# unknown (on the in-distribution split: false alarms, stated rate 5 %). Feature extraction; with a second argument
# "ft", the top block fine-tuned too (the score then reads the tuned block's features); with "methods", the candidate
# scores compared on the same pooled features (novelty-methods.py; installs python3-numpy and python3-sklearn with apt).
#   bash benchmarks/figures/novelty.sh [out-folder [ft|methods]]      (about 3 minutes on 2 cores; with ft about 20)
source "$(dirname "$0")/common.sh" "$@"
need_shared_data
build_cli
if [ "${2:-}" = methods ]; then
  # Debian's python3 (numpy, scikit-learn), whatever python3 comes first on PATH.
  /usr/bin/python3 -c "import numpy, sklearn" 2>/dev/null || { apt-get install -y -qq python3-numpy python3-sklearn >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null && apt-get install -y -qq python3-numpy python3-sklearn >/dev/null; }; }
  for set in caltech101_6 hymenoptera_data; do $cli featurize "$data/$set" --out "$out/$set.shard" -q >/dev/null; done
  echo "== a caltech101_6 model scoring hymenoptera_data against caltech101_6 test/"
  /usr/bin/python3 benchmarks/figures/novelty-methods.py "$out/caltech101_6.shard" test "$out/hymenoptera_data.shard"
  echo "== a hymenoptera_data model scoring caltech101_6 against hymenoptera_data val/"
  /usr/bin/python3 benchmarks/figures/novelty-methods.py "$out/hymenoptera_data.shard" val "$out/caltech101_6.shard"
  exit 0
fi
modes=(fe); [ "${2:-}" = ft ] && modes=(fe ft)
for mode in "${modes[@]}"; do
  args=(--mode feature-extraction); [ $mode = ft ] && args=(--mode fine-tune)
  for pair in "caltech101_6 test hymenoptera_data" "hymenoptera_data val caltech101_6"; do
    read -r set split other <<< "$pair"
    name="$set-$mode"
    timed_run "$name" train "$data/$set" "${args[@]}" --report-dir "$out/$name-report"
    echo "== $name: wall $wall, peak RSS $rss_mib MiB"
    grep -E "^Novelty:" "$out/$name.log" || true
    $cli predict "$out/$name.zip" "$data/$set/$split" --json > "$out/$name-inside.json"
    $cli predict "$out/$name.zip" "$data/$other" --json > "$out/$name-outside.json"
    python3 - "$out/$name-inside.json" "$out/$name-outside.json" "$set $split" "$other" <<'PY'
import json, sys
inside = [p["novelty"] for p in json.load(open(sys.argv[1])) if "novelty" in p]
outside = [p["novelty"] for p in json.load(open(sys.argv[2])) if "novelty" in p]
unknown_in = sum(p.get("unknown", False) for p in json.load(open(sys.argv[1])))
unknown_out = sum(p.get("unknown", False) for p in json.load(open(sys.argv[2])))
# AUROC: the chance an outside photo scores above an inside one (ties count a half).
wins = sum((o > i) + 0.5 * (o == i) for o in outside for i in inside)
print(f"AUROC {wins / (len(inside) * len(outside)):.3f}; unknown: {unknown_in}/{len(inside)} = {unknown_in / len(inside):.1%} of {sys.argv[3]} (false alarms), "
      f"{unknown_out}/{len(outside)} = {unknown_out / len(outside):.1%} of {sys.argv[4]}")
PY
  done
done
