//! Callback delivery survives a receiver that is down: retried on the configured schedule.

use std::time::Duration;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callback_is_retried_until_the_receiver_is_back() {
    let dir = temp_dir();
    let host = AudioHost::start().await;
    // A port with nothing listening yet: the first attempt is refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}/cb");
    let server = Harken::start(dir.path(), &["--callback-retry-secs", "1,2,2,2"]);
    let key = server.key(10.0, Some("s"));
    let id = server.submit(&key, &task_body(&host.url("/missing.mp3"), Some(&url))).await;
    let (record, _) = server.wait_final(&key, &id, Duration::from_secs(60)).await;
    assert_eq!(record["state"], "fail");
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Up, but failing: 503 is retried as well.
    let receiver = Receiver::start_on(&format!("127.0.0.1:{port}")).await;
    receiver.status.store(503, std::sync::atomic::Ordering::SeqCst);
    receiver.wait_for(1, Duration::from_secs(20)).await;
    receiver.status.store(200, std::sync::atomic::Ordering::SeqCst);
    let got = receiver.wait_for(2, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(receiver.all().len(), 2, "no delivery after a 2xx");
    for r in &got {
        assert_eq!(r.body["code"], 501);
        assert_eq!(r.body["msg"], "Playground task failed.");
        assert_eq!(r.body["data"], record, "every attempt carries the recordInfo body");
        assert!(verify_signature("s", r));
    }
}
