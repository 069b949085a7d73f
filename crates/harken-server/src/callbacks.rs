//! The callback dispatcher: delivers outbox rows to `callBackUrl`, signed when the key has a
//! webhook secret, retried per the configured schedule, at least once across restarts.
//!
//! The body is rebuilt from the stored final task by the same function that answers recordInfo,
//! so the two are identical. Only a truncated receiver response is stored.

use std::net::IpAddr;
use std::time::Duration;

use base64::Engine as _;
use harken_store::{AttemptOutcome, CallbackDelivery, DeliveryStatus};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio_util::sync::CancellationToken;

use crate::kie::record;
use crate::metrics::Delivery;
use crate::AppState;

/// Longest receiver response read, in bytes (the store keeps less).
const RESPONSE_READ_BYTES: usize = 2048;

/// `base64(HMAC-SHA256(secret, taskId + "." + timestamp))`, the `X-Webhook-Signature` value.
///
/// ```
/// let sig = harken_server::signature("s3cret", "task_01", 1_700_000_000);
/// assert_eq!(sig.len(), 44);
/// ```
pub fn signature(secret: &str, task_id: &str, timestamp: i64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(format!("{task_id}.{timestamp}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

pub(crate) struct Dispatcher {
    state: AppState,
    client: reqwest::Client,
    cancel: CancellationToken,
}

impl Dispatcher {
    pub(crate) fn new(state: AppState, cancel: CancellationToken) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("harken/", env!("CARGO_PKG_VERSION")))
            .timeout(Duration::from_secs(state.config.callback_timeout_secs))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()?;
        Ok(Dispatcher { state, client, cancel })
    }

    pub(crate) async fn run(self) {
        let lease = Duration::from_secs(self.state.config.callback_timeout_secs + 30);
        while !self.cancel.is_cancelled() {
            let due = match self.state.store.claim_callbacks(16, lease).await {
                Ok(due) => due,
                Err(err) => {
                    tracing::error!(error = %err, "could not read the callback outbox");
                    Vec::new()
                }
            };
            if due.is_empty() {
                tokio::select! {
                    _ = self.state.callback_added.notified() => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = self.cancel.cancelled() => {}
                }
                continue;
            }
            let attempts = due.iter().map(|d| self.deliver_and_record(d));
            futures_util::future::join_all(attempts).await;
        }
    }

    async fn deliver_and_record(&self, d: &CallbackDelivery) {
        let outcome = self.deliver(d).await;
        let schedule = self.state.config.retry_schedule();
        match self.state.store.record_callback_attempt(d.id, &outcome, &schedule).await {
            Ok(after) => {
                let (level_msg, counted) = match after.status {
                    DeliveryStatus::Delivered => ("callback delivered", Delivery::Delivered),
                    DeliveryStatus::Pending => ("callback failed; will retry", Delivery::Retrying),
                    DeliveryStatus::Failed => ("callback failed; giving up after the last retry", Delivery::GaveUp),
                };
                self.state.metrics.callback_attempt(counted);
                tracing::info!(task.id = %d.task_id, key.id = %d.key_id, attempt = after.attempts,
                    http.status = outcome.http_status, error = outcome.error.as_deref(), "{level_msg}");
            }
            Err(err) => tracing::error!(task.id = %d.task_id, error = %err, "could not record a callback attempt"),
        }
    }

    async fn deliver(&self, d: &CallbackDelivery) -> AttemptOutcome {
        let failed = |error: String| AttemptOutcome { error: Some(error), ..Default::default() };
        let task = match self.state.store.task(&d.task_id).await {
            Ok(Some(task)) => task,
            Ok(None) => return failed("the task no longer exists".to_owned()),
            Err(err) => return failed(format!("could not load the task: {err}")),
        };
        let secret = match self.state.store.key(&d.key_id).await {
            Ok(key) => key.and_then(|k| k.webhook_secret),
            Err(err) => return failed(format!("could not load the key: {err}")),
        };
        if !self.state.config.allow_private_urls {
            if let Err(refused) = check_public(&d.url).await {
                return failed(refused);
            }
        }
        let ts = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or_default();
        let mut request;
        if crate::jobs::Dialect::of(&task).is_some() {
            // ElevenLabs webhooks: their body, signed with the server's webhook secret.
            let body = crate::elevenlabs::webhook::body(&task, ts).to_string();
            request = self.client.post(&d.url).header("content-type", "application/json");
            if let Some(secret) = &self.state.config.elevenlabs_webhook_secret {
                request = request.header("ElevenLabs-Signature", crate::elevenlabs_signature(secret, ts, body.as_bytes()));
            }
            request = request.body(body);
        } else {
            request = self.client.post(&d.url).json(&record::callback_body(&task));
            if let Some(secret) = secret {
                request = request
                    .header("X-Webhook-Timestamp", ts.to_string())
                    .header("X-Webhook-Signature", signature(&secret, &task.id, ts));
            }
        }
        match request.send().await {
            Ok(resp) => {
                let status = resp.status();
                let text = read_prefix(resp).await;
                AttemptOutcome {
                    delivered: status.is_success(),
                    http_status: Some(status.as_u16()),
                    response: Some(text),
                    error: (!status.is_success()).then(|| format!("receiver answered HTTP {}", status.as_u16())),
                }
            }
            Err(err) if err.is_timeout() => {
                failed(format!("no answer within {} s", self.state.config.callback_timeout_secs))
            }
            Err(err) => failed(format!("could not reach the receiver: {err}")),
        }
    }
}

async fn read_prefix(mut resp: reqwest::Response) -> String {
    let mut buf = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        buf.extend_from_slice(&chunk);
        if buf.len() >= RESPONSE_READ_BYTES {
            buf.truncate(RESPONSE_READ_BYTES);
            break;
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// Refuses callback URLs that resolve to loopback, private, link-local or otherwise non-public
/// addresses (SSRF), unless private URLs are allowed.
///
/// Checked on the resolved addresses before sending; a DNS answer that changes between this check
/// and the connection is not covered (the audio fetcher's resolver-level guard is).
async fn check_public(url: &str) -> Result<(), String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("callBackUrl: not a URL ({e})"))?;
    let host = parsed.host_str().ok_or("callBackUrl: the URL has no host")?.trim_matches(['[', ']']).to_owned();
    let port = parsed.port_or_known_default().unwrap_or(80);
    let addrs = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|e| format!("callBackUrl: could not resolve {host}: {e}"))?;
    for addr in addrs {
        if !is_public(addr.ip()) {
            return Err(format!("callBackUrl: delivery refused: {} is not a public address", addr.ip()));
        }
    }
    Ok(())
}

fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_an_independent_hmac() {
        // HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog"), RFC 4231 style vector.
        let mut mac = Hmac::<Sha256>::new_from_slice(b"key").unwrap();
        mac.update(b"task_1.42");
        let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        assert_eq!(signature("key", "task_1", 42), expected);
    }

    #[test]
    fn private_addresses_are_not_public() {
        for ip in ["127.0.0.1", "10.1.2.3", "192.168.0.1", "169.254.169.254", "::1", "fd00::1", "::ffff:10.0.0.1"] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        assert!(is_public("93.184.216.34".parse().unwrap()));
    }
}
