//! Words to speakers: each item takes the speaker whose turns overlap it longest. An item is
//! never split; one that overlaps no turn takes the speaker of the nearest turn.

use super::SpeakerTurn;
use crate::assemble::Item;

/// Sets `Item::speaker` on every item (words, events and any spacing alike). With no turns at
/// all (no speech found), items keep `None`.
pub(crate) fn assign_speakers(items: &mut [Item], turns: &[SpeakerTurn]) {
    if turns.is_empty() {
        return;
    }
    for item in items {
        item.speaker = Some(speaker_of(item.start, item.end.max(item.start), turns));
    }
}

fn speaker_of(start: f64, end: f64, turns: &[SpeakerTurn]) -> usize {
    // Overlap per speaker; turns are few per item, so a linear scan over the turns is fine
    // for minutes of audio, but use the sorted order to skip to the neighbourhood.
    let first = turns.partition_point(|t| t.end < start);
    let mut best: Option<(f64, usize)> = None;
    let mut overlap: Vec<(usize, f64)> = Vec::new();
    for t in turns[first..].iter().take_while(|t| t.start <= end) {
        let o = (end.min(t.end) - start.max(t.start)).max(0.0);
        match overlap.iter_mut().find(|(s, _)| *s == t.speaker) {
            Some((_, sum)) => *sum += o,
            None => overlap.push((t.speaker, o)),
        }
    }
    for &(s, o) in &overlap {
        if best.is_none_or(|(b, _)| o > b) {
            best = Some((o, s));
        }
    }
    match best {
        Some((o, s)) if o > 0.0 || end == start => s,
        _ => nearest(start, end, turns),
    }
}

fn nearest(start: f64, end: f64, turns: &[SpeakerTurn]) -> usize {
    let distance = |t: &SpeakerTurn| (t.start - end).max(start - t.end).max(0.0);
    turns.iter().min_by(|a, b| distance(a).total_cmp(&distance(b))).expect("turns is not empty").speaker
}

#[cfg(test)]
mod tests {
    use harken_types::WordKind;

    use super::*;

    fn item(start: f64, end: f64) -> Item {
        Item { text: " w".into(), start, end, logprob: 0.0, kind: WordKind::Word, speaker: None }
    }

    fn turn(start: f64, end: f64, speaker: usize) -> SpeakerTurn {
        SpeakerTurn { start, end, speaker }
    }

    #[test]
    fn a_word_straddling_a_change_goes_to_the_larger_overlap() {
        let turns = [turn(0.0, 2.0, 0), turn(2.0, 5.0, 1)];
        let mut items = [item(1.5, 2.2), item(1.8, 2.6), item(3.0, 3.5)];
        assign_speakers(&mut items, &turns);
        let s: Vec<_> = items.iter().map(|i| i.speaker.unwrap()).collect();
        assert_eq!(s, vec![0, 1, 1]);
    }

    #[test]
    fn words_outside_every_turn_take_the_nearest() {
        let turns = [turn(1.0, 2.0, 0), turn(6.0, 8.0, 1)];
        let mut items = [item(0.0, 0.5), item(2.5, 3.0), item(5.0, 5.5), item(9.0, 9.4)];
        assign_speakers(&mut items, &turns);
        let s: Vec<_> = items.iter().map(|i| i.speaker.unwrap()).collect();
        assert_eq!(s, vec![0, 0, 1, 1]);
    }

    #[test]
    fn overlap_is_summed_per_speaker() {
        // 0.3 s of speaker 2 in two pieces beats 0.25 s of speaker 5.
        let turns = [turn(0.0, 1.15, 2), turn(1.15, 1.4, 5), turn(1.4, 3.0, 2)];
        let mut items = [item(1.0, 1.55)];
        assign_speakers(&mut items, &turns);
        assert_eq!(items[0].speaker, Some(2));
    }

    #[test]
    fn no_turns_leave_items_unlabelled_and_zero_length_items_are_labelled() {
        let mut items = [item(1.0, 1.0)];
        assign_speakers(&mut items, &[]);
        assert_eq!(items[0].speaker, None);
        assign_speakers(&mut items, &[turn(0.0, 0.5, 3), turn(0.9, 1.5, 4)]);
        assert_eq!(items[0].speaker, Some(4));
    }
}
