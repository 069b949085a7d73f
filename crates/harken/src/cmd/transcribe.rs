//! `harken transcribe FILE|URL...`: the engine without a server.
//!
//! One input prints its transcript to stdout in the chosen format. Several inputs need
//! `--output-dir`, which receives `<file stem>.<format extension>` per input; the model is
//! loaded once for all of them.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use harken_audio::{FetchPolicy, Fetcher};
use harken_engine::{KnownSpeaker, SpeechEngine, TranscribeOptions};
use harken_types::Transcript;

use crate::engine::{self, EngineArgs};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// The contract's transcript object (ElevenLabs format).
    Json,
    /// Plain text.
    Text,
    /// SubRip subtitles.
    Srt,
    /// WebVTT subtitles.
    Vtt,
    /// Timed segments with their words, as JSON.
    #[value(name = "segmented_json")]
    SegmentedJson,
    /// A Word document (Office Open XML).
    Docx,
    /// A PDF document.
    Pdf,
    /// A standalone HTML page.
    Html,
}

impl Format {
    fn export(self) -> harken_export::Format {
        match self {
            Format::Json => harken_export::Format::Json,
            Format::Text => harken_export::Format::Text,
            Format::Srt => harken_export::Format::Srt,
            Format::Vtt => harken_export::Format::Vtt,
            Format::SegmentedJson => harken_export::Format::SegmentedJson,
            Format::Docx => harken_export::Format::Docx,
            Format::Pdf => harken_export::Format::Pdf,
            Format::Html => harken_export::Format::Html,
        }
    }

    fn extension(self) -> &'static str {
        self.export().extension()
    }

    /// The file's bytes. `text` is the bare transcript text; the document formats show speakers
    /// and timestamps.
    fn render(self, t: &Transcript) -> Vec<u8> {
        match self {
            Format::Text => harken_export::text(t).into_bytes(),
            other => other.export().render(t, &harken_export::ExportOptions::default()),
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Audio files or http(s) URLs.
    #[arg(required = true)]
    pub inputs: Vec<String>,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Language of the speech (ISO 639-1 or 639-3, e.g. `en`, `eng`); detected when absent.
    #[arg(long)]
    pub language: Option<String>,
    /// Label each word with its speaker.
    #[arg(long, overrides_with = "no_diarize")]
    pub diarize: bool,
    #[arg(long, hide = true)]
    pub no_diarize: bool,
    /// The most speakers to label, as ElevenLabs' num_speakers: the count is still estimated,
    /// then capped at this (implies --diarize).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=32))]
    pub num_speakers: Option<u16>,
    /// A speaker to name by voice, as NAME=FILE: FILE is a few seconds of that person talking;
    /// the diarized speaker who sounds like them is labelled NAME (implies --diarize; repeatable).
    #[arg(long = "known-speaker", value_name = "NAME=FILE", value_parser = known_speaker)]
    pub known_speakers: Vec<(String, PathBuf)>,
    /// Mark non-speech sounds such as (laughter) as audio events.
    #[arg(long, overrides_with = "no_tag_audio_events")]
    pub tag_audio_events: bool,
    #[arg(long, hide = true)]
    pub no_tag_audio_events: bool,
    /// Text the recogniser reads as if said just before the audio: names and terms spelled as
    /// you want them, or the style to follow (Whisper's prompt, as OpenAI's `prompt`).
    #[arg(long)]
    pub prompt: Option<String>,
    /// Sampling temperature of the first decoding attempt, 0 to 1; 0 is beam search.
    #[arg(long, value_parser = temperature)]
    pub temperature: Option<f32>,
    /// Output format.
    #[arg(long, value_enum, default_value = "json")]
    pub format: Format,
    /// Write one file per input here instead of printing (required for several inputs).
    #[arg(long)]
    pub output_dir: Option<PathBuf>,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    if args.inputs.len() > 1 && args.output_dir.is_none() {
        bail!("{} inputs given: pass --output-dir to write one transcript per input", args.inputs.len());
    }
    if args.output_dir.is_none() && args.format.export().is_binary() && std::io::stdout().is_terminal() {
        bail!("--format {}: a binary file; redirect stdout to a file or pass --output-dir", args.format.extension());
    }
    // The references first: a file that does not decode fails before the models load.
    let mut known_speakers = Vec::with_capacity(args.known_speakers.len());
    for (name, file) in &args.known_speakers {
        let (mut channels, _) = harken_audio::decode_file_as(file, false)
            .with_context(|| format!("--known-speaker {name}: decoding {}", file.display()))?;
        known_speakers.push(KnownSpeaker { name: name.clone(), samples: channels.pop().unwrap_or_default().into() });
    }
    let engine = engine::load(&args.engine).await?;
    let options = TranscribeOptions {
        language: args.language.clone(),
        diarize: args.diarize || args.num_speakers.is_some() || !known_speakers.is_empty(),
        num_speakers: args.num_speakers.map(usize::from),
        tag_audio_events: args.tag_audio_events,
        prompt: args.prompt.clone(),
        temperature: args.temperature,
        known_speakers,
        ..TranscribeOptions::default()
    };
    check_supported(engine.as_ref(), &options)?;
    // The command line is the user's own machine: local addresses are theirs to read.
    let fetcher = Fetcher::new(FetchPolicy { allow_private: true, ..FetchPolicy::default() })?;
    let scratch = tempfile::tempdir().context("creating a scratch directory")?;
    for input in &args.inputs {
        let transcript = transcribe_one(&engine, &fetcher, scratch.path(), input, &options)
            .await
            .with_context(|| format!("transcribing {input}"))?;
        let rendered = args.format.render(&transcript);
        match &args.output_dir {
            Some(dir) => {
                let path = dir.join(format!("{}.{}", stem(input), args.format.extension()));
                std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
                std::fs::write(&path, rendered).with_context(|| format!("writing {}", path.display()))?;
            }
            None => write_stdout(&rendered)?,
        }
    }
    Ok(())
}

fn known_speaker(arg: &str) -> Result<(String, PathBuf), String> {
    match arg.split_once('=') {
        Some((name, file)) if !name.trim().is_empty() && !file.is_empty() => Ok((name.trim().to_owned(), PathBuf::from(file))),
        _ => Err(format!("expected NAME=FILE (a name and a recording of that voice), received {arg:?}")),
    }
}

fn temperature(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(t) if (0.0..=1.0).contains(&t) => Ok(t),
        _ => Err(format!("expected a number from 0 to 1, received {s:?}")),
    }
}

