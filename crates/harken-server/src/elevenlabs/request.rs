//! A `POST /v1/speech-to-text` form → [`ValidRequest`]: every documented parameter is honoured
//! or refused with 422 naming the field, what harken accepts and what it received.

use harken_export::{ExportOptions, Format};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::MODELS;
use crate::jobs::{AudioSource, Dialect, Job};
use crate::multipart::Form;
use crate::{ApiError, ServerConfig};

mod keyterms;

/// How words are timed in the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Granularity {
    None,
    Word,
    Character,
}

/// One entry of `additional_formats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct FormatRequest {
    /// As the client spelled it (`srt`, `txt`, ...), echoed as `requested_format`.
    pub format: String,
    pub include_speakers: Option<bool>,
    pub include_timestamps: Option<bool>,
    pub segment_on_silence_longer_than_s: Option<f64>,
    pub max_segment_duration_s: Option<f64>,
    pub max_segment_chars: Option<usize>,
    pub max_characters_per_line: Option<usize>,
}

impl FormatRequest {
    pub(crate) fn format(&self) -> Format {
        Format::parse(&self.format).expect("checked when the request was read")
    }

    pub(crate) fn options(&self) -> ExportOptions {
        let d = ExportOptions::default();
        let per_line = match self.format() {
            Format::Srt => Some(42),
            _ => None,
        };
        ExportOptions {
            include_speakers: self.include_speakers.unwrap_or(d.include_speakers),
            include_timestamps: self.include_timestamps.unwrap_or(d.include_timestamps),
            segment_on_silence_longer_than_s: self.segment_on_silence_longer_than_s.unwrap_or(d.segment_on_silence_longer_than_s),
            max_segment_duration_s: self.max_segment_duration_s.unwrap_or(d.max_segment_duration_s),
            max_segment_chars: self.max_segment_chars.unwrap_or(d.max_segment_chars),
            max_characters_per_line: self.max_characters_per_line.or(per_line),
        }
    }
}

/// What the answer needs besides the transcript (kept in the task as `Job::answer`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct AnswerOptions {
    pub model_id: String,
    pub granularity: Granularity,
    #[serde(default)]
    pub additional_formats: Vec<FormatRequest>,
    #[serde(default)]
    pub multi_channel: bool,
    #[serde(default)]
    pub webhook_metadata: Option<Value>,
}

#[derive(Debug)]
pub(crate) struct ValidRequest {
    pub job: Job,
    pub answer: AnswerOptions,
    pub webhook: bool,
    /// The upload is raw 16 kHz 16-bit mono PCM (`file_format=pcm_s16le_16`).
    pub pcm: bool,
}

const FORMATS: &str = "srt, txt, segmented_json, html, docx or pdf";

