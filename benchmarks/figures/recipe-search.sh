#!/usr/bin/env bash
# Is a learning-rate search, or label smoothing, worth adopting for mode auto's fine-tuning candidates? Fine-tuning the
# top block with the defaults against the same run at a third and three times the rate, with label smoothing 0.1, and
# feature extraction and fine-tuning with flip test-time augmentation folded into the saved graph (--test-time-flip),
# on two Fashion-MNIST sets with a validation and a test split, 30/30/20 and 100/100/100 a class (made from Debian's
# dataset-fashion-mnist by data/make-fashion-mnist-sample.py, outside the repository). Of the shared photo sets none has
# both splits: their one held-out split is the figure they report, so no choice is made on it. Validation is what a
# search would choose on (it is also each run's early-stopping split); test is what no choice saw. Feature extraction
# (the L-BFGS head) is the reference row.
#   bash benchmarks/figures/recipe-search.sh [out-folder]      (about 90 minutes on 2 cores)
source "$(dirname "$0")/common.sh" "$@"
need_fashion_mnist
python3 data/make-fashion-mnist-sample.py --out "$out/fashion-30v" --train-per-class 30 --val-per-class 30 --test-per-class 20 >/dev/null
python3 data/make-fashion-mnist-sample.py --out "$out/fashion-100v" --train-per-class 100 --val-per-class 100 --test-per-class 100 >/dev/null
build_cli

score() { # accuracy and log-loss of a model on one split
  $cli evaluate "$1" "$2" --split "$3" --json | python3 -c '
import json, sys
m = json.load(sys.stdin)
print("%.4f  %.4f" % (m["microAccuracy"], m["logLoss"]))'
}

for set in fashion-30v:$out/fashion-30v fashion-100v:$out/fashion-100v; do
  name=${set%%:*}; path=${set#*:}
  # One cache per set: every run after the first reads the same views.
  export MLNETTRANSFER_CACHE="$out/cache-$name"
  rm -rf "$MLNETTRANSFER_CACHE"
  echo
  echo "$name: variant, validation accuracy and log-loss, test accuracy and log-loss, wall seconds"
  for variant in "fe|--mode feature-extraction" "ft|--mode fine-tune --unfreeze 1" "ft-lr-third|--mode fine-tune --unfreeze 1 --lr 6.7e-4" \
      "ft-lr-triple|--mode fine-tune --unfreeze 1 --lr 6e-3" "ft-smooth|--mode fine-tune --unfreeze 1 --label-smoothing 0.1" \
      "fe-flip|--mode feature-extraction --test-time-flip" "ft-flip|--mode fine-tune --unfreeze 1 --test-time-flip"; do
    v=${variant%%|*}
    read -r -a args <<< "${variant#*|}"
    start=$(date +%s.%N)
    $cli train "$path" "${args[@]}" --out "$out/$name-$v.zip" --no-color > "$out/$name-$v.log" 2>&1
    took=$(echo "$(date +%s.%N) - $start" | bc)
    printf '  %-14s val %s   test %s   %5.0f s\n' "$v" "$(score "$out/$name-$v.zip" "$path" validation)" "$(score "$out/$name-$v.zip" "$path" test)" "$took"
  done
  # The range test (fastai's lr_find) for the same fine-tuning, after its head phase: what it would pick instead of a sweep.
  $cli lr-find "$path" --mode fine-tune --unfreeze 1 --plot "$out/$name-lr-find.png" --no-color > "$out/$name-lr-find.log" 2>&1
  echo "  lr-find: $(grep -m1 -A1 '^Suggested' "$out/$name-lr-find.log" | tr '\n' ' ' | sed 's/ (fastai[^)]*)//; s/ *$//') (plot $out/$name-lr-find.png)"
done
