//! Recordings with one voice per channel: a phone call recorded with the agent on the left and
//! the customer on the right, an interview or podcast with each microphone on its own track.
//!
//! Mixed down to mono, two people talking at once become one signal that the decoder transcribes
//! one side of (or a muddle of both), and the speaker model hears the voices blurred together.
//! Kept apart, each channel is a clean recording of one speaker. So when speaker labels are asked
//! for and the channels hold different voices ([`voices_apart`]), each channel is transcribed
//! apart from the others and is one speaker: the channels, cut down to their speech, are laid end
//! to end and transcribed in one pass ([`stitch`]: about the decoding time of the mono mix), and
//! the words go back to their channels. Otherwise the channels are averaged (the decoder's mono
//! mix) and diarized as usual. ElevenLabs' `use_multi_channel` (one transcript per
//! channel) is separate: the dialect asks for it explicitly and gets no merged transcript.

mod stitch;

use harken_types::{Transcript, WordKind};

use crate::api::{EngineError, Progress, SpeechEngine, TranscribeOptions, SAMPLE_RATE};
use crate::assemble::{self, Item};
use crate::known_speakers;

/// Loudness frames: 20 ms.
const FRAME: usize = 320;
/// Frames within this many dB of the recording's loudest frame hold sound (speech, usually);
/// the rest is the noise floor of every channel, which says nothing about who is where.
const ACTIVE_DB: f32 = 40.0;
/// A channel "has the floor" in a frame when it is this much louder than every other channel.
const OWN_DB: f32 = 10.0;
/// Least time (in frames, 0.5 s) each channel must have the floor: a silent channel, or one that
/// only carries the other's echo, is not a voice of its own.
const MIN_OWN_FRAMES: usize = 25;
/// Largest correlation between two channels' loudness (dB, over the frames with sound) for them
/// to count as different voices. One sound field picked up twice (a stereo microphone, a mono
/// recording copied to both sides, two microphones in one room) rises and falls together, near
/// 1; two people on their own lines are independent (near 0) or take turns (below 0).
const MAX_CORRELATION: f32 = 0.4;
/// At most this many channels are transcribed one by one (ElevenLabs' own multi-channel limit).
const MAX_VOICE_CHANNELS: usize = 5;

/// Transcribes a recording given as one 16 kHz signal per channel (all of one length). With
/// `diarize` on and channels that hold different voices, each channel is transcribed apart from
/// the others and its words are one speaker, numbered in order of first appearance; a
/// `num_speakers` below the channel count asks for ordinary diarization of the mix instead.
/// Otherwise the channels are averaged and transcribed as one.
///
/// Speakers who sound like one of `options.known_speakers` then take its name.
pub fn transcribe_channels(
    engine: &dyn SpeechEngine,
    channels: &[Vec<f32>],
    options: &TranscribeOptions,
    progress: Progress<'_>,
) -> Result<Transcript, EngineError> {
    let mut transcript = transcribe_voices(engine, channels, options, progress)?;
    if options.diarize && !options.known_speakers.is_empty() {
        let mono = match channels {
            [only] => std::borrow::Cow::Borrowed(only.as_slice()),
            several => std::borrow::Cow::Owned(downmix(several)),
        };
        known_speakers::name_speakers(engine, &mono, &mut transcript, &options.known_speakers);
    }
    Ok(transcript)
}

fn transcribe_voices(
    engine: &dyn SpeechEngine,
    channels: &[Vec<f32>],
    options: &TranscribeOptions,
    progress: Progress<'_>,
) -> Result<Transcript, EngineError> {
    if let [only] = channels {
        return engine.transcribe(only, options, progress);
    }
    let split = options.diarize
        && (2..=MAX_VOICE_CHANNELS).contains(&channels.len())
        && options.num_speakers.is_none_or(|most| most >= channels.len())
        && voices_apart(channels);
    if !split {
        return engine.transcribe(&downmix(channels), options, progress);
    }
    tracing::debug!(channels = channels.len(), "one voice per channel: transcribing the channels' speech end to end");
    let alone = TranscribeOptions { diarize: false, num_speakers: None, ..options.clone() };
    let stitched = stitch::stitch(channels);
    let transcript = engine.transcribe(&stitched.samples, &alone, progress)?;
    Ok(merge(stitched.split(transcript), channels))
}

/// The channels averaged sample by sample (what the decoder's mono mode gives).
fn downmix(channels: &[Vec<f32>]) -> Vec<f32> {
    let len = channels.iter().map(Vec::len).min().unwrap_or(0);
    let scale = 1.0 / channels.len().max(1) as f32;
    (0..len).map(|i| channels.iter().map(|c| c[i]).sum::<f32>() * scale).collect()
}

