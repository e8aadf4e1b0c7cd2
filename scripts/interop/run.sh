#!/usr/bin/env bash
# npm run interop: check fp8kit's outputs with the Python ecosystem's own code (scripts/interop/README.md).
# Uses the venv in $FP8KIT_VENV (default: .venv-interop in the repo root), creating it and installing
# what the checks import when missing. Arguments go to check_layouts.py (--keep, --verbose).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="${FP8KIT_VENV:-$root/.venv-interop}"
python="${PYTHON:-python3}"
packages=(torch safetensors ml_dtypes numpy transformers accelerate)

if [ ! -x "$venv/bin/python" ]; then
  echo "creating $venv"
  "$python" -m venv "$venv"
fi
if ! "$venv/bin/python" -c "import torch, safetensors, ml_dtypes, numpy, transformers, accelerate" 2>/dev/null; then
  echo "installing ${packages[*]} into $venv"
  "$venv/bin/python" -m pip install --quiet "${packages[@]}"
fi
if [ ! -f "$root/dist/cli/main.js" ]; then
  echo "dist/cli/main.js is missing: run npm run build first" >&2
  exit 2
fi

# compressed-tensors and nvidia-modelopt are used when the venv has them (pip install them there).
cd "$root"
status=0
PYTHONDONTWRITEBYTECODE=1 "$venv/bin/python" "$root/scripts/interop/check_layouts.py" "$@" || status=$?
PYTHONDONTWRITEBYTECODE=1 "$venv/bin/python" "$root/scripts/interop/ascend.py" "$@" || status=$?
exit "$status"
