#!/usr/bin/env bash
# Quick start, command 1: set up everything and run convnet's main job.
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup.sh
exec .venv/bin/convnet inspect "conv(6,5) relu conv(10,5) relu" --input 32x32x3 --explain "$@"
