#!/usr/bin/env bash
# PyTorch (the tutorial's two ways, pytorch_tutorial.py) against mlnet-transfer on the same net, images and preprocessing.
#
#   benchmarks/peers/side-by-side.sh [data] [rounds]        (default: ../shared/data/hymenoptera_data beside the repository, 1 round)
#
# Per round, alternating which side goes first (A/B, B/A, ...):
#   feature extraction: pytorch_tutorial.py --mode feature-extraction with DataLoader workers 0, 1, 2 (best kept)
#                       vs `mlnet-transfer train <data> --mode feature-extraction --no-cache` (fresh MLNETTRANSFER_CACHE)
#   fine-tuning:        pytorch_tutorial.py --mode fine-tune (HEAD_EPOCHS + EPOCHS, workers FT_WORKERS)
#                       vs `mlnet-transfer train <data> --mode fine-tune --unfreeze stage4 --no-cache` (same epochs)
# each under /usr/bin/time -v (peak RSS). Then a table of both sides and ratios (side_by_side_summary.py).
# Environment: HEAD_EPOCHS (5), EPOCHS (10): our FineTuningOptions defaults; WORKERS_LIST ("0 1 2"); FT_WORKERS (auto:
# the workers count that featurized fastest in this round, else 1);
# OUTDIR (/tmp/peer-side): logs; BIN (/tmp/peer-bin): our build (made if missing, or always with BUILD=1);
# SKIP_FE=1 / SKIP_FT=1 to run one half only; OURS_FE_ARGS: more flags for our feature extraction (e.g. "--precision int8"); OURS_FT_ARGS: more flags for our fine-tuning (e.g. "--patience 100" to
# run every epoch, as PyTorch does, instead of stopping early).
# Run one benchmark at a time on a quiet machine: two libtorch processes at once slow each other far more than 2x.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
DATA="${1:-$REPO/../shared/data/hymenoptera_data}"
DATA="$(cd "$DATA" && pwd)"   # absolute: every run starts in OUTDIR
FAILED=0
ROUNDS="${2:-1}"
HEAD_EPOCHS="${HEAD_EPOCHS:-5}"
EPOCHS="${EPOCHS:-10}"
WORKERS_LIST="${WORKERS_LIST:-0 1 2}"
FT_WORKERS="${FT_WORKERS:-auto}"
OUTDIR="${OUTDIR:-/tmp/peer-side}"
BIN="${BIN:-/tmp/peer-bin}"
PY=/usr/bin/python3
TIME=/usr/bin/time

bash "$HERE/install.sh" >/dev/null
[ -x "$TIME" ] || { echo "side-by-side.sh: $TIME missing (apt-get install -y time)" >&2; exit 1; }
if [ "${BUILD:-0}" = 1 ] || [ ! -f "$BIN/mlnet-transfer.dll" ]; then
  echo "building mlnet-transfer into $BIN"
  env -u OUTDIR dotnet build "$REPO/src/MlNetTransfer.Cli" -c Release -o "$BIN" -nologo -v q >/dev/null  # MSBuild would take OUTDIR for OutDir
fi
rm -rf "$OUTDIR"; mkdir -p "$OUTDIR"
{
  echo "data: $DATA; rounds: $ROUNDS; head epochs: $HEAD_EPOCHS; epochs: $EPOCHS; workers: $WORKERS_LIST; fine-tune workers: $FT_WORKERS"
  echo "cpu: $(lscpu | sed -n 's/^Model name: *//p' | head -1); cores: $(nproc); avx512: $(grep -o 'avx512[a-z_]*' /proc/cpuinfo | sort -u | tr '\n' ' ')"
  echo "commit: $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?'); $($PY -c 'import torch; print("torch", torch.__version__)'); dotnet $(dotnet --version)"
} | tee "$OUTDIR/machine.txt"

ours() { # ours <log> <args...>
  local log="$1"; shift
  local cache; cache="$(mktemp -d /tmp/peer-cache-XXXXXX)"
  ( cd "$OUTDIR" && MLNETTRANSFER_CACHE="$cache" "$TIME" -v dotnet "$BIN/mlnet-transfer.dll" train "$DATA" --no-cache --no-color --force "$@" ) >"$log" 2>&1 \
    || { echo "ours failed: see $log" >&2; FAILED=$((FAILED + 1)); }
  rm -rf "$cache"
}
theirs() { # theirs <log> <args...>
  local log="$1"; shift
  "$TIME" -v "$PY" "$HERE/pytorch_tutorial.py" "$DATA" "$@" >"$log" 2>&1 || { echo "pytorch failed: see $log" >&2; FAILED=$((FAILED + 1)); }
}

for r in $(seq 1 "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then order="pytorch ours"; else order="ours pytorch"; fi
  if [ "${SKIP_FE:-0}" != 1 ]; then
    for side in $order; do
      echo "round $r: feature extraction, $side ($(date +%T))"
      if [ "$side" = pytorch ]; then
        for w in $WORKERS_LIST; do theirs "$OUTDIR/r$r-pytorch-fe-w$w.log" --mode feature-extraction --workers "$w"; done
      else
        ours "$OUTDIR/r$r-ours-fe.log" --mode feature-extraction --out "$OUTDIR/r$r-ours-fe.zip" ${OURS_FE_ARGS:-}
      fi
    done
  fi
  if [ "${SKIP_FT:-0}" != 1 ]; then
    for side in $order; do
      echo "round $r: fine-tuning, $side ($(date +%T))"
      if [ "$side" = pytorch ]; then
        w="$FT_WORKERS"
        if [ "$w" = auto ]; then
          w="$("$PY" - "$OUTDIR" "$r" <<'PYEOF'
import glob, json, sys
best = (0.0, 1)
for p in glob.glob(f"{sys.argv[1]}/r{sys.argv[2]}-pytorch-fe-w*.log"):
    for line in open(p):
        if line.startswith("{"):
            j = json.loads(line)
            best = max(best, (j["featurize_img_per_s"], j["workers"]))
print(best[1])
PYEOF
)"
        fi
        echo "  PyTorch fine-tuning with DataLoader workers $w"
        theirs "$OUTDIR/r$r-pytorch-ft.log" --mode fine-tune --workers "$w" --head-epochs "$HEAD_EPOCHS" --epochs "$EPOCHS"
      else
        ours "$OUTDIR/r$r-ours-ft.log" --mode fine-tune --unfreeze stage4 --head-epochs "$HEAD_EPOCHS" --epochs "$EPOCHS" --out "$OUTDIR/r$r-ours-ft.zip" ${OURS_FT_ARGS:-}
      fi
    done
  fi
done
"$PY" "$HERE/side_by_side_summary.py" "$OUTDIR"
if [ "$FAILED" != 0 ]; then
  echo "error: $FAILED run(s) failed (above): their figures in the table are not measurements" >&2
  exit 1
fi
