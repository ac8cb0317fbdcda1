#!/usr/bin/env bash
# The data checks' figures in docs/console.md (Data checks): what `validate --labels` finds in caltech101_6 and
# hymenoptera as given, caltech101_6's test figure with and without --drop-duplicates, and the tests that measure the
# near-duplicate threshold and the flipped-label recall (their numbers are in the test output).
#   bash benchmarks/figures/data-checks.sh [out-folder]      (about 5 minutes on 2 cores, most of it featurizing cold)
source "$(dirname "$0")/common.sh" "$@"
need_shared_data
build_cli
for set in caltech101_6 hymenoptera_data; do
  export MLNETTRANSFER_CACHE="$out/cache"
  start=$(date +%s)
  $cli validate --labels "$data/$set" --json > "$out/$set-checks.json"
  echo "== validate --labels $set: $(( $(date +%s) - start )) s (cache: $out/cache)"
  python3 - "$out/$set-checks.json" <<'PY'
import json, sys
checks = json.load(open(sys.argv[1]))["dataChecks"]
print("counts:", checks["counts"], "threshold:", checks["nearDuplicateThreshold"], "labels checked:", checks["labelsChecked"])
for f in checks["findings"]:
    print("  " + f["message"])
PY
done
for drop in "" --drop-duplicates; do
  name="caltech-fe${drop:+-drop}"
  timed_run "$name" train "$data/caltech101_6" --mode feature-extraction $drop
  echo "== train caltech101_6 --mode feature-extraction $drop: wall $wall"
  python3 -c "import json,sys; r=json.load(open(sys.argv[1]))['reports'][0]; print(f\"  {r['split']}: {r['count']} images, accuracy {r['microAccuracy']:.4f}\")" "$out/$name.metrics.json"
done
dotnet test tests/MlNetTransfer.Tests -c Release --filter "FullyQualifiedName~DataCheckTests" --logger "console;verbosity=detailed" 2>&1 \
  | grep -E "distinct photos|copies,|^ *at 0\.|labels flipped|^ *seed |Passed|Failed" | sed 's/^ *//' | sort -u
