#!/usr/bin/env python3
"""Diarization benchmark of the product: DER of `harken transcribe --diarize --format json`.

What a user (and the outside check of issue 3) sees is the transcript: every item carries a
`speaker_id`. This script runs harken on the `diar` rows of the test-data manifest, turns the
items into speaker turns and scores them against the RTTM references with pyannote.metrics'
`DiarizationErrorRate(collar=0.25, skip_overlap=False)`, the reference implementation, so our
own Rust scorer (`cargo run --example der`) is checked against it too.

Three hypotheses per clip, because a transcript can be read as speaker turns in several ways:
* `words`: one turn per word item (start to end), the gaps between words left unlabelled;
* `turns`: consecutive words of one speaker joined into a turn across pauses under
  `TURN_GAP` s (how a reader groups a transcript into "speaker_0: ..." paragraphs);
* `items`: words, spacing and audio-event items, each with its `speaker_id`, so every pause
  between two words counts as the speaker of the word before it, however long.

Clips: the `diar` rows of the test-data manifest, or with `--clips DIR` every `DIR/*.wav` with
its `DIR/*.rttm` (e.g. the synthetic conversations written by
`cargo run --example der -- --synthetic --write-audio DIR`).

Cost: the same files transcribed with `--diarize` and with `--no-diarize`, alternating, `--runs`
times each (default 3); the median wall times and their ratio are reported.

Prints a per-clip table and a summary; with --docs, rewrites the section between
`<!-- der:begin -->` and `<!-- der:end -->` of docs/DIARIZATION.md (`der-clips` with --clips).
Run it with bench/der.sh.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from asr import REPO, machine, run_child

SECTIONS = {False: "der", True: "der-clips"}  # docs section markers: manifest's diar rows, --clips
TURN_GAP = 0.5


def read_rttm(path: Path):
    from pyannote.core import Annotation, Segment
    ann = Annotation()
    for line in path.read_text().splitlines():
        f = line.split()
        if len(f) >= 8 and f[0] == "SPEAKER":
            start, dur = float(f[3]), float(f[4])
            ann[Segment(start, start + dur)] = f[7]
    return ann


def hypothesis(transcript: dict, kinds: set[str], join_gap: float = 0.0):
    """Turns of the items of `kinds`; same-speaker items less than `join_gap` s apart are joined."""
    from pyannote.core import Annotation, Segment
    ann = Annotation()
    turn = None  # [start, end, speaker] being extended
    for w in transcript.get("words", []):
        if w.get("type") not in kinds or not w.get("speaker_id") or w["end"] <= w["start"]:
            continue
        if turn and turn[2] == w["speaker_id"] and w["start"] - turn[1] < join_gap:
            turn[1] = max(turn[1], w["end"])
            continue
        if turn:
            ann[Segment(turn[0], turn[1]), len(ann)] = turn[2]
        turn = [w["start"], w["end"], w["speaker_id"]]
    if turn:
        ann[Segment(turn[0], turn[1]), len(ann)] = turn[2]
    return ann.support()


def wav_seconds(path: Path) -> float:
    """A WAV file's duration from its header: data bytes over bytes per second. Unlike Python's
    `wave`, this reads any encoding (µ-law phone audio from `bench/degrade.sh telephone`)."""
    import struct
    with open(path, "rb") as f:
        riff, _, kind = struct.unpack("<4sI4s", f.read(12))
        if riff != b"RIFF" or kind != b"WAVE":
            raise ValueError(f"{path}: not a WAV file")
        byte_rate = None
        while header := f.read(8):
            chunk, size = struct.unpack("<4sI", header)
            if chunk == b"fmt ":
                byte_rate = struct.unpack("<HHII", f.read(12))[3]
                f.seek(size - 12 + size % 2, 1)
            elif chunk == b"data" and byte_rate:
                return size / byte_rate
            else:
                f.seek(size + size % 2, 1)
    raise ValueError(f"{path}: no fmt chunk before the data")


def clip_rows(directory: Path) -> list[dict]:
    """Every WAV file of `directory` that has an RTTM file of the same name beside it."""
    rows = []
    for audio in sorted(directory.glob("*.wav")):
        rttm = audio.with_suffix(".rttm")
        if rttm.exists():
            duration = wav_seconds(audio)
            rows.append({"file": audio.name, "path": str(audio), "rttm": rttm, "duration": duration})
    return rows


def diar_rows(testdata: Path) -> list[dict]:
    rows = []
    lines = (testdata / "manifest.tsv").read_text().splitlines()
    header = lines[0].split("\t")
    for line in lines[1:]:
        row = dict(zip(header, line.split("\t")))
        if row.get("kind") == "diar" and row.get("rttm"):
            rows.append({"file": row["file"], "path": str(testdata / row["file"]),
                         "rttm": testdata / row["rttm"], "duration": float(row["duration_s"])})
    return rows


def transcribe(binary: Path, rows: list[dict], models_dir: Path, model: str, diarize: bool, out: Path):
    out.mkdir(parents=True, exist_ok=True)
    argv = [str(binary), "transcribe", "--model", model, "--format", "json", "--output-dir", str(out),
            "--diarize" if diarize else "--no-diarize"] + [r["path"] for r in rows]
    env = dict(os.environ, HARKEN_MODELS_DIR=str(models_dir))
    status, wall, rss = run_child(argv, env, out / "log.txt")
    if status != 0:
        sys.exit(f"der.py: harken exited with {status}; see {out / 'log.txt'}")
    return wall, rss


def main() -> None:
    target = os.environ.get("CARGO_TARGET_DIR") or str(Path.home() / ".cache" / "harken-target")
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--testdata", default=os.environ.get("HARKEN_TESTDATA") or str(REPO.parent / "shared" / "testdata"))
    p.add_argument("--harken", default=str(Path(target) / "release" / "harken"))
    p.add_argument("--models-dir", default=os.environ.get("HARKEN_MODELS_DIR")
                   or str(Path.home() / ".cache" / "harken" / "models"))
    p.add_argument("--model", default="base")
    p.add_argument("--runs", type=int, default=3, help="timed runs with and without --diarize (default 3)")
    p.add_argument("--clips", help="score DIR/*.wav against DIR/*.rttm instead of the manifest's diar rows")
    p.add_argument("--docs", action="store_true", help="rewrite the der section of docs/DIARIZATION.md")
    args = p.parse_args()

    from pyannote.core import Segment, Timeline
    from pyannote.metrics.diarization import DiarizationErrorRate
    binary, models_dir = Path(args.harken), Path(args.models_dir)
    rows = clip_rows(Path(args.clips)) if args.clips else diar_rows(Path(args.testdata))
    if not rows:
        sys.exit(f"der.py: no clips in {args.clips or args.testdata + '/manifest.tsv'}")
    mach = machine()
    work = Path(tempfile.mkdtemp(prefix="harken-der-"))
    times = {True: [], False: []}
    for run in range(args.runs):
        for diarize in (True, False):
            wall, _ = transcribe(binary, rows, models_dir, args.model, diarize, work / f"{run}-{int(diarize)}")
            times[diarize].append(wall)
            print(f"run {run + 1}/{args.runs} {'--diarize' if diarize else '--no-diarize'}: {wall:.1f} s", flush=True)

    readings = {"words": ({"word"}, 0.0), "turns": ({"word"}, TURN_GAP),
                "items": ({"word", "spacing", "audio_event"}, 0.0)}
    metrics = {name: DiarizationErrorRate(collar=0.25, skip_overlap=False) for name in readings}
    lines = []
    pct = lambda part, d: f"{100 * d[part] / max(d['total'], 1e-9):.1f}"  # noqa: E731
    for r in rows:
        t = json.loads((work / "0-1" / (Path(r["file"]).stem + ".json")).read_text())
        ref = read_rttm(r["rttm"])
        whole_file = Timeline([Segment(0.0, r["duration"])])  # scored region: the whole recording
        per = {name: metric(ref, hypothesis(t, *readings[name]), uem=whole_file, detailed=True)
               for name, metric in metrics.items()}
        words = per["words"]
        found = len({item.get("speaker_id") for item in t.get("words", []) if item.get("speaker_id")})
        lines.append([Path(r["file"]).stem, f"{words['total']:.1f}",
                      *[f"{100 * per[n]['diarization error rate']:.1f}" for n in readings],
                      pct("missed detection", words), pct("false alarm", words), pct("confusion", words),
                      f"{found}/{len(ref.labels())}"])
    header = ["clip", "scored s", "DER words %", f"DER turns (gap < {TURN_GAP} s) %", "DER items %",
              "words: miss %", "FA %", "conf %", "speakers found/true"]
    widths = [max(len(str(x[i])) for x in [header] + lines) for i in range(len(header))]
    for l in [header] + lines:
        print("  ".join(str(c).ljust(w) for c, w in zip(l, widths)))
    med_on, med_off = statistics.median(times[True]), statistics.median(times[False])
    summary = ["DER (pyannote.metrics, collar 0.25 s, overlap scored), over all clips:"]
    for name, metric in metrics.items():
        d = metric[:]  # the components accumulated over all clips
        summary.append(f"  {name}: {100 * abs(metric):.1f} % (miss {pct('missed detection', d)}, "
                       f"FA {pct('false alarm', d)}, confusion {pct('confusion', d)})")
    summary.append(
        f"cost of --diarize: median {med_on:.1f} s with, {med_off:.1f} s without over {args.runs} runs "
        f"({len(rows)} files, {sum(r['duration'] for r in rows):.0f} s of audio): "
        f"{100 * (med_on / med_off - 1):+.1f} % (all runs: with {', '.join(f'{x:.1f}' for x in times[True])}; "
        f"without {', '.join(f'{x:.1f}' for x in times[False])})")
    for s in summary:
        print(s)
    if args.docs:
        now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        table = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        table += ["| " + " | ".join(l) + " |" for l in lines]
        begin, end = (f"<!-- {SECTIONS[bool(args.clips)]}:{edge} -->" for edge in ("begin", "end"))
        clips = f" --clips {args.clips}" if args.clips else ""
        section = "\n".join([
            begin,
            f"- Date: {now}; commit `{mach['commit']}`; {mach['nproc']} CPUs, {mach['cpu']}; load average at start {mach['load_at_start']}",
            f"- Command: `bench/der.sh --docs{clips}` (`harken transcribe --model {args.model} --diarize --format json`, "
            "then pyannote.metrics)",
            *[f"  - {s.strip()}" if s.startswith("  ") else f"- {s}" for s in summary],
            "",
            *table,
            end,
        ])
        doc = REPO / "docs" / "DIARIZATION.md"
        text = doc.read_text()
        if begin in text:
            a, b = text.index(begin), text.index(end) + len(end)
            text = text[:a] + section + text[b:]
        else:
            text = text.rstrip("\n") + "\n\n" + section + "\n"
        doc.write_text(text)


if __name__ == "__main__":
    main()
