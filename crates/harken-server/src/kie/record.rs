//! The recordInfo `data` object, built in one place so the `recordInfo` answer and the callback
//! body are the same bytes for the same task.

use harken_store::{Credits, TaskRecord};
use harken_types::{Code, Envelope, TaskState};
use serde_json::{json, Value};

/// Builds recordInfo's `data`. `available` is the key's credits now, shown as `remainedCredits`
/// until the task ends; after that the stored snapshot is shown so the record never changes.
pub(crate) fn record_info(task: &TaskRecord, available: Credits) -> Value {
    let remained = task.remained_credits.unwrap_or(available);
    let cost_time = match (task.started_at_ms, task.completed_at_ms) {
        (Some(start), Some(end)) => json!(end.saturating_sub(start)),
        _ => Value::Null,
    };
    json!({
        "taskId": task.id,
        "model": task.model,
        "state": task.state.as_str(),
        "param": task.param,
        "resultJson": task.result_json,
        "failCode": task.fail_code.as_deref().unwrap_or(""),
        "failMsg": task.fail_msg.as_deref().unwrap_or(""),
        "costTime": cost_time,
        "createTime": task.created_at_ms,
        "updateTime": task.updated_at_ms,
        "completeTime": task.completed_at_ms,
        "consumeCredits": task.credits_consumed.to_json(),
        "creditsConsumed": task.credits_consumed.to_json(),
        "remainedCredits": remained.to_json(),
        "progress": task.progress,
    })
}

/// The callback body for a finished task: recordInfo's `data` under Kie's callback code and msg.
pub(crate) fn callback_body(task: &TaskRecord) -> Envelope<Value> {
    let data = record_info(task, task.remained_credits.unwrap_or_default());
    let (code, msg) = match task.state {
        TaskState::Success => (Code::Success, "Playground task completed successfully."),
        _ => (Code::GenerationFailed, "Playground task failed."),
    };
    Envelope { code: code.as_u16(), msg: msg.to_owned(), data: Some(data) }
}
