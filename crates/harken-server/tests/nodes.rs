//! Nodes that share nothing but PostgreSQL and an S3 bucket: an API node and worker nodes, each
//! with a data dir of its own, run in this process with a stand-in engine (the real engine and
//! separate processes are covered by `harken`'s API tests, `tests/api/scaleout.rs`). Real parts
//! otherwise: a fresh database on `HARKEN_TEST_PG` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`), moto's S3 server on loopback (from the venv
//! `scripts/install-deps` makes), HTTP on loopback, espeak-ng audio.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::response::IntoResponse as _;
use harken_engine::{EngineError, Progress, SpeechEngine, TranscribeOptions};
use harken_server::{DatabaseUrl, Role, ServerConfig};
use harken_store::{PostgresStore, Store};
use harken_testkit::{TestDb, S3};
use harken_types::{Transcript, Word, WordKind};
use serde_json::{json, Value};

/// Says "hello" for any audio; while `hold` is set it waits first (a worker busy with a task).
struct FakeEngine {
    hold: Arc<AtomicBool>,
}

impl SpeechEngine for FakeEngine {
    fn transcribe(&self, samples: &[f32], _: &TranscribeOptions, _: Progress<'_>) -> Result<Transcript, EngineError> {
        // Bounded, so a failing test ends instead of waiting for this thread forever.
        let until = Instant::now() + Duration::from_secs(30);
        while self.hold.load(Ordering::SeqCst) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
        let end = samples.len() as f64 / 16_000.0;
        let word = Word { text: "hello".into(), start: 0.0, end, kind: WordKind::Word, speaker_id: None, logprob: 0.0 };
        Ok(Transcript {
            language_code: "eng".into(),
            language_probability: 1.0,
            text: "hello".into(),
            words: vec![word],
        })
    }
    fn model_name(&self) -> &str {
        "fake"
    }
}

/// One node: `harken_server::run` with its own data dir and its own runtime, as if it were a
/// process of its own (shutting the runtime down stops every task of the node at once, like a
/// `kill -9`), on the shared database and bucket.
struct Node {
    addr: Option<SocketAddr>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Node {
    async fn start(role: Role, dir: &Path, db: &TestDb, s3: &S3, hold: Arc<AtomicBool>) -> Node {
        // The standard AWS variables, as a deployment sets them (the same values for every test).
        for (name, value) in S3::ENV {
            std::env::set_var(name, value);
        }
        let config = ServerConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: dir.into(),
            role,
            database_url: Some(DatabaseUrl(db.url.clone())),
            object_store_url: Some(format!("s3://{}/nodes", s3.bucket)),
            s3_endpoint: Some(s3.endpoint.clone()),
            lease_secs: 2,
            // Workers fetch from the loopback audio host; the API node keeps the default.
            allow_private_urls: role == Role::Worker,
            // Workers serve their health and counters, nothing else.
            ops_listen: (role == Role::Worker).then(|| "127.0.0.1:0".parse().unwrap()),
            ..ServerConfig::default()
        };
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let (ready, addr) = tokio::sync::oneshot::channel();
        let done = runtime.spawn(async move {
            let store = harken_store::open_store(&config.store_location()?, true).await?;
            let on_ready = move |a| {
                let _ = ready.send(a);
            };
            let shutdown = async move {
                let _ = stopped.await;
            };
            harken_server::run(config, store, Arc::new(FakeEngine { hold }), on_ready, shutdown).await
        });
        let addr = addr.await.expect("the node starts");
        Node { addr, stop: Some(stop), done: Some(done), runtime: Some(runtime) }
    }

    /// The API's address, or a worker's `--ops-listen` one.
    fn base(&self) -> String {
        format!("http://{}", self.addr.expect("the node listens"))
    }

    /// Like a machine losing power: every task of the node stops at once, no shutdown code runs.
    fn kill(mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }

