#!/usr/bin/env bash
# Feature extraction against fine-tuning (stage4), each with its defaults, on a Fashion-MNIST set far from ImageNet and
# large enough to tell them apart: 100 training and 100 test images a class, made from Debian's dataset-fashion-mnist
# by data/make-fashion-mnist-sample.py (outside the repository). Both train on train/ only (the trainer holds out 20 %
# to choose, then refits on all 1,000); the comparison is on test/ (1,000 images no choice saw), image by image
# (evaluate --against: paired bootstrap interval of the margin, McNemar's exact test).
# A second argument compares the two on another set instead (its test/ split), e.g. data/fashion-mnist-sample.
#   bash benchmarks/figures/fashion-modes.sh [out-folder [data]]      (about 30 minutes on 2 cores for fashion-100)
source "$(dirname "$0")/common.sh" "$@"
need_fashion_mnist
data="${2:-}"
if [ -z "$data" ]; then
  python3 data/make-fashion-mnist-sample.py --out "$out/fashion-100" --train-per-class 100 --test-per-class 100
  data="$out/fashion-100"
fi
build_cli
for mode in fe ft; do
  args=(--mode feature-extraction); [ $mode = ft ] && args=(--mode fine-tune --unfreeze stage4)
  /usr/bin/time -v -o "$out/$mode.time" $cli train "$data" --out "$out/$mode.zip" "${args[@]}" --no-color > "$out/$mode.log" 2>&1
  echo "$mode: wall $(grep 'Elapsed (wall' "$out/$mode.time" | awk '{print $NF}'), test accuracy $(grep -m1 '^Saved' "$out/$mode.log" | sed 's/.*test accuracy //')"
done
$cli evaluate "$out/fe.zip" "$data" --split test --against "$out/ft.zip" --no-color | tail -3
