#!/usr/bin/env bash
# Word-timing check of `harken transcribe` on spoken digits laid end to end (see bench/wordtimes.py).
#   bench/wordtimes.sh [--harken BIN ...] [--model base]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${HARKEN_BENCH_VENV:-$HOME/.cache/harken-bench-venv}"
if [[ ! -x "$venv/bin/python" ]]; then
    "${PYTHON:-python3}" -m venv "$venv"
fi
if ! "$venv/bin/python" -c 'import numpy' 2>/dev/null; then
    "$venv/bin/pip" install --quiet --disable-pip-version-check numpy
fi
cd "$here/.."
exec "$venv/bin/python" "$here/wordtimes.py" "$@"
