#!/usr/bin/env bash
# Set up .venv with sb3-expert (editable) and its test tools.
# Where no NVIDIA GPU is present, torch's CPU build is installed first, so pip never pulls the
# multi-GB CUDA build: a local CPU wheel when the machine has one (pip's find-links; its
# dependencies come with the project's install below), else from PyTorch's CPU index.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
# shellcheck disable=SC1091
. .venv/bin/activate
export PIP_DISABLE_PIP_VERSION_CHECK=1
if ! python -c "import torch" >/dev/null 2>&1; then
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi >/dev/null 2>&1; then
        pip install -q "torch>=2.3"
    else
        pip install -q --no-deps --no-index "torch>=2.3" 2>/dev/null \
            || pip install -q "torch>=2.3" --index-url https://download.pytorch.org/whl/cpu \
                --extra-index-url https://pypi.org/simple
    fi
fi
pip install -q -e ".[test]"
