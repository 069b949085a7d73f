//! The OpenAI dialect against the real server: its error shape and statuses, and every
//! response_format.

use serde_json::Value;

use crate::dialects::*;
use crate::helpers::*;

async fn transcribe(server: &Harken, key: Option<&str>, fields: &[(&str, &str)], file: Option<&std::path::Path>) -> (u16, Value) {
    let mut req = client().post(format!("{}/v1/audio/transcriptions", server.base)).multipart(form(fields, file));
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    send(req).await
}

#[tokio::test]
async fn openai_refuses_bad_requests_in_its_error_shape() {
    let dir = temp_dir();
    let server = Harken::start(dir.path(), &[]);
    let key = server.key(10.0, None);
    let wav = speech_wav(dir.path());
    let m = ("model", "whisper-1");
    let (status, body) = transcribe(&server, None, &[m], Some(&wav)).await;
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("invalid_api_key")), "{body}");
    let (status, body) = transcribe(&server, Some("sk-wrong"), &[m], Some(&wav)).await;
    assert_eq!((status, body["error"]["type"].as_str()), (401, Some("invalid_request_error")), "{body}");
    let cases: Vec<(Vec<(&str, &str)>, bool, &str, &str)> = vec![
        (vec![("model", "gpt-5")], true, "model", "model: expected one of whisper-1, gpt-4o-transcribe"),
        (vec![], true, "model", "model: expected one of"),
        (vec![m], false, "file", "file: expected an audio file, received nothing"),
        (vec![m, ("response_format", "xml")], true, "response_format", "response_format: expected json, text, srt, verbose_json, vtt or diarized_json"),
        (vec![("model", "gpt-4o-transcribe-diarize"), ("response_format", "diarized_json"), ("known_speaker_names[]", "Ann")], true,
            "known_speaker_names[]", "known_speaker_names[]: expected 1 to 4 names, one per known_speaker_references[] entry, received 1 names and 0"),
        (vec![m, ("known_speaker_names[]", "Ann"), ("known_speaker_references[]", "data:audio/wav;base64,UklGRg==")], true,
            "known_speaker_names[]", "known_speaker_names[]: expected response_format diarized_json to go with it"),
        (vec![m, ("response_format", "diarized_json"), ("known_speaker_names[]", "Ann"), ("known_speaker_references[]", "https://e.com/ann.wav")], true,
            "known_speaker_references[]", "known_speaker_references[]: expected a data URL of an audio file"),
        (vec![m, ("timestamp_granularities[]", "word")], true, "timestamp_granularities[]", "timestamp_granularities[]: expected response_format verbose_json"),
        (vec![m, ("response_format", "verbose_json"), ("timestamp_granularities[]", "char")], true, "timestamp_granularities[]", "timestamp_granularities[]: expected word or segment"),
        (vec![m, ("language", "xx")], true, "language", "language: expected an ISO 639-1 code"),
        (vec![m, ("temperature", "1.5")], true, "temperature", "temperature: expected a number from 0 to 1, received \"1.5\""),
        (vec![m, ("temperature", "-0.1")], true, "temperature", "temperature: expected a number from 0 to 1"),
        (vec![m, ("temperature", "warm")], true, "temperature", "temperature: expected a number from 0 to 1, received \"warm\""),
        (vec![m, ("stream", "true")], true, "stream", "stream: expected false"),
    ];
    for (fields, with_file, param, expected) in cases {
        let (status, body) = transcribe(&server, Some(&key), &fields, with_file.then_some(wav.as_path())).await;
        assert_eq!(status, 400, "{fields:?}: {body}");
        assert_eq!(body["error"]["type"], "invalid_request_error", "{body}");
        assert_eq!(body["error"]["param"], param, "{body}");
        assert!(body["error"]["message"].as_str().unwrap().starts_with(expected), "{body}");
    }
}

