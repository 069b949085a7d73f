//! The test app: start/stop the real server, create keys through the CLI, one helper per
//! endpoint, a loopback audio host and a loopback callback receiver.

#![allow(dead_code)]

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use serde_json::{json, Value};

pub const BIN: &str = env!("CARGO_BIN_EXE_harken");
pub const MODEL: &str = "elevenlabs/speech-to-text";
/// What espeak-ng says in `/speech.wav`.
pub const SPOKEN: &str = "Good morning. This is a test. Please call me back tomorrow.";

/// A running `harken serve`.
pub struct Harken {
    child: Option<Child>,
    pub base: String,
    pub data_dir: PathBuf,
}

impl Harken {
    /// Starts a server on a free port over `data_dir` (private URLs allowed unless `extra` asks
    /// otherwise through `Harken::start_with`).
    pub fn start(data_dir: &Path, extra: &[&str]) -> Harken {
        Self::start_with(data_dir, true, extra)
    }

    pub fn start_with(data_dir: &Path, allow_private: bool, extra: &[&str]) -> Harken {
        Self::start_env(data_dir, allow_private, extra, &[])
    }

    /// Like [`Harken::start_with`], with extra environment variables for the server.
    pub fn start_env(data_dir: &Path, allow_private: bool, extra: &[&str], env: &[(&str, &str)]) -> Harken {
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--model", "tiny.en", "--data-dir"]).arg(data_dir);
        cmd.args(extra).env_remove("HARKEN_ALLOW_PRIVATE_URLS").envs(env.iter().copied());
        if allow_private {
            cmd.arg("--allow-private-urls");
        }
        match std::env::var("RUST_LOG") {
            Ok(filter) => cmd.env("HARKEN_LOG", filter).stderr(Stdio::inherit()),
            Err(_) => {
                let log = std::fs::OpenOptions::new().create(true).append(true).open(data_dir.join("server.log"));
                cmd.stderr(log.map(Stdio::from).unwrap_or_else(|_| Stdio::null()))
            }
        };
        std::fs::create_dir_all(data_dir).unwrap();
        let mut child = cmd.stdout(Stdio::piped()).spawn().expect("harken starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(url) = line.strip_prefix("harken: listening on ") {
                        return Harken { child: Some(child), base: url.trim().to_owned(), data_dir: data_dir.into() };
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let log = std::fs::read_to_string(data_dir.join("server.log")).unwrap_or_default();
                    panic!("harken serve did not start: {:?}\n{log}", child.wait());
                }
            }
        }
    }

    /// `harken keys create`; returns the key (the last line of stdout).
    pub fn key(&self, credits: f64, webhook_secret: Option<&str>) -> String {
        create_key(&self.data_dir, credits, webhook_secret)
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// SIGTERM, then waits for the exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        let ok = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
        assert!(ok.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "harken did not exit within 30 s of SIGTERM");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub async fn create(&self, key: &str, body: &Value) -> Value {
        self.create_raw(Some(key), &body.to_string()).await
    }

    pub async fn create_raw(&self, key: Option<&str>, body: &str) -> Value {
        let mut req = client().post(format!("{}/api/v1/jobs/createTask", self.base)).body(body.to_owned());
        req = req.header("content-type", "application/json");
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        answer(req).await
    }

    /// createTask that must succeed; returns the task id.
    pub async fn submit(&self, key: &str, body: &Value) -> String {
        let r = self.create(key, body).await;
        assert_eq!(r["code"], 200, "createTask: {r}");
        r["data"]["taskId"].as_str().expect("a taskId").to_owned()
    }

    pub async fn record(&self, key: &str, task_id: &str) -> Value {
        let url = format!("{}/api/v1/jobs/recordInfo?taskId={task_id}", self.base);
        answer(client().get(url).bearer_auth(key)).await
    }

    pub async fn credit(&self, key: &str) -> f64 {
        let r = answer(client().get(format!("{}/api/v1/chat/credit", self.base)).bearer_auth(key)).await;
        assert_eq!(r["code"], 200, "{r}");
        r["data"].as_f64().unwrap()
    }

    /// Polls recordInfo until the task is final; returns its data and the states seen.
    pub async fn wait_final(&self, key: &str, task_id: &str, within: Duration) -> (Value, Vec<String>) {
        let deadline = Instant::now() + within;
        let mut seen: Vec<String> = Vec::new();
        loop {
            let r = self.record(key, task_id).await;
            assert_eq!(r["code"], 200, "recordInfo: {r}");
            let state = r["data"]["state"].as_str().unwrap().to_owned();
            if seen.last() != Some(&state) {
                seen.push(state.clone());
            }
            if state == "success" || state == "fail" {
                return (r["data"].clone(), seen);
            }
            assert!(Instant::now() < deadline, "task {task_id} still {state} after {within:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Harken {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub fn create_key(data_dir: &Path, credits: f64, webhook_secret: Option<&str>) -> String {
    let mut cmd = Command::new(BIN);
    cmd.args(["keys", "create", "--credits", &credits.to_string(), "--data-dir"]).arg(data_dir);
    if let Some(s) = webhook_secret {
        cmd.args(["--webhook-secret", s]);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "keys create: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().last().unwrap().trim().to_owned()
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap()
}

async fn answer(req: reqwest::RequestBuilder) -> Value {
    let resp = req.send().await.expect("harken answers");
    assert_eq!(resp.status(), 200, "answered requests are HTTP 200");
    resp.json().await.expect("a JSON envelope")
}

pub fn task_body(audio_url: &str, callback: Option<&str>) -> Value {
    let mut body = json!({"model": MODEL, "input": {"audio_url": audio_url, "language_code": "en"}});
    if let Some(cb) = callback {
        body["callBackUrl"] = json!(cb);
    }
    body
}

/// A loopback HTTP host for audio: `/speech.wav` (espeak-ng), `/page.html`, `/empty`, `/loop`
/// (redirects to itself), any `extra` files, anything else 404.
pub struct AudioHost {
    pub base: String,
    _dir: tempfile::TempDir,
}

impl AudioHost {
    pub async fn start() -> AudioHost {
        Self::start_with(Vec::new()).await
    }

    /// With `extra` (path, WAV bytes) routes besides the usual ones.
    pub async fn start_with(extra: Vec<(&'static str, Vec<u8>)>) -> AudioHost {
        let dir = tempfile::tempdir().unwrap();
        let wav = dir.path().join("speech.wav");
        let status = Command::new("espeak-ng")
            .args(["-s", "130", "-w"])
            .arg(&wav)
            .arg(SPOKEN)
            .status()
            .expect("espeak-ng is installed");
        assert!(status.success());
        let speech = std::fs::read(&wav).unwrap();
        let mut app = axum::Router::new()
            .route(
                "/speech.wav",
                axum::routing::get(move || async move { ([("content-type", "audio/wav")], speech.clone()) }),
            )
            .route(
                "/page.html",
                axum::routing::get(|| async {
                    ([("content-type", "text/html")], "<!DOCTYPE html><html><body>not audio</body></html>")
                }),
            )
            .route("/empty", axum::routing::get(|| async { ([("content-type", "audio/mpeg")], "") }))
            .route("/loop", axum::routing::get(|| async { (StatusCode::FOUND, [("location", "/loop")]) }));
        for (path, bytes) in extra {
            app = app.route(path, axum::routing::get(move || async move { ([("content-type", "audio/wav")], bytes.clone()) }));
        }
        let base = serve(app, "127.0.0.1:0").await;
        AudioHost { base, _dir: dir }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// One callback as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Value,
    /// The body's bytes as sent (signatures are computed over them).
    pub raw: Vec<u8>,
}

/// A loopback callback receiver that records every POST to `/cb` and answers `status`.
#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    pub received: Arc<Mutex<Vec<Received>>>,
    pub status: Arc<AtomicU16>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        Self::start_on("127.0.0.1:0").await
    }

    /// Binds `addr` (e.g. a port the server was told about while nothing listened on it).
    pub async fn start_on(addr: &str) -> Receiver {
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let status = Arc::new(AtomicU16::new(200));
        let (r, s) = (received.clone(), status.clone());
        let app = axum::Router::new().route(
            "/cb",
            axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| async move {
                let raw = body.to_vec();
                let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
                r.lock().unwrap().push(Received { headers, body, raw });
                StatusCode::from_u16(s.load(Ordering::SeqCst)).unwrap()
            }),
        );
        let base = serve(app, addr).await;
        Receiver { url: format!("{base}/cb"), received, status }
    }

    pub fn all(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Waits until `n` callbacks arrived.
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Received> {
        let deadline = Instant::now() + within;
        loop {
            let all = self.all();
            if all.len() >= n {
                return all;
            }
            assert!(Instant::now() < deadline, "{} callbacks after {within:?}, expected {n}", all.len());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn serve(app: axum::Router, addr: &str) -> String {
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

/// How a receiver checks a signed callback: recompute the HMAC over `taskId.timestamp`.
pub fn verify_signature(secret: &str, received: &Received) -> bool {
    use base64::Engine as _;
    use hmac::Mac;
    let (Some(ts), Some(sig)) =
        (received.headers.get("x-webhook-timestamp"), received.headers.get("x-webhook-signature"))
    else {
        return false;
    };
    let task_id = received.body["data"]["taskId"].as_str().unwrap_or_default();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{task_id}.{}", ts.to_str().unwrap()).as_bytes());
    let Ok(sig) = base64::engine::general_purpose::STANDARD.decode(sig.as_bytes()) else {
        return false;
    };
    mac.verify_slice(&sig).is_ok()
}

/// Lower-cased words of a transcript, punctuation stripped.
pub fn words_of(record: &Value) -> Vec<String> {
    let result: Value = serde_json::from_str(record["resultJson"].as_str().expect("resultJson is a string")).unwrap();
    result["resultObject"]["words"]
        .as_array()
        .expect("words")
        .iter()
        .filter(|w| w["type"] == "word")
        .map(|w| w["text"].as_str().unwrap().trim().trim_matches(|c: char| !c.is_alphanumeric()).to_lowercase())
        .collect()
}

pub fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// How many of the words in [`SPOKEN`] the transcript has (espeak-ng's voice is synthetic and
/// tiny.en mishears some words, so tests ask for most rather than all).
pub fn recognised(record: &Value) -> (usize, usize) {
    let heard = words_of(record);
    let spoken: Vec<String> =
        SPOKEN.split_whitespace().map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()).to_lowercase()).collect();
    (spoken.iter().filter(|w| heard.contains(w)).count(), spoken.len())
}

/// Every file under `dir`, as paths relative to it.
pub fn files_under(dir: &Path) -> Vec<String> {
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
    out
}
