//! A finished task → OpenAI's answer in the requested `response_format`.
//!
//! `verbose_json` segments are harken's export segments (sentence ends, pauses, 7 s / 84
//! characters). Fields Whisper's reference implementation computes per 30-s decoding window are
//! filled as follows, honestly rather than exactly:
//! - `seek`: the 10-ms frame offset of the 30-s window the segment starts in;
//! - `tokens`: empty (the engine does not expose token ids);
//! - `temperature`: 0.0 (harken always decodes at temperature 0);
//! - `avg_logprob`: the mean of the segment's word log-probabilities (Whisper averages tokens);
//! - `compression_ratio`: the segment text's length over its zlib-compressed length, as Whisper
//!   computes it;
//! - `no_speech_prob`: 0.0 — not measured; segments exist only where voice activity was found.
//!
//! `diarized_json` (`gpt-4o-transcribe-diarize`'s format) uses the same segments, which end at
//! every speaker change, each with its speaker as a letter: `speaker_0` → `A`, `speaker_1` → `B`,
//! ..., `Z`, then `AA`, `AB`, ..., as OpenAI labels speakers it was not given names for.

use std::io::Write;

use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::Json;
use harken_types::{Transcript, WordKind};
use serde_json::{json, Value};

use super::languages::name_of_iso639_3;
use super::request::{AnswerOptions, ResponseFormat};
use crate::jobs::JobResult;

pub(crate) fn render(result: &JobResult, answer: &AnswerOptions) -> Response {
    let empty = Transcript::empty("eng", 0.0);
    let t = result.transcripts.first().unwrap_or(&empty);
    let text = |body: String, content_type: &'static str| ([(CONTENT_TYPE, content_type)], body).into_response();
    match answer.response_format {
        ResponseFormat::Json => Json(json!({
            "text": t.text,
            "usage": {"type": "duration", "seconds": result.audio_duration_secs.ceil() as u64},
        }))
        .into_response(),
        ResponseFormat::Text => text(format!("{}\n", t.text), "text/plain; charset=utf-8"),
        ResponseFormat::Srt => text(harken_export::srt(t), "text/plain; charset=utf-8"),
        ResponseFormat::Vtt => text(harken_export::vtt(t), "text/vtt; charset=utf-8"),
        ResponseFormat::VerboseJson => Json(verbose(t, result.audio_duration_secs, answer)).into_response(),
        ResponseFormat::DiarizedJson => Json(diarized(t, result.audio_duration_secs)).into_response(),
    }
}

pub(crate) fn diarized(t: &Transcript, duration: f64) -> Value {
    let segments: Vec<Value> = harken_export::segments(t)
        .iter()
        .enumerate()
        .map(|(id, seg)| {
            json!({
                "type": "transcript.text.segment",
                "id": format!("seg_{id}"),
                "start": seg.start,
                "end": seg.end,
                "text": seg.text,
                "speaker": seg.speaker_id.as_deref().map_or_else(|| "A".to_owned(), speaker_letters),
            })
        })
        .collect();
    json!({
        "task": "transcribe",
        "duration": duration,
        "text": t.text,
        "segments": segments,
        "usage": {"type": "duration", "seconds": duration.ceil() as u64},
    })
}

/// `speaker_N` → OpenAI's label: `A` … `Z`, `AA`, `AB`, … (spreadsheet columns); any other id as it is.
fn speaker_letters(id: &str) -> String {
    let Some(mut n) = id.strip_prefix("speaker_").and_then(|n| n.parse::<usize>().ok()) else {
        return id.to_owned();
    };
    let mut letters = Vec::new();
    loop {
        letters.push(b'A' + (n % 26) as u8);
        if n < 26 {
            break;
        }
        n = n / 26 - 1;
    }
    letters.iter().rev().map(|&b| b as char).collect()
}

