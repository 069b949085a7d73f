//! The web page at `/` in a real headless Chromium (Debian's `chromium` + `chromium-driver`,
//! installed by scripts/install-deps), driven over WebDriver against a real `harken serve`:
//! paste a key, upload an espeak-ng recording, transcribe, read the transcript by speaker, click a
//! timestamp and see the audio seek, and keep a screenshot (`target/tmp/web-page.png`).

#[path = "api/helpers.rs"]
mod helpers;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

use helpers::{temp_dir, Harken};

/// A chromedriver on a free loopback port, killed on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    fn start() -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver is installed (Debian: chromium-driver; run scripts/install-deps)");
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen within 20 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        Driver { child, url }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn browser(driver: &Driver, profile: &std::path::Path) -> Client {
    let args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--autoplay-policy=no-user-gesture-required",
        "--window-size=1100,1500",
    ]
    .iter()
    .map(|a| a.to_string())
    .chain([format!("--user-data-dir={}", profile.display())])
    .collect::<Vec<_>>();
    let caps = json!({"goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args}});
    let caps = match caps {
        Value::Object(map) => map,
        _ => unreachable!(),
    };
    // Plain HTTP to a loopback chromedriver: no TLS stack needed.
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector).capabilities(caps).connect(&driver.url).await.expect("a browser session")
}

async fn js(client: &Client, script: &str) -> Value {
    client.execute(script, vec![]).await.expect("the script runs")
}

#[tokio::test]
async fn page_transcribes_an_upload_and_seeks_from_a_timestamp() {
    let started = Instant::now();
    let dir = temp_dir();
    let server = Harken::start(dir.path(), &[]);
    let key = server.key(10.0, None);
    let wav = dir.path().join("good-morning.wav");
    let spoken = "Good morning. This is a test.";
    let ok = Command::new("espeak-ng").args(["-s", "130", "-w"]).arg(&wav).arg(spoken).status();
    assert!(ok.expect("espeak-ng is installed").success());

    let driver = Driver::start();
    let profile = temp_dir();
    let client = browser(&driver, profile.path()).await;
    let result = drive(&client, &server, &key, &wav).await;
    let shot = client.screenshot().await;
    let _ = client.close().await;
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("web-page.png");
    if let Ok(png) = shot {
        std::fs::write(&path, png).unwrap();
        eprintln!("screenshot: {}", path.display());
    }
    result.unwrap_or_else(|e| {
        panic!("{e}\nserver log:\n{}", std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default())
    });
    eprintln!("browser test took {:?}", started.elapsed());
}

async fn drive(client: &Client, server: &Harken, key: &str, wav: &std::path::Path) -> Result<(), String> {
    client.goto(&format!("{}/", server.base)).await.map_err(|e| e.to_string())?;
    assert_eq!(client.title().await.unwrap(), "harken · speech to text");
    client.find(Locator::Id("api-key")).await.unwrap().send_keys(key).await.unwrap();
    client.find(Locator::Id("audio-file")).await.unwrap().send_keys(&wav.display().to_string()).await.unwrap();
    let diarize = client.find(Locator::Id("diarize")).await.unwrap();
    assert_eq!(diarize.prop("checked").await.unwrap().as_deref(), Some("true"), "diarize is on by default");
    client.find(Locator::Id("submit")).await.unwrap().click().await.unwrap();

    // The page polls recordInfo and marks the final state on <body>.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let state = js(client, "return document.body.dataset.state || ''").await;
        match state.as_str() {
            Some("success") => break,
            Some(s @ ("fail" | "error")) => {
                let status = client.find(Locator::Id("status")).await.unwrap().text().await.unwrap();
                return Err(format!("the page ended in {s}: {status}"));
            }
            _ if Instant::now() > deadline => return Err(format!("no transcript within 90 s (state {state})")),
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    assert!(client.find(Locator::Id("status")).await.unwrap().text().await.unwrap().contains("Done"));
    let progress = js(client, "return document.getElementById('progress').value").await;
    assert_eq!(progress.as_f64(), Some(100.0));

    // Words grouped under a speaker.
    let turns = client.find_all(Locator::Css("#transcript .turn")).await.unwrap();
    assert!(!turns.is_empty(), "at least one speaker turn");
    let speaker = turns[0].find(Locator::Css(".speaker")).await.unwrap().text().await.unwrap();
    assert_eq!(speaker, "Speaker 1");
    let said = turns[0].find(Locator::Css(".said")).await.unwrap().text().await.unwrap().to_lowercase();
    for word in ["morning", "test"] {
        assert!(said.contains(word), "{word:?} under the speaker: {said:?}");
    }

    // Clicking the latest timestamp seeks the player there (once it knows the audio's length).
    let deadline = Instant::now() + Duration::from_secs(20);
    while js(client, "return document.getElementById('player').readyState").await.as_u64().unwrap_or(0) < 1 {
        if Instant::now() > deadline {
            let err =
                js(client, "const p = document.getElementById('player'); return [p.src, p.error && p.error.message]")
                    .await;
            return Err(format!("the audio never loaded: {err}"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stamps = client.find_all(Locator::Css("#transcript .ts")).await.unwrap();
    let mut target = None;
    for ts in &stamps {
        let start: f64 = ts.attr("data-start").await.unwrap().unwrap_or_default().parse().unwrap_or(0.0);
        if target.as_ref().is_none_or(|(s, _)| start > *s) {
            target = Some((start, ts.clone()));
        }
    }
    let (start, ts) = target.expect("timestamps");
    let (start, clickable) = if start > 0.3 {
        (start, ts)
    } else {
        // One segment only: a later word is clickable too.
        let words = client.find_all(Locator::Css("#transcript .w")).await.unwrap();
        let last = words.last().expect("words").clone();
        let s: f64 = last.attr("data-start").await.unwrap().unwrap_or_default().parse().unwrap();
        (s, last)
    };
    assert!(start > 0.3, "a point after the start to seek to: {start}");
    clickable.click().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    js(client, "document.getElementById('player').pause()").await;
    let now = js(client, "return document.getElementById('player').currentTime").await.as_f64().unwrap();
    assert!(now >= start - 0.05 && now < start + 2.0, "the player moved to {start} s: at {now} s");

    // The downloads are made in the page from the transcript.
    let srt = js(client, "return EXPORTS.srt()[1]").await;
    assert!(srt.as_str().unwrap().starts_with("1\n00:00:0"), "{srt}");
    let vtt = js(client, "return EXPORTS.vtt()[1]").await;
    assert!(vtt.as_str().unwrap().starts_with("WEBVTT\n\n00:00:0"), "{vtt}");
    Ok(())
}