pub(crate) fn parse(form: &Form, config: &ServerConfig) -> Result<ValidRequest, ApiError> {
    let model_id = match form.get("model_id") {
        Some(m) if MODELS.contains(&m) => m.to_owned(),
        Some(m) => return Err(invalid("model_id", &format!("one of {}", MODELS.join(", ")), m)),
        None => return Err(missing("model_id", &format!("one of {}", MODELS.join(", ")))),
    };
    let url = form.get("cloud_storage_url").or_else(|| form.get("source_url"));
    let audio = match (&form.file, url) {
        (Some(_), Some(_)) => {
            return Err(ApiError::Validation(
                "file, cloud_storage_url: expected exactly one of them, received both".to_owned(),
            ))
        }
        (None, None) => {
            return Err(ApiError::Validation(
                "file, cloud_storage_url: expected exactly one of them, received neither".to_owned(),
            ))
        }
        (Some(upload), None) => AudioSource::Upload(upload.pending.name.clone()),
        (None, Some(u)) => match url::Url::parse(u) {
            Ok(p) if matches!(p.scheme(), "http" | "https") && p.host_str().is_some() => AudioSource::Url(u.to_owned()),
            _ => return Err(invalid("cloud_storage_url", "an http(s) URL of an audio or video file", u)),
        },
    };
    match form.get("file_format") {
        None | Some("other" | "pcm_s16le_16") => {}
        Some(other) => return Err(invalid("file_format", "pcm_s16le_16 or other", other)),
    }
    if form.get("file_format") == Some("pcm_s16le_16") && form.file.is_none() {
        return Err(ApiError::Validation(
            "file_format: pcm_s16le_16 applies to an uploaded file, received a cloud_storage_url".to_owned(),
        ));
    }
    let language = match form.get("language_code") {
        None => None,
        Some(code) => Some(harken_types::normalize_language_code(code).ok_or_else(|| {
            invalid("language_code", "an ISO 639-1 or 639-3 code of a supported language (e.g. en, eng)", code)
        })?),
    };
    let diarize = form.bool("diarize", false)?;
    let num_speakers = form.number::<usize>("num_speakers", "an integer from 1 to 32")?;
    if let Some(n) = num_speakers {
        if !(1..=32).contains(&n) {
            return Err(invalid("num_speakers", "an integer from 1 to 32", &n.to_string()));
        }
    }
    let diarization_threshold = diarization_threshold(form, diarize, num_speakers)?;
    let granularity = match form.get("timestamps_granularity") {
        None | Some("word") => Granularity::Word,
        Some("none") => Granularity::None,
        Some("character") => Granularity::Character,
        Some(other) => return Err(invalid("timestamps_granularity", "none, word or character", other)),
    };
    let webhook = form.bool("webhook", false)?;
    if webhook && config.elevenlabs_webhook_url.is_none() {
        return Err(ApiError::Validation(
            "webhook: expected a server with a speech-to-text webhook configured (--elevenlabs-webhook-url), this one has none".to_owned(),
        ));
    }
    if let Some(id) = form.get("webhook_id") {
        return Err(invalid("webhook_id", "no value: harken delivers to its one configured webhook", id));
    }
    let webhook_metadata = match form.get("webhook_metadata") {
        None => None,
        Some(s) => match serde_json::from_str::<Value>(s) {
            Ok(v @ Value::Object(_)) if s.len() <= 16 * 1024 => Some(v),
            _ => return Err(invalid("webhook_metadata", "a JSON object of at most 16 KB", s)),
        },
    };
    let multi_channel = form.bool("use_multi_channel", false)?;
    if let Some(style) = form.get("multichannel_output_style") {
        if style != "separate" {
            return Err(invalid("multichannel_output_style", "separate (one transcript per channel)", style));
        }
    }
    let temperature = temperature(form)?;
    if let Some(seed) = form.number::<i64>("seed", "an integer from 0 to 2147483647")? {
        // Accepted and checked, not used: beam search (temperature 0) is deterministic anyway, and
        // ElevenLabs itself promises only a best effort.
        if !(0..=2_147_483_647).contains(&seed) {
            return Err(invalid("seed", "an integer from 0 to 2147483647", &seed.to_string()));
        }
    }
    let prompt = keyterms::prompt(&keyterms::parse(form)?);
    refuse_unsupported(form)?;
    let additional_formats = additional_formats(form)?;
    let answer = AnswerOptions { model_id, granularity, additional_formats, multi_channel, webhook_metadata };
    let job = Job {
        dialect: Dialect::Elevenlabs,
        audio,
        language: language.map(str::to_owned),
        diarize,
        num_speakers: if diarize { num_speakers } else { None },
        tag_audio_events: form.bool("tag_audio_events", true)?,
        multi_channel,
        prompt,
        temperature,
        diarization_threshold,
        known_speakers: Vec::new(),
        answer: serde_json::to_value(&answer).expect("answer options serialise"),
    };
    let pcm = form.get("file_format") == Some("pcm_s16le_16");
    Ok(ValidRequest { job, answer, webhook, pcm })
}

