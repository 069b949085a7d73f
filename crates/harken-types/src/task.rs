//! Task states as Kie.ai names them.

use serde::{Deserialize, Serialize};

/// `waiting` → `queuing` → `generating` → `success` | `fail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskState {
    /// Accepted, not yet picked up.
    Waiting,
    /// Claimed by a worker, audio being fetched and decoded.
    Queuing,
    /// The engine is transcribing.
    Generating,
    Success,
    Fail,
}

impl TaskState {
    pub const fn as_str(self) -> &'static str {
        match self {
            TaskState::Waiting => "waiting",
            TaskState::Queuing => "queuing",
            TaskState::Generating => "generating",
            TaskState::Success => "success",
            TaskState::Fail => "fail",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "waiting" => TaskState::Waiting,
            "queuing" => TaskState::Queuing,
            "generating" => TaskState::Generating,
            "success" => TaskState::Success,
            "fail" => TaskState::Fail,
            _ => return None,
        })
    }

    /// Success and fail are final: nothing moves a task out of them.
    pub const fn is_final(self) -> bool {
        matches!(self, TaskState::Success | TaskState::Fail)
    }
}
