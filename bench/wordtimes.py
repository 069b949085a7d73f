#!/usr/bin/env python3
"""Word-timing check: how far harken's word edges fall from where each word's sound is.

No recording of the test data has word-level time references, so this builds one: the spoken
digits of the manifest (`asr/fsdd_*`, one digit a clip, trimmed close) laid end to end three
times over, in a random order of pauses of 0.3-0.9 s with a faint noise floor. A digit's
reference span is where its clip is within 30 dB of its own loudest 10 ms frame. harken
transcribes the whole sequence (`--no-diarize --format json`); each reference digit is matched
to the word overlapping it most, and the script reports the start and end errors (word minus
reference, seconds): mean (the bias) and median of the absolute error.

    bench/wordtimes.sh [--harken BIN] [--model base]

Pass several `--harken` binaries to compare them side by side on the same audio.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np

from asr import REPO

RATE = 16_000


def read_clip(path: Path) -> np.ndarray:
    """The clip as 16 kHz mono float samples (sox resamples when needed)."""
    raw = subprocess.run(["sox", str(path), "-t", "raw", "-r", str(RATE), "-e", "float", "-b", "32", "-c", "1", "-"],
                         check=True, capture_output=True).stdout
    return np.frombuffer(raw, dtype=np.float32)


def sound_span(samples: np.ndarray) -> tuple[float, float]:
    """First and last 10 ms frame within 30 dB of the clip's loudest, in seconds."""
    frame = RATE // 100
    rms = np.array([np.sqrt(np.mean(samples[i:i + frame] ** 2) + 1e-12) for i in range(0, len(samples) - frame, frame)])
    loud = np.where(20 * np.log10(rms) > 20 * np.log10(rms.max()) - 30)[0]
    return loud[0] * frame / RATE, (loud[-1] + 1) * frame / RATE


def build(testdata: Path, out: Path) -> list[tuple[float, float]]:
    """Writes the digit sequence to `out`; returns each digit's reference span."""
    rng, noise = random.Random(1), np.random.default_rng(1)
    floor = lambda seconds: noise.normal(0, 1e-4, int(seconds * RATE)).astype(np.float32)  # noqa: E731
    pieces, spans, at = [floor(0.5)], [], 0.5
    clips = sorted((testdata / "asr").glob("fsdd_*.wav"))
    for _ in range(3):
        for clip in clips:
            samples = read_clip(clip)
            a, b = sound_span(samples)
            spans.append((at + a, at + b))
            pause = floor(rng.uniform(0.3, 0.9))
            pieces += [samples, pause]
            at += (len(samples) + len(pause)) / RATE
    audio = np.clip(np.concatenate(pieces), -1, 1)
    with wave.open(str(out), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(RATE)
        w.writeframes((audio * 32767).astype(np.int16).tobytes())
    return spans


def score(words: list[dict], spans: list[tuple[float, float]]) -> str:
    starts, ends = [], []
    for s, e in spans:
        hits = [w for w in words if w["type"] == "word" and w["end"] > s and w["start"] < e]
        if hits:
            w = max(hits, key=lambda w: min(w["end"], e) - max(w["start"], s))
            starts.append(w["start"] - s)
            ends.append(w["end"] - e)
    if not starts:
        return f"matched 0/{len(spans)} digits"
    ms = lambda xs: f"mean {1000 * statistics.mean(xs):+.0f} ms, median |error| {1000 * statistics.median(map(abs, xs)):.0f} ms"  # noqa: E731
    return f"matched {len(starts)}/{len(spans)} digits; start: {ms(starts)}; end: {ms(ends)}"


def main() -> None:
    target = os.environ.get("CARGO_TARGET_DIR") or str(Path.home() / ".cache" / "harken-target")
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--testdata", default=os.environ.get("HARKEN_TESTDATA") or str(REPO.parent / "shared" / "testdata"))
    p.add_argument("--harken", action="append", help="binary to run (repeatable; default the release build)")
    p.add_argument("--model", default="base")
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="harken-wordtimes-"))
    audio = work / "digits.wav"
    spans = build(Path(args.testdata), audio)
    print(f"{len(spans)} digits in {audio}")
    for i, binary in enumerate(args.harken or [str(Path(target) / "release" / "harken")]):
        out = work / str(i)
        subprocess.run([binary, "transcribe", "--model", args.model, "--no-diarize", "--format", "json",
                        "--output-dir", str(out), str(audio)], check=True, capture_output=True)
        words = json.loads((out / "digits.json").read_text())["words"]
        print(f"{binary}: {score(words, spans)}")


if __name__ == "__main__":
    main()
