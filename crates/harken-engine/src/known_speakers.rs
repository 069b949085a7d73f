//! Speakers named by their voice (OpenAI's `known_speaker_names[]` with
//! `known_speaker_references[]`): each diarized speaker's words are cut from the recording and
//! embedded as one voice print, each reference recording likewise, and a speaker takes the
//! name of the reference it sounds like. Pairs are taken most similar first, each name and each
//! speaker at most once, and only above the speaker model's "same voice" similarity; a speaker
//! no reference matches keeps its `speaker_N`.

use harken_types::{Transcript, WordKind};

use crate::api::{KnownSpeaker, SpeechEngine, SAMPLE_RATE};
use crate::diarize::cluster::dot;

/// At most this much of a speaker's words (the first ones), or of a reference, makes a voice
/// print: enough windows for a stable mean, and the cost stays flat on long recordings.
const MAX_PRINT_SECONDS: f64 = 60.0;

/// Renames the speakers of `transcript` (diarized from `samples`, 16 kHz mono) that sound like
/// one of `known`. Without a speaker model, or without speakers, nothing changes.
pub(crate) fn name_speakers(
    engine: &dyn SpeechEngine,
    samples: &[f32],
    transcript: &mut Transcript,
    known: &[KnownSpeaker],
) {
    let mut speakers: Vec<String> = Vec::new();
    for id in transcript.words.iter().filter_map(|w| w.speaker_id.as_ref()) {
        if !speakers.contains(id) {
            speakers.push(id.clone());
        }
    }
    if known.is_empty() || speakers.is_empty() {
        return;
    }
    let audio: Vec<Vec<f32>> = speakers.iter().map(|s| words_audio(samples, transcript, s)).collect();
    let most = (MAX_PRINT_SECONDS * SAMPLE_RATE as f64) as usize;
    let references = known.iter().map(|k| &k.samples[..k.samples.len().min(most)]);
    let clips: Vec<&[f32]> = audio.iter().map(Vec::as_slice).chain(references).collect();
    let Some((prints, threshold)) = engine.voice_prints(&clips) else {
        return;
    };
    let (heard, given) = prints.split_at(speakers.len());
    let names = match_voices(heard, given, threshold);
    if tracing::enabled!(tracing::Level::DEBUG) {
        let similarity: Vec<Vec<String>> = heard
            .iter()
            .map(|h| {
                given
                    .iter()
                    .map(|g| h.as_ref().zip(g.as_ref()).map_or("-".into(), |(h, g)| format!("{:.3}", dot(h, g))))
                    .collect()
            })
            .collect();
        tracing::debug!(?speakers, ?similarity, ?names, threshold, "known speakers matched");
    }
    for w in &mut transcript.words {
        let named = w.speaker_id.as_ref().and_then(|id| speakers.iter().position(|s| s == id)).and_then(|i| names[i]);
        if let Some(k) = named {
            w.speaker_id = Some(known[k].name.clone());
        }
    }
}

/// The audio of `speaker`'s words laid end to end, up to [`MAX_PRINT_SECONDS`].
fn words_audio(samples: &[f32], transcript: &Transcript, speaker: &str) -> Vec<f32> {
    let sr = SAMPLE_RATE as f64;
    let mut out = Vec::new();
    let words =
        transcript.words.iter().filter(|w| w.kind == WordKind::Word && w.speaker_id.as_deref() == Some(speaker));
    for w in words {
        let a = ((w.start * sr) as usize).min(samples.len());
        let b = ((w.end * sr) as usize).clamp(a, samples.len());
        out.extend_from_slice(&samples[a..b]);
        if out.len() as f64 >= MAX_PRINT_SECONDS * sr {
            break;
        }
    }
    out
}

/// For each heard voice print, the index of the given one it is matched with: pairs by falling
/// cosine similarity, each side used once, none at or below `threshold`.
fn match_voices(heard: &[Option<Vec<f32>>], given: &[Option<Vec<f32>>], threshold: f32) -> Vec<Option<usize>> {
    let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
    for (i, h) in heard.iter().enumerate() {
        for (k, g) in given.iter().enumerate() {
            if let (Some(h), Some(g)) = (h, g) {
                pairs.push((dot(h, g), i, k));
            }
        }
    }
    pairs.sort_by(|x, y| y.0.total_cmp(&x.0));
    let mut names = vec![None; heard.len()];
    let mut taken = vec![false; given.len()];
    for (similarity, i, k) in pairs {
        if similarity > threshold && names[i].is_none() && !taken[k] {
            names[i] = Some(k);
            taken[k] = true;
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(v: &[f32]) -> Option<Vec<f32>> {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        Some(v.iter().map(|x| x / n).collect())
    }

    #[test]
    fn each_name_goes_to_the_closest_voice_once() {
        let heard = [unit(&[1.0, 0.1, 0.0]), unit(&[0.0, 1.0, 0.1]), unit(&[0.9, 0.3, 0.0])];
        // Reference 0 sounds like voice 1, reference 1 like voices 0 and 2 (0 more so).
        let given = [unit(&[0.0, 1.0, 0.0]), unit(&[1.0, 0.0, 0.0])];
        assert_eq!(match_voices(&heard, &given, 0.5), [Some(1), Some(0), None]);
    }

    #[test]
    fn a_voice_unlike_every_reference_keeps_no_name() {
        let heard = [unit(&[1.0, 0.0]), unit(&[0.0, 1.0]), None];
        let given = [unit(&[0.6, 0.8]), None];
        // cos = 0.6 and 0.8: only the second voice is similar enough.
        assert_eq!(match_voices(&heard, &given, 0.7), [None, Some(0), None]);
        assert_eq!(match_voices(&heard, &given, 0.9), [None, None, None]);
    }
}
