#!/usr/bin/env bash
# Diarization benchmark of `harken transcribe --diarize` on ../shared/testdata's diar rows,
# scored by pyannote.metrics (see bench/der.py and bench/README.md).
#   bench/der.sh            # prints DER and the cost of --diarize
#   bench/der.sh --docs     # also rewrites the der section of docs/DIARIZATION.md
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${HARKEN_BENCH_VENV:-$HOME/.cache/harken-bench-venv}"
if [[ ! -x "$venv/bin/python" ]]; then
    "${PYTHON:-python3}" -m venv "$venv"
fi
if ! "$venv/bin/python" -c 'import pyannote.metrics' 2>/dev/null; then
    "$venv/bin/pip" install --quiet --disable-pip-version-check pyannote.metrics
fi
cd "$here/.."
exec "$venv/bin/python" "$here/der.py" "$@"
