//! Keys, claims, leases.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use harken_store::{NewKey, StoreError};
use harken_types::TaskState;

use super::{Fixture, LEASE};

pub async fn keys_are_found_by_secret_only(f: Fixture) {
    let created = f.store.create_key(NewKey { name: Some("ci".into()), ..Default::default() }).await.unwrap();
    assert!(created.secret.len() > 40, "a long random secret");
    let found = f.store.authenticate(&created.secret).await.unwrap().expect("found by its secret");
    assert_eq!(found.id, created.key.id);
    assert!(f.store.authenticate("hk_wrong").await.unwrap().is_none());
    assert!(f.store.authenticate(&created.key.id).await.unwrap().is_none(), "the id is not a secret");
    assert_eq!(f.store.list_keys().await.unwrap().len(), 1);
}

pub async fn another_keys_task_is_invisible(f: Fixture) {
    let (a, b) = (f.key(10.0).await, f.key(10.0).await);
    let t = f.task(&a, None).await;
    assert_eq!(t.state, TaskState::Waiting);
    assert!(f.store.task_for_key(&a, &t.id).await.unwrap().is_some());
    assert!(f.store.task_for_key(&b, &t.id).await.unwrap().is_none());
    assert!(f.store.task_for_key(&a, "task_nope").await.unwrap().is_none());
}

pub async fn two_claimers_never_get_the_same_task(f: Fixture) {
    let key = f.key(100.0).await;
    for _ in 0..30 {
        f.task(&key, None).await;
    }
    let barrier = Arc::new(tokio::sync::Barrier::new(4));
    let mut handles = Vec::new();
    for w in 0..4 {
        let (store, barrier) = (f.store.clone(), barrier.clone());
        handles.push(tokio::spawn(async move {
            barrier.wait().await;
            let mut mine = Vec::new();
            while let Some(t) = store.claim_next(&format!("w{w}"), LEASE).await.unwrap() {
                assert_eq!(t.lease_owner.as_deref(), Some(format!("w{w}").as_str()));
                mine.push(t.id);
            }
            mine
        }));
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.unwrap());
    }
    let unique: HashSet<_> = all.iter().collect();
    assert_eq!(all.len(), 30, "every task claimed");
    assert_eq!(unique.len(), 30, "no task claimed twice");
}

pub async fn expired_lease_returns_task_to_queue(f: Fixture) {
    let key = f.key(10.0).await;
    let t = f.task(&key, None).await;
    let claimed = f.store.claim_next("w1", LEASE).await.unwrap().unwrap();
    assert_eq!((claimed.id.as_str(), claimed.state, claimed.attempts), (t.id.as_str(), TaskState::Queuing, 1));
    assert_eq!(f.store.reclaim_expired(3).await.unwrap().requeued, 0, "lease still valid");
    f.clock.advance(LEASE + Duration::from_secs(1));
    assert_eq!(f.store.reclaim_expired(3).await.unwrap().requeued, 1);
    let again = f.store.claim_next("w2", LEASE).await.unwrap().unwrap();
    assert_eq!((again.id.as_str(), again.attempts), (t.id.as_str(), 2));
    // The first worker lost the task: it can neither renew nor finish it.
    let lost = f.store.heartbeat(&t.id, "w1", LEASE).await.unwrap_err();
    assert!(matches!(lost, StoreError::LeaseLost { .. }), "{lost}");
    assert!(f.store.finish_success(&t.id, "w1", "{}").await.is_err());
    f.store.finish_success(&t.id, "w2", "{}").await.unwrap();
}

pub async fn heartbeat_keeps_the_lease(f: Fixture) {
    let key = f.key(10.0).await;
    let t = f.task(&key, None).await;
    f.store.claim_next("w1", LEASE).await.unwrap().unwrap();
    for _ in 0..3 {
        f.clock.advance(LEASE / 2);
        f.store.heartbeat(&t.id, "w1", LEASE).await.unwrap();
        f.store.set_progress(&t.id, "w1", TaskState::Generating, 40).await.unwrap();
        assert_eq!(f.store.reclaim_expired(3).await.unwrap().requeued, 0);
    }
    let now = f.store.task(&t.id).await.unwrap().unwrap();
    assert_eq!((now.state, now.progress), (TaskState::Generating, 40));
}

pub async fn too_many_interruptions_fail_the_task(f: Fixture) {
    let key = f.key(10.0).await;
    let t = f.task(&key, Some("http://127.0.0.1:9/cb")).await;
    for round in 1..=2 {
        f.store.claim_next("w", LEASE).await.unwrap().unwrap();
        f.store.reserve_credits(&t.id, "w", harken_store::Credits::from_f64(2.0)).await.unwrap();
        f.clock.advance(LEASE * 2);
        let r = f.store.reclaim_expired(2).await.unwrap();
        assert_eq!((r.requeued, r.failed), if round == 1 { (1, 0) } else { (0, 1) });
    }
    let end = f.store.task(&t.id).await.unwrap().unwrap();
    assert_eq!(end.state, TaskState::Fail);
    assert!(end.fail_msg.unwrap().contains("interrupted 2 times"));
    assert_eq!(end.credits_consumed, harken_store::Credits::ZERO);
    assert_eq!(f.available(&key).await, harken_store::Credits::from_f64(10.0), "reservation released");
    assert!(f.store.callback_for_task(&t.id).await.unwrap().is_some(), "the failure is called back");
    assert!(f.store.claim_next("w", LEASE).await.unwrap().is_none());
}

pub async fn release_does_not_count_an_attempt(f: Fixture) {
    let key = f.key(10.0).await;
    let t = f.task(&key, None).await;
    f.store.claim_next("w", LEASE).await.unwrap().unwrap();
    f.store.reserve_credits(&t.id, "w", harken_store::Credits::from_f64(3.0)).await.unwrap();
    f.store.release(&t.id, "w").await.unwrap();
    let back = f.store.task(&t.id).await.unwrap().unwrap();
    assert_eq!((back.state, back.attempts, back.lease_owner), (TaskState::Waiting, 0, None));
    assert_eq!(f.available(&key).await, harken_store::Credits::from_f64(10.0));
}

pub async fn backlog_counts_the_queue_and_dates_its_oldest_task(f: Fixture) {
    let empty = f.store.backlog().await.unwrap();
    assert_eq!(empty, harken_store::Backlog::default(), "a new database has no backlog");
    let key = f.key(10.0).await;
    let first = f.task(&key, Some("http://example.com/cb")).await;
    f.clock.advance(Duration::from_secs(5));
    for _ in 0..3 {
        f.task(&key, None).await;
    }
    f.clock.advance(Duration::from_secs(2));
    let oldest = f.store.claim_next("w1", LEASE).await.unwrap().unwrap();
    assert_eq!(oldest.id, first.id, "claims take the oldest");
    f.store.finish_success(&oldest.id, "w1", "{}").await.unwrap();
    let second = f.store.claim_next("w1", LEASE).await.unwrap().unwrap();
    f.store.set_progress(&second.id, "w1", TaskState::Generating, 10).await.unwrap();
    f.store.claim_next("w2", LEASE).await.unwrap().unwrap();
    let backlog = f.store.backlog().await.unwrap();
    let expected = harken_store::Backlog {
        waiting: 1,
        queuing: 1,
        generating: 1,
        callbacks_pending: 1,
        oldest_waiting: Some(Duration::from_secs(2)),
    };
    assert_eq!(backlog, expected);
}
