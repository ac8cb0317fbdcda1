#!/usr/bin/env bash
# The learning curves of docs/fine-tuning.md and the README: accuracy against training images per class for a CNN
# trained from scratch, feature extraction and fine-tuning, on hymenoptera (scored on val/), caltech101_6 (test/) and
# the Fashion-MNIST sample (test/), each from an empty cache; 2 seeded subsamples at 1, 5 and 20 images per class, and
# every training image. Copies the plots to docs/images/learning-curve-<set>.png.
#   bash benchmarks/figures/learning-curves.sh [out-folder]      (about 90 minutes on 2 cores)
source "$(dirname "$0")/common.sh" "$@"
need_shared_data
build_cli
for set in fashion:data/fashion-mnist-sample hymenoptera:$data/hymenoptera_data caltech:$data/caltech101_6; do
  name=${set%%:*}; path=${set#*:}
  export MLNETTRANSFER_CACHE="$out/cache-$name"
  rm -rf "$MLNETTRANSFER_CACHE"
  /usr/bin/time -f "$name: wall %e s, peak RSS %M KiB" -o "$out/$name.time" \
    $cli learning-curve "$path" --sizes 1,5,20 --repeats 2 --time-budget 40m --out "$out/$name" --no-color > "$out/$name.log" 2>&1
  echo; cat "$out/$name.time"
  sed -n '/Learning curve/,$p' "$out/$name.log"
  cp "$out/$name/learning-curve.png" "docs/images/learning-curve-$name.png"
done
