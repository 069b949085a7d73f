//! Synthetic conversations for the `der` example (`--synthetic`): turns of 1–7 s cut from the
//! single-speaker recordings of the shared test data (`asr/`), seven voices, 2 to 6 speakers
//! per conversation, 1 to 3 minutes each, pauses of 0.15–0.8 s, no overlap.
//!
//! Why: the `diar` clips are 30 s AMI excerpts with 30 % overlapped speech and a few windows per
//! speaker, too few to tell a clustering change from noise, and nothing there is longer than
//! 30 s. These conversations are clean read speech (each voice also has its own recording
//! channel, so they are easier than a meeting); they check speaker counting and turn changes on
//! longer input. [`meetings`] builds two long ones (15 and 25 minutes) with unequal speaking
//! shares, for what only long recordings show. Deterministic: a fixed seed, a fixed list of files.

use std::path::Path;

use anyhow::Context;

use super::eval::Segment;
use crate::api::SAMPLE_RATE;

/// Voices: a name and the `asr/` files (by prefix) that hold that one person. Not Lucier's "I
/// am sitting in a room": the room's resonance builds up through it, and the clusterer rightly
/// hears two voices.
const VOICES: &[(&str, &[&str])] = &[
    ("lj", &["ljspeech_"]),
    ("sonnets", &["librivox_shakespeare_sonnet001"]),
    ("ls1089", &["librispeech_test-clean_1089", "librispeech_test-clean_triton_1089"]),
    ("ls1221", &["librispeech_test-clean_triton_1221"]),
    ("austen", &["librivox_sense_and_sensibility"]),
    ("harvard", &["osr_harvard"]),
    ("jfk", &["jfk_inaugural"]),
];

/// (speakers, seconds) of each conversation.
const PLAN: &[(usize, f64)] =
    &[(2, 60.0), (2, 120.0), (3, 90.0), (3, 150.0), (4, 120.0), (4, 180.0), (5, 150.0), (6, 180.0)];

/// xorshift64: deterministic and dependency-free.
struct Rng(u64);

impl Rng {
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }
    fn below(&mut self, n: usize) -> usize {
        ((self.unit() * n as f64) as usize).min(n.saturating_sub(1))
    }
}

/// A recording with its reference turns (also how the `der` example holds the `diar` clips).
pub struct Conversation {
    pub name: String,
    pub samples: Vec<f32>,
    pub reference: Vec<Segment>,
}

/// Long meetings (`der --meetings`): (seconds, each speaker's share of the turns). Unequal
/// shares, as in a real meeting: a few who talk most, and one who says little (3 % of the
/// turns, about half a minute in 25). They check what the short sets cannot: counting over a
/// thousand windows and more, and a quiet participant among talkative ones.
const MEETINGS: &[(f64, &[f64])] =
    &[(900.0, &[0.4, 0.3, 0.2, 0.07, 0.03]), (1500.0, &[0.3, 0.25, 0.15, 0.12, 0.1, 0.05, 0.03])];

/// The conversations, built from `<testdata>/asr`; `decode` reads a file as 16 kHz mono (the
/// engine does not decode files itself: `harken_audio::decode_file` in the example).
pub fn conversations(
    testdata: &Path,
    decode: impl Fn(&Path) -> anyhow::Result<Vec<f32>>,
) -> anyhow::Result<Vec<Conversation>> {
    let voices = load_voices(testdata, decode)?;
    let mut rng = Rng(0x5eed_d1a2);
    let mut out = Vec::new();
    for (c, &(k, seconds)) in PLAN.iter().enumerate() {
        let pick = |rng: &mut Rng, prev: usize| {
            let who = rng.below(k);
            if who == prev {
                (who + 1 + rng.below(k - 1)) % k
            } else {
                who
            }
        };
        let mut pool: Vec<usize> = (0..voices.len()).collect();
        let cast: Vec<usize> = (0..k).map(|_| pool.remove(rng.below(pool.len()))).collect();
        out.push(converse(&mut rng, &voices, &cast, seconds, format!("synthetic{c}_{k}spk"), pick));
    }
    Ok(out)
}

