//! Scale-out: several `harken` processes on one PostgreSQL database (a fresh `harken_test_<random>`
//! per test on `HARKEN_TEST_PG`, default `postgres://postgres@127.0.0.1:5432/postgres`, dropped
//! after). API nodes (`serve --role api`) take tasks, worker nodes (`harken worker`) run them;
//! a worker killed with SIGKILL loses its task to another; 200 tasks over three workers are each
//! run to success once and charged once. With an S3 object store (moto on loopback) and no shared
//! data dir, files received by an API node reach the workers, and a retry after a worker's death
//! reads the audio the dead worker downloaded instead of downloading it again.

use std::collections::{HashMap, HashSet};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::response::IntoResponse as _;
use harken_store::{PostgresStore, Store};
use serde_json::{json, Value};

use harken_testkit::S3;

use crate::helpers::*;

/// A fresh database with harken's schema (`harken migrate`); dropped with the value.
struct TestDb(harken_testkit::TestDb);

impl std::ops::Deref for TestDb {
    type Target = harken_testkit::TestDb;
    fn deref(&self) -> &harken_testkit::TestDb {
        &self.0
    }
}

impl TestDb {
    fn create() -> TestDb {
        let db = harken_testkit::TestDb::create();
        let out = Command::new(BIN).args(["migrate", "--database-url", &db.url]).output().unwrap();
        assert!(out.status.success(), "harken migrate: {}", String::from_utf8_lossy(&out.stderr));
        TestDb(db)
    }

    fn key(&self, credits: f64, webhook_secret: Option<&str>) -> String {
        let mut cmd = Command::new(BIN);
        cmd.args(["keys", "create", "--credits", &credits.to_string(), "--database-url", &self.url]);
        if let Some(s) = webhook_secret {
            cmd.args(["--webhook-secret", s]);
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "keys create: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().lines().last().unwrap().trim().to_owned()
    }

    async fn store(&self) -> PostgresStore {
        PostgresStore::connect(&self.url).await.expect("the test connects to its database")
    }
}

/// An API node: `serve --role api` on the shared database.
fn api_node(dir: &Path, db: &TestDb) -> Harken {
    Harken::start(dir, &["--role", "api", "--database-url", &db.url, "--no-migrate", "--rate-limit", "1000"])
}

/// A `harken worker` process; killed (SIGKILL) when dropped.
struct WorkerNode {
    child: Option<Child>,
    log: PathBuf,
}

impl WorkerNode {
    fn start(dir: &Path, db: &TestDb, lease_secs: u64) -> WorkerNode {
        Self::start_with(dir, db, lease_secs, &["--allow-private-urls".to_owned()], &[])
    }

