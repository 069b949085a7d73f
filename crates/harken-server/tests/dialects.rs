//! The ElevenLabs and OpenAI dialects in-process with a stand-in engine (fast, no model): answer
//! shapes, the stored transcript, signed webhooks, multi-channel, the sync queue's 429, and each
//! dialect's error shape. The real engine and the official SDKs are covered by `harken`'s tests.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::HeaderMap;
use base64::Engine as _;
use harken_engine::{EngineError, Progress, SpeechEngine, TranscribeOptions};
use harken_server::ServerConfig;
use harken_store::{SqliteStore, Store};
use harken_types::{Transcript, Word, WordKind};
use serde_json::Value;

/// Answers "Good morning. This is a test." over the audio's length, after `delay`.
struct FakeEngine {
    delay: Duration,
}

impl SpeechEngine for FakeEngine {
    fn transcribe(&self, samples: &[f32], o: &TranscribeOptions, progress: Progress<'_>) -> Result<Transcript, EngineError> {
        std::thread::sleep(self.delay);
        progress(1.0);
        let len = samples.len() as f64 / 16_000.0;
        let texts = ["Good", "morning.", "This", "is", "a", "test."];
        let step = len / texts.len() as f64;
        let mut words = Vec::new();
        for (i, t) in texts.iter().enumerate() {
            if i > 0 {
                words.push(Word { text: " ".into(), start: step * i as f64 - 0.05, end: step * i as f64, kind: WordKind::Spacing, speaker_id: None, logprob: 0.0 });
            }
            words.push(Word { text: (*t).into(), start: step * i as f64, end: step * (i as f64 + 0.9), kind: WordKind::Word, speaker_id: None, logprob: -0.25 });
        }
        if o.diarize {
            for w in &mut words {
                w.speaker_id = Some("speaker_0".into());
            }
        }
        let text = words.iter().map(|w| w.text.as_str()).collect();
        Ok(Transcript { language_code: "eng".into(), language_probability: 0.98, text, words })
    }
    fn model_name(&self) -> &str {
        "fake"
    }
    fn supports_diarization(&self) -> bool {
        true
    }
}

type Hooks = Arc<Mutex<Vec<(HeaderMap, Vec<u8>)>>>;

async fn receiver() -> (String, Hooks) {
    let hooks: Hooks = Arc::default();
    let h = hooks.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| async move {
            h.lock().unwrap().push((headers, body.to_vec()));
            "ok"
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, hooks)
}

struct Server {
    base: String,
    key: String,
    dir: tempfile::TempDir,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn start(delay: Duration, tweak: impl FnOnce(&mut ServerConfig)) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open_dir(dir.path()).await.unwrap());
    let new = harken_store::NewKey { credits: harken_store::Credits::from_f64(100.0), ..Default::default() };
    let key = store.create_key(new).await.unwrap().secret;
    let mut config = ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().into(),
        allow_private_urls: true,
        ..ServerConfig::default()
    };
    tweak(&mut config);
    let (tx, rx) = tokio::sync::oneshot::channel();
    let (addr_tx, addr_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(harken_server::run(config, store, Arc::new(FakeEngine { delay }), move |a| {
        let _ = addr_tx.send(a);
    }, async move {
        let _ = rx.await;
    }));
    let addr = addr_rx.await.unwrap().expect("role all serves HTTP");
    Server { base: format!("http://{addr}"), key, dir, _stop: tx }
}

fn wav(dir: &std::path::Path, name: &str, text: &str) -> Vec<u8> {
    let path = dir.join(name);
    let ok = std::process::Command::new("espeak-ng").arg("-w").arg(&path).arg(text).status().unwrap();
    assert!(ok.success(), "espeak-ng runs");
    std::fs::read(path).unwrap()
}

fn form(fields: &[(&str, &str)], file: Option<Vec<u8>>) -> reqwest::multipart::Form {
    let mut f = reqwest::multipart::Form::new();
    for (k, v) in fields {
        f = f.text(k.to_string(), v.to_string());
    }
    if let Some(bytes) = file {
        f = f.part("file", reqwest::multipart::Part::bytes(bytes).file_name("a.wav"));
    }
    f
}

