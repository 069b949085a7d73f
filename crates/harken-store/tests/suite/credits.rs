//! Credits: the check at creation, reservations, exactly-once charges.

use std::sync::Arc;

use harken_store::{Credits, NewTask, StoreError};
use harken_types::TaskState;

use super::{Fixture, LEASE};

pub async fn create_task_needs_credits(f: Fixture) {
    let broke = f.key(0.0).await;
    let new = NewTask {
        id: harken_store::new_id("task"),
        key_id: broke.clone(),
        model: "m".into(),
        param: "{}".into(),
        callback_url: None,
    };
    let err = f.store.create_task(new).await.unwrap_err();
    assert!(matches!(err, StoreError::InsufficientCredits { .. }), "{err}");
    assert!(f.store.claim_next("w", LEASE).await.unwrap().is_none(), "nothing queued");
}

pub async fn parallel_finishes_charge_once(f: Fixture) {
    let key = f.key(10.0).await;
    let t = f.task(&key, Some("http://127.0.0.1:9/cb")).await;
    f.store.claim_next("w", LEASE).await.unwrap().unwrap();
    f.store.reserve_credits(&t.id, "w", Credits::from_f64(2.5)).await.unwrap();
    let barrier = Arc::new(tokio::sync::Barrier::new(8));
    let mut handles = Vec::new();
    for i in 0..8 {
        let (store, barrier, id) = (f.store.clone(), barrier.clone(), t.id.clone());
        handles.push(tokio::spawn(async move {
            barrier.wait().await;
            if i % 2 == 0 {
                store.finish_success(&id, "w", r#"{"resultObject":{}}"#).await.is_ok()
            } else {
                store.finish_fail(&id, "w", "500", "x").await.is_ok()
            }
        }));
    }
    let mut wins = 0;
    for h in handles {
        wins += usize::from(h.await.unwrap());
    }
    assert_eq!(wins, 1, "exactly one final transition");
    let end = f.store.task(&t.id).await.unwrap().unwrap();
    let expected = if end.state == TaskState::Success { 7.5 } else { 10.0 };
    assert_eq!(f.available(&key).await, Credits::from_f64(expected));
    assert_eq!(end.remained_credits, Some(Credits::from_f64(expected)));
    let k = f.store.key(&key).await.unwrap().unwrap();
    assert_eq!(k.reserved, Credits::ZERO);
}

pub async fn reservations_prevent_overdraw(f: Fixture) {
    let key = f.key(10.0).await;
    f.task(&key, None).await;
    f.task(&key, None).await;
    let a = f.store.claim_next("w1", LEASE).await.unwrap().unwrap();
    let b = f.store.claim_next("w2", LEASE).await.unwrap().unwrap();
    f.store.reserve_credits(&a.id, "w1", Credits::from_f64(6.0)).await.unwrap();
    assert_eq!(f.available(&key).await, Credits::from_f64(4.0));
    let err = f.store.reserve_credits(&b.id, "w2", Credits::from_f64(6.0)).await.unwrap_err();
    assert!(matches!(err, StoreError::InsufficientCredits { .. }), "{err}");
    // Re-reserving replaces the task's own reservation instead of adding to it.
    f.store.reserve_credits(&a.id, "w1", Credits::from_f64(7.0)).await.unwrap();
    assert_eq!(f.available(&key).await, Credits::from_f64(3.0));
    f.store.reserve_credits(&b.id, "w2", Credits::from_f64(3.0)).await.unwrap();
    f.store.finish_success(&a.id, "w1", "{}").await.unwrap();
    f.store.finish_success(&b.id, "w2", "{}").await.unwrap();
    let k = f.store.key(&key).await.unwrap().unwrap();
    assert_eq!((k.credits, k.reserved), (Credits::ZERO, Credits::ZERO));
    assert!(
        f.store
            .create_task(NewTask {
                id: harken_store::new_id("task"),
                key_id: key.clone(),
                model: "m".into(),
                param: "{}".into(),
                callback_url: None,
            })
            .await
            .is_err(),
        "a spent key cannot create tasks"
    );
}

pub async fn failure_charges_nothing(f: Fixture) {
    let key = f.key(5.0).await;
    let t = f.task(&key, None).await;
    f.store.claim_next("w", LEASE).await.unwrap().unwrap();
    f.store.reserve_credits(&t.id, "w", Credits::from_f64(1.0)).await.unwrap();
    let end = f.store.finish_fail(&t.id, "w", "402", "too long").await.unwrap();
    assert_eq!((end.state, end.credits_consumed), (TaskState::Fail, Credits::ZERO));
    assert_eq!(end.fail_code.as_deref(), Some("402"));
    assert_eq!(f.available(&key).await, Credits::from_f64(5.0));
    assert!(f.store.callback_for_task(&t.id).await.unwrap().is_none(), "no callback URL, no row");
}