    /// A worker with `extra` flags and `env` (private URLs refused unless `extra` allows them).
    fn start_with(dir: &Path, db: &TestDb, lease_secs: u64, extra: &[String], env: &[(&str, &str)]) -> WorkerNode {
        std::fs::create_dir_all(dir).unwrap();
        let log = dir.join("worker.log");
        let mut cmd = Command::new(BIN);
        cmd.args(["worker", "--model", "tiny.en", "--database-url", &db.url, "--no-migrate"])
            .args(["--lease-secs", &lease_secs.to_string(), "--threads", "1", "--data-dir"])
            .arg(dir)
            .args(extra)
            .env_remove("HARKEN_ALLOW_PRIVATE_URLS")
            .envs(env.iter().copied())
            .env("HARKEN_LOG", "info")
            .env("NO_COLOR", "1")
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
            .stdout(Stdio::piped());
        let mut child = cmd.spawn().expect("harken worker starts");
        let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        for line in stdout.lines().map_while(Result::ok) {
            if line.trim() == "harken: worker ready" {
                return WorkerNode { child: Some(child), log };
            }
        }
        let _ = child.kill();
        panic!(
            "harken worker did not start: {:?}\n{}",
            child.wait(),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// Task ids this worker recorded as finished with `state`, from its log.
    fn finished(&self, state: &str) -> Vec<String> {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let needle = format!("state=\"{state}\"");
        log.lines()
            .filter(|l| l.contains("task finished") && l.contains(&needle))
            .filter_map(|l| l.split("task.id=").nth(1))
            .map(|rest| rest.split(|c: char| !(c.is_alphanumeric() || c == '_')).next().unwrap().to_owned())
            .collect()
    }
}

impl WorkerNode {
    /// `elapsed_ms` of every finished task in the log (claim to recorded outcome).
    fn elapsed_ms(&self) -> Vec<u64> {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        log.lines()
            .filter(|l| l.contains("task finished"))
            .filter_map(|l| l.split("elapsed_ms=").nth(1)?.split_whitespace().next()?.parse().ok())
            .collect()
    }
}

impl Drop for WorkerNode {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A loopback host serving one short clip (~1 s, "Good morning.") at `/short.wav`.
async fn short_audio() -> (String, tempfile::TempDir) {
    let dir = temp_dir();
    let wav = dir.path().join("short.wav");
    let ok = Command::new("espeak-ng").args(["-s", "160", "-w"]).arg(&wav).arg("Good morning.").status().unwrap();
    assert!(ok.success(), "espeak-ng runs");
    let bytes = std::fs::read(&wav).unwrap();
    let app = axum::Router::new().route(
        "/short.wav",
        axum::routing::get(move || async move { ([("content-type", "audio/wav")], bytes.clone()) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/short.wav", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, dir)
}

fn fast_body(audio_url: &str, callback: Option<&str>) -> Value {
    let mut body = task_body(audio_url, callback);
    body["input"]["diarize"] = json!(false);
    body["input"]["tag_audio_events"] = json!(false);
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_submitted_to_one_api_node_finish_on_other_nodes() {
    let db = TestDb::create();
    let root = temp_dir();
    let host = AudioHost::start().await;
    let receiver = Receiver::start().await;
    let (a, b) = (api_node(&root.path().join("api-a"), &db), api_node(&root.path().join("api-b"), &db));
    let _w1 = WorkerNode::start(&root.path().join("w1"), &db, 30);
    let _w2 = WorkerNode::start(&root.path().join("w2"), &db, 30);
    let key = db.key(100.0, Some("cb-secret"));
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(a.submit(&key, &task_body(&host.url("/speech.wav"), Some(&receiver.url))).await);
    }
    let mut charged = 0.0;
    for id in &ids {
        // Polled through the other API node: no node holds state of its own.
        let (record, _) = b.wait_final(&key, id, Duration::from_secs(180)).await;
        assert_eq!(record["state"], "success", "{record}");
        let (heard, spoken) = recognised(&record);
        assert!(heard * 2 >= spoken, "{heard} of {spoken} spoken words: {record}");
        charged += record["creditsConsumed"].as_f64().unwrap();
    }
    let callbacks = receiver.wait_for(ids.len(), Duration::from_secs(30)).await;
    let called: HashSet<&str> = callbacks.iter().map(|r| r.body["data"]["taskId"].as_str().unwrap()).collect();
    assert_eq!(called, ids.iter().map(String::as_str).collect(), "one callback per task");
    assert!(callbacks.iter().all(|r| verify_signature("cb-secret", r)), "signed by the worker nodes");
    let remaining = a.credit(&key).await;
    assert!((100.0 - charged - remaining).abs() < 1e-6, "charged {charged}, remaining {remaining}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_a_worker_mid_task_and_another_worker_finishes_it() {
    let db = TestDb::create();
    let root = temp_dir();
    let host = AudioHost::start().await;
    let api = api_node(&root.path().join("api"), &db);
    let mut first = WorkerNode::start(&root.path().join("w1"), &db, 3);
    let key = db.key(100.0, None);
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(api.submit(&key, &task_body(&host.url("/speech.wav"), None)).await);
    }
    // Only the first worker runs: whatever is generating is its task.
    let deadline = Instant::now() + Duration::from_secs(120);
    let killed = 'found: loop {
        for id in &ids {
            if api.record(&key, id).await["data"]["state"] == "generating" {
                break 'found id.clone();
            }
        }
        assert!(Instant::now() < deadline, "no task started generating");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    first.kill9();
    let _second = WorkerNode::start(&root.path().join("w2"), &db, 3);
    let mut charged = 0.0;
    for id in &ids {
        let (record, _) = api.wait_final(&key, id, Duration::from_secs(180)).await;
        assert_eq!(record["state"], "success", "{record}");
        charged += record["creditsConsumed"].as_f64().unwrap();
    }
    let store = db.store().await;
    let task = store.task(&killed).await.unwrap().unwrap();
    assert!(task.attempts >= 2, "the killed worker's task was claimed again: {} attempts", task.attempts);
    let remaining = api.credit(&key).await;
    assert!((100.0 - charged - remaining).abs() < 1e-6, "charged {charged}, remaining {remaining}: once each");
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_tasks_over_three_workers_none_lost_none_twice() {
    const TASKS: usize = 200;
    let db = TestDb::create();
    let root = temp_dir();
    let (audio, _audio_dir) = short_audio().await;
    let receiver = Receiver::start().await;
    let api = api_node(&root.path().join("api"), &db);
    let workers: Vec<WorkerNode> =
        (0..3).map(|i| WorkerNode::start(&root.path().join(format!("w{i}")), &db, 30)).collect();
    let key = db.key(1000.0, None);
    let started = Instant::now();
    let mut ids: Vec<String> = Vec::new();
    let body = fast_body(&audio, Some(&receiver.url));
    for _ in 0..TASKS {
        ids.push(api.submit(&key, &body).await);
    }
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), TASKS, "task ids are unique");

    let store = db.store().await;
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut done = 0; // tasks are claimed in creation order: poll from the first still open
    while done < TASKS {
        let t = store.task(&ids[done]).await.unwrap().expect("no task lost");
        if t.state.is_final() {
            done += 1;
            continue;
        }
        assert!(Instant::now() < deadline, "{} of {TASKS} tasks still open after 240 s", TASKS - done);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let elapsed = started.elapsed();

    let mut charged = 0i64;
    let mut cost = None;
    for id in &ids {
        let t = store.task(id).await.unwrap().unwrap();
        assert_eq!(t.state.as_str(), "success", "{id}: {:?} {:?}", t.fail_code, t.fail_msg);
        assert_eq!(t.attempts, 1, "{id} was claimed once");
        assert!(t.credits_consumed.millis() > 0, "{id} was charged");
        assert_eq!(*cost.get_or_insert(t.credits_consumed), t.credits_consumed, "the same clip costs the same");
        charged += t.credits_consumed.millis();
    }
    let k = store.list_keys().await.unwrap().into_iter().next().unwrap();
    assert_eq!(k.reserved.millis(), 0, "no reservation left over");
    assert_eq!(1_000_000 - k.credits.millis(), charged, "the key paid exactly the sum of its tasks");

    // Each task run to success by exactly one worker; every worker took part.
    let mut runs: HashMap<String, usize> = HashMap::new();
    let mut per_worker = Vec::new();
    for w in &workers {
        let done = w.finished("success");
        per_worker.push(done.len());
        for id in done {
            *runs.entry(id).or_default() += 1;
        }
    }
    assert_eq!(runs.len(), TASKS, "every task finished in some worker's log");
    assert!(runs.values().all(|&n| n == 1), "no task ran twice to success");
    assert!(per_worker.iter().all(|&n| n > 0), "all three workers took tasks: {per_worker:?}");

    let callbacks = receiver.wait_for(TASKS, Duration::from_secs(60)).await;
    let called: HashSet<&str> = callbacks.iter().map(|r| r.body["data"]["taskId"].as_str().unwrap()).collect();
    assert_eq!(called.len(), TASKS, "a callback for every task");
    assert_eq!(callbacks.len(), TASKS, "no callback sent twice");
    let task_ms: Vec<u64> = workers.iter().flat_map(|w| w.elapsed_ms()).collect();
    let mean_ms = task_ms.iter().sum::<u64>() / task_ms.len().max(1) as u64;
    eprintln!(
        "scaleout: {TASKS} tasks over 3 workers in {elapsed:.1?}, per worker {per_worker:?}, {mean_ms} ms per task"
    );
    store.close().await;
}

/// An API node and a worker node sharing only the database and an S3 bucket (each its own data
/// dir): a Kie stream upload used as `audio_url`, and an ElevenLabs request with a file, are both
/// transcribed by the worker, which refuses private URLs, so it read them from the bucket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_reach_a_worker_on_another_machine_through_s3() {
    let db = TestDb::create();
    let s3 = S3::start("harken-files");
    let root = temp_dir();
    let s3_args = s3.node_args("cluster");
    let mut api_args: Vec<&str> = vec!["--role", "api", "--database-url", &db.url, "--no-migrate"];
    api_args.extend(s3_args.iter().map(String::as_str));
    let api = Harken::start_env(&root.path().join("api"), false, &api_args, &S3::ENV);
    let _worker = WorkerNode::start_with(&root.path().join("worker"), &db, 30, &s3_args, &S3::ENV);
    let key = db.key(100.0, None);
    let wav = std::fs::read(crate::dialects::speech_wav(root.path())).unwrap();

    let r = api.upload_stream(Some(&key), Some(("talk.wav", wav.clone())), &[("uploadPath", "meetings")]).await;
    assert_eq!(r["code"], 200, "{r}");
    let file_id = r["data"]["fileId"].as_str().unwrap();
    let url = r["data"]["downloadUrl"].as_str().unwrap();
    assert_eq!(
        s3.keys("cluster/uploads/").await,
        [format!("cluster/uploads/{file_id}")],
        "the bytes are in the bucket"
    );
    // Served from the bucket, ranges included.
    let part = reqwest::Client::new().get(url).header("range", "bytes=0-3").send().await.unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(part.headers()["content-range"], format!("bytes 0-3/{}", wav.len()));
    assert_eq!(part.bytes().await.unwrap().as_ref(), b"RIFF");
    let whole = reqwest::get(url).await.unwrap();
    assert_eq!(whole.bytes().await.unwrap().as_ref(), wav.as_slice());

    let task = api.submit(&key, &task_body(url, None)).await;
    let (record, _) = api.wait_final(&key, &task, Duration::from_secs(180)).await;
    assert_eq!(record["state"], "success", "{record}");
    let (heard, spoken) = recognised(&record);
    assert!(heard * 3 >= spoken * 2, "heard {heard} of {spoken} words: {record}");

    let form = crate::dialects::form(&[("model_id", "scribe_v1")], Some(&root.path().join("speech.wav")));
    let req = crate::dialects::client().post(format!("{}/v1/speech-to-text", api.base)).header("xi-api-key", &key);
    let (status, body) = crate::dialects::send(req.multipart(form)).await;
    assert_eq!(status, 200, "{body}");
    let heard = crate::dialects::heard(body["text"].as_str().unwrap());
    assert!(heard * 3 >= crate::dialects::words(SPOKEN).len() * 2, "heard {heard} words: {body}");
    // The request's audio went through the bucket and was deleted when its task ended.
    assert_eq!(s3.keys("cluster/requests/").await, Vec::<String>::new());
    for node in ["api", "worker"] {
        let stored: Vec<String> = files_under(&root.path().join(node))
            .into_iter()
            .filter(|f| !f.ends_with(".log") && !f.starts_with("tmp/"))
            .collect();
        assert!(stored.is_empty(), "the {node} node kept bytes in its data dir: {stored:?}");
    }
}

/// A loopback host that serves a recording once (then 404), counting requests.
async fn one_shot_audio(wav: Vec<u8>) -> (String, Arc<AtomicUsize>) {
    let served = Arc::new(AtomicUsize::new(0));
    let count = served.clone();
    let app = axum::Router::new().route(
        "/once.wav",
        axum::routing::get(move || {
            let (count, wav) = (count.clone(), wav.clone());
            async move {
                match count.fetch_add(1, Ordering::SeqCst) {
                    0 => ([("content-type", "audio/wav")], wav).into_response(),
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

/// A worker downloads a task's audio and is killed mid-task; the URL no longer answers, yet the
/// worker that takes the task over succeeds: it reads the copy the first one kept in the bucket,
/// which is deleted once the task has ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_reads_the_audio_the_dead_worker_downloaded() {
    let db = TestDb::create();
    let s3 = S3::start("harken-retry");
    let root = temp_dir();
    let wav = std::fs::read(crate::dialects::speech_wav(root.path())).unwrap();
    let (url, served) = one_shot_audio(wav).await;
    let mut worker_args = s3.node_args("n");
    worker_args.push("--allow-private-urls".to_owned());
    let mut api_args: Vec<&str> = vec!["--role", "api", "--database-url", &db.url, "--no-migrate"];
    let s3_args = s3.node_args("n");
    api_args.extend(s3_args.iter().map(String::as_str));
    let api = Harken::start_env(&root.path().join("api"), false, &api_args, &S3::ENV);
    let mut first = WorkerNode::start_with(&root.path().join("w1"), &db, 3, &worker_args, &S3::ENV);
    let key = db.key(100.0, None);
    let task = api.submit(&key, &task_body(&url, None)).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    while api.record(&key, &task).await["data"]["state"] != "generating" {
        assert!(Instant::now() < deadline, "the task never started generating");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(s3.keys("n/fetched/").await, [format!("n/fetched/{task}")], "the download is kept for a retry");
    first.kill9();
    let _second = WorkerNode::start_with(&root.path().join("w2"), &db, 3, &worker_args, &S3::ENV);
    let (record, _) = api.wait_final(&key, &task, Duration::from_secs(180)).await;
    assert_eq!(record["state"], "success", "{record}");
    let (heard, spoken) = recognised(&record);
    assert!(heard * 3 >= spoken * 2, "heard {heard} of {spoken} words: {record}");
    assert_eq!(served.load(Ordering::SeqCst), 1, "the audio was downloaded once");
    let attempts = db.store().await.task(&task).await.unwrap().unwrap().attempts;
    assert_eq!(attempts, 2, "the second worker ran the task again");
    assert_eq!(s3.keys("n/fetched/").await, Vec::<String>::new(), "the kept copy is deleted once the task ended");
}
