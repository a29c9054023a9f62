#!/usr/bin/env bash
# Quick start, command 1: set up everything (the virtual environment, convnet, and the real
# Fashion-MNIST images from Debian's dataset-fashion-mnist) and run convnet's main job:
# train the default CONV–RELU–POOL network on Fashion-MNIST and report its test accuracy.
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup.sh
exec .venv/bin/convnet train "$@"
