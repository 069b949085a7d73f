//! The official `openai` and `elevenlabs` Python SDKs against the real server, unchanged: a
//! virtualenv under `$HOME/.cache/harken-sdk-venv` (created on first run, from PyPI) runs
//! `tests/sdk/check_sdks.py`. Needs python3 with venv and network access to PyPI the first time.

#[path = "api/helpers.rs"]
mod helpers;
#[path = "api/dialects.rs"]
mod dialects;

use std::path::PathBuf;
use std::process::Command;

use helpers::*;

const PACKAGES: &[&str] = &["openai", "elevenlabs", "python-docx", "pypdf"];

fn venv_python() -> PathBuf {
    let venv = PathBuf::from(std::env::var("HOME").expect("HOME is set")).join(".cache/harken-sdk-venv");
    let python = venv.join("bin/python");
    if !python.exists() {
        let ok = Command::new("python3").arg("-m").arg("venv").arg(&venv).status().expect("python3 is installed");
        assert!(ok.success(), "python3 -m venv {}", venv.display());
    }
    let have = Command::new(&python).args(["-c", "import openai, elevenlabs, docx, pypdf"]).status().unwrap();
    if !have.success() {
        let ok = Command::new(&python).args(["-m", "pip", "install", "-q"]).args(PACKAGES).status().unwrap();
        assert!(ok.success(), "pip install {PACKAGES:?}");
    }
    python
}

#[tokio::test]
async fn official_sdks_work_unchanged() {
    let python = venv_python();
    let dir = temp_dir();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let hook = format!("http://127.0.0.1:{port}/hook");
    let server = Harken::start(
        dir.path(),
        &["--elevenlabs-webhook-url", &hook, "--elevenlabs-webhook-secret", "whsec_sdk"],
    );
    let key = server.key(100.0, None);
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/check_sdks.py");
    let status = Command::new(python)
        .arg(script)
        .env("HARKEN_BASE", &server.base)
        .env("HARKEN_KEY", &key)
        .env("SPEECH_WAV", dialects::speech_wav(dir.path()))
        .env("STEREO_WAV", dialects::stereo_wav(dir.path()))
        .env("NAME_WAV", dialects::name_wav(dir.path()))
        .env("NAME", dialects::NAME)
        .env("WEBHOOK_PORT", port.to_string())
        .env("WEBHOOK_SECRET", "whsec_sdk")
        .env("OUT_DIR", &out)
        .status()
        .unwrap();
    assert!(status.success(), "check_sdks.py failed (its output is above)");
}