    /// SIGTERM: drain, release, stop.
    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.done.take().unwrap().await.unwrap().unwrap();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // Dropping a runtime may block, which an async test must not do.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

fn speech_wav(dir: &Path) -> Vec<u8> {
    let wav = dir.join("speech.wav");
    let ok = Command::new("espeak-ng").arg("-w").arg(&wav).arg("hello world, this is a test").status().unwrap();
    assert!(ok.success(), "espeak-ng runs");
    std::fs::read(&wav).unwrap()
}

async fn kie(base: &str, key: &str, path: &str, body: Option<Value>) -> Value {
    let client = reqwest::Client::new();
    let req = match body {
        Some(b) => client.post(format!("{base}{path}")).json(&b),
        None => client.get(format!("{base}{path}")),
    };
    let resp = req.bearer_auth(key).send().await.unwrap();
    assert_eq!(resp.status(), 200, "answered requests are HTTP 200");
    resp.json().await.unwrap()
}

async fn final_record(base: &str, key: &str, task_id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = kie(base, key, &format!("/api/v1/jobs/recordInfo?taskId={task_id}"), None).await;
        if matches!(r["data"]["state"].as_str(), Some("success" | "fail")) {
            return r["data"].clone();
        }
        assert!(Instant::now() < deadline, "task {task_id} not final: {r}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn elevenlabs(base: &str, key: &str, fields: &[(&str, &str)], file: Vec<u8>) -> (u16, Value) {
    let mut form = reqwest::multipart::Form::new().part("file", reqwest::multipart::Part::bytes(file).file_name("a"));
    for (k, v) in fields {
        form = form.text(k.to_string(), v.to_string());
    }
    let resp = reqwest::Client::new()
        .post(format!("{base}/v1/speech-to-text"))
        .header("xi-api-key", key)
        .multipart(form)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

/// Every file under `dir` except logs and scratch (`tmp/`), relative to it.
fn stored_files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.retain(|f| !f.starts_with("tmp/"));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn files_received_by_the_api_node_are_read_by_a_worker_through_s3() {
    let db = TestDb::create();
    let s3 = S3::start("harken-nodes");
    let root = tempfile::tempdir().unwrap();
    let go = Arc::new(AtomicBool::new(false));
    let api = Node::start(Role::Api, &root.path().join("api"), &db, &s3, go.clone()).await;
    let worker = Node::start(Role::Worker, &root.path().join("worker"), &db, &s3, go.clone()).await;
    let store = PostgresStore::connect(&db.url).await.unwrap();
    let new = harken_store::NewKey { credits: harken_store::Credits::from_f64(100.0), ..Default::default() };
    let key = store.create_key(new).await.unwrap().secret;
    let base = api.base();
    let wav = speech_wav(root.path());

    // A Kie stream upload, then that file as audio_url: the worker refuses private URLs, so it
    // can only have read the bytes from the bucket.
    let form = reqwest::multipart::Form::new()
        .part("file", reqwest::multipart::Part::bytes(wav.clone()).file_name("talk.wav"))
        .text("uploadPath", "meetings");
    let resp = reqwest::Client::new()
        .post(format!("{base}/api/file-stream-upload"))
        .bearer_auth(&key)
        .multipart(form)
        .send()
        .await
        .unwrap();
    let r: Value = resp.json().await.unwrap();
    assert_eq!(r["code"], 200, "{r}");
    let file_id = r["data"]["fileId"].as_str().unwrap();
    assert_eq!(s3.keys("nodes/uploads/").await, [format!("nodes/uploads/{file_id}")]);
    let url = r["data"]["downloadUrl"].as_str().unwrap();
    let part = reqwest::Client::new().get(url).header("range", "bytes=-4").send().await.unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(part.bytes().await.unwrap().as_ref(), &wav[wav.len() - 4..]);
    let body = json!({"model": "elevenlabs/speech-to-text", "input": {"audio_url": url}});
    let created = kie(&base, &key, "/api/v1/jobs/createTask", Some(body)).await;
    let record = final_record(&base, &key, created["data"]["taskId"].as_str().unwrap()).await;
    assert_eq!(record["state"], "success", "{record}");

    // ElevenLabs requests with a file, one of them raw PCM (rewritten with a WAV header in the bucket).
    let (status, answer) = elevenlabs(&base, &key, &[("model_id", "scribe_v1")], wav.clone()).await;
    assert_eq!((status, answer["text"].as_str()), (200, Some("hello")), "{answer}");
    let pcm = wav[44..].to_vec(); // espeak-ng writes 22 050 Hz; as 16 kHz PCM it is just slower speech
    let fields = [("model_id", "scribe_v1"), ("file_format", "pcm_s16le_16")];
    let (status, answer) = elevenlabs(&base, &key, &fields, pcm).await;
    assert_eq!((status, answer["text"].as_str()), (200, Some("hello")), "{answer}");

    // Request files are gone once their tasks ended; no node kept bytes in its data dir.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !s3.keys("nodes/requests/").await.is_empty() {
        assert!(Instant::now() < deadline, "request files left: {:?}", s3.keys("nodes/requests/").await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for node in ["api", "worker"] {
        let stored = stored_files(&root.path().join(node));
        assert!(stored.is_empty(), "the {node} node kept bytes in its data dir: {stored:?}");
    }

    // Each node counts its own share; both see the same (empty) queue.
    let finished_here = "harken_tasks_finished_total{outcome=\"success\"} 3";
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut on_worker = metrics(&worker.base()).await;
    while !on_worker.iter().any(|l| l == finished_here) {
        assert!(Instant::now() < deadline, "{finished_here:?} not in {on_worker:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
        on_worker = metrics(&worker.base()).await;
    }
    let on_api = metrics(&base).await;
    for (samples, expected) in [
        (&on_worker, "harken_tasks_created_total 0"),
        (&on_worker, "harken_queue_tasks{state=\"waiting\"} 0"),
        (&on_api, "harken_tasks_created_total 3"),
        (&on_api, "harken_tasks_finished_total{outcome=\"success\"} 0"),
        (&on_api, "harken_queue_tasks{state=\"waiting\"} 0"),
    ] {
        assert!(samples.iter().any(|l| l == expected), "{expected:?} not in {samples:#?}");
    }
    let health: Value = reqwest::get(format!("{}/healthz", worker.base())).await.unwrap().json().await.unwrap();
    assert_eq!(health["data"]["status"], "ok", "{health}");
    assert_eq!(health["data"]["diarization"], false, "the stand-in engine labels no speakers: {health}");
    let health: Value = reqwest::get(format!("{base}/healthz")).await.unwrap().json().await.unwrap();
    assert_eq!(health["data"]["diarization"], Value::Null, "a node without workers: {health}");
    let api_on_worker = reqwest::Client::new()
        .post(format!("{}/api/v1/jobs/createTask", worker.base()))
        .bearer_auth(&key)
        .json(&json!({"model": "elevenlabs/speech-to-text", "input": {"audio_url": url}}))
        .send()
        .await
        .unwrap();
    let refused: Value = api_on_worker.json().await.unwrap();
    assert_eq!(refused["code"], 404, "a worker's ops port serves no API: {refused}");
    store.close().await;
    worker.stop().await;
    api.stop().await;
}

/// The sample lines of a node's `GET /metrics`.
async fn metrics(base: &str) -> Vec<String> {
    let text = reqwest::get(format!("{base}/metrics")).await.unwrap().text().await.unwrap();
    text.lines().filter(|l| !l.starts_with('#')).map(str::to_owned).collect()
}

/// Serves a recording once, then 404; counts requests.
async fn one_shot_audio(wav: Vec<u8>) -> (String, Arc<AtomicUsize>) {
    let served = Arc::new(AtomicUsize::new(0));
    let count = served.clone();
    let app = axum::Router::new().route(
        "/once.wav",
        axum::routing::get(move || {
            let (count, wav) = (count.clone(), wav.clone());
            async move {
                match count.fetch_add(1, Ordering::SeqCst) {
                    0 => wav.into_response(),
                    _ => axum::http::StatusCode::NOT_FOUND.into_response(),
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/once.wav", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, served)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_retry_on_another_worker_reads_the_kept_download() {
    the_next_worker_reads_the_kept_download(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_task_released_at_shutdown_is_not_downloaded_again() {
    the_next_worker_reads_the_kept_download(true).await;
}

/// A worker downloads a task's audio from a URL that answers once, then dies (`graceful`: is
/// stopped, SIGTERM-like, and releases the task); another worker finishes the task from the copy
/// the first one kept.
async fn the_next_worker_reads_the_kept_download(graceful: bool) {
    let db = TestDb::create();
    let s3 = S3::start("harken-retry");
    let root = tempfile::tempdir().unwrap();
    let (url, served) = one_shot_audio(speech_wav(root.path())).await;
    let (busy, free) = (Arc::new(AtomicBool::new(true)), Arc::new(AtomicBool::new(false)));
    let api = Node::start(Role::Api, &root.path().join("api"), &db, &s3, free.clone()).await;
    let first = Node::start(Role::Worker, &root.path().join("w1"), &db, &s3, busy.clone()).await;
    let store = PostgresStore::connect(&db.url).await.unwrap();
    let new = harken_store::NewKey { credits: harken_store::Credits::from_f64(100.0), ..Default::default() };
    let key = store.create_key(new).await.unwrap().secret;
    let base = api.base();
    let body = json!({"model": "elevenlabs/speech-to-text", "input": {"audio_url": url}});
    let created = kie(&base, &key, "/api/v1/jobs/createTask", Some(body)).await;
    let task = created["data"]["taskId"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(30);
    while store.task(&task).await.unwrap().unwrap().state.as_str() != "generating" {
        assert!(Instant::now() < deadline, "the first worker never started the task");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(s3.keys("nodes/fetched/").await, [format!("nodes/fetched/{task}")], "kept before decoding");
    if graceful {
        first.stop().await;
    } else {
        first.kill();
    }
    // The URL answers no more; the second worker must read the kept copy.
    let second = Node::start(Role::Worker, &root.path().join("w2"), &db, &s3, free.clone()).await;
    let record = final_record(&base, &key, &task).await;
    assert_eq!(record["state"], "success", "{record}");
    assert_eq!(served.load(Ordering::SeqCst), 1, "downloaded once");
    let attempts = store.task(&task).await.unwrap().unwrap().attempts;
    match graceful {
        true => assert_eq!(attempts, 1, "a release is not an attempt"),
        false => assert_eq!(attempts, 2, "run again after the lease expired"),
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while !s3.keys("nodes/fetched/").await.is_empty() {
        assert!(Instant::now() < deadline, "the kept copy outlived its task");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    busy.store(false, Ordering::SeqCst); // lets the dead worker's engine thread end
    store.close().await;
    second.stop().await;
    api.stop().await;
}
