//! Fetching: a real HTTP server on 127.0.0.1 serving real audio, and every way a download fails.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{Html, IntoResponse, Redirect};
use axum::routing::get;
use axum::Router;
use harken_audio::{decode_file, AudioFormat, FetchError, FetchPolicy, Fetcher};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::util::fixtures;

fn wav_bytes() -> Vec<u8> {
    std::fs::read(fixtures().path("pcm16_8k.wav")).unwrap()
}

/// Starts the test audio host; it lives as long as the test's runtime.
async fn serve() -> SocketAddr {
    let wav = Bytes::from(wav_bytes());
    let (w1, w2, w3) = (wav.clone(), wav.clone(), wav.clone());
    let app = Router::new()
        .route("/audio.wav", get(move || async move { ([(header::CONTENT_TYPE, "audio/wav")], w1) }))
        .route(
            "/chunked.wav",
            get(move || async move {
                let chunks: Vec<Result<Bytes, Infallible>> = w2.chunks(1000).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
                Body::from_stream(futures_util::stream::iter(chunks))
            }),
        )
        .route(
            "/slow.wav",
            get(move || async move {
                let head = w3.slice(..2000);
                let stream = futures_util::stream::unfold(Some(head), |head| async move {
                    match head {
                        Some(head) => Some((Ok::<_, Infallible>(head), None)),
                        None => {
                            tokio::time::sleep(Duration::from_secs(30)).await;
                            None
                        }
                    }
                });
                Body::from_stream(stream)
            }),
        )
        .route("/page", get(|| async { Html("<!DOCTYPE html><html><head><title>Sign in</title></head><body>Please sign in</body></html>") }))
        .route("/empty.mp3", get(|| async { ([(header::CONTENT_TYPE, "audio/mpeg")], "") }))
        .route("/loop", get(|| async { Redirect::temporary("/loop?sig=SECRET") }))
        .route("/hop", get(|| async { Redirect::temporary("/audio.wav?sig=SECRET") }))
        .route("/to-ftp", get(|| async { Redirect::temporary("ftp://example.com/a.wav") }))
        .route("/gone", get(|| async { (axum::http::StatusCode::GONE, "gone").into_response() }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// A raw server whose Content-Length promises more than it sends, then hangs up.
async fn serve_liar() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let wav = wav_bytes();
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 4096];
            let _ = socket.read(&mut request).await;
            let head = "HTTP/1.1 200 OK\r\nContent-Type: audio/wav\r\nContent-Length: 100000\r\nConnection: close\r\n\r\n";
            let _ = socket.write_all(head.as_bytes()).await;
            let _ = socket.write_all(&wav[..5000]).await;
            let _ = socket.shutdown().await;
        }
    });
    addr
}

fn testing_policy() -> FetchPolicy {
    FetchPolicy {
        allow_private: true,
        ..FetchPolicy::default()
    }
}

fn assert_dir_empty(dir: &Path) {
    let left: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        left.is_empty(),
        "files left behind after a failed download: {left:?}"
    );
}

async fn fetch_err(policy: FetchPolicy, url: &str) -> FetchError {
    let dir = tempfile::tempdir().unwrap();
    let err = Fetcher::new(policy)
        .unwrap()
        .fetch_to_file(url, dir.path())
        .await
        .unwrap_err();
    assert!(
        !err.to_string().contains("SECRET"),
        "the message leaks the query string: {err}"
    );
    assert_dir_empty(dir.path());
    err
}

#[tokio::test]
async fn downloads_real_audio() {
    let addr = serve().await;
    let dir = tempfile::tempdir().unwrap();
    let fetcher = Fetcher::new(testing_policy()).unwrap();
    for path in ["/audio.wav?sig=SECRET", "/chunked.wav", "/hop"] {
        let file = fetcher
            .clone()
            .fetch_to_file(
                &format!("http://127.0.0.1:{}{path}", addr.port()),
                dir.path(),
            )
            .await
            .unwrap();
        assert_eq!(file.bytes, wav_bytes().len() as u64, "{path}");
        assert_eq!(std::fs::read(&file.path).unwrap(), wav_bytes(), "{path}");
        assert_eq!(file.format, AudioFormat::Wav);
        assert_eq!(file.path.parent(), Some(dir.path()));
        assert_eq!(file.path.extension().unwrap(), "wav");
        let audio = decode_file(&file.path).unwrap();
        assert!((audio.duration_s - fixtures().speech_s).abs() < fixtures().speech_s * 0.01);
        std::fs::remove_file(&file.path).unwrap();
    }
    let file = fetcher
        .fetch_to_file(
            &format!("http://127.0.0.1:{}/audio.wav", addr.port()),
            dir.path(),
        )
        .await
        .unwrap();
    assert_eq!(file.content_type.as_deref(), Some("audio/wav"));
}