/// The long meetings of [`MEETINGS`], built like [`conversations`] (own seed, so the short set
/// stays as it is), each turn's speaker drawn by their share, never the same twice running.
/// The larger shares go to the voices with more recorded material (LJ Speech's 153 s down to
/// JFK's 11 s), so that a turn repeats audio heard before as little as the data allows:
/// repeated audio gives identical windows, which cluster as tightly as a voice of their own.
pub fn meetings(
    testdata: &Path,
    decode: impl Fn(&Path) -> anyhow::Result<Vec<f32>>,
) -> anyhow::Result<Vec<Conversation>> {
    let voices = load_voices(testdata, decode)?;
    let mut by_material: Vec<usize> = (0..voices.len()).collect();
    by_material.sort_by_key(|&v| std::cmp::Reverse(voices[v].1.len()));
    let mut rng = Rng(0x3ee7_1a65);
    let mut out = Vec::new();
    for (c, &(seconds, shares)) in MEETINGS.iter().enumerate() {
        let k = shares.len();
        let total: f64 = shares.iter().sum();
        let draw = |rng: &mut Rng| {
            let mut x = rng.unit() * total;
            shares
                .iter()
                .position(|&s| {
                    x -= s;
                    x < 0.0
                })
                .unwrap_or(k - 1)
        };
        let pick = |rng: &mut Rng, prev: usize| loop {
            let who = draw(rng);
            if who != prev {
                break who;
            }
        };
        let minutes = (seconds / 60.0).round();
        let name = format!("meeting{c}_{k}spk_{minutes}min");
        out.push(converse(&mut rng, &voices, &by_material[..k], seconds, name, pick));
    }
    Ok(out)
}

fn load_voices(
    testdata: &Path,
    decode: impl Fn(&Path) -> anyhow::Result<Vec<f32>>,
) -> anyhow::Result<Vec<(&'static str, Vec<f32>)>> {
    VOICES.iter().map(|(name, prefixes)| Ok((*name, voice(testdata, prefixes, &decode)?))).collect()
}

/// One conversation of the voices `cast` (indices into `voices`), `seconds` long: turns of
/// 1–7 s, each speaker's next turn continuing their recordings where the last one stopped,
/// `pick(rng, previous speaker)` choosing who (an index into `cast`) talks next.
fn converse(
    rng: &mut Rng,
    voices: &[(&str, Vec<f32>)],
    cast: &[usize],
    seconds: f64,
    name: String,
    mut pick: impl FnMut(&mut Rng, usize) -> usize,
) -> Conversation {
    let sr = SAMPLE_RATE as f64;
    let mut pos: Vec<usize> = cast.iter().map(|&v| rng.below(voices[v].1.len())).collect();
    let mut samples = vec![0.0f32; SAMPLE_RATE as usize / 2];
    let mut reference = Vec::new();
    let mut prev = usize::MAX;
    while (samples.len() as f64) < seconds * sr {
        let who = pick(rng, prev);
        prev = who;
        let audio = &voices[cast[who]].1;
        let len = (rng.range(1.0, 7.0) * sr) as usize;
        let gain = rng.range(0.6, 1.6) as f32;
        let start = samples.len();
        samples.extend((0..len).map(|i| gain * audio[(pos[who] + i) % audio.len()]));
        pos[who] = (pos[who] + len) % audio.len();
        let speaker = voices[cast[who]].0.to_owned();
        reference.push(Segment { start: start as f64 / sr, end: samples.len() as f64 / sr, speaker });
        let pause = (rng.range(0.15, 0.8) * sr) as usize;
        samples.extend(std::iter::repeat_n(0.0, pause));
    }
    // A faint noise floor, so that silence is not digital zero.
    for s in &mut samples {
        *s += 0.0017 * (rng.unit() as f32 - 0.5);
    }
    Conversation { name, samples, reference }
}

/// All of one voice's recordings, quiet 20 ms frames (40 dB under the loudest) dropped, at one
/// loudness (RMS 0.05), so that turns hold speech and level does not give the speaker away.
fn voice(
    testdata: &Path,
    prefixes: &[&str],
    decode: &impl Fn(&Path) -> anyhow::Result<Vec<f32>>,
) -> anyhow::Result<Vec<f32>> {
    let dir = testdata.join("asr");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| prefixes.iter().any(|x| n.starts_with(x))))
        .collect();
    files.sort();
    anyhow::ensure!(!files.is_empty(), "no recording in {} starts with {prefixes:?}", dir.display());
    let mut all = Vec::new();
    for f in &files {
        all.extend(decode(f).with_context(|| format!("decoding {}", f.display()))?);
    }
    let frame = SAMPLE_RATE as usize / 50;
    let rms = |x: &[f32]| (x.iter().map(|v| v * v).sum::<f32>() / x.len().max(1) as f32).sqrt();
    let loudest = all.chunks(frame).map(rms).fold(0.0, f32::max);
    let kept: Vec<f32> = all.chunks(frame).filter(|c| rms(c) > loudest * 0.01).flatten().copied().collect();
    let scale = 0.05 / rms(&kept).max(1e-9);
    Ok(kept.into_iter().map(|x| x * scale).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_random_draws_are_fixed_and_in_range() {
        let mut a = Rng(0x5eed_d1a2);
        let mut b = Rng(0x5eed_d1a2);
        for _ in 0..1000 {
            let (x, y) = (a.range(1.0, 7.0), b.range(1.0, 7.0));
            assert_eq!(x, y);
            assert!((1.0..7.0).contains(&x));
            assert!(a.below(5) < 5 && b.below(5) < 5);
        }
    }
}
