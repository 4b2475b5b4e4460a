#!/usr/bin/env bash
# One command: set up .venv with the test extras and run the whole test suite.
source "$(dirname "${BASH_SOURCE[0]}")/env.sh" test
cd "$ROOT"
python -m pytest -q "$@"
