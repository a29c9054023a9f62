#!/usr/bin/env bash
# Set up everything convnet needs on a fresh machine, into .venv at the repository root.
# Sourced by run.sh and test.sh; safe to run again (it skips what is already done).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

# A Python >= 3.11 to build the virtual environment from.
python=""
for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
        "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        python="$candidate"; break
    fi
done
if [ -z "$python" ]; then
    echo "convnet: error: Python 3.11 or newer is needed; none was found on PATH" >&2
    exit 2
fi

# System packages: the real Fashion-MNIST images (Debian's dataset-fashion-mnist) and, for the
# browser tests, Chromium. Installed only where apt-get exists and we may use it.
need_apt=()
[ -e /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ] || need_apt+=(dataset-fashion-mnist)
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
# Korean glyphs for the page's 한국어 view in the browser tests' screenshots
[ -d /usr/share/fonts/truetype/nanum ] || need_apt+=(fonts-nanum)
if [ "${#need_apt[@]}" -gt 0 ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "convnet setup: installing ${need_apt[*]} with apt-get" >&2
    apt-get update -qq >/dev/null || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null ||
        echo "convnet setup: could not install ${need_apt[*]}; continuing without" >&2
fi

# The virtual environment and the package, editable, with torch and the test tools.
[ -x .venv/bin/python ] || "$python" -m venv .venv
stamp=".venv/.convnet-installed"
want="$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    .venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
    .venv/bin/python -m pip install -q -c constraints.txt -e ".[torch,export,tensorboard,test]"
    echo "$want" > "$stamp"
fi
