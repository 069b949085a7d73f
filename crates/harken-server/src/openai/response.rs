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
    }
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
}
