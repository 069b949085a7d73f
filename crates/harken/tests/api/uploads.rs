//! Kie.ai's file upload API: stream, URL and base64 uploads, download links (also as
//! `audio_url` with private URLs refused), refusals that name the field, auth, expiry.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::*;

impl Harken {
    /// `POST /api/file-stream-upload` with the given parts (`file` as bytes with a file name).
    pub async fn upload_stream(
        &self,
        key: Option<&str>,
        file: Option<(&str, Vec<u8>)>,
        fields: &[(&str, &str)],
    ) -> Value {
        let mut form = reqwest::multipart::Form::new();
        if let Some((name, bytes)) = file {
            form = form.part("file", reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned()));
        }
        for (k, v) in fields {
            form = form.text(k.to_string(), v.to_string());
        }
        let mut req = reqwest::Client::new().post(format!("{}/api/file-stream-upload", self.base)).multipart(form);
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        json_answer(req).await
    }

    /// `POST /api/file-url-upload` or `/api/file-base64-upload` with a JSON body.
    pub async fn upload_json(&self, route: &str, key: Option<&str>, body: &Value) -> Value {
        let mut req = reqwest::Client::new().post(format!("{}/api/{route}", self.base)).json(body);
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        json_answer(req).await
    }
}

async fn json_answer(req: reqwest::RequestBuilder) -> Value {
    let resp = req.timeout(Duration::from_secs(60)).send().await.expect("harken answers");
    assert_eq!(resp.status(), 200, "answered requests are HTTP 200");
    resp.json().await.expect("a JSON envelope")
}