fn check_supported(engine: &dyn SpeechEngine, options: &TranscribeOptions) -> anyhow::Result<()> {
    if options.diarize && !engine.supports_diarization() {
        bail!(
            "--diarize/--num-speakers: speaker diarization is unavailable: its speaker model could not be \
             loaded (see the warning above; `harken models fetch resemblyzer`, or `campplus` for that encoder)"
        );
    }
    if options.tag_audio_events && !engine.supports_audio_events() {
        bail!("--tag-audio-events: audio event tagging is not available in this build yet");
    }
    Ok(())
}

async fn transcribe_one(
    engine: &Arc<dyn SpeechEngine>,
    fetcher: &Fetcher,
    scratch: &Path,
    input: &str,
    options: &TranscribeOptions,
) -> anyhow::Result<Transcript> {
    let path = if input.starts_with("http://") || input.starts_with("https://") {
        fetcher.fetch_to_file(input, scratch).await?.path
    } else {
        PathBuf::from(input)
    };
    // Speaker labels can use a voice per channel (harken_engine::transcribe_channels).
    let per_channel = options.diarize;
    let (channels, duration_s) = tokio::task::spawn_blocking(move || harken_audio::decode_file_as(&path, per_channel)).await??;
    let engine = Arc::clone(engine);
    let options = options.clone();
    tokio::task::spawn_blocking(move || {
        let bar = progress_bar(duration_s);
        let report = |f: f32| bar.set_position((f.clamp(0.0, 1.0) * 1000.0) as u64);
        let result = harken_engine::transcribe_channels(engine.as_ref(), &channels, &options, &report);
        bar.finish_and_clear();
        result
    })
    .await?
    .map_err(anyhow::Error::from)
}

/// A bar on stderr when it is a terminal; hidden otherwise (pipes, CI logs).
fn progress_bar(duration_s: f64) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(1000);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {msg} [{bar:40}] {percent}% ({elapsed})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(format!("transcribing {:.0} s of audio", duration_s));
    bar
}

fn stem(input: &str) -> String {
    let last = input.rsplit('/').next().unwrap_or(input);
    let last = last.split(['?', '#']).next().unwrap_or(last);
    Path::new(last).file_stem().map_or_else(|| "audio".to_owned(), |s| s.to_string_lossy().into_owned())
}

/// Writes to stdout; a closed pipe (`| head`) is not an error.
fn write_stdout(s: &[u8]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(s).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("writing to stdout"),
    }
}
