//! Rate limit (429, nothing queued) and credits (402).

use std::time::Duration;

use crate::helpers::*;

#[tokio::test]
async fn over_the_rate_limit_is_429_and_queues_nothing() {
    let dir = temp_dir();
    let server = Harken::start(dir.path(), &["--rate-limit", "3", "--rate-window-secs", "60"]);
    let (key, other) = (server.key(10.0, None), server.key(10.0, None));
    let body = task_body("http://127.0.0.1:9/none.wav", None);
    for _ in 0..3 {
        server.submit(&key, &body).await;
    }
    let refused = server.create(&key, &body).await;
    assert_eq!(refused["code"], 429, "{refused}");
    assert!(refused["data"].is_null(), "no task id: nothing queued");
    assert!(
        refused["msg"].as_str().unwrap().starts_with("rate limit: expected at most 3 new tasks per 60 s"),
        "{refused}"
    );
    server.submit(&other, &body).await; // per key
}

#[tokio::test]
async fn no_credits_is_402_and_unaffordable_audio_fails_with_402() {
    let dir = temp_dir();
    let host = AudioHost::start().await;
    let server = Harken::start(dir.path(), &[]);
    let broke = server.key(0.0, None);
    let r = server.create(&broke, &task_body(&host.url("/speech.wav"), None)).await;
    assert_eq!(r["code"], 402, "{r}");
    assert!(r["msg"].as_str().unwrap().starts_with("credits: expected a positive balance"), "{r}");

    // 0.001 credits pass the createTask check but cannot pay for seconds of audio.
    let poor = server.key(0.001, None);
    let id = server.submit(&poor, &task_body(&host.url("/speech.wav"), None)).await;
    let (record, _) = server.wait_final(&poor, &id, Duration::from_secs(120)).await;
    assert_eq!((record["state"].as_str(), record["failCode"].as_str()), (Some("fail"), Some("402")), "{record}");
    assert_eq!(record["creditsConsumed"], 0);
    assert_eq!(server.credit(&poor).await, 0.001, "a failed task costs nothing");
}
