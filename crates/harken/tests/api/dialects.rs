//! Shared helpers for the ElevenLabs and OpenAI dialect tests: speech files and multipart calls.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

pub use crate::helpers::SPOKEN;

/// espeak-ng saying [`SPOKEN`], as a WAV file in `dir`.
pub fn speech_wav(dir: &Path) -> PathBuf {
    let wav = dir.join("speech.wav");
    let ok = Command::new("espeak-ng").args(["-s", "130", "-w"]).arg(&wav).arg(SPOKEN).status().unwrap();
    assert!(ok.success());
    wav
}

/// A name Whisper cannot spell unaided: espeak-ng says "Jaxon Breckenridge"; without a prompt
/// Whisper writes e.g. "Jackson Dreckon Ridge", with [`NAME`] in its prompt it writes [`NAME`].
pub const NAME: &str = "Jaxxon Brekkenridge";

/// espeak-ng introducing the intern whose name is [`NAME`], as a WAV file in `dir`.
pub fn name_wav(dir: &Path) -> PathBuf {
    let wav = dir.join("name.wav");
    let ok = Command::new("espeak-ng")
        .args(["-s", "130", "-w"])
        .arg(&wav)
        .arg("Our new intern is called Jaxon Breckenridge.")
        .status()
        .unwrap();
    assert!(ok.success());
    wav
}

/// A two-channel WAV: [`SPOKEN`] on the left, another sentence on the right.
pub fn stereo_wav(dir: &Path) -> PathBuf {
    let left = speech_wav(dir);
    let right = dir.join("right.wav");
    let ok = Command::new("espeak-ng")
        .args(["-s", "130", "-w"])
        .arg(&right)
        .arg("The weather is nice today. We are going to the park.")
        .status()
        .unwrap();
    assert!(ok.success());
    let stereo = dir.join("stereo.wav");
    let ok = Command::new("sox").arg("-M").arg(&left).arg(&right).arg(&stereo).status().expect("sox is installed");
    assert!(ok.success());
    stereo
}

/// Checks `words` (a transcript's `words` array) from [`stereo_wav`] with speaker labels: two
/// speakers, [`SPOKEN`] (the left channel) all on one of them and the right channel's sentence on
/// the other, each sentence once.
pub fn assert_a_speaker_per_channel(words: &Value) {
    let mut by_speaker = std::collections::BTreeMap::<String, Vec<String>>::new();
    for w in words.as_array().expect("words").iter().filter(|w| w["type"] == "word") {
        let text = w["text"].as_str().unwrap().to_lowercase().trim_matches(|c: char| !c.is_alphanumeric()).to_owned();
        by_speaker.entry(w["speaker_id"].as_str().expect("every word has a speaker").to_owned()).or_default().push(text);
    }
    assert_eq!(by_speaker.len(), 2, "{words}");
    let holding = |word: &str| by_speaker.values().filter(|said| said.iter().any(|w| w == word)).count();
    let left = by_speaker.values().find(|said| said.iter().any(|w| w == "morning")).expect("the left channel's words");
    assert!(left.iter().any(|w| w == "tomorrow") && !left.iter().any(|w| w == "park"), "{words}");
    assert_eq!((holding("morning"), holding("park")), (1, 1), "each sentence once, on its own speaker: {words}");
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(300)).build().unwrap()
}

/// A form with `fields` and, when given, `file` as the `file` part.
pub fn form(fields: &[(&str, &str)], file: Option<&Path>) -> reqwest::multipart::Form {
    let mut form = reqwest::multipart::Form::new();
    for (k, v) in fields {
        form = form.text(k.to_string(), v.to_string());
    }
    if let Some(path) = file {
        let part = reqwest::multipart::Part::bytes(std::fs::read(path).unwrap())
            .file_name(path.file_name().unwrap().to_string_lossy().into_owned())
            .mime_str("audio/wav")
            .unwrap();
        form = form.part("file", part);
    }
    form
}

/// Status and body (JSON when it parses, else a JSON string of the text).
pub async fn send(req: reqwest::RequestBuilder) -> (u16, Value) {
    let resp = req.send().await.expect("harken answers");
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// Lower-cased words of a text, punctuation stripped.
pub fn words(text: &str) -> Vec<String> {
    text.split_whitespace().map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()).to_lowercase()).collect()
}

/// How many of [`SPOKEN`]'s words `text` has.
pub fn heard(text: &str) -> usize {
    let got = words(text);
    words(SPOKEN).iter().filter(|w| got.contains(w)).count()
}
