//! Assembly of timed words into the contract's transcript: a `spacing` item between
//! consecutive items, times non-decreasing and inside the audio, `text` = concatenation.

use harken_types::{Transcript, Word, WordKind};

/// A word or event with absolute times, its text carrying the whitespace that preceded it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Item {
    pub(crate) text: String,
    pub(crate) start: f64,
    pub(crate) end: f64,
    pub(crate) logprob: f64,
    pub(crate) kind: WordKind,
    /// Cluster index from diarization; renumbered to `speaker_N` by first appearance.
    pub(crate) speaker: Option<usize>,
}

/// Builds the transcript. Items must be in time order; overlapping times of one speaker's items
/// are resolved by ending the earlier item where the next one starts (two speakers' words may
/// overlap: people talk at once).
pub(crate) fn transcript(items: Vec<Item>, duration: f64, language_code: &str, language_probability: f32) -> Transcript {
    let mut words: Vec<Word> = Vec::with_capacity(items.len() * 2);
    let mut labels = SpeakerLabels::default();
    let last_ms = (duration * 1000.0).floor() / 1000.0;
    for item in items {
        let trimmed = item.text.trim_start();
        if trimmed.trim().is_empty() {
            continue;
        }
        let gap = &item.text[..item.text.len() - trimmed.len()];
        let floor = words.last().map_or(0.0, |w| w.start);
        // Rounded to the millisecond, but never past the audio's last whole millisecond.
        let start = round3(item.start.clamp(floor, duration)).min(last_ms);
        let end = round3(item.end.clamp(start, duration)).min(last_ms);
        let speaker_id = item.speaker.map(|s| labels.label(s));
        if let Some(prev) = words.last_mut() {
            // One speaker says one word at a time; two speakers (one per channel) may overlap.
            if prev.speaker_id == speaker_id {
                prev.end = prev.end.min(start);
            }
            let spaced = !gap.is_empty() || prev.kind == WordKind::AudioEvent || item.kind == WordKind::AudioEvent;
            let spacing = Word {
                text: if spaced { " ".to_owned() } else { String::new() },
                start: prev.end.min(start),
                end: start,
                kind: WordKind::Spacing,
                // A pause belongs to whoever spoke before it.
                speaker_id: prev.speaker_id.clone(),
                logprob: 0.0,
            };
            words.push(spacing);
        }
        let text = trimmed.trim_end().to_owned();
        words.push(Word { text, start, end, kind: item.kind, speaker_id, logprob: item.logprob });
    }
    let text = words.iter().map(|w| w.text.as_str()).collect();
    Transcript { language_code: language_code.to_owned(), language_probability, text, words }
}

/// Maps cluster indices to `speaker_0`, `speaker_1`, ... in order of first appearance.
#[derive(Default)]
struct SpeakerLabels(Vec<usize>);

impl SpeakerLabels {
    fn label(&mut self, cluster: usize) -> String {
        let n = match self.0.iter().position(|&c| c == cluster) {
            Some(n) => n,
            None => {
                self.0.push(cluster);
                self.0.len() - 1
            }
        };
        format!("speaker_{n}")
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(text: &str, start: f64, end: f64) -> Item {
        Item { text: text.to_owned(), start, end, logprob: -0.1, kind: WordKind::Word, speaker: None }
    }

    #[test]
    fn spacing_between_words_and_text_is_the_concatenation() {
        let t = transcript(vec![item("Ask", 0.1, 0.4), item(" not.", 0.5, 0.9)], 2.0, "eng", 0.9);
        assert_eq!(t.text, "Ask not.");
        assert_eq!(t.words.len(), 3);
        assert_eq!(t.words[1].kind, WordKind::Spacing);
        assert_eq!((t.words[1].start, t.words[1].end), (0.4, 0.5));
        t.check().unwrap();
    }

    #[test]
    fn overlaps_and_out_of_range_times_are_repaired() {
        let t = transcript(vec![item("a", 0.5, 1.2), item(" b", 0.9, 1.0), item(" c", 1.5, 9.0)], 2.0, "eng", 0.9);
        t.check().unwrap();
        assert!(t.words.iter().all(|w| w.end <= 2.0));
        // A word ending with the audio (0.49875 s) does not round past it.
        let t = transcript(vec![item("two.", 0.0, 0.49875)], 0.49875, "eng", 0.9);
        assert_eq!(t.words[0].end, 0.498);
    }

    #[test]
    fn two_speakers_words_may_overlap_one_speakers_may_not() {
        let mut items = vec![item("a", 0.0, 1.0), item(" b", 0.5, 1.5), item(" c", 1.2, 2.0)];
        items[0].speaker = Some(0);
        items[1].speaker = Some(1);
        items[2].speaker = Some(1);
        let t = transcript(items, 3.0, "eng", 0.9);
        t.check().unwrap();
        let times: Vec<(f64, f64)> = t.words.iter().filter(|w| w.kind == WordKind::Word).map(|w| (w.start, w.end)).collect();
        assert_eq!(times, vec![(0.0, 1.0), (0.5, 1.2), (1.2, 2.0)]);
        assert_eq!((t.words[1].start, t.words[1].end), (0.5, 0.5), "the spacing between a and b");
    }

    #[test]
    fn unspaced_scripts_get_empty_spacing() {
        let t = transcript(vec![item("你好", 0.0, 0.5), item("世界", 0.5, 1.0)], 1.0, "zho", 0.9);
        assert_eq!(t.text, "你好世界");
        assert_eq!(t.words[1].text, "");
        t.check().unwrap();
    }

    #[test]
    fn speakers_are_numbered_by_first_appearance_and_spacing_follows_the_speaker_before() {
        let mut items = vec![item("a", 0.0, 0.5), item(" b", 0.6, 1.0), item(" c", 1.1, 1.5)];
        items[0].speaker = Some(7);
        items[1].speaker = Some(3);
        items[2].speaker = Some(7);
        let t = transcript(items, 2.0, "eng", 0.9);
        let ids: Vec<&str> = t.words.iter().map(|w| w.speaker_id.as_deref().unwrap()).collect();
        assert_eq!(ids, vec!["speaker_0", "speaker_0", "speaker_1", "speaker_1", "speaker_0"]);
        t.check().unwrap();
    }

    #[test]
    fn nothing_in_gives_an_empty_transcript() {
        let t = transcript(vec![], 3.0, "eng", 0.0);
        assert_eq!(t.text, "");
        assert!(t.words.is_empty());
    }
}
