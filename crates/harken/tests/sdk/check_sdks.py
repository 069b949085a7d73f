"""Calls harken through the official `openai` and `elevenlabs` Python SDKs, unchanged, and checks
what a user of those SDKs sees. Run by `crates/harken/tests/sdk.rs`; reads HARKEN_BASE, HARKEN_KEY,
SPEECH_WAV, STEREO_WAV, NAME_WAV, NAME, WEBHOOK_PORT, WEBHOOK_SECRET, OUT_DIR from the environment.
Exits non-zero (with the failed assertion) on the first problem."""

import base64
import http.server
import io
import json
import os
import re
import shutil
import subprocess
import threading

import docx
import elevenlabs
import openai
import pypdf
from elevenlabs import ElevenLabs
from elevenlabs.core.api_error import ApiError as ElevenLabsApiError
from elevenlabs.errors import UnprocessableEntityError, NotFoundError

BASE = os.environ["HARKEN_BASE"]
KEY = os.environ["HARKEN_KEY"]
WAV = os.environ["SPEECH_WAV"]
STEREO = os.environ["STEREO_WAV"]
# A name Whisper spells its own way unless a prompt (or keyterm) shows the spelling.
NAME_WAV = os.environ["NAME_WAV"]
NAME = os.environ["NAME"]
OUT = os.environ["OUT_DIR"]
SPOKEN = "good morning this is a test please call me back tomorrow".split()


def heard(text):
    got = [re.sub(r"[^a-z0-9]", "", w.lower()) for w in text.split()]
    return sum(1 for w in SPOKEN if w in got)


def audio(path=WAV):
    return open(path, "rb")


def check_openai():
    client = openai.OpenAI(base_url=f"{BASE}/v1", api_key=KEY, max_retries=0)
    r = client.audio.transcriptions.create(model="whisper-1", file=audio())
    assert heard(r.text) >= 7, r.text
    text = client.audio.transcriptions.create(model="gpt-4o-transcribe", file=audio(), response_format="text", language="en")
    assert isinstance(text, str) and heard(text) >= 7, text
    srt = client.audio.transcriptions.create(model="whisper-1", file=audio(), response_format="srt")
    assert srt.startswith("1\n00:00:"), srt
    vtt = client.audio.transcriptions.create(model="whisper-1", file=audio(), response_format="vtt")
    assert vtt.startswith("WEBVTT"), vtt
    v = client.audio.transcriptions.create(
        model="whisper-1", file=audio(), response_format="verbose_json", timestamp_granularities=["word", "segment"]
    )
    assert v.language == "english" and v.duration > 2, v
    assert v.segments and v.segments[0].avg_logprob <= 0 and v.segments[0].text.startswith(" "), v.segments
    assert v.words and len(v.words) >= 7 and v.words[0].end >= v.words[0].start, v.words
    try:
        openai.OpenAI(base_url=f"{BASE}/v1", api_key="sk-not-a-harken-key", max_retries=0).audio.transcriptions.create(
            model="whisper-1", file=audio()
        )
        raise AssertionError("a wrong key was accepted")
    except openai.AuthenticationError as e:
        assert e.status_code == 401 and e.code == "invalid_api_key", e
    # prompt and temperature as the SDK sends them, honoured: Whisper's previous-text prompt, sampling.
    plain = client.audio.transcriptions.create(model="whisper-1", file=audio(NAME_WAV))
    assert "Brekkenridge" not in plain.text, plain.text
    p = client.audio.transcriptions.create(model="whisper-1", file=audio(NAME_WAV), prompt=f"Attendees: {NAME}.")
    assert "Brekkenridge" in p.text, p.text
    t = client.audio.transcriptions.create(model="whisper-1", file=audio(), temperature=0.2)
    assert heard(t.text) >= 7, t.text
    try:
        client.audio.transcriptions.create(model="whisper-1", file=audio(), temperature=1.5)
        raise AssertionError("temperature 1.5 was accepted")
    except openai.BadRequestError as e:
        assert e.status_code == 400 and e.param == "temperature" and "from 0 to 1" in e.message, e
    try:
        client.audio.transcriptions.create(model="whisper-1", file=audio(), response_format="xml")
        raise AssertionError("response_format xml was accepted")
    except openai.BadRequestError as e:
        assert e.param == "response_format" and "json, text, srt, verbose_json, vtt or diarized_json" in e.message, e
    # Speaker labels as gpt-4o-transcribe-diarize gives them: a voice per channel, A and B.
    d = client.audio.transcriptions.create(
        model="gpt-4o-transcribe-diarize", file=audio(STEREO), response_format="diarized_json", chunking_strategy="auto"
    )
    said = {}
    for seg in d.segments:
        said[seg.speaker] = said.get(seg.speaker, "") + seg.text.lower()
    assert sorted(said) == ["A", "B"], d
    assert any("morning" in s and "park" not in s for s in said.values()), d
    # Known speakers as the SDK sends them (repeated `known_speaker_names[]` fields and data URLs):
    # both channels are one espeak voice, so the name goes to one of the two.
    with open(WAV, "rb") as f:
        reference = "data:audio/wav;base64," + base64.b64encode(f.read()).decode()
    named = client.audio.transcriptions.create(
        model="gpt-4o-transcribe-diarize",
        file=audio(STEREO),
        response_format="diarized_json",
        known_speaker_names=["Ann"],
        known_speaker_references=[reference],
    )
    assert "Ann" in {seg.speaker for seg in named.segments}, named
    print("openai: ok")


