//! The callback outbox: written with the final state, leased, retried per schedule.

use std::time::Duration;

use harken_store::{AttemptOutcome, DeliveryStatus, RetrySchedule};

use super::{Fixture, LEASE};

const URL: &str = "http://127.0.0.1:9/cb";

async fn finished_task(f: &Fixture) -> String {
    let key = f.key(10.0).await;
    let t = f.task(&key, Some(URL)).await;
    assert!(f.store.callback_for_task(&t.id).await.unwrap().is_none(), "no row before the end");
    f.store.claim_next("w", LEASE).await.unwrap().unwrap();
    f.store.finish_success(&t.id, "w", "{}").await.unwrap();
    t.id
}

fn failed_attempt() -> AttemptOutcome {
    AttemptOutcome { delivered: false, http_status: Some(503), response: Some("x".repeat(5000)), error: None }
}

pub async fn outbox_row_comes_with_the_final_state(f: Fixture) {
    let id = finished_task(&f).await;
    let d = f.store.callback_for_task(&id).await.unwrap().expect("a delivery row");
    assert_eq!((d.url.as_str(), d.status, d.attempts), (URL, DeliveryStatus::Pending, 0));
    let due = f.store.claim_callbacks(10, Duration::from_secs(20)).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].task_id, id);
}

pub async fn retries_follow_the_schedule_then_give_up(f: Fixture) {
    let id = finished_task(&f).await;
    let schedule = RetrySchedule(vec![Duration::from_secs(60), Duration::from_secs(300)]);
    let lease = Duration::from_secs(20);
    let d = f.store.claim_callbacks(10, lease).await.unwrap().remove(0);
    let after = f.store.record_callback_attempt(d.id, &failed_attempt(), &schedule).await.unwrap();
    assert_eq!((after.status, after.attempts, after.last_status), (DeliveryStatus::Pending, 1, Some(503)));
    assert!(after.last_response.unwrap().chars().count() < 1000, "response stored truncated");
    f.clock.advance(Duration::from_secs(59));
    assert!(f.store.claim_callbacks(10, lease).await.unwrap().is_empty(), "not due before 60 s");
    f.clock.advance(Duration::from_secs(1));
    let d = f.store.claim_callbacks(10, lease).await.unwrap().remove(0);
    let after = f.store.record_callback_attempt(d.id, &failed_attempt(), &schedule).await.unwrap();
    assert_eq!((after.status, after.attempts), (DeliveryStatus::Pending, 2));
    f.clock.advance(Duration::from_secs(299));
    assert!(f.store.claim_callbacks(10, lease).await.unwrap().is_empty(), "not due before 300 s");
    f.clock.advance(Duration::from_secs(1));
    let d = f.store.claim_callbacks(10, lease).await.unwrap().remove(0);
    let after = f.store.record_callback_attempt(d.id, &failed_attempt(), &schedule).await.unwrap();
    assert_eq!((after.status, after.attempts), (DeliveryStatus::Failed, 3), "gave up after the last");
    f.clock.advance(Duration::from_secs(10_000));
    assert!(f.store.claim_callbacks(10, lease).await.unwrap().is_empty());
    assert_eq!(f.store.callback_for_task(&id).await.unwrap().unwrap().status, DeliveryStatus::Failed);
}

pub async fn claimed_delivery_is_leased(f: Fixture) {
    let id = finished_task(&f).await;
    let lease = Duration::from_secs(20);
    assert_eq!(f.store.claim_callbacks(10, lease).await.unwrap().len(), 1);
    assert!(f.store.claim_callbacks(10, lease).await.unwrap().is_empty(), "leased to the first");
    // The first dispatcher died: after the lease the delivery is due again (at-least-once).
    f.clock.advance(lease);
    let d = f.store.claim_callbacks(10, lease).await.unwrap().remove(0);
    let ok = AttemptOutcome { delivered: true, http_status: Some(200), ..Default::default() };
    let after = f.store.record_callback_attempt(d.id, &ok, &RetrySchedule::default()).await.unwrap();
    assert_eq!((after.status, after.attempts), (DeliveryStatus::Delivered, 1));
    assert_eq!(f.store.callback_for_task(&id).await.unwrap().unwrap().status, DeliveryStatus::Delivered);
}
