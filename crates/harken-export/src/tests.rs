use super::*;
use harken_types::Word;

fn word(text: &str, start: f64, end: f64, kind: WordKind) -> Word {
    Word { text: text.to_owned(), start, end, kind, speaker_id: None, logprob: 0.0 }
}

pub(crate) fn sample() -> Transcript {
    let words = vec![
        word("Ask", 0.0, 0.4, WordKind::Word),
        word(" ", 0.4, 0.5, WordKind::Spacing),
        word("not.", 0.5, 1.0, WordKind::Word),
        word(" ", 1.0, 1.2, WordKind::Spacing),
        word("Why?", 1.2, 3661.5, WordKind::Word),
    ];
    Transcript { language_code: "eng".into(), language_probability: 1.0, text: "Ask not. Why?".into(), words }
}

pub(crate) fn with_speakers() -> Transcript {
    let mut t = sample();
    for (i, w) in t.words.iter_mut().enumerate() {
        w.speaker_id = Some(if i < 2 { "speaker_0" } else { "speaker_1" }.to_owned());
    }
    t.words[2].text = "not".into();
    t.text = "Ask not Why?".into();
    t
}

#[test]
fn srt_cues_split_at_sentence_ends() {
    assert_eq!(
        srt(&sample()),
        "1\n00:00:00,000 --> 00:00:01,000\nAsk not.\n\n2\n00:00:01,200 --> 01:01:01,500\nWhy?\n\n"
    );
}

#[test]
fn vtt_has_its_header_and_dot_separator() {
    let v = vtt(&sample());
    assert!(v.starts_with("WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nAsk not.\n"));
}

#[test]
fn speaker_changes_split_segments() {
    let s = segments(&with_speakers());
    assert_eq!(s.len(), 3);
    assert_eq!(s[1].speaker_id.as_deref(), Some("speaker_1"));
    assert_eq!(s[0].words.len(), 1, "trailing spacing is not part of a segment");
}

#[test]
fn options_drive_speakers_and_times() {
    let t = with_speakers();
    let plain = ExportOptions { include_speakers: false, include_timestamps: false, ..Default::default() };
    assert_eq!(text_with(&t, &plain), "Ask not Why?\n");
    let txt = text_with(&t, &ExportOptions::default());
    assert!(txt.starts_with("[00:00:00.000 - 00:00:00.400] speaker_0: Ask\n"), "{txt}");
    assert!(!srt_with(&t, &plain).contains("speaker_"));
    assert!(srt(&t).contains("[speaker_1] not"));
    let pause = ExportOptions { segment_on_silence_longer_than_s: 0.05, ..Default::default() };
    assert_eq!(segments_with(&sample(), &pause).len(), 3, "0.1 s gaps split");
}

#[test]
fn segmented_json_has_segments_with_words() {
    let v: serde_json::Value = serde_json::from_str(&segmented_json(&with_speakers(), &ExportOptions::default())).unwrap();
    let segs = v["segments"].as_array().unwrap();
    assert_eq!(segs.len(), 3);
    assert_eq!(segs[1]["speaker_id"], "speaker_1");
    assert_eq!(segs[1]["words"][0]["text"], "not");
    let no_times = ExportOptions { include_timestamps: false, include_speakers: false, ..Default::default() };
    let v: serde_json::Value = serde_json::from_str(&segmented_json(&with_speakers(), &no_times)).unwrap();
    assert!(v["segments"][0].get("start").is_none() && v["segments"][0]["words"][0].get("speaker_id").is_none());
}

#[test]
fn wrap_breaks_at_spaces() {
    assert_eq!(wrap("one two three four", Some(9)), "one two\nthree\nfour");
    assert_eq!(wrap("one two", None), "one two");
}

#[test]
fn formats_parse_and_describe_themselves() {
    for name in ["json", "txt", "text", "srt", "vtt", "segmented_json", "html", "docx", "pdf"] {
        let f = Format::parse(name).unwrap();
        assert!(!f.content_type().is_empty());
        assert!(!f.render(&sample(), &ExportOptions::default()).is_empty());
    }
    assert_eq!(Format::parse("doc"), None);
    assert!(Format::Pdf.is_binary() && !Format::Html.is_binary());
}
