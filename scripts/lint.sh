#!/usr/bin/env bash
# Lint, format check and type check (ruff and mypy, configured in pyproject.toml).
source "$(dirname "${BASH_SOURCE[0]}")/env.sh" test
cd "$ROOT"
ruff check src tests benchmarks scripts
ruff format --check src tests benchmarks scripts
mypy
