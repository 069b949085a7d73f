// harken's web page: a plain client of the public API (no framework, no build step).
// Flow: key (localStorage) → upload (stream upload) or URL → createTask → poll recordInfo →
// transcript by speaker with timestamps that seek the <audio> element → srt/vtt/txt/json made here.
"use strict";

const KEY_STORAGE = "harken.apiKey";
const MODEL = "elevenlabs/speech-to-text";
const POLL_MS = 1000;

const $ = (id) => document.getElementById(id);
let transcript = null; // the last resultObject
let wordSpans = [];    // [{start, end, el}] for highlighting during playback

// ---------- key ----------
function setupKey() {
  const input = $("api-key");
  input.value = localStorage.getItem(KEY_STORAGE) || "";
  input.addEventListener("input", () => {
    const v = input.value.trim();
    if (v) localStorage.setItem(KEY_STORAGE, v); else localStorage.removeItem(KEY_STORAGE);
  });
  $("forget-key").addEventListener("click", () => {
    localStorage.removeItem(KEY_STORAGE);
    input.value = "";
    $("key-hint").textContent = "Key forgotten.";
    input.focus();
  });
}

// ---------- API ----------
async function api(path, init = {}) {
  const key = $("api-key").value.trim();
  const headers = Object.assign({ Authorization: "Bearer " + key }, init.headers || {});
  const resp = await fetch(path, Object.assign({}, init, { headers }));
  let body;
  try { body = await resp.json(); } catch (_) { throw new Error("The server answered HTTP " + resp.status + " without JSON."); }
  if (body.code !== 200) throw new Error(body.msg || ("Error " + body.code));
  return body.data;
}

// Multipart upload with progress (fetch cannot report upload progress).
function uploadFile(file, onProgress) {
  return new Promise((resolve, reject) => {
    const form = new FormData();
    form.append("file", file, file.name);
    form.append("uploadPath", "web");
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/file-stream-upload");
    xhr.setRequestHeader("Authorization", "Bearer " + $("api-key").value.trim());
    xhr.responseType = "json";
    xhr.upload.addEventListener("progress", (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); });
    xhr.addEventListener("load", () => {
      const body = xhr.response;
      if (body && body.code === 200) resolve(body.data);
      else reject(new Error((body && body.msg) || ("Upload failed: HTTP " + xhr.status)));
    });
    xhr.addEventListener("error", () => reject(new Error("Upload failed: the connection broke.")));
    xhr.send(form);
  });
}

// ---------- the job ----------
function showStatus(text, pct, failed) {
  $("status-card").hidden = false;
  const s = $("status");
  s.textContent = text;
  s.classList.toggle("failed", !!failed);
  if (pct !== undefined) $("progress").value = pct;
}

const STATE_TEXT = {
  waiting: "Waiting in the queue…",
  queuing: "Fetching and decoding the audio…",
  generating: "Transcribing…",
  success: "Done.",
  fail: "Failed.",
};

