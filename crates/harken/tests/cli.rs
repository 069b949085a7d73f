//! `harken transcribe` as a user runs it: the real binary, the real model (tiny.en for speed),
//! audio made by espeak-ng and sox, and re-encoded by ffmpeg.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn harken(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_harken")).args(args).env("HARKEN_LOG", "warn").output().expect("harken runs")
}

fn tool(name: &str, args: &[&str]) {
    let status = Command::new(name)
        .args(args)
        .status()
        .unwrap_or_else(|e| panic!("{name} is needed by this test ({e}); run scripts/install-deps"));
    assert!(status.success(), "{name} {args:?} failed");
}

fn speech(dir: &Path) -> PathBuf {
    let wav = dir.join("speech.wav");
    tool("espeak-ng", &["-w", wav.to_str().unwrap(), "Good morning. This is a test of the speech server."]);
    wav
}

fn stdout(o: &Output) -> String {
    assert!(o.status.success(), "harken failed: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout.clone()).unwrap()
}

#[test]
fn json_output_is_the_transcript_object() {
    let dir = tempfile::tempdir().unwrap();
    let out = stdout(&harken(&["transcribe", "--model", "tiny.en", "--format", "json", speech(dir.path()).to_str().unwrap()]));
    let t: harken_types::Transcript = serde_json::from_str(&out).expect("a transcript");
    t.check().unwrap();
    assert_eq!(t.language_code, "eng");
    let lower = t.text.to_lowercase();
    assert!(lower.contains("morning") && lower.contains("test"), "{lower}");
    let raw: serde_json::Value = serde_json::from_str(&out).unwrap();
    let keys: Vec<&str> = raw.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, vec!["language_code", "language_probability", "text", "words"]);
    assert!(raw["words"][0]["logprob"].is_number() && raw["words"][0]["type"] == "word");
}

#[test]
fn every_contract_format_decodes_and_subtitles_render() {
    let dir = tempfile::tempdir().unwrap();
    let wav = speech(dir.path());
    let mut inputs = Vec::new();
    for (ext, codec) in [("mp3", "libmp3lame"), ("ogg", "libvorbis"), ("opus", "libopus"), ("m4a", "aac"), ("aac", "aac"), ("flac", "flac")] {
        let path = dir.path().join(format!("speech_{ext}.{ext}"));
        let format: &[&str] = if ext == "aac" { &["-f", "adts"] } else { &[] };
        let mut args = vec!["-loglevel", "error", "-y", "-i", wav.to_str().unwrap(), "-ar", "48000", "-ac", "2", "-c:a", codec];
        args.extend(format);
        args.push(path.to_str().unwrap());
        tool("ffmpeg", &args);
        inputs.push(path.to_string_lossy().into_owned());
    }
    let out_dir = dir.path().join("out");
    let mut args = vec!["transcribe", "--model", "tiny.en", "--format", "srt", "--output-dir", out_dir.to_str().unwrap()];
    args.extend(inputs.iter().map(String::as_str));
    stdout(&harken(&args));
    for input in &inputs {
        let stem = Path::new(input).file_stem().unwrap().to_str().unwrap();
        let srt = std::fs::read_to_string(out_dir.join(format!("{stem}.srt"))).unwrap();
        assert!(srt.starts_with("1\n00:00:0"), "{stem}: {srt}");
        assert!(srt.to_lowercase().contains("morning"), "{stem}: {srt}");
    }
    let vtt = stdout(&harken(&["transcribe", "--model", "tiny.en", "--format", "vtt", &inputs[0]]));
    assert!(vtt.starts_with("WEBVTT\n\n00:00:"), "{vtt}");
}

