//! API keys: 401 without a valid one; a key sees only its own tasks.

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn missing_or_wrong_key_is_401() {
    let dir = temp_dir();
    let server = Harken::start(dir.path(), &[]);
    let body = json!({"model": MODEL, "input": {"audio_url": "https://example.com/a.mp3"}}).to_string();
    let r = server.create_raw(None, &body).await;
    assert_eq!(r["code"], 401, "{r}");
    assert!(r["msg"].as_str().unwrap().starts_with("Authorization: expected"), "{r}");
    let r = server.create_raw(Some("hk_not_a_key"), &body).await;
    assert_eq!(
        (r["code"].as_u64(), r["msg"].as_str()),
        (Some(401), Some("Authorization: expected a valid API key, received an unknown one"))
    );
    let r = reqwest::Client::new()
        .get(format!("{}/api/v1/chat/credit", server.base))
        .header("authorization", "Basic dXNlcjpwYXNz")
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(r["code"], 401, "{r}");
    let r = server.record("hk_not_a_key", "task_x").await;
    assert_eq!(r["code"], 401, "{r}");
}

#[tokio::test]
async fn a_key_sees_only_its_own_tasks() {
    let dir = temp_dir();
    let server = Harken::start(dir.path(), &[]);
    let (alice, bob) = (server.key(10.0, None), server.key(10.0, None));
    let id = server.submit(&alice, &task_body("http://127.0.0.1:9/nothing.wav", None)).await;
    assert_eq!(server.record(&alice, &id).await["code"], 200);
    let as_bob = server.record(&bob, &id).await;
    let unknown = server.record(&bob, "task_01ARZ3NDEKTSV4RRFFQ69G5FAV").await;
    assert_eq!((as_bob["code"].as_u64(), as_bob["msg"].as_str()), (Some(422), Some("recordInfo is null")));
    assert_eq!(as_bob, unknown, "another key's task is indistinguishable from an unknown one");
    let missing = reqwest::Client::new()
        .get(format!("{}/api/v1/jobs/recordInfo", server.base))
        .bearer_auth(&bob)
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(missing["code"], 400, "{missing}");
    assert!(missing["msg"].as_str().unwrap().starts_with("taskId: expected"), "{missing}");
}
