#!/usr/bin/env bash
# Calibration error before and after the temperature, on splits the temperature never saw: hymenoptera val/ (397
# images in all), caltech101_6 test/ and a Fashion-MNIST set with a validation split (which chooses) and a test split
# (30/30/20 a class, made by data/make-fashion-mnist-sample.py outside the repository). Feature extraction (L-BFGS:
# the temperature is fitted on the out-of-fold predictions of the training images) and, with a second argument "ft",
# fine-tuning the top block too (the temperature is fitted on the images that chose the epoch).
# With "per-class" instead: one temperature against per-class variants (vector scaling, a temperature per class) on the
# same three sets' pooled features, with paired bootstrap intervals (calibration-per-class.py; python3-numpy/-sklearn).
#   bash benchmarks/figures/calibration.sh [out-folder [ft|per-class]]      (about 5 minutes on 2 cores; with ft about 40)
source "$(dirname "$0")/common.sh" "$@"
need_shared_data
need_fashion_mnist
python3 data/make-fashion-mnist-sample.py --out "$out/fashion-30" --train-per-class 30 --val-per-class 30 --test-per-class 20 >/dev/null
build_cli
if [ "${2:-}" = per-class ]; then
  /usr/bin/python3 -c "import numpy, sklearn" 2>/dev/null || { apt-get install -y -qq python3-numpy python3-sklearn >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null && apt-get install -y -qq python3-numpy python3-sklearn >/dev/null; }; }
  $cli featurize "$out/fashion-30" --out "$out/fashion.shard" -q >/dev/null
  $cli featurize "$data/hymenoptera_data" --out "$out/hym.shard" -q >/dev/null
  $cli featurize "$data/caltech101_6" --out "$out/cal.shard" -q >/dev/null
  OMP_NUM_THREADS=1 /usr/bin/python3 benchmarks/figures/calibration-per-class.py "$out"
  exit 0
fi
modes=(fe); [ "${2:-}" = ft ] && modes=(fe ft)
for mode in "${modes[@]}"; do
  args=(--mode feature-extraction); [ $mode = ft ] && args=(--mode fine-tune)
  for set in "$data/hymenoptera_data" "$data/caltech101_6" "$out/fashion-30"; do
    name="$(basename "$set")-$mode"
    timed_run "$name" train "$set" "${args[@]}" --report-dir "$out/$name-report"
    echo "== $name: wall $wall, peak RSS $rss_mib MiB"
    grep -E "^Calibration:|^A perfectly calibrated|^│ (test|validation)" "$out/$name.log" | sed 's/│/|/g'
  done
done
