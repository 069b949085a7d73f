//! Audio event benchmark over the shared test data.
//!
//! ```text
//! cargo run --release -p harken-engine --example events [-- --model base] [--asr N] [--only SUBSTR] [--cost]
//! ```
//! For each `event` row of `manifest.tsv`: whether an `audio_event` item was found, its labels,
//! and whether one fits the reference label. Then, over the `asr` rows (all, or the first N):
//! every event found (each is a false event, the clips being plain speech) and the false-event
//! rate per 10 minutes. `--cost` also transcribes the asr rows with tagging off and reports the
//! extra time the tagging pass takes. Test data: `$HARKEN_TESTDATA` or `../shared/testdata`.

use std::time::Instant;

use harken_engine::diarize::eval;
use harken_engine::{EngineConfig, SpeechEngine, TranscribeOptions, WhisperEngine, WordKind};

/// Labels our vocabulary may give for each reference label of the test data.
fn fits(reference: &str, label: &str) -> bool {
    let r = reference.to_lowercase();
    let accepted: &[&str] = if r.starts_with("music") {
        &["music"]
    } else if r.starts_with("laughter") {
        &["laughter"]
    } else if r.starts_with("dog") {
        &["dog barking"]
    } else if r.starts_with("thunderstorm") {
        &["thunder", "rain"]
    } else if r.starts_with("car_horn") {
        &["car horn"]
    } else if r.starts_with("bird") {
        &["birds chirping"]
    } else if r.starts_with("whale") {
        &["whale song"]
    } else if r.starts_with("applause") {
        &["applause"]
    } else {
        &[]
    };
    accepted.contains(&label)
}

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() -> anyhow::Result<()> {
    let model = arg("--model").unwrap_or_else(|| "base".to_owned());
    let asr_limit: usize = arg("--asr").and_then(|n| n.parse().ok()).unwrap_or(usize::MAX);
    let cost = std::env::args().any(|a| a == "--cost");
    let only = arg("--only").unwrap_or_default();
    let dir = harken_models::resolve_whisper(&harken_models::default_models_dir(), &model)?;
    let engine = WhisperEngine::load(EngineConfig::new(dir, model.clone()))?;
    let data = eval::testdata_dir();
    let rows = eval::manifest_rows(&data)?;
    let on = TranscribeOptions {
        diarize: false,
        tag_audio_events: true,
        language: Some("en".to_owned()),
        ..TranscribeOptions::default()
    };
    let off = TranscribeOptions {
        tag_audio_events: false,
        ..on.clone()
    };
    let events_of = |t: &harken_engine::Transcript| -> Vec<(String, f64, f64)> {
        t.words
            .iter()
            .filter(|w| w.kind == WordKind::AudioEvent)
            .map(|w| (w.text.clone(), w.start, w.end))
            .collect()
    };

    println!(
        "model {model}\n\n{:<58} {:<26} {:<5} events",
        "event clip", "reference", "fit"
    );
    let (mut clips, mut hits, mut found_any) = (0, 0, 0);
    for row in rows
        .iter()
        .filter(|r| r.kind == "event" && r.file.contains(&only))
    {
        let samples = harken_audio::decode_file(&data.join(&row.file))?.samples;
        let t = engine.transcribe(&samples, &on, &|_| {})?;
        t.check().map_err(|e| anyhow::anyhow!("{}: {e}", row.file))?;
        let events = events_of(&t);
        let fit = events
            .iter()
            .any(|(text, ..)| fits(&row.reference, text.trim_matches(['(', ')'])));
        clips += 1;
        hits += usize::from(fit);
        found_any += usize::from(!events.is_empty());
        let shown: Vec<String> = events.iter().map(|(x, a, b)| format!("{x} {a:.1}-{b:.1}")).collect();
        println!(
            "{:<58} {:<26} {:<5} {}",
            row.file,
            row.reference,
            if fit { "yes" } else { "no" },
            shown.join(", ")
        );
    }
    println!(
        "recall (fitting label): {hits}/{clips} = {:.0} %; clips with any event: {found_any}/{clips}\n",
        100.0 * hits as f64 / clips.max(1) as f64
    );

    let (mut seconds, mut false_events, mut time_on, mut time_off) = (0.0, 0, 0.0, 0.0);
    for row in rows
        .iter()
        .filter(|r| r.kind == "asr" && r.file.contains(&only))
        .take(asr_limit)
    {
        let samples = harken_audio::decode_file(&data.join(&row.file))?.samples;
        seconds += samples.len() as f64 / 16_000.0;
        let t0 = Instant::now();
        let t = engine.transcribe(&samples, &on, &|_| {})?;
        time_on += t0.elapsed().as_secs_f64();
        t.check().map_err(|e| anyhow::anyhow!("{}: {e}", row.file))?;
        eprintln!(
            "{}: {:.1} s audio, {:.1} s",
            row.file,
            samples.len() as f64 / 16_000.0,
            t0.elapsed().as_secs_f64()
        );
        for (text, a, b) in events_of(&t) {
            false_events += 1;
            println!("false event: {} {text} {a:.1}-{b:.1}", row.file);
        }
        if cost {
            let t0 = Instant::now();
            engine.transcribe(&samples, &off, &|_| {})?;
            time_off += t0.elapsed().as_secs_f64();
        }
    }
    let rate = false_events as f64 / (seconds / 600.0).max(1e-9);
    println!(
        "asr: {false_events} false events in {:.1} min = {rate:.2} per 10 min",
        seconds / 60.0
    );
    println!(
        "time with tagging {time_on:.1} s for {seconds:.1} s of audio (RTF {:.3})",
        time_on / seconds.max(1e-9)
    );
    if cost {
        println!(
            "time with tagging {time_on:.1} s, without {time_off:.1} s: +{:.1} % (RTF {:.3} vs {:.3})",
            100.0 * (time_on - time_off) / time_off.max(1e-9),
            time_on / seconds,
            time_off / seconds
        );
    }
    Ok(())
}
