//! Delivery of `webhook=true` results to the configured webhook (`--elevenlabs-webhook-url`),
//! through the callback outbox like every callback (durable, retried), signed as ElevenLabs signs:
//! `ElevenLabs-Signature: t=<unix seconds>,v0=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
//!
//! The body is `{"type": "speech_to_text_transcription", "event_timestamp": <unix seconds>,
//! "data": {"request_id", "transcription_id", "transcription": <the synchronous answer>,
//! "webhook_metadata"?}}`; a failed task sends `"error": {"status", "message"}` in place of
//! `transcription`.

use harken_store::TaskRecord;
use harken_types::TaskState;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use super::request::AnswerOptions;
use super::response;
use crate::jobs::{self, Job, JobResult};

/// The `ElevenLabs-Signature` header value for `body` sent at `timestamp`.
///
/// ```
/// let v = harken_server::elevenlabs_signature("whsec", 1_700_000_000, b"{}");
/// assert!(v.starts_with("t=1700000000,v0=") && v.len() == "t=1700000000,v0=".len() + 64);
/// ```
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("t={timestamp},v0={hex}")
}

/// The webhook body for a final ElevenLabs task.
pub(crate) fn body(task: &TaskRecord, now_s: i64) -> Value {
    let job: Option<Job> = serde_json::from_str(&task.param).ok();
    let answer: Option<AnswerOptions> = job.as_ref().and_then(|j| serde_json::from_value(j.answer.clone()).ok());
    let mut data = json!({"request_id": task.id, "transcription_id": task.id});
    match (task.state, JobResult::of(task), &answer) {
        (TaskState::Success, Some(result), Some(answer)) => {
            data["transcription"] = response::render(&task.id, &result, answer);
        }
        _ => {
            let err = jobs::failure(task);
            data["error"] = json!({"status": super::error::status_word(&err), "message": err.to_string()});
        }
    }
    if let Some(meta) = answer.and_then(|a| a.webhook_metadata) {
        data["webhook_metadata"] = meta;
    }
    json!({"type": "speech_to_text_transcription", "event_timestamp": now_s, "data": data})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hex_hmac_of_timestamp_dot_body() {
        // Independent computation of HMAC-SHA256("secret", "42.{}").
        let mut mac = Hmac::<Sha256>::new_from_slice(b"secret").unwrap();
        mac.update(b"42.{}");
        let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(signature("secret", 42, b"{}"), format!("t=42,v0={hex}"));
    }
}