/// ElevenLabs' range, 0 to 2; 0 (or absent) is beam search, more samples at that temperature first.
fn temperature(form: &Form) -> Result<Option<f32>, ApiError> {
    const EXPECTED: &str = "a number from 0.0 to 2.0";
    match form.number::<f32>("temperature", EXPECTED)? {
        Some(t) if !(0.0..=2.0).contains(&t) => Err(invalid("temperature", EXPECTED, &t.to_string())),
        t => Ok(t),
    }
}

/// ElevenLabs' range, 0.1 to 0.4, and its rule: only with `diarize=true` and no `num_speakers`
/// (a known speaker count replaces the threshold).
fn diarization_threshold(form: &Form, diarize: bool, num_speakers: Option<usize>) -> Result<Option<f32>, ApiError> {
    const EXPECTED: &str = "a number from 0.1 to 0.4";
    let Some(t) = form.number::<f32>("diarization_threshold", EXPECTED)? else { return Ok(None) };
    if !(0.1..=0.4).contains(&t) {
        return Err(invalid("diarization_threshold", EXPECTED, &t.to_string()));
    }
    if !diarize {
        return Err(invalid("diarization_threshold", "no value unless diarize is true", &t.to_string()));
    }
    if let Some(n) = num_speakers {
        return Err(ApiError::Validation(format!(
            "diarization_threshold: expected no value when num_speakers is set, received {t} with num_speakers {n}"
        )));
    }
    Ok(Some(t))
}

/// Parameters of ElevenLabs' API that harken cannot honour: refused when set to anything but
/// their neutral value.
fn refuse_unsupported(form: &Form) -> Result<(), ApiError> {
    for name in ["entity_detection", "entity_redaction", "entity_redaction_mode", "transcript_edit", "numbers_format"] {
        if let Some(v) = form.get(name) {
            return Err(invalid(name, "no value (not supported by harken)", v));
        }
    }
    for name in ["no_verbatim", "use_speaker_library", "detect_speaker_roles"] {
        if form.bool(name, false)? {
            return Err(invalid(name, "false (not supported by harken)", "true"));
        }
    }
    if !form.all("secondary_language_codes").is_empty() {
        return Err(ApiError::Validation(
            "secondary_language_codes: expected none (not supported by harken), received some".to_owned(),
        ));
    }
    Ok(())
}

fn additional_formats(form: &Form) -> Result<Vec<FormatRequest>, ApiError> {
    let Some(raw) = form.get("additional_formats") else { return Ok(Vec::new()) };
    let value: Value = serde_json::from_str(raw)
        .map_err(|_| invalid("additional_formats", "a JSON list of {\"format\": ...} objects", raw))?;
    let list = match value {
        Value::Array(list) => list,
        obj @ Value::Object(_) => vec![obj],
        _ => return Err(invalid("additional_formats", "a JSON list of {\"format\": ...} objects", raw)),
    };
    list.into_iter()
        .enumerate()
        .map(|(i, item)| {
            let field = format!("additional_formats[{i}]");
            let Value::Object(mut obj) = item else {
                return Err(ApiError::Validation(format!("{field}: expected an object with a format, received {item}")));
            };
            // The SDK of some versions nests the options under "options".
            if let Some(Value::Object(nested)) = obj.remove("options") {
                obj.extend(nested);
            }
            let parsed: FormatRequest = serde_json::from_value(Value::Object(obj.clone())).map_err(|e| {
                ApiError::Validation(format!("{field}: expected {{\"format\": {FORMATS}, options...}}, received {} ({e})", Value::Object(obj)))
            })?;
            match Format::parse(&parsed.format) {
                Some(Format::Json | Format::Vtt) | None => Err(ApiError::Validation(format!(
                    "{field}.format: expected {FORMATS}, received {:?}",
                    parsed.format
                ))),
                Some(_) => Ok(parsed),
            }
        })
        .collect()
}

fn invalid(field: &str, expected: &str, received: &str) -> ApiError {
    let shown: String = received.chars().take(80).collect();
    ApiError::Validation(format!("{field}: expected {expected}, received {shown:?}"))
}

fn missing(field: &str, expected: &str) -> ApiError {
    ApiError::Validation(format!("{field}: expected {expected}, received nothing"))
}
