#!/usr/bin/env python3
"""Diarization benchmark of the product: DER of `harken transcribe --diarize --format json`.

What a user (and the outside check of issue 3) sees is the transcript: every item carries a
`speaker_id`. This script runs harken on the `diar` rows of the test-data manifest, turns the
items into speaker turns and scores them against the RTTM references with pyannote.metrics'
`DiarizationErrorRate(collar=0.25, skip_overlap=False)`, the reference implementation, so our
own Rust scorer (`cargo run --example der`) is checked against it too.

Two hypotheses per clip:
* `words`: one turn per word item (start to end), the gaps between words left unlabelled;
* `items`: words, spacing and audio-event items, each with its `speaker_id`, so the pause
  between two words of one speaker counts as that speaker's.

Cost: the same files transcribed with `--diarize` and with `--no-diarize`, alternating, `--runs`
times each (default 3); the median wall times and their ratio are reported.

Prints a per-clip table and a summary; with --docs, rewrites the section between
`<!-- der:begin -->` and `<!-- der:end -->` of docs/DIARIZATION.md. Run it with bench/der.sh.
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

SECTION_BEGIN = "<!-- der:begin -->"
SECTION_END = "<!-- der:end -->"


def read_rttm(path: Path):
    from pyannote.core import Annotation, Segment
    ann = Annotation()
    for line in path.read_text().splitlines():
        f = line.split()
        if len(f) >= 8 and f[0] == "SPEAKER":
            start, dur = float(f[3]), float(f[4])
            ann[Segment(start, start + dur)] = f[7]
    return ann


def hypothesis(transcript: dict, kinds: set[str]):
    from pyannote.core import Annotation, Segment
    ann = Annotation()
    for i, w in enumerate(transcript.get("words", [])):
        if w.get("type") in kinds and w.get("speaker_id") and w["end"] > w["start"]:
            ann[Segment(w["start"], w["end"]), i] = w["speaker_id"]
    return ann.support()


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
    p.add_argument("--docs", action="store_true", help="rewrite the der section of docs/DIARIZATION.md")
    args = p.parse_args()

    from pyannote.core import Segment, Timeline
    from pyannote.metrics.diarization import DiarizationErrorRate
    binary, models_dir = Path(args.harken), Path(args.models_dir)
    rows = diar_rows(Path(args.testdata))
    if not rows:
        sys.exit(f"der.py: no diar rows in {args.testdata}/manifest.tsv")
    mach = machine()
    work = Path(tempfile.mkdtemp(prefix="harken-der-"))
    times = {True: [], False: []}
    for run in range(args.runs):
        for diarize in (True, False):
            wall, _ = transcribe(binary, rows, models_dir, args.model, diarize, work / f"{run}-{int(diarize)}")
            times[diarize].append(wall)
            print(f"run {run + 1}/{args.runs} {'--diarize' if diarize else '--no-diarize'}: {wall:.1f} s", flush=True)

    metrics = {"words": DiarizationErrorRate(collar=0.25, skip_overlap=False),
               "items": DiarizationErrorRate(collar=0.25, skip_overlap=False)}
    kinds = {"words": {"word"}, "items": {"word", "spacing", "audio_event"}}
    lines = []
    for r in rows:
        t = json.loads((work / "0-1" / (Path(r["file"]).stem + ".json")).read_text())
        ref = read_rttm(r["rttm"])
        whole_file = Timeline([Segment(0.0, r["duration"])])  # scored region: the whole recording
        per = {}
        for name, metric in metrics.items():
            hyp = hypothesis(t, kinds[name])
            per[name] = metric(ref, hyp, uem=whole_file, detailed=True)
        d = per["items"]
        found = len({w.get("speaker_id") for w in t.get("words", []) if w.get("speaker_id")})
        lines.append([Path(r["file"]).stem, f"{d['total']:.1f}", f"{100 * per['words']['diarization error rate']:.1f}",
                      f"{100 * d['diarization error rate']:.1f}", f"{100 * d['missed detection'] / max(d['total'], 1e-9):.1f}",
                      f"{100 * d['false alarm'] / max(d['total'], 1e-9):.1f}", f"{100 * d['confusion'] / max(d['total'], 1e-9):.1f}",
                      f"{found}/{len(ref.labels())}"])
    totals = {name: abs(m) for name, m in metrics.items()}
    comp = metrics["items"][:]  # the components accumulated over all clips
    ref_total = comp["total"]
    header = ["clip", "scored s", "DER words %", "DER items %", "miss %", "FA %", "conf %", "speakers found/true"]
    widths = [max(len(str(x[i])) for x in [header] + lines) for i in range(len(header))]
    for l in [header] + lines:
        print("  ".join(str(c).ljust(w) for c, w in zip(l, widths)))
    med_on, med_off = statistics.median(times[True]), statistics.median(times[False])
    summary = [
        f"DER (pyannote.metrics, collar 0.25 s, overlap scored): words {100 * totals['words']:.1f} %, "
        f"items {100 * totals['items']:.1f} % "
        f"(miss {100 * comp['missed detection'] / ref_total:.1f}, FA {100 * comp['false alarm'] / ref_total:.1f}, "
        f"confusion {100 * comp['confusion'] / ref_total:.1f})",
        f"cost of --diarize: median {med_on:.1f} s with, {med_off:.1f} s without over {args.runs} runs "
        f"({len(rows)} files, {sum(r['duration'] for r in rows):.0f} s of audio): "
        f"{100 * (med_on / med_off - 1):+.1f} % (all runs: with {', '.join(f'{x:.1f}' for x in times[True])}; "
        f"without {', '.join(f'{x:.1f}' for x in times[False])})",
    ]
    for s in summary:
        print(s)
    if args.docs:
        now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        table = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        table += ["| " + " | ".join(l) + " |" for l in lines]
        section = "\n".join([
            SECTION_BEGIN,
            f"- Date: {now}; commit `{mach['commit']}`; {mach['nproc']} CPUs, {mach['cpu']}; load average at start {mach['load_at_start']}",
            f"- Command: `bench/der.sh --docs` (`harken transcribe --model {args.model} --diarize --format json`, "
            "then pyannote.metrics)",
            *[f"- {s}" for s in summary],
            "",
            *table,
            SECTION_END,
        ])
        doc = REPO / "docs" / "DIARIZATION.md"
        text = doc.read_text()
        if SECTION_BEGIN in text:
            a, b = text.index(SECTION_BEGIN), text.index(SECTION_END) + len(SECTION_END)
            text = text[:a] + section + text[b:]
        else:
            text = text.rstrip("\n") + "\n\n## The product's output, scored by pyannote.metrics\n" + section + "\n"
        doc.write_text(text)


if __name__ == "__main__":
    main()