#[test]
fn bad_input_fails_with_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("page.mp3");
    std::fs::write(&html, "<!DOCTYPE html><html><body>not audio</body></html>").unwrap();
    let out = harken(&["transcribe", "--model", "tiny.en", html.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("HTML"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    let missing = harken(&["transcribe", "--model", "tiny.en", "/nonexistent/a.wav"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/a.wav"));
}

#[test]
fn options_the_engine_cannot_honour_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let wav = speech(dir.path());
    let two = harken(&["transcribe", "--model", "tiny.en", wav.to_str().unwrap(), wav.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&two.stderr).contains("--output-dir"));
    let lang = harken(&["transcribe", "--model", "tiny.en", "--language", "de", wav.to_str().unwrap()]);
    assert_eq!(lang.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&lang.stderr).contains("English only"));
    let model = harken(&["transcribe", "--model", "/nonexistent-model-dir", wav.to_str().unwrap()]);
    assert_eq!(model.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&model.stderr).contains("nonexistent-model-dir"));
    let unnamed = harken(&["transcribe", "--model", "tiny.en", "--known-speaker", "Ann", wav.to_str().unwrap()]);
    assert_eq!(unnamed.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unnamed.stderr).contains("expected NAME=FILE"), "{unnamed:?}");
    let page = dir.path().join("ann.wav");
    std::fs::write(&page, "<!DOCTYPE html><html><body>not audio</body></html>").unwrap();
    let not_audio = format!("Ann={}", page.display());
    let bad = harken(&["transcribe", "--model", "tiny.en", "--known-speaker", &not_audio, wav.to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--known-speaker Ann"), "{bad:?}");
}

#[test]
fn document_formats_are_real_files() {
    let dir = tempfile::tempdir().unwrap();
    let wav = speech(dir.path());
    let out_dir = dir.path().join("out");
    let wav = wav.to_str().unwrap();
    for format in ["segmented_json", "html", "docx", "pdf"] {
        let o = harken(&["transcribe", "--model", "tiny.en", "--format", format, "--output-dir", out_dir.to_str().unwrap(), wav]);
        assert!(o.status.success(), "{format}: {}", String::from_utf8_lossy(&o.stderr));
    }
    let segmented: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("speech.json")).unwrap()).expect("segmented JSON");
    assert!(segmented["segments"][0]["words"].is_array(), "{segmented}");
    let html = std::fs::read_to_string(out_dir.join("speech.html")).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>") && html.to_lowercase().contains("morning"));
    // docx: a zip whose main part is well-formed XML holding the words.
    let docx = out_dir.join("speech.docx");
    let listing = Command::new("unzip").arg("-Z1").arg(&docx).output().expect("unzip is installed");
    let parts = String::from_utf8(listing.stdout).unwrap();
    for part in ["[Content_Types].xml", "_rels/.rels", "word/document.xml"] {
        assert!(parts.lines().any(|l| l == part), "{part} missing from the docx: {parts}");
    }
    let xml = Command::new("unzip").arg("-p").arg(&docx).arg("word/document.xml").output().unwrap().stdout;
    let xml = String::from_utf8(xml).unwrap();
    let check = Command::new("python3")
        .args(["-c", "import sys, xml.dom.minidom; xml.dom.minidom.parseString(sys.stdin.read())"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(xml.as_bytes())?;
            c.wait()
        })
        .expect("python3 is installed");
    assert!(check.success(), "word/document.xml is not well-formed");
    assert!(xml.to_lowercase().contains("morning"), "{xml}");
    // pdf: poppler reads the words back.
    let pdf = out_dir.join("speech.pdf");
    let text = Command::new("pdftotext").arg(&pdf).arg("-").output().expect("pdftotext (poppler-utils) is installed");
    assert!(text.status.success());
    let text = String::from_utf8(text.stdout).unwrap().to_lowercase();
    assert!(text.contains("morning") && text.contains("test"), "{text}");
}

