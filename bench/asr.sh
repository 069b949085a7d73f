#!/usr/bin/env bash
# ASR benchmark: harken vs faster-whisper on ../shared/testdata (see bench/README.md).
# Creates a throwaway venv with faster-whisper and Whisper's text normaliser, then runs asr.py.
#   bench/asr.sh                          # both systems, updates docs/BENCHMARKS.md
#   bench/asr.sh --systems faster-whisper # without harken
#   bench/asr.sh --limit 3 --no-docs      # smoke test
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/venv.sh"
# Installed once; pip returns quickly when they are already there.
bench_venv 'import faster_whisper, whisper_normalizer' faster-whisper whisper-normalizer
export HARKEN_BENCH_COMMAND="bench/asr.sh${*:+ $*}"
cd "$here/.."
exec "$venv/bin/python" "$here/asr.py" "$@"
