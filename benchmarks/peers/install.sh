#!/usr/bin/env bash
# Installs the PyTorch peer's Debian packages where missing (Debian 12: PyTorch 1.13, torchvision 0.14, onnx 1.12;
# about 1 GB with dependencies) and checks that /usr/bin/python3 imports them. Idempotent.
set -euo pipefail
PY=/usr/bin/python3
PKGS=(python3-torch python3-torchvision python3-onnx)
if "$PY" -c "import torch, torchvision, onnx" 2>/dev/null; then
  echo "install.sh: torch, torchvision and onnx already import in $PY"
else
  missing=()
  for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo -n"; fi
  if [ ${#missing[@]} -gt 0 ]; then
    echo "install.sh: installing ${missing[*]}"
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}"
  fi
fi
"$PY" -c "import torch, torchvision, onnx; print('install.sh: torch', torch.__version__, 'torchvision', torchvision.__version__, 'onnx', onnx.__version__)"
