//! Several processes writing one SQLite file at once (`harken serve --role api` beside
//! `harken worker` on one data dir, or `harken keys create` while a server runs): nobody may fail
//! with "database is locked". Write transactions take the write lock at their start
//! (`BEGIN IMMEDIATE`) and wait for it (`busy_timeout`), and migrations run under that lock, so
//! even processes starting together on a new file do not trip over each other.
//!
//! The processes are this test binary run again (`child_writes_its_share`, ignored unless the
//! parent starts it with `HARKEN_TEST_SQLITE_CHILD` set).

use std::process::{Command, Stdio};
use std::time::Duration;

use harken_store::{Credits, NewFile, NewKey, NewTask, SqliteStore, Store};

const CHILDREN: usize = 3;
const TASKS_PER_CHILD: usize = 100;
const CHILD_ENV: &str = "HARKEN_TEST_SQLITE_CHILD";

#[test]
fn processes_writing_one_sqlite_file_never_see_database_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    // All start at once on a file that does not exist yet: they race on the migrations too.
    let children: Vec<_> = (0..CHILDREN)
        .map(|i| {
            Command::new(&exe)
                .args(["--exact", "child_writes_its_share", "--ignored", "--nocapture", "--test-threads", "1"])
                .env(CHILD_ENV, dir.path())
                .env("HARKEN_TEST_CHILD_NAME", format!("child{i}"))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "a writer process failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = SqliteStore::open_dir(dir.path()).await.unwrap();
        let keys = store.list_keys().await.unwrap();
        assert_eq!(keys.len(), CHILDREN, "one key per process");
        for key in keys {
            // Each task cost 1 credit and was charged once.
            assert_eq!(key.credits, Credits::from_f64(1000.0 - TASKS_PER_CHILD as f64), "{}", key.id);
            assert_eq!(key.reserved.millis(), 0);
        }
        store.close().await;
    });
}

/// One writer process: its own key, tasks created, claimed, reserved, finished, files recorded and
/// deleted, with the lease reaper running beside, all as fast as it can.
#[test]
#[ignore = "started by processes_writing_one_sqlite_file_never_see_database_is_locked"]
fn child_writes_its_share() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else { return };
    let name = std::env::var("HARKEN_TEST_CHILD_NAME").unwrap_or_default();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async move {
        let store = SqliteStore::open_dir(std::path::Path::new(&dir)).await.expect("opens and migrates");
        let key = store.create_key(NewKey { credits: Credits::from_f64(1000.0), ..Default::default() }).await.unwrap();
        let reaper = {
            let store = store.clone();
            tokio::spawn(async move {
                loop {
                    store.reclaim_expired(3).await.expect("reclaim_expired");
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
        };
        let owner = format!("{name}-worker");
        for _ in 0..TASKS_PER_CHILD {
            let new = NewTask {
                id: harken_store::new_id("task"),
                key_id: key.key.id.clone(),
                model: "m".into(),
                param: "{}".into(),
                callback_url: Some("http://cb.invalid/".into()),
            };
            store.create_task(new).await.expect("create_task");
            // Any process's task: claims race across processes.
            let Some(task) = store.claim_next(&owner, Duration::from_secs(60)).await.expect("claim_next") else {
                continue;
            };
            store.heartbeat(&task.id, &owner, Duration::from_secs(60)).await.expect("heartbeat");
            store.reserve_credits(&task.id, &owner, Credits::from_f64(1.0)).await.expect("reserve_credits");
            store.finish_success(&task.id, &owner, "{}").await.expect("finish_success");
            let file = NewFile {
                id: harken_store::new_id("file"),
                key_id: key.key.id.clone(),
                file_name: "a.wav".into(),
                original_name: "a.wav".into(),
                upload_path: "p".into(),
                mime_type: "audio/wav".into(),
                size_bytes: 4,
                ttl: Duration::from_secs(60),
            };
            let file = store.create_file(file).await.expect("create_file");
            store.delete_file(&file.id).await.expect("delete_file");
            for delivery in store.claim_callbacks(5, Duration::from_secs(60)).await.expect("claim_callbacks") {
                let outcome =
                    harken_store::AttemptOutcome { delivered: true, http_status: Some(200), ..Default::default() };
                let schedule = harken_store::RetrySchedule(vec![]);
                store.record_callback_attempt(delivery.id, &outcome, &schedule).await.expect("record_callback_attempt");
            }
        }
        // Tasks other processes created but nobody claimed yet are claimed by whoever is left.
        while let Some(task) = store.claim_next(&owner, Duration::from_secs(60)).await.expect("claim_next") {
            store.reserve_credits(&task.id, &owner, Credits::from_f64(1.0)).await.expect("reserve_credits");
            store.finish_success(&task.id, &owner, "{}").await.expect("finish_success");
        }
        reaper.abort();
        store.close().await;
    });
}