/// [`SPOKEN`] as a wav made by espeak-ng.
fn speech_wav() -> Vec<u8> {
    let dir = temp_dir();
    let wav = dir.path().join("speech.wav");
    let ok = std::process::Command::new("espeak-ng").args(["-s", "130", "-w"]).arg(&wav).arg(SPOKEN).status();
    assert!(ok.expect("espeak-ng is installed").success());
    std::fs::read(&wav).unwrap()
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// `2025-01-01T12:00:00.000Z` → Unix milliseconds.
fn ms_of(iso: &Value) -> i64 {
    let s = iso.as_str().expect("an ISO time");
    assert!(s.len() == 24 && s.ends_with('Z'), "{s}");
    let n = |r: std::ops::Range<usize>| s[r].parse::<i64>().unwrap();
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    days * 86_400_000 + n(11..13) * 3_600_000 + n(14..16) * 60_000 + n(17..19) * 1000 + n(20..23)
}

#[test]
fn iso_times_parse() {
    assert_eq!(ms_of(&json!("1970-01-01T00:00:00.000Z")), 0);
    assert_eq!(ms_of(&json!("2025-01-01T12:00:00.123Z")), 1_735_732_800_123);
}

async fn download(url: &str) -> reqwest::Response {
    reqwest::Client::new().get(url).send().await.expect("the download link answers")
}

#[tokio::test]
async fn stream_upload_is_an_audio_url_even_with_private_urls_refused() {
    let dir = temp_dir();
    let server = Harken::start_with(dir.path(), false, &[]);
    let key = server.key(10.0, None);
    let wav = speech_wav();
    let r =
        server.upload_stream(Some(&key), Some(("My talk.wav", wav.clone())), &[("uploadPath", "audio/tests")]).await;
    assert_eq!((r["code"].as_u64(), r["success"].as_bool()), (Some(200), Some(true)), "{r}");
    let data = &r["data"];
    assert!(data["fileId"].as_str().unwrap().starts_with("file_"), "{data}");
    assert_eq!(data["fileName"], "My_talk.wav");
    assert_eq!(data["originalName"], "My_talk.wav");
    assert_eq!(data["fileSize"], wav.len());
    assert_eq!(data["mimeType"], "audio/wav");
    assert_eq!(data["uploadPath"], "audio/tests");
    let url = data["downloadUrl"].as_str().unwrap();
    assert!(url.starts_with(&format!("{}/files/file_", server.base)), "{url}");
    assert_eq!(data["fileUrl"], data["downloadUrl"]);
    assert_eq!(ms_of(&data["expiresAt"]) - ms_of(&data["uploadTime"]), 3 * 86_400_000, "kept 3 days");

    // The link is public, whole or in ranges (players seek), typed by content.
    let whole = download(url).await;
    assert_eq!(whole.status(), 200);
    assert_eq!(whole.headers()["content-type"], "audio/wav");
    assert_eq!(whole.headers()["x-content-type-options"], "nosniff");
    assert_eq!(whole.bytes().await.unwrap().as_ref(), wav.as_slice());
    let part = reqwest::Client::new().get(url).header("range", "bytes=0-3").send().await.unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(part.bytes().await.unwrap().as_ref(), b"RIFF");

    // The worker reads its own link from disk: no HTTP request, so the SSRF guard never sees it.
    let id = server.submit(&key, &task_body(url, None)).await;
    let (record, _) = server.wait_final(&key, &id, Duration::from_secs(120)).await;
    assert_eq!(record["state"], "success", "{record}");
    let (heard, spoken) = recognised(&record);
    assert!(heard * 3 >= spoken * 2, "heard {heard} of {spoken} words: {record}");

    // A URL upload from a private address is refused like an audio_url, naming fileUrl.
    let host = AudioHost::start().await;
    let body = json!({"fileUrl": host.url("/speech.wav"), "uploadPath": "x"});
    let r = server.upload_json("file-url-upload", Some(&key), &body).await;
    assert_eq!(r["code"], 400, "{r}");
    assert!(r["msg"].as_str().unwrap().starts_with("fileUrl: download refused: 127.0.0.1 is a loopback"), "{r}");
}

#[tokio::test]
async fn url_and_base64_uploads_store_the_same_bytes() {
    let dir = temp_dir();
    let host = AudioHost::start().await;
    let server = Harken::start(dir.path(), &[]);
    let key = server.key(10.0, None);
    let wav = speech_wav();

    let r = server
        .upload_json(
            "file-url-upload",
            Some(&key),
            &json!({"fileUrl": host.url("/speech.wav"), "uploadPath": "from-url"}),
        )
        .await;
    assert_eq!(r["code"], 200, "{r}");
    assert_eq!(
        (r["data"]["originalName"].as_str(), r["data"]["fileName"].as_str()),
        (Some("speech.wav"), Some("speech.wav"))
    );
    assert_eq!(r["data"]["mimeType"], "audio/wav");
    let fetched = download(r["data"]["downloadUrl"].as_str().unwrap()).await.bytes().await.unwrap();
    assert_eq!(fetched.len() as u64, r["data"]["fileSize"].as_u64().unwrap());

    for (data, name) in [(b64(&wav), None), (format!("data:audio/wav;base64,{}", b64(&wav)), Some("note.wav"))] {
        let mut body = json!({"base64Data": data, "uploadPath": "b64"});
        if let Some(n) = name {
            body["fileName"] = json!(n);
        }
        let r = server.upload_json("file-base64-upload", Some(&key), &body).await;
        assert_eq!(r["code"], 200, "{r}");
        assert_eq!(r["data"]["fileSize"], wav.len());
        let got = r["data"]["fileName"].as_str().unwrap();
        match name {
            Some(n) => assert_eq!(got, n),
            None => assert!(got.ends_with(".wav"), "a generated name with the format's extension: {got}"),
        }
        let bytes = download(r["data"]["downloadUrl"].as_str().unwrap()).await.bytes().await.unwrap();
        assert_eq!(bytes.as_ref(), wav.as_slice());
    }
}

#[tokio::test]
async fn bad_uploads_are_refused_naming_the_field() {
    let dir = temp_dir();
    let host = AudioHost::start().await;
    let server = Harken::start(dir.path(), &["--max-upload-mb", "1"]);
    let key = server.key(10.0, None);
    let wav = speech_wav();
    let k = Some(key.as_str());
    let path = [("uploadPath", "p")];

    // No key, or a wrong one: 401 on every route, before the body is looked at.
    assert_eq!(server.upload_stream(None, Some(("a.wav", wav.clone())), &path).await["code"], 401);
    assert_eq!(server.upload_stream(Some("hk_wrong"), Some(("a.wav", wav.clone())), &path).await["code"], 401);
    assert_eq!(server.upload_json("file-url-upload", None, &json!({})).await["code"], 401);
    assert_eq!(server.upload_json("file-base64-upload", None, &json!({})).await["code"], 401);

    let big = {
        let mut b = wav.clone();
        b.resize(1024 * 1024 + 10, 0);
        b
    };
    let cases: Vec<(Value, &str)> = vec![
        (server.upload_stream(k, Some(("a.wav", wav.clone())), &[]).await, "uploadPath: expected a folder name"),
        (server.upload_stream(k, None, &path).await, "file: expected a file field"),
        (
            server.upload_stream(k, Some(("a.wav", vec![])), &path).await,
            "file: expected a non-empty audio file, received 0 bytes",
        ),
        (server.upload_stream(k, Some(("a.txt", b"hello, not audio".to_vec())), &path).await, "file: expected audio"),
        (server.upload_stream(k, Some(("a.wav", big)), &path).await, "file: expected at most 1 MB, received more"),
        (
            server.upload_stream(k, Some(("a.wav", wav.clone())), &[("uploadPath", "p"), ("fileName", "..")]).await,
            "fileName:",
        ),
        (server.upload_json("file-base64-upload", k, &json!({"base64Data": b64(&wav)})).await, "uploadPath: expected"),
        (server.upload_json("file-base64-upload", k, &json!({"uploadPath": "p"})).await, "base64Data: expected base64"),
        (
            server.upload_json("file-base64-upload", k, &json!({"base64Data": "%%%", "uploadPath": "p"})).await,
            "base64Data: expected valid base64",
        ),
        (
            server
                .upload_json(
                    "file-base64-upload",
                    k,
                    &json!({"base64Data": b64(b"<html>hi</html>"), "uploadPath": "p"}),
                )
                .await,
            "base64Data: expected audio",
        ),
        (
            server.upload_json("file-url-upload", k, &json!({"uploadPath": "p"})).await,
            "fileUrl: expected an http(s) URL, received nothing",
        ),
        (
            server
                .upload_json("file-url-upload", k, &json!({"fileUrl": host.url("/page.html"), "uploadPath": "p"}))
                .await,
            "fileUrl: the content looks like",
        ),
        (
            server
                .upload_json("file-url-upload", k, &json!({"fileUrl": host.url("/missing.wav"), "uploadPath": "p"}))
                .await,
            "fileUrl: server answered HTTP 404",
        ),
        (
            server.upload_json("file-url-upload", k, &json!({"fileUrl": "ftp://x/a.wav", "uploadPath": "p"})).await,
            "fileUrl: must be an http or https URL",
        ),
        (
            server.upload_json("file-url-upload", k, &json!({"fileUrl": 5, "uploadPath": "p"})).await,
            "fileUrl: expected a string, received the number 5",
        ),
    ];
    for (r, expected) in cases {
        assert_eq!(r["code"], 400, "{r}");
        let msg = r["msg"].as_str().unwrap();
        assert!(msg.starts_with(expected), "{msg:?} should start with {expected:?}");
    }
    let not_multipart = reqwest::Client::new()
        .post(format!("{}/api/file-stream-upload", server.base))
        .bearer_auth(&key)
        .json(&json!({"uploadPath": "p"}));
    let r = json_answer(not_multipart).await;
    assert!(r["msg"].as_str().unwrap().starts_with("body: expected multipart/form-data"), "{r}");
    // An ElevenLabs request refused after its file arrived: the file is deleted at once.
    let form = crate::dialects::form(&[("model_id", "whisper-1")], Some(&crate::dialects::speech_wav(dir.path())));
    let req = crate::dialects::client().post(format!("{}/v1/speech-to-text", server.base)).header("xi-api-key", &key);
    let (status, body) = crate::dialects::send(req.multipart(form)).await;
    assert_eq!(status, 422, "{body}");
    // Nothing refused left bytes behind in the object store (`<data dir>/files`), not even a
    // staging file of an aborted upload.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let stored = files_under(&dir.path().join("files"));
        if stored.is_empty() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "refused uploads left {stored:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn expired_uploads_are_swept_and_their_tasks_fail_clearly() {
    let dir = temp_dir();
    let server = Harken::start_with(dir.path(), false, &["--file-ttl", "2s"]);
    let key = server.key(10.0, None);
    let r = server.upload_stream(Some(&key), Some(("a.wav", speech_wav())), &[("uploadPath", "p")]).await;
    assert_eq!(r["code"], 200, "{r}");
    let url = r["data"]["downloadUrl"].as_str().unwrap().to_owned();
    let id = r["data"]["fileId"].as_str().unwrap().to_owned();
    assert_eq!(ms_of(&r["data"]["expiresAt"]) - ms_of(&r["data"]["uploadTime"]), 2000);
    assert_eq!(download(&url).await.status(), 200);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(download(&url).await.status(), 404, "expired: gone even before the sweeper runs");
    // The sweeper runs every second with this TTL: the bytes go.
    let bytes = dir.path().join("files/uploads").join(&id);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while bytes.exists() {
        assert!(std::time::Instant::now() < deadline, "{} still on disk", bytes.display());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let task = server.submit(&key, &task_body(&url, None)).await;
    let (record, _) = server.wait_final(&key, &task, Duration::from_secs(60)).await;
    assert_eq!(record["state"], "fail", "{record}");
    let msg = record["failMsg"].as_str().unwrap();
    assert!(msg.starts_with(&format!("audio_url: the uploaded file {id} has expired or does not exist")), "{msg}");
    assert_eq!(record["failCode"], "422");
}