class Hooks(http.server.BaseHTTPRequestHandler):
    received = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"]))
        # Header names are case-insensitive (hyper sends them lower-case).
        Hooks.received.append((self.headers.get("ElevenLabs-Signature"), body.decode()))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def check_elevenlabs():
    client = ElevenLabs(base_url=BASE, api_key=KEY)
    r = client.speech_to_text.convert(
        model_id="scribe_v1",
        file=audio(),
        language_code="en",
        tag_audio_events=False,
        diarize=False,
        timestamps_granularity="character",
        additional_formats=[
            {"format": "docx", "include_timestamps": True},
            {"format": "pdf"},
            {"format": "srt", "max_characters_per_line": 30},
            {"format": "segmented_json"},
        ],
    )
    assert heard(r.text) >= 7 and r.language_code == "eng", r.text
    word = next(w for w in r.words if w.type == "word")
    assert word.logprob <= 0 and word.characters and word.characters[0].start == word.start, word
    docx_f, pdf_f, srt_f, seg_f = r.additional_formats
    assert docx_f.is_base_64_encoded and docx_f.file_extension == "docx", docx_f.requested_format
    doc_bytes = base64.b64decode(docx_f.content)
    open(os.path.join(OUT, "transcript.docx"), "wb").write(doc_bytes)
    doc_text = " ".join(p.text for p in docx.Document(io.BytesIO(doc_bytes)).paragraphs)
    assert heard(doc_text) >= 7 and "00:00:" in doc_text, doc_text
    pdf_bytes = base64.b64decode(pdf_f.content)
    pdf_path = os.path.join(OUT, "transcript.pdf")
    open(pdf_path, "wb").write(pdf_bytes)
    pdf_text = " ".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf_bytes)).pages)
    assert heard(pdf_text) >= 7, pdf_text
    if shutil.which("pdftotext"):
        out = subprocess.run(["pdftotext", pdf_path, "-"], capture_output=True, text=True, check=True).stdout
        assert heard(out) >= 7, out
    assert srt_f.content.startswith("1\n") and not srt_f.is_base_64_encoded, srt_f.content
    assert all(len(l) <= 30 for l in srt_f.content.splitlines() if not l[:1].isdigit()), srt_f.content
    assert json.loads(seg_f.content)["segments"], seg_f.content

    stored = client.speech_to_text.transcripts.get(r.transcription_id)
    assert stored.text == r.text, stored

    multi = client.speech_to_text.convert(model_id="scribe_v2", file=audio(STEREO), use_multi_channel=True, tag_audio_events=False)
    assert len(multi.transcripts) == 2 and multi.transcripts[1].channel_index == 1, multi

    server = http.server.HTTPServer(("127.0.0.1", int(os.environ["WEBHOOK_PORT"])), Hooks)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    accepted = client.speech_to_text.convert(model_id="scribe_v1", file=audio(), webhook=True, webhook_metadata={"job": "7"})
    assert accepted.request_id and accepted.transcription_id, accepted
    for _ in range(600):
        if Hooks.received:
            break
        threading.Event().wait(0.2)
    signature, raw = Hooks.received[0]
    event = client.webhooks.construct_event(raw, signature, os.environ["WEBHOOK_SECRET"])
    assert event["type"] == "speech_to_text_transcription", event
    assert event["data"]["transcription_id"] == accepted.transcription_id
    assert heard(event["data"]["transcription"]["text"]) >= 7 and event["data"]["webhook_metadata"] == {"job": "7"}
    server.shutdown()

    try:
        ElevenLabs(base_url=BASE, api_key="not-a-key").speech_to_text.convert(model_id="scribe_v1", file=audio())
        raise AssertionError("a wrong key was accepted")
    except ElevenLabsApiError as e:
        assert e.status_code == 401 and e.body["detail"]["status"] == "invalid_api_key", e
    # keyterms (a list: repeated form fields), diarization_threshold and temperature, honoured.
    k = client.speech_to_text.convert(
        model_id="scribe_v2",
        file=audio(NAME_WAV),
        keyterms=["quarterly report", NAME],
        diarize=True,
        diarization_threshold=0.3,
        tag_audio_events=False,
    )
    assert "Brekkenridge" in k.text, k.text
    assert all(w.speaker_id == "speaker_0" for w in k.words if w.type == "word"), k.words
    t = client.speech_to_text.convert(model_id="scribe_v1", file=audio(), temperature=0.2, tag_audio_events=False)
    assert heard(t.text) >= 7, t.text
    try:
        client.speech_to_text.convert(model_id="scribe_v1", file=audio(), keyterms=["harken", "x" * 51])
        raise AssertionError("a 51-character keyterm was accepted")
    except UnprocessableEntityError as e:
        assert e.body["detail"]["message"].startswith("keyterms[1]: expected at most 50 characters"), e.body
    try:
        client.speech_to_text.convert(
            model_id="scribe_v1", file=audio(), diarize=True, num_speakers=2, diarization_threshold=0.3
        )
        raise AssertionError("diarization_threshold with num_speakers was accepted")
    except UnprocessableEntityError as e:
        assert e.body["detail"]["message"].startswith("diarization_threshold: expected no value when num_speakers"), e.body
    try:
        client.speech_to_text.transcripts.get("task_unknown")
        raise AssertionError("an unknown transcript was found")
    except NotFoundError as e:
        assert e.status_code == 404, e
    print("elevenlabs: ok")


check_openai()
check_elevenlabs()
