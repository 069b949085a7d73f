//! The server in-process with a stand-in engine: HTTP on port 0, real SQLite, real downloads from
//! a loopback host, a real callback receiver. The real engine is covered by `harken`'s API tests.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::HeaderMap;
use harken_engine::{EngineError, Progress, SpeechEngine, TranscribeOptions};
use harken_server::{AppState, Role, ServerConfig};
use harken_store::{SqliteStore, Store};
use harken_types::{Transcript, Word, WordKind};
use serde_json::{json, Value};

struct FakeEngine {
    panic: bool,
}

impl SpeechEngine for FakeEngine {
    fn transcribe(
        &self,
        samples: &[f32],
        _: &TranscribeOptions,
        progress: Progress<'_>,
    ) -> Result<Transcript, EngineError> {
        assert!(!self.panic, "stand-in engine told to panic");
        progress(0.5);
        let end = samples.len() as f64 / 16_000.0;
        Ok(Transcript {
            language_code: "eng".into(),
            language_probability: 1.0,
            text: "hello".into(),
            words: vec![Word {
                text: "hello".into(),
                start: 0.0,
                end,
                kind: WordKind::Word,
                speaker_id: None,
                logprob: 0.0,
            }],
        })
    }
    fn model_name(&self) -> &str {
        "fake"
    }
}

type Received = Arc<Mutex<Vec<(HeaderMap, Value)>>>;

/// Serves `/a.wav` (spoken by espeak-ng) and records POSTs to `/cb`.
async fn loopback_host() -> (String, Received) {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("a.wav");
    let ok = std::process::Command::new("espeak-ng").arg("-w").arg(&wav).arg("hello world").status().unwrap();
    assert!(ok.success(), "espeak-ng runs");
    let bytes = std::fs::read(&wav).unwrap();
    let received: Received = Arc::default();
    let r = received.clone();
    let app = axum::Router::new().route("/a.wav", axum::routing::get(move || async move { bytes.clone() })).route(
        "/cb",
        axum::routing::post(move |headers: HeaderMap, body: axum::Json<Value>| async move {
            r.lock().unwrap().push((headers, body.0));
            "ok"
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, received)
}

struct Server {
    base: String,
    key: String,
    _store: Arc<dyn Store>,
    stop: tokio::sync::oneshot::Sender<()>,
    done: tokio::task::JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
}

async fn start(engine: FakeEngine, credits: f64, role: Role) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open_dir(dir.path()).await.unwrap());
    let new = harken_store::NewKey {
        credits: harken_store::Credits::from_f64(credits),
        webhook_secret: Some("whsec".into()),
        ..Default::default()
    };
    let key = store.create_key(new).await.unwrap().secret;
    let config = ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().into(),
        allow_private_urls: true,
        role,
        ..ServerConfig::default()
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    let (addr_tx, addr_rx) = tokio::sync::oneshot::channel();
    let done = tokio::spawn(harken_server::run(
        config,
        store.clone(),
        Arc::new(engine),
        move |a| {
            let _ = addr_tx.send(a);
        },
        async move {
            let _ = rx.await;
        },
    ));
    let addr = addr_rx.await.unwrap().expect("the API role listens");
    Server { base: format!("http://{addr}"), key, _store: store, stop: tx, done, _dir: dir }
}

async fn call(s: &Server, method: &str, path: &str, body: Option<Value>) -> Value {
    let client = reqwest::Client::new();
    let url = format!("{}{path}", s.base);
    let req = if method == "POST" { client.post(url).json(&body.unwrap()) } else { client.get(url) };
    let resp = req.bearer_auth(&s.key).send().await.unwrap();
    assert_eq!(resp.status(), 200, "answered requests are HTTP 200");
    resp.json().await.unwrap()
}

