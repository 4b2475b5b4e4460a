#!/usr/bin/env bash
# One command: set up .venv (first run ~1 min) and run the demo on the embedded model.
source "$(dirname "${BASH_SOURCE[0]}")/env.sh" ""
fcrattack demo --overwrite --out "${1:-$ROOT/out/demo}"   # a rerun replaces the last demo
