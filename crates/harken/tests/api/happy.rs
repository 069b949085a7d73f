//! A real recording in, the real transcript out, charged once, called back signed.

use std::time::Duration;

use serde_json::Value;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transcribes_calls_back_signed_and_charges() {
    let dir = temp_dir();
    let (host, receiver) = (AudioHost::start().await, Receiver::start().await);
    let server = Harken::start(dir.path(), &[]);
    let key = server.key(100.0, Some("whsec_test"));
    assert_eq!(server.credit(&key).await, 100.0);

    let body = task_body(&host.url("/speech.wav"), Some(&receiver.url));
    let id = server.submit(&key, &body).await;
    assert!(id.starts_with("task_"), "{id}");
    let (record, states) = server.wait_final(&key, &id, Duration::from_secs(300)).await;
    assert_eq!(record["state"], "success", "{record}");
    let order = ["waiting", "queuing", "generating", "success"];
    let ranks: Vec<usize> = states.iter().map(|s| order.iter().position(|o| o == s).expect("a known state")).collect();
    assert!(ranks.windows(2).all(|w| w[0] < w[1]), "states move forward only: {states:?}");

    // The record, field by field (DESIGN.md §1).
    assert_eq!(record["taskId"], id.as_str());
    assert_eq!(record["model"], MODEL);
    let param: Value = serde_json::from_str(record["param"].as_str().expect("param is a JSON string")).unwrap();
    assert_eq!(param, body, "param is the complete original body");
    assert_eq!((record["failCode"].as_str(), record["failMsg"].as_str()), (Some(""), Some("")));
    assert_eq!(record["progress"], 100);
    for field in ["createTime", "updateTime", "completeTime", "costTime"] {
        assert!(record[field].as_i64().is_some(), "{field} is a number: {record}");
    }
    assert!(record["createTime"].as_i64() <= record["completeTime"].as_i64());
    let (heard, spoken) = recognised(&record);
    assert!(heard * 10 >= spoken * 7, "{heard} of {spoken} spoken words in {:?}", words_of(&record));
    assert!(words_of(&record).contains(&"test".to_owned()));
    let result: Value = serde_json::from_str(record["resultJson"].as_str().unwrap()).unwrap();
    let transcript: harken_types::Transcript = serde_json::from_value(result["resultObject"].clone()).unwrap();
    transcript.check().expect("the transcript keeps the contract's invariants");
    assert_eq!(transcript.language_code, "eng");

    // Charged once, by duration (about 4 s at 1 credit per minute).
    let charged = record["creditsConsumed"].as_f64().unwrap();
    assert_eq!(record["consumeCredits"], record["creditsConsumed"]);
    assert!(charged > 0.0 && charged < 0.5, "charged {charged}");
    let remaining = server.credit(&key).await;
    assert!((remaining - (100.0 - charged)).abs() < 1e-9, "{remaining}");
    assert_eq!(record["remainedCredits"].as_f64(), Some(remaining));

    // The callback: the same record, Kie's success code and msg, a valid signature.
    let got = receiver.wait_for(1, Duration::from_secs(30)).await;
    assert_eq!(got[0].body["code"], 200);
    assert_eq!(got[0].body["msg"], "Playground task completed successfully.");
    assert_eq!(got[0].body["data"], record, "callback body == recordInfo data");
    assert!(verify_signature("whsec_test", &got[0]), "signature verifies");
    assert!(!verify_signature("another_secret", &got[0]));
    let again = server.record(&key, &id).await;
    assert_eq!(again["data"], record, "a final record never changes");
}

/// A call recorded with a voice per channel (`diarize` is on by default): one transcript in
/// which each channel is one speaker, each sentence once (harken_engine::transcribe_channels).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_voice_per_channel_is_one_speaker() {
    let dir = temp_dir();
    let stereo = std::fs::read(crate::dialects::stereo_wav(dir.path())).unwrap();
    let host = AudioHost::start_with(vec![("/stereo.wav", stereo)]).await;
    let server = Harken::start(dir.path(), &[]);
    let health: Value = reqwest::get(format!("{}/healthz", server.base)).await.unwrap().json().await.unwrap();
    assert_eq!(health["data"]["diarization"], true, "{health}");
    let key = server.key(100.0, None);
    let id = server.submit(&key, &task_body(&host.url("/stereo.wav"), None)).await;
    let (record, _) = server.wait_final(&key, &id, Duration::from_secs(300)).await;
    assert_eq!(record["state"], "success", "{record}");
    let result: Value = serde_json::from_str(record["resultJson"].as_str().unwrap()).unwrap();
    crate::dialects::assert_a_speaker_per_channel(&result["resultObject"]["words"]);
}