#[tokio::test]
async fn openai_answers_every_response_format() {
    let dir = temp_dir();
    let server = Harken::start(dir.path(), &[]);
    let key = server.key(10.0, None);
    let wav = speech_wav(dir.path());
    let (status, body) = transcribe(&server, Some(&key), &[("model", "whisper-1")], Some(&wav)).await;
    assert_eq!(status, 200, "{body}");
    assert!(heard(body["text"].as_str().unwrap()) >= 7, "{body}");
    assert_eq!(body["usage"]["type"], "duration");
    let (status, text) =
        transcribe(&server, Some(&key), &[("model", "tiny.en"), ("response_format", "text"), ("language", "en")], Some(&wav)).await;
    assert_eq!(status, 200);
    assert!(heard(text.as_str().unwrap()) >= 7, "{text}");
    let (_, srt) = transcribe(&server, Some(&key), &[("model", "gpt-4o-transcribe"), ("response_format", "srt")], Some(&wav)).await;
    assert!(srt.as_str().unwrap().starts_with("1\n00:00:"), "{srt}");
    let (_, vtt) = transcribe(&server, Some(&key), &[("model", "whisper-1"), ("response_format", "vtt")], Some(&wav)).await;
    assert!(vtt.as_str().unwrap().starts_with("WEBVTT\n\n00:00:"), "{vtt}");
    let fields = [
        ("model", "whisper-1"),
        ("response_format", "verbose_json"),
        ("timestamp_granularities[]", "word"),
        ("timestamp_granularities[]", "segment"),
    ];
    let (status, v) = transcribe(&server, Some(&key), &fields, Some(&wav)).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!((v["task"].as_str(), v["language"].as_str()), (Some("transcribe"), Some("english")));
    assert!(v["duration"].as_f64().unwrap() > 2.0);
    let seg = &v["segments"][0];
    for field in ["id", "seek", "start", "end", "text", "tokens", "temperature", "avg_logprob", "compression_ratio", "no_speech_prob"] {
        assert!(seg.get(field).is_some(), "segment has {field}: {seg}");
    }
    let words = v["words"].as_array().unwrap();
    assert!(words.len() >= 7 && words[0]["word"].is_string() && words[0]["start"].is_number(), "{v}");
}

/// A `diarized_json` answer's text by speaker (lower case), each segment checked on the way.
fn said_by_speaker(v: &Value) -> std::collections::BTreeMap<String, String> {
    let mut by_speaker = std::collections::BTreeMap::<String, String>::new();
    for seg in v["segments"].as_array().expect("segments") {
        assert_eq!(seg["type"], "transcript.text.segment", "{seg}");
        assert!(seg["end"].as_f64().unwrap() > seg["start"].as_f64().unwrap(), "{seg}");
        let said = by_speaker.entry(seg["speaker"].as_str().expect("a speaker").to_owned()).or_default();
        said.push_str(&seg["text"].as_str().unwrap().to_lowercase());
    }
    by_speaker
}

/// `gpt-4o-transcribe-diarize` with `diarized_json` on a call recorded with a voice per channel:
/// a segment per turn, each voice under its own letter, each sentence once.
#[tokio::test]
async fn openai_diarized_json_labels_each_voice() {
    let dir = temp_dir();
    let server = Harken::start(dir.path(), &[]);
    let key = server.key(10.0, None);
    let stereo = stereo_wav(dir.path());
    let fields = [("model", "gpt-4o-transcribe-diarize"), ("response_format", "diarized_json"), ("chunking_strategy", "auto")];
    let (status, v) = transcribe(&server, Some(&key), &fields, Some(&stereo)).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!((v["task"].as_str(), v["usage"]["type"].as_str()), (Some("transcribe"), Some("duration")), "{v}");
    let by_speaker = said_by_speaker(&v);
    assert_eq!(by_speaker.keys().map(String::as_str).collect::<Vec<_>>(), ["A", "B"], "{v}");
    let left = by_speaker.values().find(|said| said.contains("morning")).unwrap_or_else(|| panic!("{v}"));
    let right = by_speaker.values().find(|said| said.contains("park")).unwrap_or_else(|| panic!("{v}"));
    assert!(left.contains("tomorrow") && !left.contains("park") && !right.contains("morning"), "{v}");
    // Plain json carries no speakers, so the channels are mixed down and heard as one.
    let (status, plain) = transcribe(&server, Some(&key), &[("model", "gpt-4o-transcribe-diarize")], Some(&stereo)).await;
    assert_eq!(status, 200, "{plain}");
    assert_eq!(plain.as_object().unwrap().keys().collect::<Vec<_>>(), ["text", "usage"], "json is text only: {plain}");
}

