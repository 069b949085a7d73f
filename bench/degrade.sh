#!/usr/bin/env bash
# Copies a directory of clips (<name>.wav with <name>.rttm beside it, as `der --write-audio`
# writes them) with the audio degraded the way users' recordings are, to measure diarization
# on them (`der --clips DST`, `bench/der.sh --clips DST`):
#   telephone  8 kHz mu-law, band-limited to 300-3400 Hz (a phone call)
#   noise      pink noise 10 dB under the clip's RMS level, pauses included (a noisy room)
#   reverb     sox's reverberation at 50 % (a hard-walled room, the microphone away from the mouth)
#   bench/degrade.sh telephone /tmp/synth /tmp/synth-telephone
set -euo pipefail
kind="${1:?usage: bench/degrade.sh telephone|noise|reverb SRC DST}"
src="${2:?source directory}"
dst="${3:?destination directory}"
command -v sox > /dev/null || { echo "sox is needed (apt-get install sox)" >&2; exit 1; }
mkdir -p "$dst"
for wav in "$src"/*.wav; do
  name="$(basename "$wav" .wav)"
  [ -f "$src/$name.rttm" ] || continue
  cp "$src/$name.rttm" "$dst/$name.rttm"
  case "$kind" in
    telephone) sox "$wav" -r 8000 -e u-law -b 8 "$dst/$name.wav" sinc 300-3400 ;;
    noise)
      # Noise RMS 10 dB under the clip's RMS (pauses included, so the speech itself is louder).
      noise="$(mktemp --suffix .wav)"
      sox -n -r 16000 -c 1 -b 16 "$noise" synth "$(soxi -D "$wav")" pinknoise vol 0.2
      speech_rms="$(sox "$wav" -n stat 2>&1 | awk '/RMS +amplitude/ {print $3}')"
      noise_rms="$(sox "$noise" -n stat 2>&1 | awk '/RMS +amplitude/ {print $3}')"
      gain="$(awk -v s="$speech_rms" -v n="$noise_rms" 'BEGIN {print s / n / sqrt(10)}')"
      sox -m -v 1 "$wav" -v "$gain" "$noise" -b 16 "$dst/$name.wav"
      rm -f "$noise" ;;
    reverb) sox "$wav" "$dst/$name.wav" reverb 50 50 100 ;;
    *) echo "unknown kind: $kind (telephone, noise or reverb)" >&2; exit 1 ;;
  esac
done
echo "wrote $(ls "$dst"/*.wav | wc -l) clips to $dst"
