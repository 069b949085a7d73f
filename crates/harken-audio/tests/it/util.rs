//! Fixtures: audio generated once per test run with sox, espeak-ng and ffmpeg.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Runs a command; a missing program is a test failure that says what to install.
pub fn run(cmd: &mut Command) {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let package = match program.as_str() {
        "espeak-ng" => "espeak-ng",
        "ffmpeg" => "ffmpeg",
        _ => "sox",
    };
    let output = match cmd.output() {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!("`{program}` is not installed; these tests need it: install it with `apt-get install {package}`")
        }
        Err(e) => panic!("could not run {program}: {e}"),
    };
    assert!(
        output.status.success(),
        "{cmd:?} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

fn ffmpeg(input: &Path, args: &[&str], output: &Path) {
    run(Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-i"])
        .arg(input)
        .args(args)
        .arg(output));
}

fn sox(args: &[&str]) {
    run(Command::new("sox").args(args));
}

/// Generated audio, shared by all tests.
pub struct Fixtures {
    pub dir: tempfile::TempDir,
    /// Duration of the spoken source, in seconds (every derived file has the same length).
    pub speech_s: f64,
}

impl Fixtures {
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

const TEXT: &str =
    "The quick brown fox jumps over the lazy dog. Speech recognition servers must decode \
    every common audio format, resample it to sixteen kilohertz, and keep the timing exact, \
    because word timestamps depend on it. This sentence is here to make the recording longer.";

pub fn fixtures() -> &'static Fixtures {
    static FIXTURES: OnceLock<Fixtures> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let p = |n: &str| dir.path().join(n);
        let s = |n: &str| p(n).to_string_lossy().into_owned();
        run(Command::new("espeak-ng")
            .arg("-w")
            .arg(p("speech_22k.wav"))
            .arg(TEXT));
        sox(&[
            &s("speech_22k.wav"),
            "-r",
            "8000",
            "-b",
            "16",
            &s("pcm16_8k.wav"),
        ]);
        sox(&[
            &s("speech_22k.wav"),
            "-r",
            "44100",
            "-c",
            "2",
            &s("stereo_44k.wav"),
        ]);
        sox(&[
            &s("speech_22k.wav"),
            "-r",
            "48000",
            "-e",
            "floating-point",
            "-b",
            "32",
            &s("float32_48k.wav"),
        ]);
        sox(&[
            &s("speech_22k.wav"),
            "-r",
            "96000",
            "-b",
            "24",
            &s("pcm24_96k.wav"),
        ]);
        let src = p("stereo_44k.wav");
        ffmpeg(
            &src,
            &["-c:a", "libmp3lame", "-b:a", "96k"],
            &p("speech.mp3"),
        );
        ffmpeg(
            &src,
            &["-c:a", "aac", "-b:a", "96k", "-f", "adts"],
            &p("speech.aac"),
        );
        ffmpeg(&src, &["-c:a", "aac", "-b:a", "96k"], &p("speech.m4a"));
        ffmpeg(&src, &["-c:a", "libvorbis", "-q:a", "4"], &p("speech.ogg"));
        ffmpeg(&src, &["-c:a", "libopus", "-b:a", "48k"], &p("speech.opus"));
        ffmpeg(&src, &["-c:a", "flac"], &p("speech.flac"));
        sox(&[
            "-n",
            "-r",
            "44100",
            "-c",
            "2",
            "-b",
            "16",
            &s("sine440_44k.wav"),
            "synth",
            "3",
            "sine",
            "440",
            "vol",
            "0.5",
        ]);
        sox(&[
            "-n",
            "-r",
            "8000",
            "-b",
            "16",
            &s("sine440_8k.wav"),
            "synth",
            "3",
            "sine",
            "440",
            "vol",
            "0.5",
        ]);
        // Mono sine through a lossy codec at an odd rate.
        sox(&[
            "-n",
            "-r",
            "22050",
            "-b",
            "16",
            &s("sine440_22k.wav"),
            "synth",
            "3",
            "sine",
            "440",
            "vol",
            "0.5",
        ]);
        ffmpeg(
            &p("sine440_22k.wav"),
            &["-c:a", "libmp3lame", "-b:a", "64k"],
            &p("sine440.mp3"),
        );
        sox(&[
            "-n",
            "-r",
            "16000",
            "-b",
            "16",
            &s("no_samples.wav"),
            "trim",
            "0",
            "0",
        ]);

        let bytes = std::fs::metadata(p("speech_22k.wav")).unwrap().len();
        // espeak-ng writes 16-bit mono at 22050 Hz with a 44-byte header.
        let speech_s = (bytes - 44) as f64 / 2.0 / 22050.0;
        assert!(
            speech_s > 8.0,
            "espeak-ng produced only {speech_s} s of speech"
        );
        Fixtures { dir, speech_s }
    })
}

/// Frequency of a clean tone from its zero crossings.
pub fn tone_frequency(samples: &[f32], rate: f64) -> f64 {
    // Skip the edges, where the resampler's filter sees padding.
    let body = &samples[samples.len() / 10..samples.len() * 9 / 10];
    let crossings: Vec<usize> = body
        .windows(2)
        .enumerate()
        .filter(|(_, w)| w[0] < 0.0 && w[1] >= 0.0)
        .map(|(i, _)| i)
        .collect();
    let (first, last) = (crossings[0], *crossings.last().unwrap());
    (crossings.len() - 1) as f64 * rate / (last - first) as f64
}

pub fn rms(samples: &[f32]) -> f64 {
    (samples.iter().map(|s| (*s as f64).powi(2)).sum::<f64>() / samples.len().max(1) as f64).sqrt()
}