#[tokio::test]
async fn private_addresses_are_refused() {
    let addr = serve().await;
    let policy = FetchPolicy::default();
    let err = fetch_err(
        policy.clone(),
        &format!("http://127.0.0.1:{}/audio.wav?sig=SECRET", addr.port()),
    )
    .await;
    assert!(matches!(err, FetchError::Refused { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "audio_url: download refused: 127.0.0.1 is a loopback address"
    );
    // Through DNS: the resolver filters what "localhost" resolves to.
    let err = fetch_err(
        policy.clone(),
        &format!("http://localhost:{}/audio.wav?sig=SECRET", addr.port()),
    )
    .await;
    let msg = err.to_string();
    assert!(
        msg == "audio_url: download refused: 127.0.0.1 is a loopback address"
            || msg == "audio_url: download refused: ::1 is a loopback address",
        "{msg}"
    );
    for (url, ip) in [
        ("http://10.0.0.5/a.mp3", "10.0.0.5 is a private address"),
        (
            "http://169.254.169.254/latest/meta-data/",
            "169.254.169.254 is a link-local address",
        ),
        (
            "http://[::ffff:192.168.1.1]/a.mp3",
            "::ffff:192.168.1.1 is a private address",
        ),
        (
            "http://[fd00::1]/a.mp3",
            "fd00::1 is a private (unique local",
        ),
    ] {
        let msg = fetch_err(policy.clone(), url).await.to_string();
        assert!(
            msg.starts_with(&format!("audio_url: download refused: {ip}")),
            "{url}: {msg}"
        );
    }
}

#[tokio::test]
async fn http_errors_and_redirects() {
    let addr = serve().await;
    let base = format!("http://127.0.0.1:{}", addr.port());
    let err = fetch_err(testing_policy(), &format!("{base}/missing.mp3?sig=SECRET")).await;
    assert_eq!(err.to_string(), "audio_url: server answered HTTP 404");
    assert!(!err.is_transient());
    let err = fetch_err(testing_policy(), &format!("{base}/gone")).await;
    assert_eq!(err.to_string(), "audio_url: server answered HTTP 410");
    let err = fetch_err(testing_policy(), &format!("{base}/loop?sig=SECRET")).await;
    assert_eq!(
        err.to_string(),
        "audio_url: too many redirects (more than 5)"
    );
    let err = fetch_err(testing_policy(), &format!("{base}/to-ftp")).await;
    assert_eq!(
        err.to_string(),
        "audio_url: redirected to a non-http(s) URL (\"ftp://...\")"
    );
    let err = fetch_err(testing_policy(), "ftp://example.com/a.mp3?sig=SECRET").await;
    assert_eq!(
        err.to_string(),
        "audio_url: must be an http or https URL, got \"ftp://...\""
    );
}

#[tokio::test]
async fn size_cap() {
    let addr = serve().await;
    let small = FetchPolicy {
        max_bytes: 64 * 1024,
        ..testing_policy()
    };
    // Announced by Content-Length: refused before the body.
    let err = fetch_err(
        small.clone(),
        &format!("http://127.0.0.1:{}/audio.wav?sig=SECRET", addr.port()),
    )
    .await;
    assert_eq!(err.to_string(), "audio_url: file exceeds 64 KB limit");
    // Chunked, no length: refused while streaming.
    let err = fetch_err(
        small,
        &format!("http://127.0.0.1:{}/chunked.wav", addr.port()),
    )
    .await;
    assert!(
        matches!(err, FetchError::TooLarge { limit: 65536 }),
        "{err:?}"
    );
}

#[tokio::test]
async fn read_timeout_between_chunks() {
    let addr = serve().await;
    let policy = FetchPolicy {
        read_timeout: Duration::from_millis(300),
        ..testing_policy()
    };
    let started = std::time::Instant::now();
    let err = fetch_err(
        policy,
        &format!("http://127.0.0.1:{}/slow.wav?sig=SECRET", addr.port()),
    )
    .await;
    assert_eq!(
        err.to_string(),
        "audio_url: timed out after 0.3 s without data"
    );
    assert!(err.is_transient());
    assert!(started.elapsed() < Duration::from_secs(5));
    // The overall limit applies even when data keeps trickling in.
    let policy = FetchPolicy {
        total_timeout: Duration::from_millis(500),
        ..testing_policy()
    };
    let err = fetch_err(
        policy,
        &format!("http://127.0.0.1:{}/slow.wav", addr.port()),
    )
    .await;
    assert!(matches!(err, FetchError::TotalTimeout { .. }), "{err:?}");
}

#[tokio::test]
async fn bodies_that_are_not_audio() {
    let addr = serve().await;
    let err = fetch_err(
        testing_policy(),
        &format!("http://127.0.0.1:{}/page?sig=SECRET", addr.port()),
    )
    .await;
    assert_eq!(
        err.to_string(),
        "audio_url: the content looks like HTML, not audio"
    );
    let err = fetch_err(
        testing_policy(),
        &format!("http://127.0.0.1:{}/empty.mp3", addr.port()),
    )
    .await;
    assert_eq!(err.to_string(), "audio_url: the file is empty (0 bytes)");
}

#[tokio::test]
async fn truncated_body() {
    let addr = serve_liar().await;
    let err = fetch_err(
        testing_policy(),
        &format!("http://127.0.0.1:{}/a.wav?sig=SECRET", addr.port()),
    )
    .await;
    assert!(
        matches!(
            err,
            FetchError::Truncated {
                got: 5000,
                expected: 100000
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "audio_url: download incomplete: the connection closed after 5000 of 100000 bytes"
    );
}

#[tokio::test]
async fn connection_refused_names_the_host_only() {
    // Bind then drop, so the port is very likely closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = fetch_err(
        testing_policy(),
        &format!("http://127.0.0.1:{port}/a.wav?sig=SECRET"),
    )
    .await;
    assert!(matches!(err, FetchError::Connect { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("audio_url: could not connect to 127.0.0.1: "),
        "{err}"
    );
    assert!(!err.to_string().contains("a.wav"), "{err}");
}