/// Whether each channel carries a voice of its own: every channel has the floor for a while,
/// and no two channels' loudness moves together (see the constants).
fn voices_apart(channels: &[Vec<f32>]) -> bool {
    if channels.len() < 2 {
        return false;
    }
    let levels: Vec<Vec<f32>> = channels.iter().map(|c| frame_levels(c)).collect();
    let frames = levels.iter().map(Vec::len).min().unwrap_or(0);
    let loudest = levels.iter().flatten().copied().fold(f32::NEG_INFINITY, f32::max);
    let active: Vec<usize> = (0..frames).filter(|&f| levels.iter().any(|l| l[f] > loudest - ACTIVE_DB)).collect();
    let has_floor = |c: usize| {
        let own = active
            .iter()
            .filter(|&&f| levels.iter().enumerate().all(|(d, other)| d == c || levels[c][f] >= other[f] + OWN_DB))
            .count();
        own >= MIN_OWN_FRAMES
    };
    if !(0..channels.len()).all(has_floor) {
        return false;
    }
    (0..channels.len())
        .all(|a| (a + 1..channels.len()).all(|b| correlation(&levels[a], &levels[b], &active) < MAX_CORRELATION))
}

/// Loudness of each 20 ms frame, in dB (mean square; −100 dB for digital silence).
fn frame_levels(samples: &[f32]) -> Vec<f32> {
    samples
        .chunks(FRAME)
        .map(|c| 10.0 * (c.iter().map(|x| x * x).sum::<f32>() / c.len() as f32 + 1e-10).log10())
        .collect()
}

