//! Durability: kill -9 mid-work, restart on the same data dir: every task ends, none is charged
//! twice. SIGTERM: unfinished tasks are released and the server exits cleanly.

use std::time::{Duration, Instant};

use crate::helpers::*;

async fn wait_for_state(server: &Harken, key: &str, ids: &[String], state: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        for id in ids {
            if server.record(key, id).await["data"]["state"] == state {
                return;
            }
        }
        assert!(Instant::now() < deadline, "no task reached {state}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_then_restart_finishes_every_task_once() {
    let dir = temp_dir();
    let host = AudioHost::start().await;
    let lease = ["--lease-secs", "4"];
    let mut server = Harken::start(dir.path(), &lease);
    let key = server.key(100.0, None);
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(server.submit(&key, &task_body(&host.url("/speech.wav"), None)).await);
    }
    wait_for_state(&server, &key, &ids, "generating").await;
    server.kill9();

    let server = Harken::start(dir.path(), &lease);
    let mut charged = 0.0;
    for id in &ids {
        let (record, _) = server.wait_final(&key, id, Duration::from_secs(300)).await;
        assert_eq!(record["state"], "success", "{record}");
        let (heard, spoken) = recognised(&record);
        assert!(heard * 2 >= spoken, "{heard} of {spoken} spoken words: {record}");
        charged += record["creditsConsumed"].as_f64().unwrap();
    }
    let remaining = server.credit(&key).await;
    assert!((100.0 - charged - remaining).abs() < 1e-6, "charged {charged}, remaining {remaining}: charged once each");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_releases_unfinished_tasks_and_exits() {
    let dir = temp_dir();
    let host = AudioHost::start().await;
    let mut server = Harken::start(dir.path(), &[]);
    let key = server.key(100.0, None);
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(server.submit(&key, &task_body(&host.url("/speech.wav"), None)).await);
    }
    wait_for_state(&server, &key, &ids, "generating").await;
    let status = server.terminate();
    assert!(status.success(), "exit code 0 after SIGTERM: {status:?}");

    // No lease to wait for: released tasks are waiting again and run at once after a restart.
    let server = Harken::start(dir.path(), &[]);
    for id in &ids {
        let (record, _) = server.wait_final(&key, id, Duration::from_secs(300)).await;
        assert_eq!(record["state"], "success", "{record}");
    }
}
