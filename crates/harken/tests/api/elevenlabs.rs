//! The ElevenLabs dialect against the real server: its error shape and statuses, a synchronous
//! request with every answer option, the stored transcript, a signed webhook delivery, and one
//! transcript per channel.

use base64::Engine as _;
use hmac::Mac;
use serde_json::Value;

use crate::dialects::*;
use crate::helpers::*;

async fn stt(server: &Harken, key: Option<&str>, fields: &[(&str, &str)], file: Option<&std::path::Path>) -> (u16, Value) {
    let mut req = client().post(format!("{}/v1/speech-to-text", server.base)).multipart(form(fields, file));
    if let Some(key) = key {
        req = req.header("xi-api-key", key);
    }
    send(req).await
}

#[tokio::test]
async fn elevenlabs_refuses_what_it_cannot_honour_in_its_error_shape() {
    let dir = temp_dir();
    let server = Harken::start(dir.path(), &[]);
    let key = server.key(10.0, None);
    let wav = speech_wav(dir.path());
    let m = ("model_id", "scribe_v1");
    let long_term = "x".repeat(51);
    let many_terms: Vec<(&str, &str)> = std::iter::once(m).chain(std::iter::repeat_n(("keyterms", "term"), 1001)).collect();
    let (status, body) = stt(&server, None, &[m], Some(&wav)).await;
    assert_eq!((status, body["detail"]["status"].as_str()), (401, Some("invalid_api_key")), "{body}");
    let (status, body) = stt(&server, Some("hk_wrong"), &[m], Some(&wav)).await;
    assert_eq!(status, 401, "{body}");
    let cases: Vec<(Vec<(&str, &str)>, bool, &str)> = vec![
        (vec![("model_id", "whisper-1")], true, "model_id: expected one of scribe_v1, scribe_v1_experimental, scribe_v2"),
        (vec![], true, "model_id: expected one of"),
        (vec![m], false, "file, cloud_storage_url: expected exactly one of them, received neither"),
        (vec![m, ("cloud_storage_url", "https://example.com/a.mp3")], true, "file, cloud_storage_url: expected exactly one of them, received both"),
        (vec![m, ("cloud_storage_url", "ftp://example.com/a.mp3")], false, "cloud_storage_url: expected an http(s) URL"),
        (vec![m, ("timestamps_granularity", "syllable")], true, "timestamps_granularity: expected none, word or character, received \"syllable\""),
        (vec![m, ("diarize", "true"), ("diarization_threshold", "0.5")], true, "diarization_threshold: expected a number from 0.1 to 0.4, received \"0.5\""),
        (vec![m, ("diarize", "true"), ("diarization_threshold", "low")], true, "diarization_threshold: expected a number from 0.1 to 0.4, received \"low\""),
        (vec![m, ("diarization_threshold", "0.3")], true, "diarization_threshold: expected no value unless diarize is true"),
        (vec![m, ("diarize", "true"), ("num_speakers", "2"), ("diarization_threshold", "0.3")], true,
            "diarization_threshold: expected no value when num_speakers is set, received 0.3 with num_speakers 2"),
        (vec![m, ("keyterms", "harken"), ("keyterms", long_term.as_str())], true, "keyterms[1]: expected at most 50 characters"),
        (vec![m, ("keyterms", "one two three four five six")], true, "keyterms[0]: expected at most 5 words"),
        (vec![m, ("keyterms", "a <b>")], true, "keyterms[0]: expected no < > { } [ ] or \\ characters"),
        (vec![m, ("keyterms", r#"["harken", 7]"#)], true, "keyterms: expected repeated text fields or one JSON list of strings"),
        (many_terms.clone(), true, "keyterms: expected at most 1000 terms, received 1001"),
        (vec![m, ("temperature", "2.5")], true, "temperature: expected a number from 0.0 to 2.0, received \"2.5\""),
        (vec![m, ("webhook", "true")], true, "webhook: expected a server with a speech-to-text webhook configured"),
        (vec![m, ("additional_formats", r#"[{"format":"mp3"}]"#)], true, "additional_formats[0].format: expected srt, txt"),
        (vec![m, ("additional_formats", "not json")], true, "additional_formats: expected a JSON list"),
        (vec![m, ("language_code", "klingon")], true, "language_code: expected an ISO 639-1 or 639-3 code"),
        (vec![m, ("num_speakers", "40")], true, "num_speakers: expected an integer from 1 to 32"),
        (vec![m, ("diarize", "maybe")], true, "diarize: expected true or false, received \"maybe\""),
        (vec![m, ("file_format", "mp3")], true, "file_format: expected pcm_s16le_16 or other"),
        (vec![m, ("entity_detection", "\"all\"")], true, "entity_detection: expected no value"),
    ];
    for (fields, with_file, expected) in cases {
        let (status, body) = stt(&server, Some(&key), &fields, with_file.then_some(wav.as_path())).await;
        assert_eq!(status, 422, "{fields:?}: {body}");
        assert_eq!(body["detail"]["status"], "invalid_parameters", "{body}");
        let msg = body["detail"]["message"].as_str().unwrap();
        assert!(msg.starts_with(expected), "{fields:?}: {msg}");
    }
    let url = format!("{}/v1/speech-to-text/transcripts/task_nope", server.base);
    let (status, body) = send(client().get(url).header("xi-api-key", &key)).await;
    assert_eq!((status, body["detail"]["status"].as_str()), (404, Some("transcript_not_found")), "{body}");
    let requests = std::fs::read_dir(dir.path().join("files/requests")).map(|d| d.count()).unwrap_or(0);
    assert_eq!(requests, 0, "refused uploads are not kept");
}

#[tokio::test]
async fn elevenlabs_sync_answer_stored_transcript_and_signed_webhook() {
    let dir = temp_dir();
    let receiver = Receiver::start().await;
    let server = Harken::start(
        dir.path(),
        &["--elevenlabs-webhook-url", &receiver.url, "--elevenlabs-webhook-secret", "whsec_test"],
    );
    let key = server.key(10.0, None);
    let wav = speech_wav(dir.path());
    let formats = r#"[{"format":"srt"},{"format":"txt","include_timestamps":false},{"format":"segmented_json"},
        {"format":"html"},{"format":"docx"},{"format":"pdf"}]"#;
    let fields = [
        ("model_id", "scribe_v1"),
        ("language_code", "en"),
        ("tag_audio_events", "false"),
        ("timestamps_granularity", "character"),
        ("additional_formats", formats),
        ("seed", "7"),
        ("temperature", "0"),
    ];
    let (status, body) = stt(&server, Some(&key), &fields, Some(&wav)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["language_code"], "eng");
    assert!(heard(body["text"].as_str().unwrap()) >= 7, "{}", body["text"]);
    let words = body["words"].as_array().unwrap();
    let first = words.iter().find(|w| w["type"] == "word").unwrap();
    assert!(first["logprob"].as_f64().unwrap() <= 0.0);
    let chars = first["characters"].as_array().unwrap();
    assert_eq!(chars.len(), first["text"].as_str().unwrap().chars().count());
    assert_eq!(chars[0]["start"], first["start"]);
    let formats = body["additional_formats"].as_array().unwrap();
    assert_eq!(formats.len(), 6);
    assert!(formats[0]["content"].as_str().unwrap().starts_with("1\n00:00:"));
    assert_eq!(formats[1]["content"].as_str().unwrap().trim(), body["text"].as_str().unwrap().trim());
    let segmented: Value = serde_json::from_str(formats[2]["content"].as_str().unwrap()).unwrap();
    assert!(!segmented["segments"].as_array().unwrap().is_empty());
    assert!(formats[3]["content"].as_str().unwrap().starts_with("<!DOCTYPE html>"));
    let b64 = |f: &Value| base64::engine::general_purpose::STANDARD.decode(f["content"].as_str().unwrap()).unwrap();
    assert_eq!((formats[4]["is_base64_encoded"].as_bool(), &b64(&formats[4])[..2]), (Some(true), &b"PK"[..]));
    assert_eq!(formats[4]["file_extension"], "docx");
    assert!(b64(&formats[5]).starts_with(b"%PDF-"));
    assert_eq!(formats[5]["content_type"], "application/pdf");
    let id = body["transcription_id"].as_str().unwrap().to_owned();

    let url = format!("{}/v1/speech-to-text/transcripts/{id}", server.base);
    let (status, stored) = send(client().get(&url).header("xi-api-key", &key)).await;
    assert_eq!(status, 200, "{stored}");
    assert_eq!(stored, body, "the stored transcript is the answer");
    let other = server.key(10.0, None);
    let (status, _) = send(client().get(&url).header("xi-api-key", &other)).await;
    assert_eq!(status, 404, "another key's transcript is not found");

    let (status, accepted) = stt(&server, Some(&key), &[("model_id", "scribe_v2"), ("webhook", "true"),
        ("webhook_metadata", r#"{"job":"42"}"#)], Some(&wav)).await;
    assert_eq!(status, 202, "{accepted}");
    let id = accepted["transcription_id"].as_str().unwrap();
    assert_eq!(accepted["request_id"], id);
    let got = receiver.wait_for(1, std::time::Duration::from_secs(120)).await;
    let hook = &got[0];
    assert_eq!(hook.body["type"], "speech_to_text_transcription");
    assert_eq!(hook.body["data"]["transcription_id"], id);
    assert_eq!(hook.body["data"]["webhook_metadata"]["job"], "42");
    assert!(heard(hook.body["data"]["transcription"]["text"].as_str().unwrap()) >= 7);
    let sig = hook.headers.get("elevenlabs-signature").expect("signed").to_str().unwrap();
    let (t, v0) = sig.split_once(',').unwrap();
    let t = t.strip_prefix("t=").unwrap();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"whsec_test").unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(&hook.raw);
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(v0, format!("v0={hex}"));
}

#[tokio::test]
async fn elevenlabs_multi_channel_gives_one_transcript_per_channel() {
    let dir = temp_dir();
    let server = Harken::start(dir.path(), &[]);
    let key = server.key(10.0, None);
    let stereo = stereo_wav(dir.path());
    let fields = [("model_id", "scribe_v1"), ("use_multi_channel", "true"), ("tag_audio_events", "false"), ("language_code", "en")];
    let (status, body) = stt(&server, Some(&key), &fields, Some(&stereo)).await;
    assert_eq!(status, 200, "{body}");
    let transcripts = body["transcripts"].as_array().unwrap();
    assert_eq!(transcripts.len(), 2);
    assert_eq!(transcripts[1]["channel_index"], 1);
    assert!(heard(transcripts[0]["text"].as_str().unwrap()) >= 7, "{}", transcripts[0]["text"]);
    let right = words(transcripts[1]["text"].as_str().unwrap());
    assert!(right.contains(&"park".to_owned()) || right.contains(&"weather".to_owned()), "{right:?}");
    assert!(transcripts[1]["words"].as_array().unwrap().iter().all(|w| w["channel_index"] == 1));
}

/// Without `use_multi_channel`, `diarize` on a recording with a voice per channel gives one
/// transcript in which each channel is one speaker (harken_engine::transcribe_channels).
#[tokio::test]
async fn elevenlabs_diarize_takes_a_voice_per_channel() {
    let dir = temp_dir();
    let server = Harken::start(dir.path(), &[]);
    let key = server.key(10.0, None);
    let stereo = stereo_wav(dir.path());
    let fields = [("model_id", "scribe_v1"), ("diarize", "true"), ("tag_audio_events", "false"), ("language_code", "en")];
    let (status, body) = stt(&server, Some(&key), &fields, Some(&stereo)).await;
    assert_eq!(status, 200, "{body}");
    assert_a_speaker_per_channel(&body["words"]);
}

#[tokio::test]
async fn elevenlabs_honours_keyterms_threshold_and_temperature() {
    let dir = temp_dir();
    let server = Harken::start(dir.path(), &[]);
    let key = server.key(10.0, None);
    let name = name_wav(dir.path());
    let m = ("model_id", "scribe_v1");
    let (status, plain) = stt(&server, Some(&key), &[m, ("tag_audio_events", "false")], Some(&name)).await;
    assert_eq!(status, 200, "{plain}");
    assert!(!plain["text"].as_str().unwrap().contains("Brekkenridge"), "unaided spelling: {}", plain["text"]);
    // The keyterms as one field holding a JSON list (curl users; the SDKs repeat the field).
    let terms = format!(r#"["quarterly report", "{NAME}"]"#);
    let fields = [m, ("tag_audio_events", "false"), ("keyterms", terms.as_str()), ("diarize", "true"), ("diarization_threshold", "0.3")];
    let (status, body) = stt(&server, Some(&key), &fields, Some(&name)).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["text"].as_str().unwrap().contains("Brekkenridge"), "the keyterm's spelling: {}", body["text"]);
    let words = body["words"].as_array().unwrap();
    assert!(words.iter().all(|w| w["speaker_id"] == "speaker_0"), "one voice, one speaker: {body}");
    let wav = speech_wav(dir.path());
    let (status, body) = stt(&server, Some(&key), &[m, ("tag_audio_events", "false"), ("temperature", "0.3")], Some(&wav)).await;
    assert_eq!(status, 200, "{body}");
    assert!(heard(body["text"].as_str().unwrap()) >= 7, "sampled at 0.3: {}", body["text"]);
}

#[tokio::test]
async fn elevenlabs_cloud_storage_url_reads_our_own_upload_links() {
    let dir = temp_dir();
    // Private addresses refused: our own link (on loopback here) is read from the object store,
    // any other loopback URL is still refused.
    let server = Harken::start_with(dir.path(), false, &[]);
    let key = server.key(10.0, None);
    let wav = std::fs::read(speech_wav(dir.path())).unwrap();
    let r = server.upload_stream(Some(&key), Some(("talk.wav", wav)), &[("uploadPath", "el")]).await;
    let url = r["data"]["downloadUrl"].as_str().expect("an upload link").to_owned();
    let m = ("model_id", "scribe_v1");
    let (status, body) = stt(&server, Some(&key), &[m, ("cloud_storage_url", url.as_str()), ("tag_audio_events", "false")], None).await;
    assert_eq!(status, 200, "{body}");
    assert!(heard(body["text"].as_str().unwrap()) >= 7, "{}", body["text"]);
    let host = AudioHost::start().await;
    let other = host.url("/speech.wav");
    let (status, body) = stt(&server, Some(&key), &[m, ("cloud_storage_url", other.as_str())], None).await;
    assert_eq!(status, 422, "{body}");
    let msg = body["detail"]["message"].as_str().unwrap();
    assert!(msg.starts_with("cloud_storage_url: download refused: 127.0.0.1 is a loopback"), "{msg}");
}
