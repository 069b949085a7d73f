#!/usr/bin/env bash
# Word-timing check of `harken transcribe` on spoken digits laid end to end (see bench/wordtimes.py).
#   bench/wordtimes.sh [--harken BIN ...] [--model base]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/venv.sh"
bench_venv 'import numpy' numpy
cd "$here/.."
exec "$venv/bin/python" "$here/wordtimes.py" "$@"
