#!/usr/bin/env bash
# Mode auto (train's default) on the shared photo sets close to ImageNet and on Fashion-MNIST far from it, each from an
# empty cache, whole-process (/usr/bin/time -v): the reported figure, the decision line and the candidates table of
# each run. Then on a Fashion-MNIST set large enough to tell (100 training, 100 validation and 100 test images a
# class, made from Debian's dataset-fashion-mnist by data/make-fashion-mnist-sample.py, outside the repository): the
# fixed feature-extraction default against auto on test/ (1,000 images no choice saw), image by image. First, the
# time budget: --time-budget 3m on hymenoptera from an empty cache.
#   bash benchmarks/figures/auto-mode.sh [out-folder]      (about 70 minutes on 2 cores)
source "$(dirname "$0")/common.sh" "$@"
need_shared_data
need_fashion_mnist
python3 data/make-fashion-mnist-sample.py --out "$out/fashion-100v" --train-per-class 100 --val-per-class 100 --test-per-class 100 >/dev/null
build_cli

run() {
  local name=$1; shift
  timed_run "$name" "$@"
  local saved
  saved=$(grep -m1 '^Saved' "$out/$name.log" | sed 's/.*); //')
  printf '\n%-14s %s\n  wall %s, peak RSS %d MiB, %s\n' "$name" "$*" "$wall" "$rss_mib" "$saved"
  $cli info "$out/$name.zip" --json | python3 -c '
import json, sys
s = json.load(sys.stdin)["modeSelection"]
print("  decision: " + s["decision"])
print("  candidates (on %d %s):" % (s["images"], s["chosenOn"]))
for c in s["candidates"]:
    acc = "-" if c["accuracy"] is None else "%.4f [%.3f, %.3f]" % (c["accuracy"], c["accuracyLow"], c["accuracyHigh"])
    ll = "-" if c["logLoss"] is None else "%.4f" % c["logLoss"]
    gain = "" if c.get("logLossGain") is None else ", log-loss gain %+.3f [%+.3f, %+.3f], McNemar p %.2g" % (c["logLossGain"], c["logLossGainLow"], c["logLossGainHigh"], c["mcNemarP"])
    print("    %s %-26s blocks %-16s acc %s, log-loss %s, %4.0f s%s; %s" % ("*" if c["chosen"] else " ", c["candidate"], c["blocks"] or "-", acc, ll, c["seconds"], gain, c["status"]))
'
}

run hym-budget3m  train $data/hymenoptera_data --time-budget 3m
run hym-auto      train $data/hymenoptera_data
run fashion-auto  train data/fashion-mnist-sample
run cal-auto      train $data/caltech101_6
run f100v-auto    train "$out/fashion-100v"
export MLNETTRANSFER_CACHE="$out/cache-f100v-fe"
rm -rf "$MLNETTRANSFER_CACHE"
$cli train "$out/fashion-100v" --mode feature-extraction --out "$out/f100v-fe.zip" --no-color > "$out/f100v-fe.log" 2>&1
echo
echo "fashion-100v, test/: fixed feature extraction (first) against auto (second)"
$cli evaluate "$out/f100v-fe.zip" "$out/fashion-100v" --split test --against "$out/f100v-auto.zip" --no-color | tail -4
