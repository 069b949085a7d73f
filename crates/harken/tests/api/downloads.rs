//! Broken or refused audio URLs fail the task with a failMsg that says why, and cost nothing.

use std::time::Duration;

use crate::helpers::*;

#[tokio::test]
async fn broken_downloads_fail_with_reasons() {
    let dir = temp_dir();
    let host = AudioHost::start().await;
    let server = Harken::start(dir.path(), &[]);
    let key = server.key(10.0, None);
    let cases = [
        ("/missing.mp3", "audio_url: server answered HTTP 404"),
        ("/page.html", "audio_url: the content looks like"),
        ("/empty", "empty"),
        ("/loop", "audio_url: too many redirects"),
    ];
    for (path, reason) in cases {
        let id = server.submit(&key, &task_body(&host.url(path), None)).await;
        let (record, _) = server.wait_final(&key, &id, Duration::from_secs(60)).await;
        assert_eq!(record["state"], "fail", "{path}: {record}");
        let msg = record["failMsg"].as_str().unwrap();
        assert!(msg.contains(reason), "{path}: failMsg {msg:?} should contain {reason:?}");
        assert_eq!(record["failCode"], "422", "{path}");
        assert_eq!(record["resultJson"], serde_json::Value::Null);
    }
    assert_eq!(server.credit(&key).await, 10.0);
}

#[tokio::test]
async fn private_addresses_are_refused_unless_allowed() {
    let dir = temp_dir();
    let host = AudioHost::start().await;
    let server = Harken::start_with(dir.path(), false, &[]);
    let key = server.key(10.0, None);
    let id = server.submit(&key, &task_body(&host.url("/speech.wav"), None)).await;
    let (record, _) = server.wait_final(&key, &id, Duration::from_secs(60)).await;
    assert_eq!(record["state"], "fail", "{record}");
    let msg = record["failMsg"].as_str().unwrap();
    assert!(msg.starts_with("audio_url: download refused: 127.0.0.1 is a loopback"), "{msg}");
}