async fn final_record(s: &Server, task_id: &str) -> Value {
    for _ in 0..300 {
        let r = call(s, "GET", &format!("/api/v1/jobs/recordInfo?taskId={task_id}"), None).await;
        if matches!(r["data"]["state"].as_str(), Some("success" | "fail")) {
            return r["data"].clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("task {task_id} did not finish");
}

/// `GET /metrics` without a key: the sample lines, checked to be Prometheus' text format.
async fn metrics(s: &Server) -> Vec<String> {
    let resp = reqwest::get(format!("{}/metrics", s.base)).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/plain; version=0.0.4; charset=utf-8");
    let text = resp.text().await.unwrap();
    text.lines().filter(|l| !l.starts_with('#')).map(str::to_owned).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_succeeds_is_charged_and_called_back_signed() {
    let (host, received) = loopback_host().await;
    let s = start(FakeEngine { panic: false }, 100.0, Role::All).await;
    let body = json!({"model": "elevenlabs/speech-to-text", "callBackUrl": format!("{host}/cb"),
        "input": {"audio_url": format!("{host}/a.wav")}});
    let created = call(&s, "POST", "/api/v1/jobs/createTask", Some(body.clone())).await;
    assert_eq!(created["code"], 200, "{created}");
    let id = created["data"]["taskId"].as_str().unwrap().to_owned();
    let record = final_record(&s, &id).await;
    assert_eq!(record["state"], "success", "{record}");
    assert_eq!(serde_json::from_str::<Value>(record["param"].as_str().unwrap()).unwrap(), body);
    let result: Value = serde_json::from_str(record["resultJson"].as_str().unwrap()).unwrap();
    assert_eq!(result["resultObject"]["text"], "hello");
    let charged = record["creditsConsumed"].as_f64().unwrap();
    assert!(charged > 0.0 && charged < 0.1, "about 1 s of audio at 1 credit/min: {charged}");
    assert_eq!(record["progress"], 100);
    for _ in 0..100 {
        if !received.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (headers, cb) = received.lock().unwrap()[0].clone();
    assert_eq!((cb["code"].as_u64(), cb["msg"].as_str()), (Some(200), Some("Playground task completed successfully.")));
    assert_eq!(cb["data"], record, "callback body == recordInfo data");
    let ts: i64 = headers["x-webhook-timestamp"].to_str().unwrap().parse().unwrap();
    assert_eq!(headers["x-webhook-signature"].to_str().unwrap(), harken_server::signature("whsec", &id, ts));
    let credit = call(&s, "GET", "/api/v1/chat/credit", None).await;
    assert!((credit["data"].as_f64().unwrap() - (100.0 - charged)).abs() < 1e-9, "{credit}");
    // The delivery is counted once the store has recorded it, just after the receiver answered.
    let delivered = "harken_callback_attempts_total{result=\"delivered\"} 1";
    let mut samples = metrics(&s).await;
    for _ in 0..50 {
        if samples.iter().any(|l| l == delivered) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        samples = metrics(&s).await;
    }
    for expected in [
        "harken_tasks_created_total 1",
        "harken_tasks_finished_total{outcome=\"success\"} 1",
        "harken_tasks_finished_total{outcome=\"fail\"} 0",
        "harken_tasks_in_progress 0",
        "harken_task_processing_seconds_count 1",
        delivered,
        "harken_draining 0",
        "harken_queue_tasks{state=\"waiting\"} 0",
        "harken_callbacks_pending 0",
    ] {
        assert!(samples.iter().any(|l| l == expected), "{expected:?} not in {samples:#?}");
    }
    s.stop.send(()).unwrap();
    s.done.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_node_reports_the_queue_it_shares_with_the_workers() {
    let (host, _) = loopback_host().await;
    let s = start(FakeEngine { panic: false }, 10.0, Role::Api).await;
    for _ in 0..2 {
        let body = json!({"model": "elevenlabs/speech-to-text", "input": {"audio_url": format!("{host}/a.wav")}});
        call(&s, "POST", "/api/v1/jobs/createTask", Some(body)).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let samples = metrics(&s).await;
    for expected in [
        "harken_store_up 1",
        "harken_queue_tasks{state=\"waiting\"} 2",
        "harken_queue_tasks{state=\"queuing\"} 0",
        "harken_callbacks_pending 0",
        "harken_tasks_in_progress 0",
    ] {
        assert!(samples.iter().any(|l| l == expected), "{expected:?} not in {samples:#?}");
    }
    let oldest: f64 = samples
        .iter()
        .find_map(|l| l.strip_prefix("harken_queue_oldest_waiting_seconds "))
        .expect("the oldest task's wait is reported")
        .parse()
        .unwrap();
    assert!((0.05..60.0).contains(&oldest), "no worker here: the first task still waits ({oldest} s)");
    s.stop.send(()).unwrap();
    s.done.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_panic_is_a_recorded_failure_that_costs_nothing() {
    let (host, _) = loopback_host().await;
    let s = start(FakeEngine { panic: true }, 5.0, Role::All).await;
    let body = json!({"model": "elevenlabs/speech-to-text", "input": {"audio_url": format!("{host}/a.wav")}});
    let created = call(&s, "POST", "/api/v1/jobs/createTask", Some(body)).await;
    let record = final_record(&s, created["data"]["taskId"].as_str().unwrap()).await;
    assert_eq!((record["state"].as_str(), record["failCode"].as_str()), (Some("fail"), Some("500")), "{record}");
    assert!(record["failMsg"].as_str().unwrap().contains("engine crashed"));
    assert_eq!((record["creditsConsumed"].as_u64(), record["remainedCredits"].as_u64()), (Some(0), Some(5)));
    // The worker survived the panic: the next task is processed too.
    let body = json!({"model": "elevenlabs/speech-to-text", "input": {"audio_url": format!("{host}/missing")}});
    let created = call(&s, "POST", "/api/v1/jobs/createTask", Some(body)).await;
    let record = final_record(&s, created["data"]["taskId"].as_str().unwrap()).await;
    assert_eq!(record["failMsg"], "audio_url: server answered HTTP 404");
    let samples = metrics(&s).await;
    for expected in ["harken_tasks_created_total 2", "harken_tasks_finished_total{outcome=\"fail\"} 2"] {
        assert!(samples.iter().any(|l| l == expected), "{expected:?} not in {samples:#?}");
    }
    s.stop.send(()).unwrap();
    s.done.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_longer_than_the_credits_fails_with_402() {
    let (host, _) = loopback_host().await;
    let s = start(FakeEngine { panic: false }, 0.001, Role::All).await;
    let body = json!({"model": "elevenlabs/speech-to-text", "input": {"audio_url": format!("{host}/a.wav")}});
    let created = call(&s, "POST", "/api/v1/jobs/createTask", Some(body)).await;
    let record = final_record(&s, created["data"]["taskId"].as_str().unwrap()).await;
    assert_eq!((record["state"].as_str(), record["failCode"].as_str()), (Some("fail"), Some("402")), "{record}");
    assert!(record["failMsg"].as_str().unwrap().starts_with("credits: the audio lasts"));
    assert_eq!(record["creditsConsumed"], 0);
    s.stop.send(()).unwrap();
    s.done.await.unwrap().unwrap();
}

#[tokio::test]
async fn draining_node_answers_455_and_unknown_paths_404() {
    use tower::ServiceExt;
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open_dir(dir.path()).await.unwrap());
    let blobs = harken_store::blobs::Blobs::local(&dir.path().join("files")).unwrap();
    let state = AppState::new(store, ServerConfig::default(), "fake", blobs);
    let app = harken_server::router(state.clone());
    let send = |req: axum::http::Request<axum::body::Body>| {
        let app = app.clone();
        async move {
            let resp = app.oneshot(req).await.unwrap();
            assert_eq!(resp.status(), 200);
            let bytes = http_body_util::BodyExt::collect(resp.into_body()).await.unwrap().to_bytes();
            serde_json::from_slice::<Value>(&bytes).unwrap()
        }
    };
    let post = || axum::http::Request::post("/api/v1/jobs/createTask").body(axum::body::Body::from("{}")).unwrap();
    assert_eq!(send(post()).await["code"], 401);
    state.start_draining();
    assert_eq!(send(post()).await["code"], 455);
    let missing = send(axum::http::Request::get("/nope").body(axum::body::Body::empty()).unwrap()).await;
    assert_eq!(missing["code"], 404);
    assert_eq!(missing["msg"], "path: expected one of harken's endpoints, received GET /nope");
    let wrong =
        send(axum::http::Request::get("/api/v1/jobs/createTask").body(axum::body::Body::empty()).unwrap()).await;
    assert_eq!(wrong["code"], 404, "{wrong}");
    let spec = send(axum::http::Request::get("/openapi.json").body(axum::body::Body::empty()).unwrap()).await;
    assert_eq!(spec["openapi"], "3.1.0");
    assert!(spec["paths"]["/api/v1/jobs/createTask"]["post"].is_object(), "{spec}");
}
