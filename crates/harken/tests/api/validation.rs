//! Bad createTask bodies: each answered HTTP 200 with `code` 400/422 and a message naming the
//! field, what was expected and what was received; nothing queued.

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn bad_bodies_are_refused_with_named_fields() {
    let dir = temp_dir();
    let server = Harken::start(dir.path(), &[]);
    let key = server.key(10.0, None);
    let ok_url = "https://example.com/a.mp3";
    let cases: Vec<(String, u64, &str)> = vec![
        ("{\"model\": ".into(), 400, "body: expected a JSON object, received malformed JSON"),
        ("[1, 2]".into(), 400, "body: expected a JSON object, received an array"),
        (
            json!({"model": "whisper-1", "input": {"audio_url": ok_url}}).to_string(),
            422,
            "model: expected \"elevenlabs/speech-to-text\", received the string \"whisper-1\"",
        ),
        (
            json!({"model": 7, "input": {"audio_url": ok_url}}).to_string(),
            422,
            "model: expected \"elevenlabs/speech-to-text\", received the number 7",
        ),
        (json!({"model": MODEL}).to_string(), 422, "input: expected an object with audio_url, received nothing"),
        (
            json!({"model": MODEL, "input": "a.mp3"}).to_string(),
            422,
            "input: expected an object with audio_url, received the string \"a.mp3\"",
        ),
        (
            json!({"model": MODEL, "input": {}}).to_string(),
            422,
            "input.audio_url: expected an http(s) URL, received nothing",
        ),
        (
            json!({"model": MODEL, "input": {"audio_url": "ftp://example.com/a.mp3"}}).to_string(),
            422,
            "input.audio_url: expected an http(s) URL, received the string \"ftp://example.com/a.mp3\"",
        ),
        (
            json!({"model": MODEL, "input": {"audio_url": ["x"]}}).to_string(),
            422,
            "input.audio_url: expected an http(s) URL, received an array",
        ),
        (
            json!({"model": MODEL, "input": {"audio_url": ok_url, "language_code": "a".repeat(501)}}).to_string(),
            422,
            "input.language_code: expected at most 500 characters, received a string of 501 characters",
        ),
        (
            json!({"model": MODEL, "input": {"audio_url": ok_url, "language_code": "klingon"}}).to_string(),
            422,
            "input.language_code: expected an ISO 639-1 or 639-3 code",
        ),
        (
            json!({"model": MODEL, "input": {"audio_url": ok_url, "diarize": "yes"}}).to_string(),
            422,
            "input.diarize: expected true or false, received the string \"yes\"",
        ),
        (
            json!({"model": MODEL, "input": {"audio_url": ok_url, "tag_audio_events": 1}}).to_string(),
            422,
            "input.tag_audio_events: expected true or false, received the number 1",
        ),
        (
            json!({"model": MODEL, "callBackUrl": "ftp://example.com/cb", "input": {"audio_url": ok_url}}).to_string(),
            422,
            "callBackUrl: expected an http(s) URL, received the string \"ftp://example.com/cb\"",
        ),
        (
            json!({"model": MODEL, "callBackUrl": false, "input": {"audio_url": ok_url}}).to_string(),
            422,
            "callBackUrl: expected an http(s) URL, received the boolean false",
        ),
    ];
    for (body, code, msg) in &cases {
        let r = server.create_raw(Some(&key), body).await;
        assert_eq!(r["code"], *code, "{body}: {r}");
        let got = r["msg"].as_str().unwrap();
        assert!(got.starts_with(msg), "{body}:\n  got      {got}\n  expected {msg}");
        assert!(r["data"].is_null(), "{r}");
    }
    assert_eq!(server.credit(&key).await, 10.0, "nothing was charged or reserved");
    // A valid body with the optional fields omitted, null or empty is accepted.
    let minimal = json!({"model": MODEL, "callBackUrl": "", "input": {"audio_url": ok_url, "language_code": null}});
    assert_eq!(server.create(&key, &minimal).await["code"], 200);
}