#[test]
fn binary_formats_are_not_written_to_a_terminal_but_to_a_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let o = harken(&["transcribe", "--model", "tiny.en", "--format", "pdf", speech(dir.path()).to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(o.stdout.starts_with(b"%PDF-"), "stdout is a pipe here, so the PDF is written to it");
}

#[test]
fn prompt_and_temperature_flags() {
    let dir = tempfile::tempdir().unwrap();
    let wav = speech(dir.path());
    let wav = wav.to_str().unwrap();
    let hot = harken(&["transcribe", "--model", "tiny.en", "--temperature", "1.5", wav]);
    assert_eq!(hot.status.code(), Some(2), "a usage error");
    let err = String::from_utf8_lossy(&hot.stderr);
    assert!(err.contains("--temperature") && err.contains("from 0 to 1"), "{err}");
    let sampled = stdout(&harken(&["transcribe", "--model", "tiny.en", "--format", "text", "--temperature", "0.3", wav]));
    assert!(sampled.to_lowercase().contains("morning"), "{sampled}");
    // A name Whisper spells its own way unless the prompt shows the spelling.
    let name = dir.path().join("name.wav");
    tool("espeak-ng", &["-w", name.to_str().unwrap(), "Our new intern is called Jaxon Breckenridge."]);
    let name = name.to_str().unwrap();
    let plain = stdout(&harken(&["transcribe", "--model", "tiny.en", "--format", "text", name]));
    assert!(!plain.contains("Brekkenridge"), "{plain}");
    let prompted = stdout(&harken(&["transcribe", "--model", "tiny.en", "--format", "text", "--prompt", "Jaxxon Brekkenridge", name]));
    assert!(prompted.contains("Brekkenridge"), "{prompted}");
}

/// The two-speaker dialogue of the shared test data (pyannote's sample, `../shared/testdata` or
/// `$HARKEN_TESTDATA`): two labels with the segmentation model (the default) and without it. The
/// recording is telephone-band, so the speaker embeddings alone are counted at the raised
/// threshold, where they tell the two voices apart (at the wide-band one they merged them;
/// docs/DIARIZATION.md, "Telephone, noise and reverberation"). Without the model the turns are
/// the embeddings' own, so some words are labelled differently.
#[test]
fn diarize_tells_the_two_voices_of_a_dialogue_apart() {
    let audio = harken_engine::diarize::eval::testdata_dir().join("diar/pyannote_sample.wav");
    assert!(audio.exists(), "{} is missing (set HARKEN_TESTDATA)", audio.display());
    let labels = |extra: &[&str]| -> Vec<String> {
        let mut args = vec!["transcribe", "--model", "tiny.en", "--diarize", "--format", "json"];
        args.extend_from_slice(extra);
        args.push(audio.to_str().unwrap());
        let t: harken_types::Transcript = serde_json::from_str(&stdout(&harken(&args))).expect("a transcript");
        t.check().unwrap();
        assert!(t.words.iter().all(|w| w.speaker_id.is_some()), "every item has a speaker");
        t.words.iter().filter_map(|w| w.speaker_id.clone()).collect()
    };
    let speakers = |labels: &[String]| labels.iter().cloned().collect::<std::collections::BTreeSet<String>>();
    let two: std::collections::BTreeSet<String> = ["speaker_0", "speaker_1"].map(String::from).into();
    let (with, without) = (labels(&[]), labels(&["--speaker-segmentation", "false"]));
    assert_eq!((speakers(&with), speakers(&without)), (two.clone(), two));
    assert_ne!(with, without, "the segmentation model redraws the turns");
}

/// A recording with one voice per channel, as a phone call is often recorded: with `--diarize`
/// each channel is transcribed on its own and is one speaker, also where the two talk at once;
/// the same voice on both channels is one speaker. Voices by espeak-ng, channels by sox.
#[test]
fn diarize_takes_a_voice_per_channel_from_a_two_channel_call() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    tool("espeak-ng", &["-v", "en-us", "-s", "150", "-w", &path("agent.wav"), "Good morning, thank you for calling. How can I help you today?"]);
    tool("espeak-ng", &["-v", "en-us+f3", "-s", "150", "-w", &path("caller.wav"), "Hello, I would like to check the balance of my savings account."]);
    // The caller answers after the agent (a call) or talks over the agent from the start.
    tool("sox", &[&path("agent.wav"), &path("agent_then.wav"), "pad", "0", "5"]);
    let agent_seconds = sox_seconds(&path("agent.wav"));
    tool("sox", &[&path("caller.wav"), &path("caller_after.wav"), "pad", &format!("{:.2}", agent_seconds + 0.6), "0"]);
    tool("sox", &["-M", &path("agent_then.wav"), &path("caller_after.wav"), &path("call.wav")]);
    tool("sox", &["-M", &path("agent.wav"), &path("caller.wav"), &path("overlap.wav")]);
    let words_by_speaker = |file: &str, extra: &[&str]| -> std::collections::BTreeMap<String, String> {
        let mut args = vec!["transcribe", "--model", "tiny.en", "--format", "json"];
        args.extend_from_slice(extra);
        args.push(file);
        let t: harken_types::Transcript = serde_json::from_str(&stdout(&harken(&args))).expect("a transcript");
        t.check().unwrap();
        let mut by = std::collections::BTreeMap::<String, String>::new();
        for w in t.words.iter().filter(|w| w.kind == harken_types::WordKind::Word) {
            let who = w.speaker_id.clone().unwrap_or_else(|| "none".into());
            by.entry(who).or_default().push_str(&format!("{} ", w.text.to_lowercase()));
        }
        by
    };
    for file in [path("call.wav"), path("overlap.wav")] {
        let by = words_by_speaker(&file, &["--diarize"]);
        let keys: Vec<&str> = by.keys().map(String::as_str).collect();
        assert_eq!(keys, vec!["speaker_0", "speaker_1"], "{file}: {by:?}");
        if file.ends_with("call.wav") {
            assert!(by["speaker_0"].contains("morning"), "the agent speaks first: {by:?}");
        }
        let agent = by.values().find(|w| w.contains("morning")).unwrap_or_else(|| panic!("{file}: {by:?}"));
        let caller = by.values().find(|w| w.contains("savings")).unwrap_or_else(|| panic!("{file}: {by:?}"));
        assert!(agent.contains("calling") && !agent.contains("savings") && !agent.contains("account"), "{file}: {by:?}");
        assert!(caller.contains("account") && !caller.contains("morning") && !caller.contains("calling"), "{file}: {by:?}");
    }
    // Named from other sentences in each voice, the names given in the other order.
    tool("espeak-ng", &["-v", "en-us", "-s", "150", "-w", &path("agent_ref.wav"), "This is the agent speaking. I answer the phone all day long."]);
    tool("espeak-ng", &["-v", "en-us+f3", "-s", "150", "-w", &path("caller_ref.wav"), "And this is the caller. I phone the bank now and then."]);
    let (caller_ref, agent_ref) = (format!("Caller={}", path("caller_ref.wav")), format!("Agent={}", path("agent_ref.wav")));
    let named = words_by_speaker(&path("call.wav"), &["--known-speaker", &caller_ref, "--known-speaker", &agent_ref]);
    assert_eq!(named.keys().collect::<Vec<_>>(), vec!["Agent", "Caller"], "{named:?}");
    assert!(named["Agent"].contains("morning") && named["Caller"].contains("savings"), "{named:?}");
    // Without --diarize the channels are mixed and no item has a speaker.
    let mixed = words_by_speaker(&path("call.wav"), &[]);
    assert_eq!(mixed.keys().collect::<Vec<_>>(), vec!["none"], "{mixed:?}");
    assert!(mixed["none"].contains("morning") && mixed["none"].contains("savings"), "{mixed:?}");
    // One voice copied to both channels is one speaker, its words once.
    tool("sox", &[&path("agent.wav"), "-c", "2", &path("agent_stereo.wav")]);
    let one = words_by_speaker(&path("agent_stereo.wav"), &["--diarize"]);
    assert_eq!(one.keys().collect::<Vec<_>>(), vec!["speaker_0"], "{one:?}");
    assert_eq!(one["speaker_0"].matches("morning").count(), 1, "{one:?}");
}

fn sox_seconds(file: &str) -> f64 {
    let out = Command::new("soxi").args(["-D", file]).output().expect("soxi (sox) is installed");
    String::from_utf8_lossy(&out.stdout).trim().parse().expect("a duration")
}
