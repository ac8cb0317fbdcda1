#!/usr/bin/env bash
# How many photos of the shared sets carry a non-trivial EXIF orientation (docs/console.md, Into an app): `validate
# --json` notes "EXIF orientation <origin>" for each image whose stored pixels must be turned to be upright.
#   bash benchmarks/figures/exif-orientations.sh [out-folder]      (about a minute on 2 cores: every photo is decoded)
source "$(dirname "$0")/common.sh" "$@"
need_shared_data
build_cli
for set in hymenoptera_data caltech101_6; do
  $cli validate "$data/$set" --json > "$out/$set-validate.json"
  python3 - "$out/$set-validate.json" "$set" <<'PY'
import collections, json, sys
verdicts = json.load(open(sys.argv[1]))
oriented = collections.Counter(v["note"].split("EXIF orientation ")[1] for v in verdicts if v["ok"] and "EXIF orientation " in v["note"])
usable = sum(v["ok"] for v in verdicts)
print(f"{sys.argv[2]}: {sum(oriented.values())} of {usable} usable images carry a non-trivial EXIF orientation {dict(oriented)}")
PY
done
