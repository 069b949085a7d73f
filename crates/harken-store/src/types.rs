//! The store's records and the values passed to it.

use std::fmt;
use std::time::Duration;

use harken_types::TaskState;

/// An amount of credits, kept as integer thousandths so sums are exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Credits(i64);

impl Credits {
    pub const ZERO: Credits = Credits(0);

    pub const fn from_millis(millis: i64) -> Self {
        Credits(millis)
    }

    /// Whole and fractional credits, rounded to the nearest thousandth.
    pub fn from_f64(credits: f64) -> Self {
        Credits((credits * 1000.0).round() as i64)
    }

    pub const fn millis(self) -> i64 {
        self.0
    }

    pub fn as_f64(self) -> f64 {
        self.0 as f64 / 1000.0
    }

    /// The JSON number clients see: an integer when whole (`1000`), else a decimal (`0.125`).
    pub fn to_json(self) -> serde_json::Value {
        if self.0 % 1000 == 0 {
            serde_json::Value::from(self.0 / 1000)
        } else {
            serde_json::Value::from(self.as_f64())
        }
    }
}

impl fmt::Display for Credits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_json())
    }
}

/// What `create_key` needs.
#[derive(Debug, Clone, Default)]
pub struct NewKey {
    pub name: Option<String>,
    pub credits: Credits,
    pub webhook_secret: Option<String>,
}

/// A created key: the only time the secret exists outside the caller's hands.
#[derive(Debug, Clone)]
pub struct CreatedKey {
    pub key: ApiKey,
    pub secret: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ApiKey {
    /// `key_<ulid>`: safe to log and show.
    pub id: String,
    pub name: Option<String>,
    pub webhook_secret: Option<String>,
    /// Balance, reservations included.
    pub credits: Credits,
    /// Held for tasks in progress.
    pub reserved: Credits,
    pub created_at_ms: i64,
}

impl ApiKey {
    pub fn available(&self) -> Credits {
        Credits(self.credits.0 - self.reserved.0)
    }
}

/// What `create_task` needs.
#[derive(Debug, Clone)]
pub struct NewTask {
    /// From [`crate::new_id`]`("task")`.
    pub id: String,
    pub key_id: String,
    pub model: String,
    /// The createTask body as received.
    pub param: String,
    pub callback_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TaskRecord {
    pub id: String,
    pub key_id: String,
    pub model: String,
    pub param: String,
    pub callback_url: Option<String>,
    pub state: TaskState,
    pub progress: u8,
    /// `{"resultObject": ...}` on success.
    pub result_json: Option<String>,
    pub fail_code: Option<String>,
    pub fail_msg: Option<String>,
    pub reserved_credits: Credits,
    pub credits_consumed: Credits,
    /// The key's available credits right after the task ended.
    pub remained_credits: Option<Credits>,
    /// How many times a worker claimed it.
    pub attempts: u32,
    pub lease_owner: Option<String>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    pub started_at_ms: Option<i64>,
    pub completed_at_ms: Option<i64>,
}

/// What `reclaim_expired` did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reclaimed {
    pub requeued: u32,
    pub failed: u32,
}

/// Work not done yet, counted across every node sharing the database (`Store::backlog`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    pub waiting: u64,
    pub queuing: u64,
    pub generating: u64,
    /// Callback deliveries neither delivered nor given up.
    pub callbacks_pending: u64,
    /// How long the oldest waiting task has waited; `None` when no task waits.
    pub oldest_waiting: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    /// Every attempt of the schedule failed.
    Failed,
}

impl DeliveryStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => DeliveryStatus::Pending,
            "delivered" => DeliveryStatus::Delivered,
            "failed" => DeliveryStatus::Failed,
            _ => return None,
        })
    }
}

/// One callback to deliver (a row of the outbox).
#[derive(Debug, Clone, PartialEq)]
pub struct CallbackDelivery {
    pub id: i64,
    pub task_id: String,
    pub key_id: String,
    pub url: String,
    pub status: DeliveryStatus,
    /// Attempts made so far.
    pub attempts: u32,
    pub next_attempt_at_ms: i64,
    pub last_status: Option<u16>,
    pub last_response: Option<String>,
    pub last_error: Option<String>,
}

/// The result of one delivery attempt.
#[derive(Debug, Clone, Default)]
pub struct AttemptOutcome {
    pub delivered: bool,
    /// The receiver's HTTP status, if it answered.
    pub http_status: Option<u16>,
    /// The start of the receiver's body (the store truncates it further).
    pub response: Option<String>,
    /// Why the attempt failed without an answer (timeout, refused, ...).
    pub error: Option<String>,
}

/// Delays before each retry after a failed delivery: `[60 s, 300 s, 900 s]` means four attempts
/// in all, the last one 21 minutes after the first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule(pub Vec<Duration>);

impl RetrySchedule {
    /// The delay before the next attempt after `attempts` failed ones, or `None` to give up.
    pub fn next_delay(&self, attempts: u32) -> Option<Duration> {
        self.0.get((attempts as usize).checked_sub(1)?).copied()
    }
}

impl Default for RetrySchedule {
    /// Kie.ai's documented rhythm: after 1, 5 and 15 minutes.
    fn default() -> Self {
        RetrySchedule(vec![Duration::from_secs(60), Duration::from_secs(300), Duration::from_secs(900)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credits_print_as_clients_expect() {
        assert_eq!(Credits::from_f64(1000.0).to_json().to_string(), "1000");
        assert_eq!(Credits::from_millis(125).to_json().to_string(), "0.125");
    }

    #[test]
    fn schedule_gives_up_after_the_last_delay() {
        let s = RetrySchedule::default();
        assert_eq!(s.next_delay(1), Some(Duration::from_secs(60)));
        assert_eq!(s.next_delay(3), Some(Duration::from_secs(900)));
        assert_eq!(s.next_delay(4), None);
    }
}
