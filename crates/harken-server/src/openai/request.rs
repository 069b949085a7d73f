//! A `POST /v1/audio/transcriptions` form → [`ValidRequest`]. Messages name the field first
//! (it becomes OpenAI's `param`).

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::MODELS;
use crate::jobs::{AudioSource, Dialect, Job, KnownSpeakerReference};
use crate::multipart::Form;
use crate::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ResponseFormat {
    Json,
    Text,
    Srt,
    Vtt,
    VerboseJson,
    /// `gpt-4o-transcribe-diarize`'s speaker-labelled segments; asking for it turns diarization on.
    DiarizedJson,
}

/// What the answer needs besides the transcript (kept in the task as `Job::answer`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct AnswerOptions {
    pub response_format: ResponseFormat,
    pub words: bool,
    pub segments: bool,
}

#[derive(Debug)]
pub(crate) struct ValidRequest {
    pub model: String,
    pub job: Job,
    pub answer: AnswerOptions,
}

pub(crate) fn parse(form: &Form, server_model: &str) -> Result<ValidRequest, ApiError> {
    let expected_models = format!("one of {}, {server_model}", MODELS.join(", "));
    let model = match form.get("model") {
        Some(m) if MODELS.contains(&m) || m == server_model => m.to_owned(),
        Some(m) => return Err(invalid("model", &expected_models, m)),
        None => return Err(ApiError::BadRequest(format!("model: expected {expected_models}, received nothing"))),
    };
    let upload = form
        .file
        .as_ref()
        .ok_or_else(|| ApiError::BadRequest("file: expected an audio file, received nothing".to_owned()))?;
    let language = match form.get("language") {
        None => None,
        Some(code) => Some(harken_types::normalize_language_code(code).ok_or_else(|| {
            invalid("language", "an ISO 639-1 code of a supported language (e.g. en)", code)
        })?),
    };
    // Whisper's previous-text prompt, as OpenAI's whisper-1 uses it: spellings, names, style.
    // Whisper reads at most its last 223 tokens; OpenAI sets no other limit.
    let prompt = form.get("prompt").map(str::to_owned);
    let temperature = match form.number::<f32>("temperature", "a number from 0 to 1")? {
        Some(t) if !(0.0..=1.0).contains(&t) => return Err(invalid("temperature", "a number from 0 to 1", &t.to_string())),
        t => t,
    };
    let response_format = match form.get("response_format") {
        None | Some("json") => ResponseFormat::Json,
        Some("text") => ResponseFormat::Text,
        Some("srt") => ResponseFormat::Srt,
        Some("vtt") => ResponseFormat::Vtt,
        Some("verbose_json") => ResponseFormat::VerboseJson,
        Some("diarized_json") => ResponseFormat::DiarizedJson,
        Some(other) => return Err(invalid("response_format", "json, text, srt, verbose_json, vtt or diarized_json", other)),
    };
    let mut granularities = form.all("timestamp_granularities[]");
    granularities.extend(form.all("timestamp_granularities"));
    for g in &granularities {
        if !matches!(*g, "word" | "segment") {
            return Err(invalid("timestamp_granularities[]", "word or segment", g));
        }
    }
    if !granularities.is_empty() && response_format != ResponseFormat::VerboseJson {
        return Err(ApiError::BadRequest(
            "timestamp_granularities[]: expected response_format verbose_json to go with it, received another format".to_owned(),
        ));
    }
    if form.bool("stream", false)? {
        return Err(invalid("stream", "false (streamed transcription is not offered)", "true"));
    }
    let include = form.all("include[]");
    if let Some(first) = include.first() {
        return Err(invalid("include[]", "nothing (logprobs are not offered)", first));
    }
    let known_speakers = known_speakers(form, response_format)?;
    if let Some(c) = form.get("chunking_strategy") {
        if c != "auto" {
            return Err(invalid("chunking_strategy", "auto (harken segments speech itself)", c));
        }
    }
    let answer = AnswerOptions {
        response_format,
        words: granularities.contains(&"word"),
        // OpenAI's default: segments unless only words were asked for.
        segments: granularities.is_empty() || granularities.contains(&"segment"),
    };
    let job = Job {
        dialect: Dialect::Openai,
        audio: AudioSource::Upload(upload.pending.name.clone()),
        language: language.map(str::to_owned),
        // OpenAI returns speaker labels only in diarized_json, so only that format pays for them.
        diarize: response_format == ResponseFormat::DiarizedJson,
        num_speakers: None,
        tag_audio_events: false,
        multi_channel: false,
        prompt,
        temperature,
        diarization_threshold: None,
        known_speakers,
        answer: serde_json::to_value(&answer).expect("answer options serialise"),
    };
    Ok(ValidRequest { model, job, answer })
}

/// At most this many known speakers (OpenAI's limit).
const MAX_KNOWN_SPEAKERS: usize = 4;

/// `known_speaker_names[]` with `known_speaker_references[]`: as many names as references, each
/// reference a data URL of an audio file (`data:audio/wav;base64,...`).
fn known_speakers(form: &Form, response_format: ResponseFormat) -> Result<Vec<KnownSpeakerReference>, ApiError> {
    const NAMES: &str = "known_speaker_names[]";
    const REFERENCES: &str = "known_speaker_references[]";
    let (names, references) = (form.all(NAMES), form.all(REFERENCES));
    if names.is_empty() && references.is_empty() {
        return Ok(Vec::new());
    }
    if response_format != ResponseFormat::DiarizedJson {
        return Err(ApiError::BadRequest(format!(
            "{NAMES}: expected response_format diarized_json to go with it (the only format with speakers), received another format"
        )));
    }
    if names.len() != references.len() || names.len() > MAX_KNOWN_SPEAKERS {
        return Err(ApiError::BadRequest(format!(
            "{NAMES}: expected 1 to {MAX_KNOWN_SPEAKERS} names, one per {REFERENCES} entry, received {} names and {} references",
            names.len(),
            references.len()
        )));
    }
    for (i, name) in names.iter().enumerate() {
        if names[..i].contains(name) || name.chars().count() > 100 {
            return Err(invalid(NAMES, "distinct names of at most 100 characters", name));
        }
    }
    let expected = "a data URL of an audio file (data:audio/wav;base64,...)";
    let mut out = Vec::with_capacity(names.len());
    for (name, reference) in names.iter().zip(&references) {
        let payload = reference
            .strip_prefix("data:")
            .and_then(|r| r.split_once(";base64,"))
            .map(|(_, payload)| payload)
            .filter(|payload| base64::engine::general_purpose::STANDARD.decode(payload).is_ok_and(|b| !b.is_empty()))
            .ok_or_else(|| invalid(REFERENCES, expected, reference))?;
        out.push(KnownSpeakerReference { name: (*name).to_owned(), audio_base64: payload.to_owned() });
    }
    Ok(out)
}

fn invalid(field: &str, expected: &str, received: &str) -> ApiError {
    let shown: String = received.chars().take(80).collect();
    ApiError::BadRequest(format!("{field}: expected {expected}, received {shown:?}"))
}