/// `known_speaker_names[]` with `known_speaker_references[]`: two voices of a call, each named
/// from another sentence in the same voice, the names given in the other order than the voices
/// speak; a reference that is not audio fails the request with a 400 naming it.
#[tokio::test]
async fn openai_names_speakers_from_reference_recordings() {
    use base64::Engine as _;
    let dir = temp_dir();
    let server = Harken::start(dir.path(), &[]);
    let key = server.key(10.0, None);
    let path = |name: &str| dir.path().join(name);
    let say = |voice: &str, file: &str, text: &str| {
        let ok = std::process::Command::new("espeak-ng").args(["-v", voice, "-s", "150", "-w"]).arg(path(file)).arg(text).status();
        assert!(ok.expect("espeak-ng is installed").success());
    };
    let sox = |args: &[&std::path::Path]| {
        assert!(std::process::Command::new("sox").args(args).status().expect("sox is installed").success());
    };
    say("en-us", "agent.wav", "Good morning, thank you for calling. How can I help you today?");
    say("en-us+f3", "caller.wav", "Hello, I would like to check the balance of my savings account.");
    say("en-us", "agent_ref.wav", "This is the agent speaking. I answer the phone all day long.");
    say("en-us+f3", "caller_ref.wav", "And this is the caller. I phone the bank now and then.");
    let agent_seconds = std::fs::metadata(path("agent.wav")).unwrap().len() as f64 / (22_050.0 * 2.0);
    sox(&[&path("agent.wav"), &path("agent_then.wav"), "pad".as_ref(), "0".as_ref(), "5".as_ref()]);
    let pad = format!("{:.2}", agent_seconds + 0.6);
    sox(&[&path("caller.wav"), &path("caller_after.wav"), "pad".as_ref(), pad.as_ref(), "0".as_ref()]);
    sox(&["-M".as_ref(), &path("agent_then.wav"), &path("caller_after.wav"), &path("call.wav")]);
    let data_url = |file: &str| {
        format!("data:audio/wav;base64,{}", base64::engine::general_purpose::STANDARD.encode(std::fs::read(path(file)).unwrap()))
    };
    let (caller_ref, agent_ref) = (data_url("caller_ref.wav"), data_url("agent_ref.wav"));
    let fields = [
        ("model", "gpt-4o-transcribe-diarize"),
        ("response_format", "diarized_json"),
        ("known_speaker_names[]", "Caller"),
        ("known_speaker_names[]", "Agent"),
        ("known_speaker_references[]", caller_ref.as_str()),
        ("known_speaker_references[]", agent_ref.as_str()),
    ];
    let (status, v) = transcribe(&server, Some(&key), &fields, Some(&path("call.wav"))).await;
    assert_eq!(status, 200, "{v}");
    let by_speaker = said_by_speaker(&v);
    assert_eq!(by_speaker.keys().map(String::as_str).collect::<Vec<_>>(), ["Agent", "Caller"], "{v}");
    assert!(by_speaker["Agent"].contains("morning") && !by_speaker["Agent"].contains("savings"), "{v}");
    assert!(by_speaker["Caller"].contains("savings") && !by_speaker["Caller"].contains("morning"), "{v}");
    let not_audio = format!("data:audio/wav;base64,{}", base64::engine::general_purpose::STANDARD.encode("<html>no</html>"));
    let fields = [
        ("model", "gpt-4o-transcribe-diarize"),
        ("response_format", "diarized_json"),
        ("known_speaker_names[]", "Agent"),
        ("known_speaker_references[]", not_audio.as_str()),
    ];
    let (status, body) = transcribe(&server, Some(&key), &fields, Some(&path("call.wav"))).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().starts_with("known_speaker_references[0]: "), "{body}");
}

#[tokio::test]
async fn openai_honours_prompt_and_temperature() {
    let dir = temp_dir();
    let server = Harken::start(dir.path(), &[]);
    let key = server.key(10.0, None);
    let name = name_wav(dir.path());
    let m = ("model", "whisper-1");
    let (status, plain) = transcribe(&server, Some(&key), &[m], Some(&name)).await;
    assert_eq!(status, 200, "{plain}");
    assert!(!plain["text"].as_str().unwrap().contains("Brekkenridge"), "unaided spelling: {plain}");
    let prompt = format!("Meeting notes. Attendees: {NAME}.");
    let (status, body) = transcribe(&server, Some(&key), &[m, ("prompt", prompt.as_str())], Some(&name)).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["text"].as_str().unwrap().contains("Brekkenridge"), "the prompt's spelling: {body}");
    let wav = speech_wav(dir.path());
    let (status, body) = transcribe(&server, Some(&key), &[m, ("temperature", "0.3")], Some(&wav)).await;
    assert_eq!(status, 200, "{body}");
    assert!(heard(body["text"].as_str().unwrap()) >= 7, "sampled at 0.3: {body}");
}
