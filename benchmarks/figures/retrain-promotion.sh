#!/usr/bin/env bash
# Retraining that never ships a worse model: a TorchSharp softmax head on hymenoptera's frozen base, trained on half of
# train/; retrained on the same half with 60 % of its labels swapped (refused: exit 3, the file left as it was), then
# on all of train/ (written). Every comparison is on the 153 val/ images. Prints retrain's verdicts and info's lineage.
#   bash benchmarks/figures/retrain-promotion.sh [out-folder]      (about 3 minutes on 2 cores)
source "$(dirname "$0")/common.sh" "$@"
need_shared_data
build_cli
hym="$data/hymenoptera_data"
for copy in half mislabeled; do
  rm -rf "$out/$copy"
  for cls in ants bees; do
    other=$([ $cls = ants ] && echo bees || echo ants)
    mkdir -p "$out/$copy/train/$cls" "$out/$copy/train/$other" "$out/$copy/val"
    i=0
    while IFS= read -r f; do
      i=$((i + 1)); [ $((i % 2)) = 0 ] && continue   # every other photo
      target=$cls; [ $copy = mislabeled ] && [ $(((i / 2) % 5)) -lt 3 ] && target=$other
      cp "$hym/train/$cls/$f" "$out/$copy/train/$target/"
    done < <(ls "$hym/train/$cls" | LC_ALL=C sort)
    cp -r "$hym/val/$cls" "$out/$copy/val/"
  done
done
zip="$out/model.zip"
$cli train "$out/half" --mode feature-extraction --head torch-softmax --out "$zip" -q --no-color > "$out/train.log" 2>&1
echo "== trained on half of train/: $(sha256sum "$zip" | cut -c1-16)"
set +e
$cli retrain "$zip" "$out/mislabeled" --out "$zip" --no-color > "$out/retrain-mislabeled.log" 2>&1; rc=$?
set -e
echo "== retrain on the half with 60 % of the labels swapped: exit $rc, file $(sha256sum "$zip" | cut -c1-16)"
grep -A3 "^Not saved" "$out/retrain-mislabeled.log" || true
$cli retrain "$zip" "$hym" --out "$zip" --no-color > "$out/retrain-all.log" 2>&1
echo "== retrain on all of train/: exit 0, file $(sha256sum "$zip" | cut -c1-16)"
grep -A2 "^Compared with" "$out/retrain-all.log"
$cli info "$zip" --no-color | grep -A2 "^lineage"
