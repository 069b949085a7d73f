//! Transcript renderings shared by the CLI and every API dialect: plain text, SRT, WebVTT, and
//! the timed segments (cues) they are built from.
//!
//! A segment ends at a sentence end, at a speaker change, after a pause of more than 1.5 s, or
//! when it would exceed 7 s or 84 characters (two subtitle lines of 42), whichever comes first.

use harken_types::{Transcript, WordKind};
use serde::Serialize;

const MAX_SEGMENT_SECONDS: f64 = 7.0;
const MAX_SEGMENT_CHARS: usize = 84;
const PAUSE_SECONDS: f64 = 1.5;

/// A run of words shown together.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Segment {
    pub text: String,
    pub start: f64,
    pub end: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub speaker_id: Option<String>,
}

/// Groups the transcript's words and events into segments.
pub fn segments(t: &Transcript) -> Vec<Segment> {
    let mut out: Vec<Segment> = Vec::new();
    let mut current: Option<Segment> = None;
    for w in t.words.iter().filter(|w| w.kind != WordKind::Spacing) {
        if let Some(seg) = current.as_mut() {
            let speaker_changed = w.speaker_id != seg.speaker_id;
            let too_long = w.end - seg.start > MAX_SEGMENT_SECONDS
                || seg.text.chars().count() + 1 + w.text.chars().count() > MAX_SEGMENT_CHARS;
            let paused = w.start - seg.end > PAUSE_SECONDS;
            if speaker_changed || too_long || paused {
                out.extend(current.take());
            }
        }
        match current.as_mut() {
            Some(seg) => {
                seg.text.push(' ');
                seg.text.push_str(&w.text);
                seg.end = w.end;
            }
            None => {
                current = Some(Segment { text: w.text.clone(), start: w.start, end: w.end, speaker_id: w.speaker_id.clone() })
            }
        }
        if w.text.ends_with(['.', '?', '!', '。', '？', '！']) {
            out.extend(current.take());
        }
    }
    out.extend(current);
    out
}

/// The transcript text, one line per segment group: as ElevenLabs' `txt` format, just the text.
pub fn text(t: &Transcript) -> String {
    let mut s = t.text.clone();
    s.push('\n');
    s
}

/// SubRip subtitles; speakers, when present, prefix each cue as `[speaker_0]`.
pub fn srt(t: &Transcript) -> String {
    let mut out = String::new();
    for (i, seg) in segments(t).iter().enumerate() {
        out.push_str(&format!("{}\n{} --> {}\n{}\n\n", i + 1, timestamp(seg.start, ','), timestamp(seg.end, ','), cue_text(seg)));
    }
    out
}

/// WebVTT subtitles; speakers become voice tags (`<v speaker_0>`).
pub fn vtt(t: &Transcript) -> String {
    let mut out = String::from("WEBVTT\n\n");
    for seg in segments(t) {
        let text = match &seg.speaker_id {
            Some(s) => format!("<v {s}>{}", seg.text),
            None => seg.text.clone(),
        };
        out.push_str(&format!("{} --> {}\n{}\n\n", timestamp(seg.start, '.'), timestamp(seg.end, '.'), text));
    }
    out
}

fn cue_text(seg: &Segment) -> String {
    match &seg.speaker_id {
        Some(s) => format!("[{s}] {}", seg.text),
        None => seg.text.clone(),
    }
}

/// `HH:MM:SS,mmm` (SRT) or `HH:MM:SS.mmm` (WebVTT).
pub fn timestamp(seconds: f64, separator: char) -> String {
    let ms = (seconds.max(0.0) * 1000.0).round() as u64;
    format!("{:02}:{:02}:{:02}{separator}{:03}", ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use harken_types::Word;

    fn word(text: &str, start: f64, end: f64, kind: WordKind) -> Word {
        Word { text: text.to_owned(), start, end, kind, speaker_id: None, logprob: 0.0 }
    }

    fn sample() -> Transcript {
        let words = vec![
            word("Ask", 0.0, 0.4, WordKind::Word),
            word(" ", 0.4, 0.5, WordKind::Spacing),
            word("not.", 0.5, 1.0, WordKind::Word),
            word(" ", 1.0, 1.2, WordKind::Spacing),
            word("Why?", 1.2, 3661.5, WordKind::Word),
        ];
        Transcript { language_code: "eng".into(), language_probability: 1.0, text: "Ask not. Why?".into(), words }
    }

    #[test]
    fn srt_cues_split_at_sentence_ends() {
        assert_eq!(srt(&sample()), "1\n00:00:00,000 --> 00:00:01,000\nAsk not.\n\n2\n00:00:01,200 --> 01:01:01,500\nWhy?\n\n");
    }

    #[test]
    fn vtt_has_its_header_and_dot_separator() {
        let v = vtt(&sample());
        assert!(v.starts_with("WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nAsk not.\n"));
    }

    #[test]
    fn speaker_changes_split_segments() {
        let mut t = sample();
        for (i, w) in t.words.iter_mut().enumerate() {
            w.speaker_id = Some(if i < 2 { "speaker_0" } else { "speaker_1" }.to_owned());
        }
        t.words[2].text = "not".into();
        let s = segments(&t);
        assert_eq!(s.len(), 3);
        assert_eq!(s[1].speaker_id.as_deref(), Some("speaker_1"));
    }
}
