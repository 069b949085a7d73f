#!/usr/bin/env python3
"""Conversations with a channel per speaker, for `bench/der.sh --clips` (docs/DIARIZATION.md, "A
voice per channel").

Reads DIR/*.wav with DIR/*.rttm (one speaker per turn, e.g. the synthetic conversations written by
`cargo run --release -p harken-engine --example der -- --synthetic --write-audio DIR`) and writes,
for every recording of at most 5 speakers, OUT/stereo/<name>.wav with each reference turn on its
speaker's channel (each channel with its own faint noise floor) and OUT/mono/<name>.wav, the same
channels averaged (the decoder's mono mix), both with the RTTM. With `--overlap S`, every turn
after a change of speaker starts up to S seconds (at most half of either turn) before the previous
turn ends: people talking over each other.

    bench/channels.py /tmp/synth /tmp/chan && bench/der.sh --clips /tmp/chan/stereo
"""

import argparse
import wave
from pathlib import Path

import numpy as np

SR = 16000
MAX_CHANNELS = 5


def read(path: Path) -> np.ndarray:
    with wave.open(str(path)) as w:
        assert w.getframerate() == SR and w.getnchannels() == 1, f"{path}: expected 16 kHz mono"
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float32) / 32768


def write(path: Path, x: np.ndarray) -> None:
    frames = np.clip(np.atleast_2d(x).T, -1, 1)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(frames.shape[1])
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes((frames * 32767).astype(np.int16).tobytes())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("source")
    p.add_argument("out")
    p.add_argument("--overlap", type=float, default=0.0)
    args = p.parse_args()
    src, out = Path(args.source), Path(args.out)
    for d in ("stereo", "mono"):
        (out / d).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    for wav in sorted(src.glob("*.wav")):
        turns = [(float(f[3]), float(f[3]) + float(f[4]), f[7])
                 for f in (line.split() for line in wav.with_suffix(".rttm").read_text().splitlines()) if f]
        speakers = list(dict.fromkeys(s for _, _, s in turns))
        if len(speakers) > MAX_CHANNELS:
            continue
        audio = read(wav)
        placed, shift, prev = [], 0.0, None  # (new start, new end, speaker, source start, source end)
        for a, b, s in turns:
            if args.overlap > 0 and prev is not None and s != prev[2]:
                shift += min(args.overlap, (prev[1] - prev[0]) / 2, (b - a) / 2) + (a - prev[1])
            placed.append((a - shift, b - shift, s, a, b))
            prev = (a, b, s)
        n = int(max(t[1] for t in placed) * SR) + SR // 2
        channels = np.stack([0.0005 * rng.standard_normal(n).astype(np.float32) for _ in speakers])
        for a, _, s, source_a, source_b in placed:
            turn = audio[int(source_a * SR):int(source_b * SR)]
            i = int(a * SR)
            channels[speakers.index(s), i:i + len(turn)] += turn[:n - i]
        rttm = "".join(f"SPEAKER {wav.stem} 1 {a:.3f} {b - a:.3f} <NA> <NA> {s} <NA> <NA>\n" for a, b, s, *_ in placed)
        for d, x in (("stereo", channels), ("mono", channels.mean(axis=0))):
            write(out / d / wav.name, x)
            (out / d / wav.with_suffix(".rttm").name).write_text(rttm)
        print(f"{wav.stem}: {len(speakers)} speakers, {n / SR:.1f} s")


if __name__ == "__main__":
    main()
