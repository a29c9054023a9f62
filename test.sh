#!/usr/bin/env bash
# Quick start, command 2: set up everything and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup.sh
# One test process per core, at most 4, each taking whole files (a file's tests share fixtures
# and run in order); on one core, one process. `./test.sh -n 0` runs everything in this process.
workers="$(.venv/bin/python -c 'import os; print(max(1, min(4, len(os.sched_getaffinity(0)))))')"
spread=()
[ "$workers" -gt 1 ] && spread=(-n "$workers" --dist loadfile)
exec .venv/bin/python -m pytest ${spread[@]+"${spread[@]}"} "$@"