pub(crate) fn verbose(t: &Transcript, duration: f64, answer: &AnswerOptions) -> Value {
    let mut v = json!({
        "task": "transcribe",
        "language": name_of_iso639_3(&t.language_code),
        "duration": duration,
        "text": t.text,
    });
    if answer.segments {
        let segments: Vec<Value> = harken_export::segments(t)
            .iter()
            .enumerate()
            .map(|(id, seg)| {
                let words: Vec<f64> =
                    seg.words.iter().filter(|w| w.kind != WordKind::Spacing).map(|w| w.logprob).collect();
                let avg_logprob = if words.is_empty() { 0.0 } else { words.iter().sum::<f64>() / words.len() as f64 };
                json!({
                    "id": id,
                    "seek": ((seg.start / 30.0).floor() * 3000.0) as u64,
                    "start": seg.start,
                    "end": seg.end,
                    "text": format!(" {}", seg.text),
                    "tokens": [],
                    "temperature": 0.0,
                    "avg_logprob": avg_logprob,
                    "compression_ratio": compression_ratio(&seg.text),
                    "no_speech_prob": 0.0,
                })
            })
            .collect();
        v["segments"] = segments.into();
    }
    if answer.words {
        let words: Vec<Value> = t
            .words
            .iter()
            .filter(|w| w.kind == WordKind::Word)
            .map(|w| json!({"word": w.text, "start": w.start, "end": w.end}))
            .collect();
        v["words"] = words.into();
    }
    v
}

/// Whisper's gzip compression ratio: text bytes over zlib-compressed bytes.
fn compression_ratio(text: &str) -> f64 {
    if text.is_empty() {
        return 0.0;
    }
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(text.as_bytes()).expect("writing to memory cannot fail");
    let compressed = z.finish().expect("writing to memory cannot fail");
    text.len() as f64 / compressed.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use harken_types::Word;

    #[test]
    fn verbose_json_has_openai_fields() {
        let words = vec![
            Word { text: "Hi.".into(), start: 0.5, end: 0.9, kind: WordKind::Word, speaker_id: None, logprob: -0.2 },
        ];
        let t = Transcript { language_code: "eng".into(), language_probability: 1.0, text: "Hi.".into(), words };
        let v = verbose(&t, 1.5, &AnswerOptions { response_format: ResponseFormat::VerboseJson, words: true, segments: true });
        assert_eq!(v["language"], "english");
        assert_eq!(v["segments"][0]["text"], " Hi.");
        assert_eq!(v["segments"][0]["avg_logprob"], -0.2);
        assert_eq!(v["words"][0], json!({"word": "Hi.", "start": 0.5, "end": 0.9}));
        assert!(v["segments"][0]["compression_ratio"].as_f64().unwrap() > 0.0);
    }

    #[test]
    fn speakers_become_letters_as_openai_labels_them() {
        let labels: Vec<String> = [0, 1, 25, 26, 27, 31].map(|n| speaker_letters(&format!("speaker_{n}"))).into();
        assert_eq!(labels, ["A", "B", "Z", "AA", "AB", "AF"]);
        assert_eq!(speaker_letters("agent"), "agent");
    }

    #[test]
    fn diarized_json_has_a_segment_per_turn() {
        let word = |text: &str, start: f64, speaker: &str| Word {
            text: text.into(),
            start,
            end: start + 0.4,
            kind: WordKind::Word,
            speaker_id: Some(speaker.into()),
            logprob: -0.1,
        };
        let words = vec![word("Hello", 0.0, "speaker_0"), word("there.", 0.5, "speaker_0"), word("Hi.", 1.2, "speaker_1")];
        let t = Transcript { language_code: "eng".into(), language_probability: 1.0, text: "Hello there. Hi.".into(), words };
        let v = diarized(&t, 2.0);
        let turns: Vec<(&str, &str)> = v["segments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["speaker"].as_str().unwrap(), s["text"].as_str().unwrap()))
            .collect();
        assert_eq!(turns, [("A", "Hello there."), ("B", "Hi.")]);
        assert_eq!(v["segments"][1], json!({"type": "transcript.text.segment", "id": "seg_1", "start": 1.2, "end": 1.6, "text": "Hi.", "speaker": "B"}));
        assert_eq!(v["usage"], json!({"type": "duration", "seconds": 2}));
    }
}
