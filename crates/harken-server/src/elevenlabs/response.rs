//! A finished task → ElevenLabs' answer: one transcript (`SpeechToTextChunkResponseModel`) or,
//! with `use_multi_channel`, `{"transcripts": [...]}` with a `channel_index` on each transcript
//! and word. Built from the stored transcript at answer time, so the synchronous answer, the
//! webhook body and `GET /v1/speech-to-text/transcripts/{id}` agree.

use base64::Engine as _;
use harken_types::{Transcript, Word};
use serde_json::{json, Value};

use super::request::{AnswerOptions, FormatRequest, Granularity};
use crate::jobs::JobResult;

pub(crate) fn render(task_id: &str, result: &JobResult, answer: &AnswerOptions) -> Value {
    if answer.multi_channel {
        let transcripts: Vec<Value> =
            result.transcripts.iter().enumerate().map(|(i, t)| transcript(task_id, t, answer, Some(i))).collect();
        return json!({
            "transcripts": transcripts,
            "transcription_id": task_id,
            "audio_duration_secs": result.audio_duration_secs,
        });
    }
    let first = result.transcripts.first().cloned().unwrap_or_else(|| Transcript::empty("eng", 0.0));
    let mut v = transcript(task_id, &first, answer, None);
    v["audio_duration_secs"] = json!(result.audio_duration_secs);
    v
}

fn transcript(task_id: &str, t: &Transcript, answer: &AnswerOptions, channel: Option<usize>) -> Value {
    let words: Vec<Value> = t.words.iter().map(|w| word(w, answer.granularity, channel)).collect();
    let mut v = json!({
        "language_code": t.language_code,
        "language_probability": t.language_probability,
        "text": t.text,
        "words": words,
        "transcription_id": task_id,
    });
    if let Some(i) = channel {
        v["channel_index"] = json!(i);
    }
    if !answer.additional_formats.is_empty() {
        v["additional_formats"] = answer.additional_formats.iter().map(|f| additional_format(t, f)).collect();
    }
    v
}

fn word(w: &Word, granularity: Granularity, channel: Option<usize>) -> Value {
    let mut v = serde_json::to_value(w).expect("a word serialises");
    match granularity {
        Granularity::None => {
            v["start"] = Value::Null;
            v["end"] = Value::Null;
        }
        Granularity::Word => {}
        Granularity::Character => v["characters"] = characters(w),
    }
    if let Some(i) = channel {
        v["channel_index"] = json!(i);
    }
    v
}

/// Character times: the word's span shared evenly between its characters. Whisper times words,
/// not characters, so this is an interpolation (exact at the word's start and end).
fn characters(w: &Word) -> Value {
    let chars: Vec<char> = w.text.chars().collect();
    let n = chars.len().max(1) as f64;
    let step = (w.end - w.start) / n;
    let round = |x: f64| (x * 1000.0).round() / 1000.0;
    chars
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let start = round(w.start + step * i as f64);
            let end = if i + 1 == chars.len() { w.end } else { round(w.start + step * (i + 1) as f64) };
            json!({"text": c.to_string(), "start": start, "end": end})
        })
        .collect()
}

fn additional_format(t: &Transcript, f: &FormatRequest) -> Value {
    let format = f.format();
    let bytes = format.render(t, &f.options());
    let (content, is_base64) = if format.is_binary() {
        (base64::engine::general_purpose::STANDARD.encode(&bytes), true)
    } else {
        (String::from_utf8(bytes).expect("text formats are UTF-8"), false)
    };
    json!({
        "requested_format": f.format,
        "file_extension": format.extension(),
        "content_type": format.content_type(),
        "is_base64_encoded": is_base64,
        "content": content,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use harken_types::WordKind;

    fn w(text: &str, start: f64, end: f64) -> Word {
        Word { text: text.into(), start, end, kind: WordKind::Word, speaker_id: None, logprob: -0.1 }
    }

    #[test]
    fn characters_share_the_word_span() {
        let c = characters(&w("abcd", 1.0, 2.0));
        assert_eq!(c.as_array().unwrap().len(), 4);
        assert_eq!(c[0], json!({"text": "a", "start": 1.0, "end": 1.25}));
        assert_eq!(c[3]["end"], json!(2.0));
    }

    #[test]
    fn granularity_none_hides_times() {
        let v = word(&w("hi", 0.5, 0.9), Granularity::None, Some(1));
        assert!(v["start"].is_null() && v["end"].is_null());
        assert_eq!(v["channel_index"], 1);
        assert_eq!(v["logprob"], -0.1);
    }
}
