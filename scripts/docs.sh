#!/usr/bin/env bash
# The documentation site: install the pinned `docs` extra into .venv, then build it with
# `mkdocs build --strict` into site/ (git-ignored): any warning (a broken link, a missing
# README section, a docstring griffe cannot read) fails the build.
source "$(dirname "${BASH_SOURCE[0]}")/env.sh" docs
cd "$ROOT"
NO_MKDOCS_2_WARNING=1 mkdocs build --strict "$@"
