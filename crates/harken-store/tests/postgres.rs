//! The store suite run against [`PostgresStore`], each test in a fresh database
//! (`harken_test_<random>`) on the server at `HARKEN_TEST_PG` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`), dropped when the test ends.

mod suite;

use std::sync::Arc;

use harken_store::{ManualClock, PostgresStore, Store};
use harken_testkit::TestDb;

async fn open(db: &TestDb, clock: Arc<ManualClock>) -> PostgresStore {
    let store = PostgresStore::connect_with(&db.url, clock, 8).await.expect("connects to the test database");
    store.migrate().await.expect("migrations apply");
    store
}

async fn fixture() -> suite::Fixture {
    let db = TestDb::create();
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let store = open(&db, clock.clone()).await;
    suite::Fixture { store: Arc::new(store), clock, _dir: Box::new(db) }
}

suite::store_suite!(fixture);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrating_twice_and_from_two_nodes_at_once_is_harmless() {
    let db = TestDb::create();
    let clock = Arc::new(ManualClock::new(0));
    let (a, b) = tokio::join!(open(&db, clock.clone()), open(&db, clock.clone()));
    a.migrate().await.unwrap();
    let created = a.create_key(Default::default()).await.unwrap();
    assert_eq!(b.authenticate(&created.secret).await.unwrap().map(|k| k.id), Some(created.key.id));
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchers_wake_on_new_and_requeued_tasks_and_callbacks() {
    use harken_store::{Credits, NewKey, NewTask, Wake};
    use std::time::Duration;
    let db = TestDb::create();
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let (api, worker) = (open(&db, clock.clone()).await, open(&db, clock.clone()).await);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let handle = worker
        .watch(Arc::new(move |w| {
            let _ = tx.send(w);
        }))
        .await
        .unwrap()
        .expect("postgres watches");
    async fn next(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Wake>) -> Wake {
        tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.expect("a wake-up within 5 s").unwrap()
    }
    let key = api.create_key(NewKey { credits: Credits::from_f64(5.0), ..Default::default() }).await.unwrap().key.id;
    let new = NewTask {
        id: harken_store::new_id("task"),
        key_id: key,
        model: "m".into(),
        param: "{}".into(),
        callback_url: Some("http://127.0.0.1:9/cb".into()),
    };
    let t = api.create_task(new).await.unwrap();
    assert_eq!(next(&mut rx).await, Wake::Task, "NOTIFY with the insert");
    worker.claim_next("w", Duration::from_secs(30)).await.unwrap().unwrap();
    worker.release(&t.id, "w").await.unwrap();
    assert_eq!(next(&mut rx).await, Wake::Task, "NOTIFY when requeued");
    worker.claim_next("w", Duration::from_secs(30)).await.unwrap().unwrap();
    worker.finish_success(&t.id, "w", "{}").await.unwrap();
    assert_eq!(next(&mut rx).await, Wake::Callback, "NOTIFY with the outbox row");
    handle.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn separate_pools_racing_claims_and_finishes_charge_once() {
    // Like two nodes: each has its own pool; 60 tasks, 3 "nodes" x 2 claimers, each task
    // finished by its claimer and also (racing) by a second caller pretending to be it.
    use harken_store::{Credits, NewKey, NewTask};
    use std::time::Duration;
    let db = TestDb::create();
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let nodes = [open(&db, clock.clone()).await, open(&db, clock.clone()).await, open(&db, clock.clone()).await];
    let key =
        nodes[0].create_key(NewKey { credits: Credits::from_f64(100.0), ..Default::default() }).await.unwrap().key.id;
    for _ in 0..60 {
        let new = NewTask {
            id: harken_store::new_id("task"),
            key_id: key.clone(),
            model: "m".into(),
            param: "{}".into(),
            callback_url: Some("http://127.0.0.1:9/cb".into()),
        };
        nodes[0].create_task(new).await.unwrap();
    }
    let mut handles = Vec::new();
    for (n, node) in nodes.iter().enumerate() {
        for c in 0..2 {
            let store = node.clone();
            let owner = format!("n{n}c{c}");
            handles.push(tokio::spawn(async move {
                let mut won = 0;
                while let Some(t) = store.claim_next(&owner, Duration::from_secs(30)).await.unwrap() {
                    store.reserve_credits(&t.id, &owner, Credits::from_f64(1.0)).await.unwrap();
                    let (a, b) = tokio::join!(
                        store.finish_success(&t.id, &owner, "{}"),
                        store.finish_success(&t.id, &owner, "{}")
                    );
                    assert!(a.is_ok() ^ b.is_ok(), "exactly one finish wins");
                    won += 1;
                }
                won
            }));
        }
    }
    let mut total = 0;
    for h in handles {
        total += h.await.unwrap();
    }
    assert_eq!(total, 60);
    let k = nodes[1].key(&key).await.unwrap().unwrap();
    assert_eq!((k.credits, k.reserved), (Credits::from_f64(40.0), Credits::ZERO), "60 tasks charged 1 each");
    // Three dispatchers claim the 60 callbacks at once: each delivery goes to exactly one.
    let mut handles = Vec::new();
    for node in &nodes {
        let store = node.clone();
        handles.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let got = store.claim_callbacks(7, Duration::from_secs(60)).await.unwrap();
                if got.is_empty() {
                    return mine;
                }
                mine.extend(got.into_iter().map(|d| d.id));
            }
        }));
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.unwrap());
    }
    let unique: std::collections::HashSet<_> = all.iter().collect();
    assert_eq!((all.len(), unique.len()), (60, 60), "every callback claimed once");
    for n in &nodes {
        n.close().await;
    }
}
