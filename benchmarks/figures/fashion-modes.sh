#!/usr/bin/env bash
# Feature extraction against fine-tuning (stage4), each with its defaults, on a Fashion-MNIST set far from ImageNet and
# large enough to tell them apart: 100 training and 100 test images a class, made from Debian's dataset-fashion-mnist
# by data/make-fashion-mnist-sample.py (outside the repository). Both train on train/ only (the trainer holds out 20 %
# to choose, then refits on all 1,000); the comparison is on test/ (1,000 images no choice saw), image by image
# (evaluate --against: paired bootstrap interval of the margin, McNemar's exact test).
#   bash benchmarks/figures/fashion-modes.sh [out-folder]      (about 30 minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/../.."
out="${1:-$(mktemp -d)}"
mkdir -p "$out"
if [ ! -d /usr/share/datasets/fashion-mnist ]; then
  echo "installing dataset-fashion-mnist (apt-get)"
  sudo=""; [ "$(id -u)" != 0 ] && sudo="sudo -n"
  $sudo apt-get install -y -qq dataset-fashion-mnist >/dev/null
fi
python3 data/make-fashion-mnist-sample.py --out "$out/fashion-100" --train-per-class 100 --test-per-class 100
dotnet build src/MlNetTransfer.Cli -c Release -v q -nologo >/dev/null
cli="dotnet src/MlNetTransfer.Cli/bin/Release/net10.0/mlnet-transfer.dll"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
for mode in fe ft; do
  args=(--mode feature-extraction); [ $mode = ft ] && args=(--mode fine-tune --unfreeze stage4)
  /usr/bin/time -v -o "$out/$mode.time" $cli train "$out/fashion-100" --out "$out/$mode.zip" "${args[@]}" --no-color > "$out/$mode.log" 2>&1
  echo "$mode: wall $(grep 'Elapsed (wall' "$out/$mode.time" | awk '{print $NF}'), $(grep -A4 ' Metrics' "$out/$mode.log" | grep '│ test' | tr -s ' ' | cut -d'│' -f2-4)"
done
$cli evaluate "$out/fe.zip" "$out/fashion-100" --split test --against "$out/ft.zip" --no-color | tail -3