async fn send(req: reqwest::RequestBuilder) -> (u16, Value) {
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

async fn eleven(s: &Server, fields: &[(&str, &str)], file: Option<Vec<u8>>) -> (u16, Value) {
    let req = reqwest::Client::new().post(format!("{}/v1/speech-to-text", s.base)).header("xi-api-key", &s.key);
    send(req.multipart(form(fields, file))).await
}

async fn openai(s: &Server, fields: &[(&str, &str)], file: Option<Vec<u8>>) -> (u16, Value) {
    let req = reqwest::Client::new().post(format!("{}/v1/audio/transcriptions", s.base)).bearer_auth(&s.key);
    send(req.multipart(form(fields, file))).await
}

#[tokio::test]
async fn elevenlabs_sync_formats_stored_transcript_and_signed_webhook() {
    let (hook_url, hooks) = receiver().await;
    let s = start(Duration::ZERO, |c| {
        c.elevenlabs_webhook_url = Some(hook_url.clone());
        c.elevenlabs_webhook_secret = Some("whsec".into());
    })
    .await;
    let audio = wav(s.dir.path(), "a.wav", "good morning this is a test");
    let formats = r#"[{"format":"srt"},{"format":"txt","include_timestamps":false},{"format":"segmented_json"},{"format":"html"},{"format":"docx"},{"format":"pdf"}]"#;
    let fields = [("model_id", "scribe_v1"), ("diarize", "true"), ("num_speakers", "2"), ("timestamps_granularity", "character"), ("additional_formats", formats)];
    let (status, body) = eleven(&s, &fields, Some(audio.clone())).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["text"], "Good morning. This is a test.");
    let w = &body["words"][0];
    assert_eq!((w["logprob"].as_f64(), w["speaker_id"].as_str()), (Some(-0.25), Some("speaker_0")));
    assert_eq!(w["characters"].as_array().unwrap().len(), 4);
    let f = body["additional_formats"].as_array().unwrap();
    assert_eq!(f.iter().map(|f| f["requested_format"].as_str().unwrap()).collect::<Vec<_>>(), ["srt", "txt", "segmented_json", "html", "docx", "pdf"]);
    assert!(f[0]["content"].as_str().unwrap().contains("[speaker_0] Good morning."));
    assert_eq!(f[1]["content"], "speaker_0: Good morning.\nspeaker_0: This is a test.\n");
    let pdf = base64::engine::general_purpose::STANDARD.decode(f[5]["content"].as_str().unwrap()).unwrap();
    assert!(pdf.starts_with(b"%PDF-") && f[5]["is_base64_encoded"] == true);
    let id = body["transcription_id"].as_str().unwrap();
    // The worker deletes the upload (in the object store, `<data dir>/files` here) right after recording the task final.
    let uploads = s.dir.path().join("files/requests");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::fs::read_dir(&uploads).is_ok_and(|mut d| d.next().is_some()) {
        assert!(std::time::Instant::now() < deadline, "the upload is removed once transcribed");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    let (status, stored) = send(reqwest::Client::new().get(format!("{}/v1/speech-to-text/transcripts/{id}", s.base)).header("xi-api-key", &s.key)).await;
    assert_eq!((status, &stored), (200, &body));

    let (status, accepted) = eleven(&s, &[("model_id", "scribe_v2"), ("webhook", "true"), ("webhook_metadata", r#"{"a":1}"#)], Some(audio)).await;
    assert_eq!(status, 202, "{accepted}");
    let mut waited = 0;
    while hooks.lock().unwrap().is_empty() {
        assert!(waited < 100, "no webhook delivery");
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
    }
    let (headers, raw) = hooks.lock().unwrap()[0].clone();
    let sig = headers["elevenlabs-signature"].to_str().unwrap();
    let t: i64 = sig.split(',').next().unwrap().strip_prefix("t=").unwrap().parse().unwrap();
    assert_eq!(sig, harken_server::elevenlabs_signature("whsec", t, &raw));
    let event: Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(event["type"], "speech_to_text_transcription");
    assert_eq!(event["data"]["request_id"], accepted["request_id"]);
    assert_eq!(event["data"]["webhook_metadata"]["a"], 1);
    assert_eq!(event["data"]["transcription"]["text"], "Good morning. This is a test.");
}

#[tokio::test]
async fn elevenlabs_multi_channel_and_raw_pcm() {
    let s = start(Duration::ZERO, |_| {}).await;
    let dir = s.dir.path();
    wav(dir, "l.wav", "good morning");
    wav(dir, "r.wav", "good evening to you all");
    let ok = std::process::Command::new("sox").arg("-M").arg(dir.join("l.wav")).arg(dir.join("r.wav")).arg(dir.join("st.wav")).status().unwrap();
    assert!(ok.success(), "sox runs");
    let (status, body) = eleven(&s, &[("model_id", "scribe_v1"), ("use_multi_channel", "true")], Some(std::fs::read(dir.join("st.wav")).unwrap())).await;
    assert_eq!(status, 200, "{body}");
    let t = body["transcripts"].as_array().unwrap();
    assert_eq!(t.len(), 2);
    assert_eq!((t[0]["channel_index"].as_u64(), t[1]["words"][0]["channel_index"].as_u64()), (Some(0), Some(1)));
    // 1 s of raw 16 kHz 16-bit PCM: the fake engine's last word ends at the audio's length.
    let pcm = vec![0u8; 32_000];
    let (status, body) = eleven(&s, &[("model_id", "scribe_v1"), ("file_format", "pcm_s16le_16")], Some(pcm)).await;
    assert_eq!(status, 200, "{body}");
    assert!((body["audio_duration_secs"].as_f64().unwrap() - 1.0).abs() < 0.01, "{body}");
}

#[tokio::test]
async fn openai_formats_and_error_shape() {
    let s = start(Duration::ZERO, |_| {}).await;
    let audio = wav(s.dir.path(), "a.wav", "good morning this is a test");
    let (status, body) = openai(&s, &[("model", "whisper-1")], Some(audio.clone())).await;
    assert_eq!((status, body["text"].as_str()), (200, Some("Good morning. This is a test.")), "{body}");
    let (_, text) = openai(&s, &[("model", "fake"), ("response_format", "text")], Some(audio.clone())).await;
    assert_eq!(text, "Good morning. This is a test.\n");
    let (_, srt) = openai(&s, &[("model", "whisper-1"), ("response_format", "srt")], Some(audio.clone())).await;
    assert!(srt.as_str().unwrap().starts_with("1\n00:00:00,000 --> "), "{srt}");
    let fields = [("model", "whisper-1"), ("response_format", "verbose_json"), ("timestamp_granularities[]", "word")];
    let (_, v) = openai(&s, &fields, Some(audio.clone())).await;
    assert_eq!(v["language"], "english");
    assert_eq!(v["words"].as_array().unwrap().len(), 6);
    assert!(v.get("segments").is_none(), "only words were asked for");
    let (status, err) = openai(&s, &[("model", "whisper-1"), ("language", "zz")], Some(audio)).await;
    assert_eq!(status, 400);
    assert_eq!((err["error"]["param"].as_str(), err["error"]["type"].as_str()), (Some("language"), Some("invalid_request_error")));
    let req = reqwest::Client::new().post(format!("{}/v1/audio/transcriptions", s.base)).bearer_auth("nope");
    let (status, err) = send(req.multipart(form(&[("model", "whisper-1")], None))).await;
    assert_eq!((status, err["error"]["code"].as_str()), (401, Some("invalid_api_key")));
}

#[tokio::test]
async fn a_full_sync_queue_answers_429() {
    let s = start(Duration::from_millis(1500), |c| c.max_sync_requests = 1).await;
    let audio = wav(s.dir.path(), "a.wav", "good morning");
    let first = openai(&s, &[("model", "whisper-1")], Some(audio.clone()));
    let second = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        eleven(&s, &[("model_id", "scribe_v1")], Some(audio.clone())).await
    };
    let ((s1, _), (s2, b2)) = tokio::join!(first, second);
    assert_eq!((s1, s2), (200, 429), "{b2}");
    assert_eq!(b2["detail"]["status"], "too_many_concurrent_requests");
}
