//! Decoding: every format to 16 kHz mono with the right duration, tone fidelity, bad input.

use harken_audio::{decode_file, decode_file_channels, AudioFormat, DecodeError};

use crate::util::{fixtures, rms, tone_frequency};

fn check_speech(name: &str, format: AudioFormat, source_rate: u32, channels: usize) {
    let fx = fixtures();
    let audio = decode_file(&fx.path(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(audio.format, format, "{name}");
    assert_eq!(audio.source_sample_rate, source_rate, "{name}");
    assert_eq!(audio.channels, channels, "{name}");
    let expected = fx.speech_s;
    let got = audio.samples.len() as f64 / 16000.0;
    assert!(
        (got - expected).abs() <= expected * 0.01,
        "{name}: {got:.3} s of 16 kHz output, expected {expected:.3} s ±1 %"
    );
    assert!(
        (audio.duration_s - expected).abs() <= expected * 0.01,
        "{name}: duration_s {:.3}, expected {expected:.3}",
        audio.duration_s
    );
    assert!(
        (audio.duration_s - got).abs() < 0.002,
        "{name}: duration_s disagrees with the sample count"
    );
    let level = rms(&audio.samples);
    assert!(
        level > 0.01,
        "{name}: output is nearly silent (rms {level})"
    );
    assert!(
        audio
            .samples
            .iter()
            .all(|s| s.is_finite() && s.abs() <= 2.0),
        "{name}: samples out of range"
    );
}

#[test]
fn wav_pcm16_8k() {
    check_speech("pcm16_8k.wav", AudioFormat::Wav, 8000, 1);
}

#[test]
fn wav_espeak_22k() {
    check_speech("speech_22k.wav", AudioFormat::Wav, 22050, 1);
}

#[test]
fn wav_stereo_44k() {
    check_speech("stereo_44k.wav", AudioFormat::Wav, 44100, 2);
}

#[test]
fn wav_float32_48k() {
    check_speech("float32_48k.wav", AudioFormat::Wav, 48000, 1);
}

#[test]
fn wav_pcm24_96k() {
    check_speech("pcm24_96k.wav", AudioFormat::Wav, 96000, 1);
}

#[test]
fn mp3() {
    check_speech("speech.mp3", AudioFormat::Mp3, 44100, 2);
}

#[test]
fn aac_adts() {
    check_speech("speech.aac", AudioFormat::Aac, 44100, 2);
}

#[test]
fn m4a() {
    check_speech("speech.m4a", AudioFormat::Mp4, 44100, 2);
}

#[test]
fn ogg_vorbis() {
    check_speech("speech.ogg", AudioFormat::OggVorbis, 44100, 2);
}

#[test]
fn ogg_opus() {
    check_speech("speech.opus", AudioFormat::OggOpus, 48000, 2);
}

#[test]
fn flac() {
    check_speech("speech.flac", AudioFormat::Flac, 44100, 2);
}

#[test]
fn channels_are_kept_apart_on_request() {
    let (channels, format) = decode_file_channels(&fixtures().path("stereo_44k.wav")).unwrap();
    assert_eq!(format, AudioFormat::Wav);
    assert_eq!(channels.len(), 2);
    assert_eq!(channels[0].len(), channels[1].len());
    let mono = decode_file(&fixtures().path("stereo_44k.wav"))
        .unwrap()
        .samples;
    assert_eq!(mono.len(), channels[0].len());
}

#[test]
fn sine_440_survives_resampling() {
    for (name, tolerance) in [
        ("sine440_44k.wav", 0.005),
        ("sine440_8k.wav", 0.005),
        ("sine440.mp3", 0.01),
    ] {
        let audio = decode_file(&fixtures().path(name)).unwrap();
        let freq = tone_frequency(&audio.samples, 16000.0);
        assert!(
            (freq - 440.0).abs() <= 440.0 * tolerance,
            "{name}: {freq:.2} Hz after resampling"
        );
        // Amplitude 0.5 sine: rms 0.354; the resampler must not lose or add level.
        let level = rms(&audio.samples[1600..audio.samples.len() - 1600]);
        assert!((level - 0.3536).abs() < 0.02, "{name}: rms {level:.4}");
        assert!(
            (audio.duration_s - 3.0).abs() < 0.03,
            "{name}: {} s",
            audio.duration_s
        );
    }
}

fn write(name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = fixtures().path(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn html_is_named() {
    let path = write(
        "page.mp3",
        b"<!DOCTYPE html>\n<html><head><title>404</title></head><body>Not found</body></html>",
    );
    let err = decode_file(&path).unwrap_err();
    assert!(
        matches!(err, DecodeError::NotAudio { what: "HTML" }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "unsupported audio: the content looks like HTML, not audio"
    );
}

#[test]
fn text_is_named() {
    let path = write(
        "notes.wav",
        b"These are meeting notes, not a recording.\nSecond line.\n",
    );
    let err = decode_file(&path).unwrap_err();
    assert_eq!(
        err.to_string(),
        "unsupported audio: the content looks like text, not audio"
    );
}

#[test]
fn empty_file() {
    let err = decode_file(&write("empty.mp3", b"")).unwrap_err();
    assert!(matches!(err, DecodeError::Empty), "{err:?}");
    assert_eq!(err.to_string(), "the audio file is empty (0 bytes)");
}

#[test]
fn unknown_binary_is_unsupported() {
    let bytes: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 & 0x7f | 0x80)
        .collect();
    let err = decode_file(&write("noise.bin", &bytes)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "unsupported audio type: expected mp3, wav, aac, m4a/mp4, ogg (vorbis/opus), flac or aiff"
    );
}

#[test]
fn corrupt_container() {
    // Valid magic, garbage where the stream info should be.
    let mut bytes = b"fLaC".to_vec();
    bytes.extend((0..2000u32).map(|i| (i * 7919 % 251) as u8));
    let err = decode_file(&write("garbage.flac", &bytes)).unwrap_err();
    assert!(matches!(err, DecodeError::Corrupt { .. }), "{err:?}");
    assert!(err.to_string().starts_with("corrupt audio: "), "{err}");

    let mut wav = std::fs::read(fixtures().path("pcm16_8k.wav")).unwrap();
    wav.truncate(30); // inside the fmt chunk
    let err = decode_file(&write("cut_header.wav", &wav)).unwrap_err();
    assert!(err.to_string().starts_with("corrupt audio: "), "{err}");
}

#[test]
fn no_samples() {
    let err = decode_file(&fixtures().path("no_samples.wav")).unwrap_err();
    assert!(matches!(err, DecodeError::NoSamples), "{err:?}");
    assert_eq!(err.to_string(), "audio contains no samples");
}

#[test]
fn truncated_files_decode_what_is_there() {
    let fx = fixtures();
    for name in [
        "speech.mp3",
        "speech.flac",
        "speech.ogg",
        "speech.opus",
        "speech.aac",
        "stereo_44k.wav",
    ] {
        let full = std::fs::read(fx.path(name)).unwrap();
        // Cut mid-frame, a little after the middle.
        let cut = full.len() / 2 + 37;
        let path = write(&format!("half_{name}"), &full[..cut]);
        let audio = decode_file(&path).unwrap_or_else(|e| panic!("truncated {name}: {e}"));
        let ratio = audio.duration_s / fx.speech_s;
        assert!(
            (0.35..0.65).contains(&ratio),
            "truncated {name}: decoded {ratio:.2} of the file"
        );
    }
}

/// Lag (in 16 kHz samples) that best aligns `b` with `a`, searched within ±`max`.
fn best_lag(a: &[f32], b: &[f32], max: isize) -> isize {
    let window = 32_000..48_000; // 2 s to 3 s: inside the speech
    (-max..=max)
        .max_by(|x, y| {
            let score = |lag: isize| -> f64 {
                window
                    .clone()
                    .map(|i| a[i] as f64 * b[(i as isize + lag) as usize] as f64)
                    .sum()
            };
            score(*x).total_cmp(&score(*y))
        })
        .unwrap()
}

#[test]
fn lossy_formats_are_time_aligned_with_the_source() {
    let fx = fixtures();
    let reference = decode_file(&fx.path("stereo_44k.wav")).unwrap().samples;
    // Encoder delay (LAME header, Opus pre-skip, Vorbis granules, MP4 edit list) must be removed,
    // or every word timestamp comes out late.
    for name in [
        "speech.mp3",
        "speech.ogg",
        "speech.opus",
        "speech.flac",
        "speech.m4a",
        "float32_48k.wav",
        "pcm16_8k.wav",
    ] {
        let decoded = decode_file(&fx.path(name)).unwrap().samples;
        let lag = best_lag(&reference, &decoded, 800);
        assert!(
            lag.abs() <= 2,
            "{name}: starts {lag} samples ({:.1} ms) off",
            lag as f64 / 16.0
        );
        // And padding at the end is gone too (MP4 edit lists count in 1 ms units here).
        let extra = decoded.len() as isize - reference.len() as isize;
        let allowed = if name.ends_with(".m4a") { 16 } else { 2 };
        assert!(
            extra.abs() <= allowed,
            "{name}: {extra} samples longer than the source"
        );
    }
    // ADTS carries no delay information: its 1024 priming samples (23 ms) remain. Documented.
    let lag = best_lag(
        &reference,
        &decode_file(&fx.path("speech.aac")).unwrap().samples,
        800,
    );
    assert!((lag - 372).abs() <= 2, "speech.aac: lag {lag}");
}
