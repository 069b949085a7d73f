#!/usr/bin/env bash
# Diarization benchmark of `harken transcribe --diarize` on ../shared/testdata's diar rows,
# scored by pyannote.metrics (see bench/der.py and bench/README.md).
#   bench/der.sh            # prints DER and the cost of --diarize
#   bench/der.sh --docs     # also rewrites the der section of docs/DIARIZATION.md
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/venv.sh"
bench_venv 'import pyannote.metrics' pyannote.metrics
cd "$here/.."
exec "$venv/bin/python" "$here/der.py" "$@"
