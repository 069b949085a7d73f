//! createTask bodies → [`ValidCreateTask`]. Every message names the field, what was expected and
//! what was received, e.g. `input.audio_url: expected an http(s) URL, received "ftp://x/a.mp3"`.
//!
//! The body is read as a `serde_json::Value` rather than a derived struct so a wrong type can be
//! reported per field, in the contract's words, instead of as serde's generic message.

use serde_json::{Map, Value};

use super::MODEL;
use crate::ApiError;

/// Longest `input.language_code` accepted (the contract's limit).
pub const MAX_LANGUAGE_CODE_CHARS: usize = 500;

/// A createTask body that passed every check.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidCreateTask {
    pub audio_url: String,
    /// Whisper's code for the language; `None` detects it.
    pub language: Option<&'static str>,
    pub tag_audio_events: bool,
    pub diarize: bool,
    pub callback_url: Option<String>,
}

/// Parses and checks a createTask body.
pub fn parse_create_task(body: &[u8]) -> Result<ValidCreateTask, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("body: expected a JSON object, received malformed JSON ({e})")))?;
    let Value::Object(root) = &value else {
        return Err(ApiError::BadRequest(format!("body: expected a JSON object, received {}", describe(&value))));
    };
    match root.get("model") {
        Some(Value::String(m)) if m == MODEL => {}
        other => return Err(invalid("model", &format!("\"{MODEL}\""), other)),
    }
    let callback_url = optional_url(root, "callBackUrl", "callBackUrl")?;
    let input = match root.get("input") {
        Some(Value::Object(input)) => input,
        other => return Err(invalid("input", "an object with audio_url", other)),
    };
    let audio_url = optional_url(input, "audio_url", "input.audio_url")?
        .ok_or_else(|| invalid("input.audio_url", "an http(s) URL", input.get("audio_url")))?;
    Ok(ValidCreateTask {
        audio_url,
        language: language(input)?,
        tag_audio_events: optional_bool(input, "tag_audio_events", true)?,
        diarize: optional_bool(input, "diarize", true)?,
        callback_url,
    })
}

fn invalid(field: &str, expected: &str, received: Option<&Value>) -> ApiError {
    let received = received.map(describe).unwrap_or_else(|| "nothing".to_owned());
    ApiError::Validation(format!("{field}: expected {expected}, received {received}"))
}

/// A received value in a few words, with long strings cut.
fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) if s.chars().count() > 80 => {
            format!(
                "a string of {} characters starting {:?}",
                s.chars().count(),
                s.chars().take(40).collect::<String>()
            )
        }
        Value::String(s) => format!("the string {s:?}"),
        Value::Array(_) => "an array".to_owned(),
        Value::Object(_) => "an object".to_owned(),
    }
}

/// An optional http(s) URL; absent, null and "" all mean none.
fn optional_url(obj: &Map<String, Value>, key: &str, field: &str) -> Result<Option<String>, ApiError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(v @ Value::String(s)) => match url::Url::parse(s.trim()) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => Ok(Some(s.trim().to_owned())),
            _ => Err(invalid(field, "an http(s) URL", Some(v))),
        },
        other => Err(invalid(field, "an http(s) URL", other)),
    }
}

fn optional_bool(input: &Map<String, Value>, key: &str, default: bool) -> Result<bool, ApiError> {
    match input.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        other => Err(invalid(&format!("input.{key}"), "true or false", other)),
    }
}

fn language(input: &Map<String, Value>) -> Result<Option<&'static str>, ApiError> {
    let field = "input.language_code";
    let code = match input.get("language_code") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s,
        other => return Err(invalid(field, "a string (ISO 639-1 or 639-3 code, \"\" to detect)", other)),
    };
    if code.chars().count() > MAX_LANGUAGE_CODE_CHARS {
        let expected = format!("at most {MAX_LANGUAGE_CODE_CHARS} characters");
        return Err(invalid(field, &expected, input.get("language_code")));
    }
    if code.trim().is_empty() {
        return Ok(None);
    }
    harken_types::normalize_language_code(code).map(Some).ok_or_else(|| {
        invalid(
            field,
            "an ISO 639-1 or 639-3 code of a supported language (e.g. \"en\" or \"eng\"), or \"\" to detect",
            input.get("language_code"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(body: &str) -> String {
        parse_create_task(body.as_bytes()).unwrap_err().to_string()
    }

    #[test]
    fn accepts_the_documented_body() {
        let v = parse_create_task(
            br#"{"model":"elevenlabs/speech-to-text","callBackUrl":"https://e.com/cb",
                "input":{"audio_url":"https://e.com/a.mp3","language_code":"eng","diarize":false}}"#,
        )
        .unwrap();
        assert_eq!(v.language, Some("en"));
        assert!(v.tag_audio_events && !v.diarize);
        assert_eq!(v.callback_url.as_deref(), Some("https://e.com/cb"));
    }

    #[test]
    fn messages_name_field_expectation_and_value() {
        assert!(msg("{").starts_with("body: expected a JSON object, received malformed JSON"));
        assert_eq!(msg("[1]"), "body: expected a JSON object, received an array");
        assert_eq!(
            msg(r#"{"model":"whisper","input":{"audio_url":"https://e.com/a"}}"#),
            "model: expected \"elevenlabs/speech-to-text\", received the string \"whisper\""
        );
        let m = r#""model":"elevenlabs/speech-to-text""#;
        assert_eq!(msg(&format!("{{{m}}}")), "input: expected an object with audio_url, received nothing");
        assert_eq!(
            msg(&format!(r#"{{{m},"input":{{}}}}"#)),
            "input.audio_url: expected an http(s) URL, received nothing"
        );
        assert_eq!(
            msg(&format!(r#"{{{m},"input":{{"audio_url":"ftp://e.com/a"}}}}"#)),
            "input.audio_url: expected an http(s) URL, received the string \"ftp://e.com/a\""
        );
        assert_eq!(
            msg(&format!(r#"{{{m},"input":{{"audio_url":5}}}}"#)),
            "input.audio_url: expected an http(s) URL, received the number 5"
        );
        assert_eq!(
            msg(&format!(r#"{{{m},"callBackUrl":"mailto:x","input":{{"audio_url":"http://e.com/a"}}}}"#)),
            "callBackUrl: expected an http(s) URL, received the string \"mailto:x\""
        );
        assert_eq!(
            msg(&format!(r#"{{{m},"input":{{"audio_url":"http://e.com/a","diarize":"yes"}}}}"#)),
            "input.diarize: expected true or false, received the string \"yes\""
        );
        assert!(msg(&format!(r#"{{{m},"input":{{"audio_url":"http://e.com/a","language_code":"xx"}}}}"#))
            .starts_with("input.language_code: expected an ISO 639-1 or 639-3 code"));
        let long = "a".repeat(501);
        assert!(msg(&format!(r#"{{{m},"input":{{"audio_url":"http://e.com/a","language_code":"{long}"}}}}"#))
            .starts_with("input.language_code: expected at most 500 characters, received a string of 501"));
    }
}