async function run(event) {
  event.preventDefault();
  const err = $("form-error");
  err.textContent = "";
  if (!$("api-key").value.trim()) { err.textContent = "Paste your API key first (step 1)."; $("api-key").focus(); return; }
  const source = document.querySelector("input[name=source]:checked").value;
  const file = $("audio-file").files[0];
  const url = $("audio-url").value.trim();
  if (source === "file" && !file) { err.textContent = "Choose an audio file."; $("audio-file").focus(); return; }
  if (source === "url" && !/^https?:\/\//i.test(url)) { err.textContent = "Enter an http(s) URL of the audio."; $("audio-url").focus(); return; }

  const button = $("submit");
  button.disabled = true;
  $("result-card").hidden = true;
  document.body.dataset.state = "submitting";
  try {
    let audioUrl = url;
    if (source === "file") {
      showStatus("Uploading " + file.name + "…", 0);
      const uploaded = await uploadFile(file, (f) => showStatus("Uploading " + file.name + "… " + Math.round(f * 100) + " %", Math.round(f * 100)));
      audioUrl = uploaded.downloadUrl;
    }
    const body = {
      model: MODEL,
      input: {
        audio_url: audioUrl,
        language_code: $("language").value,
        diarize: $("diarize").checked,
        tag_audio_events: $("events").checked,
      },
    };
    const created = await api("/api/v1/jobs/createTask", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    $("task-id").textContent = "Task " + created.taskId;
    showStatus(STATE_TEXT.waiting, 0);
    const record = await poll(created.taskId);
    if (record.state === "success") {
      showStatus(STATE_TEXT.success, 100);
      const result = JSON.parse(record.resultJson).resultObject;
      render(result, audioUrl, record);
      document.body.dataset.state = "success";
    } else {
      showStatus("Failed: " + (record.failMsg || "no reason given"), 100, true);
      document.body.dataset.state = "fail";
    }
  } catch (e) {
    showStatus(e.message, undefined, true);
    err.textContent = e.message;
    document.body.dataset.state = "error";
  } finally {
    button.disabled = false;
  }
}

async function poll(taskId) {
  for (;;) {
    const record = await api("/api/v1/jobs/recordInfo?taskId=" + encodeURIComponent(taskId));
    document.body.dataset.state = record.state;
    if (record.state === "success" || record.state === "fail") return record;
    const pct = record.progress || 0;
    showStatus(STATE_TEXT[record.state] + (record.state === "generating" ? " " + pct + " %" : ""), pct);
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

// ---------- transcript ----------
function clock(t, withMs) {
  const total = Math.max(0, t);
  const h = Math.floor(total / 3600), m = Math.floor(total / 60) % 60, s = Math.floor(total) % 60;
  const two = (n) => String(n).padStart(2, "0");
  let out = (h ? h + ":" + two(m) : String(m)) + ":" + two(s);
  if (withMs) out += "." + String(Math.floor((total % 1) * 10));
  return out;
}

function speakerName(id) {
  if (!id) return "Transcript";
  const n = Number(String(id).replace(/\D+/g, ""));
  return Number.isFinite(n) ? "Speaker " + (n + 1) : id;
}

// Items → turns (runs of one speaker) → segments (sentences, or pauses over 1.5 s, or 25 words).
function segment(words) {
  const turns = [];
  let turn = null, seg = null, prevEnd = 0;
  for (const w of words) {
    const speaker = w.speaker_id || null;
    if (w.type === "spacing") { if (seg) seg.items.push(w); continue; }
    if (!turn || turn.speaker !== speaker) {
      turn = { speaker, segments: [] };
      turns.push(turn);
      seg = null;
    }
    if (!seg || seg.done || w.start - prevEnd > 1.5 || seg.count >= 25) {
      seg = { start: w.start, end: w.end, items: [], count: 0, done: false };
      turn.segments.push(seg);
    }
    seg.items.push(w);
    seg.end = w.end;
    seg.count += 1;
    prevEnd = w.end;
    if (w.type === "word" && /[.!?…]["')\]]*$/.test(w.text)) seg.done = true;
  }
  for (const t of turns) for (const s of t.segments) {
    while (s.items.length && s.items[s.items.length - 1].type === "spacing") s.items.pop();
    s.text = s.items.map((i) => i.text).join("").trim();
  }
  return turns;
}

function seek(t) {
  const player = $("player");
  player.currentTime = t;
  const played = player.play();
  if (played && played.catch) played.catch(() => {}); // autoplay rules may refuse; the seek stands
}

function render(result, audioUrl, record) {
  transcript = result;
  const player = $("player");
  player.src = audioUrl;
  const box = $("transcript");
  box.replaceChildren();
  wordSpans = [];
  const turns = segment(result.words || []);
  const speakers = new Map();
  for (const turn of turns) {
    if (!speakers.has(turn.speaker)) speakers.set(turn.speaker, speakers.size);
    const row = document.createElement("div");
    row.className = "turn";
    row.style.setProperty("--sc", "var(--s" + (speakers.get(turn.speaker) % 6) + ")");
    const who = document.createElement("div");
    who.className = "speaker";
    who.textContent = speakerName(turn.speaker);
    const body = document.createElement("div");
    body.className = "said";
    for (const seg of turn.segments) {
      const p = document.createElement("p");
      p.className = "seg";
      const ts = document.createElement("button");
      ts.type = "button";
      ts.className = "ts";
      ts.dataset.start = String(seg.start);
      ts.textContent = clock(seg.start);
      ts.setAttribute("aria-label", "Play from " + clock(seg.start, true));
      ts.addEventListener("click", () => seek(seg.start));
      p.append(ts);
      for (const item of seg.items) {
        if (item.type === "spacing") { p.append(document.createTextNode(item.text)); continue; }
        const span = document.createElement("span");
        span.className = item.type === "audio_event" ? "w event" : "w";
        span.textContent = item.text;
        span.dataset.start = String(item.start);
        span.addEventListener("click", () => seek(item.start));
        p.append(span);
        wordSpans.push({ start: item.start, end: item.end, el: span });
      }
      body.append(p);
    }
    row.append(who, body);
    box.append(row);
  }
  if (!turns.length) box.textContent = "No speech was found in this audio.";
  const lang = result.language_code ? "Language " + result.language_code : "";
  const secs = record.costTime ? "transcribed in " + (record.costTime / 1000).toFixed(1) + " s" : "";
  const who = speakers.size > 1 ? speakers.size + " speakers" : "";
  $("result-meta").textContent = [lang, who, secs].filter(Boolean).join(" · ");
  $("result-card").hidden = false;
}

function highlight() {
  const t = $("player").currentTime;
  for (const w of wordSpans) w.el.classList.toggle("now", t >= w.start && t < w.end);
}

// ---------- exports ----------
function cues() {
  const out = [];
  const diarized = (transcript.words || []).some((w) => w.speaker_id);
  for (const turn of segment(transcript.words || [])) {
    for (const seg of turn.segments) {
      if (seg.text) out.push({ start: seg.start, end: Math.max(seg.end, seg.start + 0.2), text: seg.text, speaker: diarized ? speakerName(turn.speaker) : null });
    }
  }
  return out;
}

function stamp(t, sep) {
  const ms = Math.round(Math.max(0, t) * 1000);
  const h = Math.floor(ms / 3600000), m = Math.floor(ms / 60000) % 60, s = Math.floor(ms / 1000) % 60;
  const two = (n) => String(n).padStart(2, "0");
  return two(h) + ":" + two(m) + ":" + two(s) + sep + String(ms % 1000).padStart(3, "0");
}

const EXPORTS = {
  srt: () => ["application/x-subrip", cues().map((c, i) =>
    (i + 1) + "\n" + stamp(c.start, ",") + " --> " + stamp(c.end, ",") + "\n" + (c.speaker ? "[" + c.speaker + "] " : "") + c.text + "\n").join("\n")],
  vtt: () => ["text/vtt", "WEBVTT\n\n" + cues().map((c) =>
    stamp(c.start, ".") + " --> " + stamp(c.end, ".") + "\n" + (c.speaker ? "<v " + c.speaker + ">" : "") + c.text + "\n").join("\n")],
  txt: () => ["text/plain", segment(transcript.words || []).map((t) => {
    const said = t.segments.map((s) => s.text).join(" ");
    return t.speaker ? speakerName(t.speaker) + ": " + said : said;
  }).join("\n\n") + "\n"],
  json: () => ["application/json", JSON.stringify(transcript, null, 2) + "\n"],
};

function download(format) {
  if (!transcript) return;
  const [type, text] = EXPORTS[format]();
  const a = document.createElement("a");
  a.href = URL.createObjectURL(new Blob([text], { type: type + ";charset=utf-8" }));
  a.download = "transcript." + format;
  document.body.append(a);
  a.click();
  setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
}

// ---------- wiring ----------
document.addEventListener("DOMContentLoaded", () => {
  setupKey();
  for (const radio of document.querySelectorAll("input[name=source]")) {
    radio.addEventListener("change", () => {
      const file = document.querySelector("input[name=source]:checked").value === "file";
      $("file-pane").hidden = !file;
      $("url-pane").hidden = file;
    });
  }
  $("job").addEventListener("submit", run);
  $("player").addEventListener("timeupdate", highlight);
  for (const b of document.querySelectorAll(".downloads button")) b.addEventListener("click", () => download(b.dataset.format));
});
