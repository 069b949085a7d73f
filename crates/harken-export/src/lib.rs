//! Transcript renderings shared by the CLI and every API dialect: plain text, SRT, WebVTT,
//! segmented JSON, HTML, DOCX and PDF, all built from the same timed segments.
//!
//! A segment ends at a sentence end, at a speaker change, after a pause longer than
//! `segment_on_silence_longer_than_s`, or when it would exceed `max_segment_duration_s` or
//! `max_segment_chars`, whichever comes first ([`ExportOptions`], ElevenLabs' export options).
//!
//! ```
//! use harken_export::{ExportOptions, Format};
//! let t = harken_types::Transcript::empty("eng", 1.0);
//! let pdf = Format::Pdf.render(&t, &ExportOptions::default());
//! assert!(pdf.starts_with(b"%PDF-"));
//! ```

mod docx;
mod html;
mod pdf;

use harken_types::{Transcript, Word, WordKind};
use serde::Serialize;

/// How a transcript is cut into segments and what each segment shows. The defaults are
/// subtitle-friendly: 7 s, 84 characters (two lines of 42), a new segment after 1.5 s of silence.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportOptions {
    /// Show `speaker_N` labels (when the transcript has them).
    pub include_speakers: bool,
    /// Show start and end times (subtitle formats always carry them).
    pub include_timestamps: bool,
    pub segment_on_silence_longer_than_s: f64,
    pub max_segment_duration_s: f64,
    pub max_segment_chars: usize,
    /// Wrap a segment's text into lines of at most this many characters (srt, txt); `None` keeps
    /// one line.
    pub max_characters_per_line: Option<usize>,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            include_speakers: true,
            include_timestamps: true,
            segment_on_silence_longer_than_s: 1.5,
            max_segment_duration_s: 7.0,
            max_segment_chars: 84,
            max_characters_per_line: None,
        }
    }
}

/// A run of words shown together.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Segment {
    pub text: String,
    pub start: f64,
    pub end: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub speaker_id: Option<String>,
    /// The transcript items (words, spacing, events) of the segment.
    #[serde(skip)]
    pub words: Vec<Word>,
}

/// Every format harken writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    /// The transcript object itself (ElevenLabs' format), pretty-printed.
    Json,
    /// Plain text; with options, one line per segment with optional times and speakers.
    Text,
    Srt,
    Vtt,
    /// `{"segments": [{"text", "start", "end", "speaker_id", "words": [...]}]}`.
    SegmentedJson,
    Html,
    Docx,
    Pdf,
}

impl Format {
    /// Reads a format name as the API and CLI spell it (`txt` and `text` are the same).
    pub fn parse(name: &str) -> Option<Format> {
        Some(match name {
            "json" => Format::Json,
            "txt" | "text" => Format::Text,
            "srt" => Format::Srt,
            "vtt" => Format::Vtt,
            "segmented_json" => Format::SegmentedJson,
            "html" => Format::Html,
            "docx" => Format::Docx,
            "pdf" => Format::Pdf,
            _ => return None,
        })
    }

    pub fn extension(self) -> &'static str {
        match self {
            Format::Json | Format::SegmentedJson => "json",
            Format::Text => "txt",
            Format::Srt => "srt",
            Format::Vtt => "vtt",
            Format::Html => "html",
            Format::Docx => "docx",
            Format::Pdf => "pdf",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json | Format::SegmentedJson => "application/json",
            Format::Text => "text/plain",
            Format::Srt => "application/x-subrip",
            Format::Vtt => "text/vtt",
            Format::Html => "text/html",
            Format::Docx => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            Format::Pdf => "application/pdf",
        }
    }

    /// Binary formats (sent base64-encoded inside JSON answers).
    pub fn is_binary(self) -> bool {
        matches!(self, Format::Docx | Format::Pdf)
    }

    /// The rendered file.
    pub fn render(self, t: &Transcript, o: &ExportOptions) -> Vec<u8> {
        match self {
            Format::Json => {
                let mut s = serde_json::to_string_pretty(t).expect("a transcript always serialises");
                s.push('\n');
                s.into_bytes()
            }
            Format::Text => text_with(t, o).into_bytes(),
            Format::Srt => srt_with(t, o).into_bytes(),
            Format::Vtt => vtt_with(t, o).into_bytes(),
            Format::SegmentedJson => segmented_json(t, o).into_bytes(),
            Format::Html => html::render(t, o).into_bytes(),
            Format::Docx => docx::render(t, o),
            Format::Pdf => pdf::render(t, o),
        }
    }
}

/// Groups the transcript's words and events into segments with the default rules.
pub fn segments(t: &Transcript) -> Vec<Segment> {
    segments_with(t, &ExportOptions::default())
}

/// Groups the transcript's words and events into segments (see the module docs).
pub fn segments_with(t: &Transcript, o: &ExportOptions) -> Vec<Segment> {
    let mut out: Vec<Segment> = Vec::new();
    let mut current: Option<Segment> = None;
    for w in t.words.iter() {
        if w.kind == WordKind::Spacing {
            if let Some(seg) = current.as_mut() {
                seg.words.push(w.clone());
            }
            continue;
        }
        if let Some(seg) = current.as_mut() {
            let speaker_changed = w.speaker_id != seg.speaker_id;
            let too_long = w.end - seg.start > o.max_segment_duration_s
                || seg.text.chars().count() + 1 + w.text.chars().count() > o.max_segment_chars;
            let paused = w.start - seg.end > o.segment_on_silence_longer_than_s;
            if speaker_changed || too_long || paused {
                out.extend(current.take().map(close));
            }
        }
        match current.as_mut() {
            Some(seg) => {
                seg.text.push(' ');
                seg.text.push_str(&w.text);
                seg.end = w.end;
                seg.words.push(w.clone());
            }
            None => {
                current = Some(Segment {
                    text: w.text.clone(),
                    start: w.start,
                    end: w.end,
                    speaker_id: w.speaker_id.clone(),
                    words: vec![w.clone()],
                })
            }
        }
        if w.text.ends_with(['.', '?', '!', '。', '？', '！']) {
            out.extend(current.take().map(close));
        }
    }
    out.extend(current.map(close));
    out
}