/// Pearson correlation of `a` and `b` over the frames `at`; 1 (alike) when either is constant.
fn correlation(a: &[f32], b: &[f32], at: &[usize]) -> f32 {
    let n = at.len().max(1) as f64;
    let mean = |x: &[f32]| at.iter().map(|&f| f64::from(x[f])).sum::<f64>() / n;
    let (ma, mb) = (mean(a), mean(b));
    let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
    for &f in at {
        let (x, y) = (f64::from(a[f]) - ma, f64::from(b[f]) - mb);
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    if aa <= 0.0 || bb <= 0.0 {
        return 1.0;
    }
    (ab / (aa * bb).sqrt()) as f32
}

/// Whether another channel is [`OWN_DB`] louder than channel `c` over `start..end` (seconds):
/// what channel `c` holds there is the other voice leaking in (a headset's echo, a microphone
/// that also hears the other person), which the decoder would transcribe a second time.
fn crosstalk(channels: &[Vec<f32>], c: usize, start: f64, end: f64) -> bool {
    let to_sample = |t: f64| ((t.max(0.0) * SAMPLE_RATE as f64) as usize).min(channels[c].len());
    let (a, b) = (to_sample(start), to_sample(end));
    if b <= a {
        return false;
    }
    let level = |x: &[f32]| 10.0 * (x[a..b].iter().map(|v| v * v).sum::<f32>() / (b - a) as f32 + 1e-10).log10();
    let own = level(&channels[c]);
    channels.iter().enumerate().any(|(d, other)| d != c && level(other) >= own + OWN_DB)
}

/// One transcript of the channels' words in time order, channel `c`'s words (and events) as
/// speaker `c` before renumbering by first appearance; words that are another channel's voice
/// leaking in ([`crosstalk`]) are dropped. The language is the one of the channel with the most
/// words. Where two people talk at once their words interleave by start time.
fn merge(transcripts: Vec<Transcript>, channels: &[Vec<f32>]) -> Transcript {
    let duration = channels[0].len() as f64 / SAMPLE_RATE as f64;
    let words = |t: &Transcript| t.words.iter().filter(|w| w.kind == WordKind::Word).count();
    let (language_code, language_probability) = transcripts
        .iter()
        .max_by_key(|t| words(t))
        .map_or((String::new(), 0.0), |t| (t.language_code.clone(), t.language_probability));
    // Scripts written with spaces get one between words of different channels too.
    let spaced = transcripts.iter().flat_map(|t| &t.words).any(|w| w.kind == WordKind::Spacing && !w.text.is_empty());
    let mut items: Vec<Item> = Vec::new();
    for (channel, t) in transcripts.into_iter().enumerate() {
        let mut gap = String::new();
        for w in t.words {
            if w.kind == WordKind::Spacing {
                gap = w.text;
                continue;
            }
            let text = format!("{}{}", std::mem::take(&mut gap), w.text);
            if crosstalk(channels, channel, w.start, w.end) {
                continue;
            }
            items.push(Item {
                text,
                start: w.start,
                end: w.end,
                logprob: w.logprob,
                kind: w.kind,
                speaker: Some(channel),
            });
        }
    }
    items.sort_by(|a, b| a.start.total_cmp(&b.start));
    for i in 1..items.len() {
        if spaced && items[i].speaker != items[i - 1].speaker && !items[i].text.starts_with(char::is_whitespace) {
            items[i].text.insert(0, ' ');
        }
    }
    assemble::transcript(items, duration, &language_code, language_probability)
}

#[cfg(test)]
mod tests {
    use harken_types::Word;

    use super::*;

    /// A 440 Hz tone (a stand-in for a voice's loudness) where `on` holds, else faint noise.
    fn signal(seconds: f64, on: impl Fn(f64) -> bool, gain: f32) -> Vec<f32> {
        let n = (seconds * SAMPLE_RATE as f64) as usize;
        let mut noise = 0x2545_f491_u32;
        (0..n)
            .map(|i| {
                noise ^= noise << 13;
                noise ^= noise >> 17;
                noise ^= noise << 5;
                let t = i as f64 / SAMPLE_RATE as f64;
                let floor = 1e-4 * (noise as f32 / u32::MAX as f32 - 0.5);
                let tone = if on(t) { gain * (2.0 * std::f64::consts::PI * 440.0 * t).sin() as f32 } else { 0.0 };
                tone + floor
            })
            .collect()
    }

    /// Talk spurts: on for 0.4 s, off for 0.3 s, starting at `phase` seconds.
    fn spurts(phase: f64) -> impl Fn(f64) -> bool {
        move |t| t >= phase && (t - phase) % 0.7 < 0.4
    }

    #[test]
    fn a_call_with_one_person_per_side_is_two_voices() {
        // Turns of 2 s each, alternating sides.
        let left = signal(12.0, |t| (t as usize / 2).is_multiple_of(2), 0.3);
        let right = signal(12.0, |t| (t as usize / 2) % 2 == 1, 0.1);
        assert!(voices_apart(&[left, right]));
    }

    #[test]
    fn two_people_talking_over_each_other_on_their_own_channels_are_two_voices() {
        let left = signal(8.0, spurts(0.0), 0.3);
        let right = signal(8.0, spurts(0.25), 0.3);
        assert!(voices_apart(&[left, right]));
    }

    #[test]
    fn one_sound_field_on_two_channels_is_not() {
        let mono = signal(8.0, spurts(0.0), 0.3);
        // The same on both sides, and the same 6 dB quieter on the right (a panned voice).
        assert!(!voices_apart(&[mono.clone(), mono.clone()]));
        let quieter: Vec<f32> = mono.iter().map(|x| x * 0.5).collect();
        assert!(!voices_apart(&[mono.clone(), quieter]));
        // A silent right channel.
        assert!(!voices_apart(&[mono, signal(8.0, |_| false, 0.0)]));
    }

    #[test]
    fn words_of_the_other_voice_leaking_in_are_dropped() {
        let loud = signal(2.0, |t| t < 1.0, 0.3);
        let echo: Vec<f32> = loud.iter().map(|x| x * 0.05).collect();
        // The left channel's voice, 26 dB down on the right: the right's "words" there are echo.
        assert!(crosstalk(&[loud.clone(), echo.clone()], 1, 0.2, 0.6));
        assert!(!crosstalk(&[loud.clone(), echo.clone()], 0, 0.2, 0.6));
        // Two people talking at once, each on their own line: nothing dropped.
        let other = signal(2.0, |t| t > 0.1, 0.2);
        assert!(!crosstalk(&[loud.clone(), other.clone()], 1, 0.2, 0.6));
        assert!(!crosstalk(&[loud, other], 0, 0.2, 0.6));
    }

    #[test]
    fn downmix_averages_the_channels() {
        assert_eq!(downmix(&[vec![1.0, 0.5, 0.0], vec![0.0, 0.5, 1.0, 9.0]]), vec![0.5, 0.5, 0.5]);
    }

    fn word(text: &str, start: f64, end: f64) -> Word {
        Word { text: text.into(), start, end, kind: WordKind::Word, speaker_id: None, logprob: -0.1 }
    }

    fn spacing(start: f64, end: f64) -> Word {
        Word { text: " ".into(), start, end, kind: WordKind::Spacing, speaker_id: None, logprob: 0.0 }
    }

    #[test]
    fn merged_channels_are_speakers_in_time_order() {
        let left = Transcript {
            language_code: "eng".into(),
            language_probability: 0.9,
            text: "Hello there".into(),
            words: vec![word("Hello", 0.5, 0.9), spacing(0.9, 1.0), word("there", 1.0, 1.3)],
        };
        let right = Transcript {
            language_code: "eng".into(),
            language_probability: 0.8,
            text: "Hi".into(),
            words: vec![word("Hi", 0.1, 0.4)],
        };
        // Each side is loud where its own words are.
        let left_audio = signal(2.0, |t| t >= 0.5, 0.3);
        let right_audio = signal(2.0, |t| t < 0.4, 0.3);
        let t = merge(vec![left, right], &[left_audio, right_audio]);
        t.check().unwrap();
        assert_eq!(t.text, "Hi Hello there");
        let labelled: Vec<(&str, &str)> = t
            .words
            .iter()
            .filter(|w| w.kind == WordKind::Word)
            .map(|w| (w.text.as_str(), w.speaker_id.as_deref().unwrap()))
            .collect();
        assert_eq!(labelled, vec![("Hi", "speaker_0"), ("Hello", "speaker_1"), ("there", "speaker_1")]);
        assert!(t.words.iter().all(|w| w.speaker_id.is_some()));
        assert_eq!((t.language_code.as_str(), t.language_probability), ("eng", 0.9));
    }
}
