#!/usr/bin/env bash
# The pictures and figures of docs/console.md: lr-find on hymenoptera_data (head on the frozen base, and fine-tuning
# stage4) with its plots written to docs/images/, a fine-tuning run at the suggested rate, and the report of a
# fine-tuning run as a PNG (headless Chromium, where installed).
#   bash benchmarks/figures/docs-pictures.sh [out-folder]      (about 8 minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/../.."
out="${1:-$(mktemp -d)}"
mkdir -p "$out"
hym=../shared/data/hymenoptera_data
dotnet build src/MlNetTransfer.Cli -c Release -v q -nologo >/dev/null
cli="dotnet src/MlNetTransfer.Cli/bin/Release/net10.0/mlnet-transfer.dll"
export MLNETTRANSFER_CACHE="$out/cache"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
$cli lr-find $hym --plot docs/images/lr-find-head-hymenoptera.png --no-color | grep -E "^Suggested|^Use it"
$cli lr-find $hym --mode fine-tune --unfreeze stage4 --plot docs/images/lr-find-finetune-hymenoptera.png --no-color | tee "$out/lr-ft.log" | grep -E "^Suggested|^Use it"
lr=$(grep -o 'Suggested learning rate: [0-9.e+-]*' "$out/lr-ft.log" | awk '{print $4}')
/usr/bin/time -f 'wall %e s' $cli train $hym --mode fine-tune --unfreeze stage4 --lr "$lr" --out "$out/at-suggestion.zip" --no-color 2>&1 \
  | grep -E '^Saved|kept the best|^wall' 
if command -v chromium >/dev/null 2>&1; then
  $cli train $hym --mode fine-tune --unfreeze stage4 --out "$out/report-run.zip" --no-color > /dev/null
  chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1100,2300 \
    --screenshot="$PWD/docs/images/report-hymenoptera-finetune.png" "file://$out/report/report.html" 2>/dev/null
  echo "report screenshot: docs/images/report-hymenoptera-finetune.png"
fi