/// Drops the spacing items a segment collected after its last word.
fn close(mut seg: Segment) -> Segment {
    while seg.words.last().is_some_and(|w| w.kind == WordKind::Spacing) {
        seg.words.pop();
    }
    seg
}

/// The transcript text and a newline: what `--format text` prints.
pub fn text(t: &Transcript) -> String {
    let mut s = t.text.clone();
    s.push('\n');
    s
}

/// Text with options: one line (or wrapped block) per segment, prefixed by its time range and
/// speaker when asked; the plain text when neither is asked and no wrapping is set.
pub fn text_with(t: &Transcript, o: &ExportOptions) -> String {
    let speakers = o.include_speakers && has_speakers(t);
    if !speakers && !o.include_timestamps && o.max_characters_per_line.is_none() {
        return text(t);
    }
    let mut out = String::new();
    for seg in segments_with(t, o) {
        if o.include_timestamps {
            out.push_str(&format!("[{} - {}] ", timestamp(seg.start, '.'), timestamp(seg.end, '.')));
        }
        if let (true, Some(s)) = (speakers, &seg.speaker_id) {
            out.push_str(&format!("{s}: "));
        }
        out.push_str(&wrap(&seg.text, o.max_characters_per_line));
        out.push('\n');
    }
    out
}

/// SubRip subtitles; speakers, when present, prefix each cue as `[speaker_0]`.
pub fn srt(t: &Transcript) -> String {
    srt_with(t, &ExportOptions::default())
}

pub fn srt_with(t: &Transcript, o: &ExportOptions) -> String {
    let mut out = String::new();
    for (i, seg) in segments_with(t, o).iter().enumerate() {
        let mut text = wrap(&seg.text, o.max_characters_per_line);
        if let (true, Some(s)) = (o.include_speakers, &seg.speaker_id) {
            text = format!("[{s}] {text}");
        }
        out.push_str(&format!(
            "{}\n{} --> {}\n{}\n\n",
            i + 1,
            timestamp(seg.start, ','),
            timestamp(seg.end, ','),
            text
        ));
    }
    out
}

/// WebVTT subtitles; speakers become voice tags (`<v speaker_0>`).
pub fn vtt(t: &Transcript) -> String {
    vtt_with(t, &ExportOptions::default())
}

pub fn vtt_with(t: &Transcript, o: &ExportOptions) -> String {
    let mut out = String::from("WEBVTT\n\n");
    for seg in segments_with(t, o) {
        let text = match (&seg.speaker_id, o.include_speakers) {
            (Some(s), true) => format!("<v {s}>{}", seg.text),
            _ => seg.text.clone(),
        };
        out.push_str(&format!("{} --> {}\n{}\n\n", timestamp(seg.start, '.'), timestamp(seg.end, '.'), text));
    }
    out
}

/// `{"segments": [...]}`: each segment's text and items, with times and speaker when asked.
pub fn segmented_json(t: &Transcript, o: &ExportOptions) -> String {
    let segments: Vec<serde_json::Value> = segments_with(t, o)
        .into_iter()
        .map(|seg| {
            let mut v = serde_json::json!({ "text": seg.text });
            if o.include_timestamps {
                v["start"] = seg.start.into();
                v["end"] = seg.end.into();
            }
            if let (true, Some(s)) = (o.include_speakers, &seg.speaker_id) {
                v["speaker_id"] = s.as_str().into();
            }
            let words: Vec<serde_json::Value> = seg
                .words
                .iter()
                .map(|w| {
                    let mut item = serde_json::to_value(w).expect("a word always serialises");
                    if !o.include_timestamps {
                        item.as_object_mut().map(|m| (m.remove("start"), m.remove("end")));
                    }
                    if !o.include_speakers {
                        item.as_object_mut().map(|m| m.remove("speaker_id"));
                    }
                    item
                })
                .collect();
            v["words"] = words.into();
            v
        })
        .collect();
    let mut s = serde_json::to_string_pretty(&serde_json::json!({ "segments": segments })).expect("JSON values serialise");
    s.push('\n');
    s
}

pub(crate) fn has_speakers(t: &Transcript) -> bool {
    t.words.iter().any(|w| w.speaker_id.is_some())
}

/// Breaks `text` at spaces into lines of at most `width` characters (a longer word keeps its own line).
pub(crate) fn wrap(text: &str, width: Option<usize>) -> String {
    let Some(width) = width.filter(|w| *w > 0) else { return text.to_owned() };
    let mut lines: Vec<String> = Vec::new();
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        match lines.last_mut() {
            Some(line) if line.chars().count() + 1 + word.chars().count() <= width => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.to_owned()),
        }
    }
    lines.join("\n")
}

/// `HH:MM:SS,mmm` (SRT) or `HH:MM:SS.mmm` (WebVTT).
pub fn timestamp(seconds: f64, separator: char) -> String {
    let ms = (seconds.max(0.0) * 1000.0).round() as u64;
    format!("{:02}:{:02}:{:02}{separator}{:03}", ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000)
}

#[cfg(test)]
mod tests;
