//! A server missing an optional model says so rather than answer with less: asked for speaker
//! labels without the speaker model (offline, never fetched), it fails the request with a
//! message that names the fix, charges nothing, and still transcribes without labels.

use std::path::Path;
use std::time::Duration;

use serde_json::json;

use crate::dialects::*;
use crate::helpers::*;

/// A models directory holding only the Whisper model and the VAD, with fetching pointed at a
/// closed port, so the speaker model stays missing.
fn without_speaker_model(dir: &Path) -> std::path::PathBuf {
    let installed = std::env::var_os("HARKEN_MODELS_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(harken_models::default_models_dir);
    let models = dir.join("models");
    std::fs::create_dir_all(&models).unwrap();
    for name in ["tiny.en", "silero-vad"] {
        std::os::unix::fs::symlink(installed.join(name), models.join(name)).unwrap();
    }
    models
}

#[tokio::test]
async fn speaker_labels_without_the_speaker_model_are_refused_by_name() {
    let dir = temp_dir();
    let models = without_speaker_model(dir.path());
    let env = [("HARKEN_MODELS_DIR", models.to_str().unwrap()), ("HARKEN_PYPI_URL", "http://127.0.0.1:9/")];
    let server = Harken::start_env(&dir.path().join("data"), true, &[], &env);
    let key = server.key(10.0, None);
    let host = AudioHost::start().await;
    let unavailable = "diarize: speaker labels are unavailable here: the speaker model is not installed";
    let health: serde_json::Value =
        client().get(format!("{}/healthz", server.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(health["data"]["diarization"], false, "{health}");

    // Kie.ai: `diarize` is on unless the body turns it off.
    let id = server.submit(&key, &task_body(&host.url("/speech.wav"), None)).await;
    let (record, _) = server.wait_final(&key, &id, Duration::from_secs(120)).await;
    assert_eq!((record["state"].as_str(), record["failCode"].as_str()), (Some("fail"), Some("422")), "{record}");
    assert!(record["failMsg"].as_str().unwrap().starts_with(unavailable), "{record}");
    assert_eq!(server.credit(&key).await, 10.0, "a refused task costs nothing");

    let mut body = task_body(&host.url("/speech.wav"), None);
    body["input"]["diarize"] = json!(false);
    let id = server.submit(&key, &body).await;
    let (record, _) = server.wait_final(&key, &id, Duration::from_secs(120)).await;
    assert_eq!(record["state"], "success", "{record}");
    let (heard, _) = recognised(&record);
    assert!(heard > 0, "transcribed without labels: {record}");

    // ElevenLabs: in its own error shape.
    let wav = speech_wav(dir.path());
    let fields = [("model_id", "scribe_v1"), ("diarize", "true")];
    let req = client().post(format!("{}/v1/speech-to-text", server.base)).header("xi-api-key", &key);
    let (status, body) = send(req.multipart(form(&fields, Some(&wav)))).await;
    assert_eq!((status, body["detail"]["status"].as_str()), (422, Some("invalid_parameters")), "{body}");
    assert!(body["detail"]["message"].as_str().unwrap().starts_with(unavailable), "{body}");

    // OpenAI: `diarized_json` is the request for speaker labels.
    let fields = [("model", "gpt-4o-transcribe-diarize"), ("response_format", "diarized_json")];
    let req = client().post(format!("{}/v1/audio/transcriptions", server.base)).bearer_auth(&key);
    let (status, body) = send(req.multipart(form(&fields, Some(&wav)))).await;
    assert_eq!((status, body["error"]["type"].as_str()), (400, Some("invalid_request_error")), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().starts_with(unavailable), "{body}");
}
