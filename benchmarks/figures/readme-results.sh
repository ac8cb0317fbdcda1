#!/usr/bin/env bash
# Re-runs every training figure of the README's Results table and of docs/fine-tuning.md on this machine, each from an
# empty cache, whole-process (/usr/bin/time -v), and prints one line per run: accuracy on the reported split, wall time,
# peak RSS. Also: a model trained on hymenoptera_data/train alone (no split folders), evaluated on val/.
#   bash benchmarks/figures/readme-results.sh [out-folder]      (about 25 minutes on 2 cores)
source "$(dirname "$0")/common.sh" "$@"
need_shared_data
build_cli

run() {
  local name=$1; shift
  timed_run "$name" "$@"
  local saved
  saved=$(grep -m1 -A1 '^Saved' "$out/$name.log" | tr '\n' ' ' | sed 's/.*); //; s/ Metrics:.*//; s/ Images in.*//')
  printf '%-22s %-70s wall %s  peak RSS %d MiB  | %s\n' "$name" "$*" "$wall" "$rss_mib" "$saved"
}

run hym-lbfgs       train $data/hymenoptera_data --mode feature-extraction
run hym-mlp         train $data/hymenoptera_data --mode feature-extraction --head torch-mlp
run hym-ft          train $data/hymenoptera_data --mode fine-tune --unfreeze stage4
run cal-lbfgs       train $data/caltech101_6 --mode feature-extraction
run cal-mlp         train $data/caltech101_6 --mode feature-extraction --head torch-mlp
run cal-ft          train $data/caltech101_6 --mode fine-tune --unfreeze stage4
run fashion         train data/fashion-mnist-sample --mode feature-extraction
run fashion-ft      train data/fashion-mnist-sample --mode fine-tune --unfreeze stage4
run fashion-ft2     train data/fashion-mnist-sample --mode fine-tune --unfreeze 2
run hymtrain-lbfgs  train $data/hymenoptera_data/train --mode feature-extraction
run hymtrain-ft     train $data/hymenoptera_data/train --mode fine-tune --unfreeze stage4
for m in hymtrain-lbfgs hymtrain-ft; do
  printf '%-22s evaluate on hymenoptera_data/val: %s\n' "$m" \
    "$($cli evaluate "$out/$m.zip" $data/hymenoptera_data/val --json | python3 -c 'import json,sys; r=json.load(sys.stdin); print("%s %d images, accuracy %.4f, log-loss %.4f" % (r["split"], r["count"], r["microAccuracy"], r["logLoss"]))')"
done
# docs/fine-tuning.md: the block's learning rate and the optimizer (chosen on hymenoptera's val/, reported there too).
run hym-ft-block1e-4 train $data/hymenoptera_data --mode fine-tune --unfreeze stage4 --lr 1e-3 --block-lr-factor 0.1
run hym-ft-block3e-4 train $data/hymenoptera_data --mode fine-tune --unfreeze stage4 --block-lr-factor 0.3
run hym-ft-lr1e-3    train $data/hymenoptera_data --mode fine-tune --unfreeze stage4 --lr 1e-3 --block-lr-factor 1
run hym-ft-adamw     train $data/hymenoptera_data --mode fine-tune --unfreeze stage4 --optimizer adamw --lr 1e-3 --block-lr-factor 0.1
