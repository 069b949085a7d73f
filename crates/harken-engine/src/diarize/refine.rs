//! Speaker turns redrawn along the segmentation model's local speakers.
//!
//! The embedding windows label the recording in 1.2 s steps, and two voices the encoder finds
//! alike get one label. The segmentation model ([`super::segment`]) hears, every 17 ms, which of
//! up to three voices talks within each 10 s chunk, but does not know who they are across
//! chunks. Here each local speaker (a "track") takes the global speaker that the window turns
//! give most of its solo frames, when they give it enough of them ([`MIN_AGREEMENT`]) and no
//! other track of the chunk has a better claim to it (they are different voices by the model's
//! judgement). A track the windows leave undecided is asked who it sounds like: its own solo
//! audio, embedded apart from the other voices of the chunk, against the speakers' centroids
//! (the caller's `voice`); when that cannot tell either, it takes the one speaker no other
//! track of its chunk has, if only one is left and the windows do not mostly say otherwise.
//! Quick exchanges ("Hello." "Oh, hello." "Neither did I.") are where this matters: 1.2 s
//! windows straddle the changes, so the windows' votes for a short-spoken track are split,
//! while its own audio holds one voice. Every frame of speech then takes the
//! speaker of the track talking there. Where no mapped track talks (or the model hears silence
//! inside a VAD region), the window turns' speaker stays.

use super::cluster;
use super::segment::{ChunkActivity, FRAME_STEP, LOCAL_SPEAKERS, RECEPTIVE_FIELD};
use super::SpeakerTurn;
use crate::api::SAMPLE_RATE;

/// Solo frames (≈ 0.5 s) a track needs to be mapped at all; shorter ones are left to the
/// window turns.
const MIN_TRACK_FRAMES: usize = 30;

/// Share of a track's labelled solo frames the window turns must give its speaker for the track
/// to be trusted. The model sometimes hears two voices as one local speaker (clean read speech
/// that changes abruptly, in our synthetic conversations); such a track is split between two
/// window labels and is left to them. Measured (DER `diar` / synthetic): no check 39.9 / 15.2 %,
/// 0.6 → 41.3 / 10.8, 0.7 → 42.1 / 9.6, 0.8 → 42.2 / 9.4; without refinement 42.9 / 10.2.
/// Since an undecided track is named by its own voice ([`map_by_voice`]): 0.7 → 41.1 / 9.6,
/// 0.8 → 41.1 / 8.9, 0.9 → 41.3 / 8.7 %.
const MIN_AGREEMENT: f64 = 0.8;

/// Solo frames (≈ 1 s) an undecided track needs before its own voice is asked: shorter audio
/// gives the encoder too little to go on (0.5 s scored the same on our sets, 2 s a little worse
/// on the synthetic one).
const MIN_VOICE_FRAMES: usize = 60;

/// Share of an undecided track's window votes the one speaker left in its chunk needs to take
/// it ([`map_by_voice`]). A track the windows split evenly is a voice in a quick exchange; one
/// they give mostly to a speaker another track already has is more often two voices the model
/// heard as one (clean read speech, in our synthetic conversations).
const MIN_LEFT_SHARE: f64 = 0.4;

/// Who the audio of each set of sample spans sounds like: a global speaker, or `None` when it
/// cannot tell (e.g. the spans hold two voices). All tracks come in one call, so the encoder
/// runs them as one batch.
pub(crate) type Voice<'a> = &'a dyn Fn(&[Vec<(usize, usize)>]) -> Vec<Option<usize>>;

/// `turns` (from the embedding windows, `speakers` labels) redrawn along the local speakers of
/// `activity` (chunks in order), within the sample spans `speech`; `voice` names the speaker of
/// a track the windows leave undecided.
pub(crate) fn refine_turns(
    turns: &[SpeakerTurn],
    activity: &[ChunkActivity],
    speakers: usize,
    speech: &[(usize, usize)],
    voice: Voice,
) -> Vec<SpeakerTurn> {
    if activity.is_empty() || turns.is_empty() {
        return turns.to_vec();
    }
    let sr = SAMPLE_RATE as f64;
    let window_label = |sample: usize| -> Option<usize> {
        let t = sample as f64 / sr;
        let i = turns.partition_point(|turn| turn.end <= t);
        turns.get(i).filter(|turn| turn.start <= t).map(|turn| turn.speaker)
    };
    let votes: Vec<Votes> = activity.iter().map(|chunk| Votes::of(chunk, speakers, &window_label)).collect();
    let mut maps: Vec<[Option<usize>; LOCAL_SPEAKERS]> = votes.iter().map(map_tracks).collect();
    map_by_voice(activity, &votes, &mut maps, voice);

    // Each frame of the grid takes the chunk whose centre is nearest (chunks overlap; a chunk's
    // edges see less context).
    let mut out: Vec<SpeakerTurn> = Vec::new();
    let mut push = |start: usize, end: usize, speaker: usize| {
        let (start, end) = (start as f64 / sr, end as f64 / sr);
        match out.last_mut() {
            Some(last) if last.speaker == speaker && start - last.end < 1e-9 => last.end = end,
            _ => out.push(SpeakerTurn { start, end, speaker }),
        }
    };
    let mut chunk = 0;
    for &(a, b) in speech {
        let mut at = a;
        while at < b {
            let end = (at + FRAME_STEP).min(b);
            let centre = (at + end) / 2;
            while chunk + 1 < activity.len()
                && distance_to_centre(&activity[chunk + 1], centre) <= distance_to_centre(&activity[chunk], centre)
            {
                chunk += 1;
            }
            let label = frame_label(&activity[chunk], &maps[chunk], centre, window_label(centre));
            if let Some(speaker) = label.or_else(|| window_label(centre)) {
                push(at, end, speaker);
            }
            at = end;
        }
    }
    compact(&mut out);
    out
}

fn distance_to_centre(chunk: &ChunkActivity, sample: usize) -> usize {
    let centre = chunk.start + super::segment::CHUNK / 2;
    centre.abs_diff(sample)
}

/// The speaker at `sample` by the chunk's tracks: the one track talking, or where two talk
/// (overlap) the window turns' choice when it is one of them; `None` where no mapped track talks.
fn frame_label(
    chunk: &ChunkActivity,
    map: &[Option<usize>; LOCAL_SPEAKERS],
    sample: usize,
    window: Option<usize>,
) -> Option<usize> {
    let f = (sample.checked_sub(chunk.start + RECEPTIVE_FIELD / 2)? + FRAME_STEP / 2) / FRAME_STEP;
    let active = chunk.active.get(f)?;
    let talking: Vec<usize> = (0..LOCAL_SPEAKERS).filter(|&k| active[k]).filter_map(|k| map[k]).collect();
    match talking.as_slice() {
        [] => None,
        [one] => Some(*one),
        several => Some(window.filter(|w| several.contains(w)).unwrap_or(several[0])),
    }
}

/// A chunk's local speakers against the window turns: each track's solo frames, and how many
/// of them the window turns give each global speaker.
struct Votes {
    solo: [usize; LOCAL_SPEAKERS],
    /// `votes[s][k]`: solo frames of track `k` the window turns give speaker `s`.
    votes: Vec<[usize; LOCAL_SPEAKERS]>,
}

impl Votes {
    fn of(chunk: &ChunkActivity, speakers: usize, window_label: &impl Fn(usize) -> Option<usize>) -> Self {
        let mut votes = vec![[0usize; LOCAL_SPEAKERS]; speakers];
        let mut solo = [0usize; LOCAL_SPEAKERS];
        for f in 0..chunk.active.len() {
            if let Some(k) = chunk.solo(f) {
                solo[k] += 1;
                if let Some(s) = window_label(chunk.frame_centre(f)).filter(|&s| s < speakers) {
                    votes[s][k] += 1;
                }
            }
        }
        Votes { solo, votes }
    }

    /// Share of track `k`'s labelled solo frames the window turns give speaker `s` (0 without any).
    fn share(&self, s: usize, k: usize) -> f64 {
        let voted: usize = self.votes.iter().map(|v| v[k]).sum();
        self.votes[s][k] as f64 / voted.max(1) as f64
    }
}

/// Which global speaker each local speaker of a chunk is: the one the window labels give most of
/// its solo frames, if they give it at least [`MIN_AGREEMENT`] of them. Two tracks of one chunk
/// are two voices, so where both claim one speaker (and there are enough speakers) the track
/// with fewer votes for it is left unmapped rather than merged. Tracks with too little solo
/// speech stay unmapped.
fn map_tracks(Votes { solo, votes }: &Votes) -> [Option<usize>; LOCAL_SPEAKERS] {
    let speakers = votes.len();
    let tracks: Vec<usize> = (0..LOCAL_SPEAKERS).filter(|&k| solo[k] >= MIN_TRACK_FRAMES).collect();
    // (speaker, votes for it) of each trusted track.
    let mut best = [None; LOCAL_SPEAKERS];
    for &k in &tracks {
        let voted: usize = votes.iter().map(|v| v[k]).sum();
        let top = (0..speakers).max_by_key(|&s| (votes[s][k], std::cmp::Reverse(s)));
        if let Some(s) = top.filter(|&s| voted > 0 && votes[s][k] as f64 >= MIN_AGREEMENT * voted as f64) {
            best[k] = Some((s, votes[s][k]));
        }
    }
    if tracks.len() <= speakers {
        for a in 0..LOCAL_SPEAKERS {
            for b in 0..LOCAL_SPEAKERS {
                if let (Some((sa, na)), Some((sb, nb))) = (best[a], best[b]) {
                    if a != b && sa == sb && (na, b) < (nb, a) {
                        best[a] = None;
                    }
                }
            }
        }
    }
    best.map(|m| m.map(|(s, _)| s))
}

/// Every track `map_tracks` left unmapped that has at least [`MIN_VOICE_FRAMES`] solo frames
/// takes the speaker `voice` hears in them, unless another track of its chunk has that speaker.
/// A track whose voice cannot be told takes the one speaker no other track of its chunk has,
/// when only one is left and the window turns give it at least [`MIN_LEFT_SHARE`] of the
/// track: the model heard a voice apart from the chunk's others, and the windows were split on
/// it because they straddle its turns (a quick exchange: "… originally from Chicago." "Oh, I'm
/// originally from Chicago also.").
fn map_by_voice(
    activity: &[ChunkActivity],
    votes: &[Votes],
    maps: &mut [[Option<usize>; LOCAL_SPEAKERS]],
    voice: Voice,
) {
    let speakers = votes.first().map_or(0, |v| v.votes.len());
    let mut asked: Vec<(usize, usize)> = Vec::new(); // (chunk, track)
    let mut spans: Vec<Vec<(usize, usize)>> = Vec::new();
    for (c, chunk) in activity.iter().enumerate() {
        for k in (0..LOCAL_SPEAKERS).filter(|&k| maps[c][k].is_none()) {
            let solo = solo_spans(chunk, k);
            if solo.iter().map(|(a, b)| b - a).sum::<usize>() >= MIN_VOICE_FRAMES * FRAME_STEP {
                asked.push((c, k));
                spans.push(solo);
            }
        }
    }
    if asked.is_empty() {
        return;
    }
    let mut untold = Vec::new();
    for ((c, k), heard) in asked.into_iter().zip(voice(&spans)) {
        match heard {
            Some(s) => maps[c][k] = Some(s).filter(|&s| s < speakers && !maps[c].contains(&Some(s))),
            None => untold.push((c, k)),
        }
    }
    for (c, k) in untold {
        let mut left = (0..speakers).filter(|s| !maps[c].contains(&Some(*s)));
        if let (Some(s), None) = (left.next(), left.next()) {
            if votes[c].share(s, k) >= MIN_LEFT_SHARE {
                maps[c][k] = Some(s);
            }
        }
    }
}

/// The sample spans where local speaker `k` of `chunk` talks alone, consecutive frames joined.
fn solo_spans(chunk: &ChunkActivity, k: usize) -> Vec<(usize, usize)> {
    let mut spans: Vec<(usize, usize)> = Vec::new();
    for f in (0..chunk.active.len()).filter(|&f| chunk.solo(f) == Some(k)) {
        let centre = chunk.frame_centre(f);
        let (a, b) = (centre - FRAME_STEP / 2, centre + FRAME_STEP / 2);
        match spans.last_mut() {
            Some(last) if a <= last.1 => last.1 = b,
            _ => spans.push((a, b)),
        }
    }
    spans
}

/// Speaker indices renumbered `0..k` in order of first appearance (a speaker may have lost all
/// its frames to the tracks).
fn compact(turns: &mut [SpeakerTurn]) {
    let labels = cluster::compact(turns.iter().map(|t| t.speaker).collect());
    for (t, l) in turns.iter_mut().zip(labels) {
        t.speaker = l;
    }
}

#[cfg(test)]
mod tests {
    use super::super::segment::CHUNK;
    use super::*;

    fn turn(start: f64, end: f64, speaker: usize) -> SpeakerTurn {
        SpeakerTurn { start, end, speaker }
    }

    /// A voice that can never tell who talks: only the windows' votes map tracks.
    fn undecided(tracks: &[Vec<(usize, usize)>]) -> Vec<Option<usize>> {
        vec![None; tracks.len()]
    }

    /// A chunk at `start` whose local speaker `k` talks alone during each `(from_s, to_s, k)`.
    fn chunk(start: usize, talk: &[(f64, f64, usize)]) -> ChunkActivity {
        let frames = 589;
        let mut active = vec![[false; LOCAL_SPEAKERS]; frames];
        for (f, a) in active.iter_mut().enumerate() {
            let t = (start + f * FRAME_STEP + RECEPTIVE_FIELD / 2) as f64 / SAMPLE_RATE as f64;
            for &(from, to, k) in talk {
                if t >= from && t < to {
                    a[k] = true;
                }
            }
        }
        ChunkActivity { start, active }
    }

    #[test]
    fn a_voice_change_inside_a_window_turn_moves_to_the_model_s_frame() {
        // Windows say speaker 0 until 5.0 s, speaker 1 after; the model hears the change at 4.3 s.
        let turns = [turn(0.0, 5.0, 0), turn(5.0, 10.0, 1)];
        let act = [chunk(0, &[(0.0, 4.3, 2), (4.3, 10.0, 0)])];
        let out = refine_turns(&turns, &act, 2, &[(0, CHUNK)], &undecided);
        assert_eq!(out.len(), 2);
        assert_eq!((out[0].speaker, out[1].speaker), (0, 1));
        assert!((out[0].end - 4.3).abs() < 0.03, "change at {}", out[0].end);
    }

    #[test]
    fn two_tracks_of_one_chunk_never_merge_into_one_speaker() {
        // The windows give both tracks mostly speaker 0. The second may not take speaker 0 too,
        // and speaker 1, the one left, holds too little of it (20 %) to trust, by the windows'
        // votes or as the one left (`MIN_LEFT_SHARE`): it is left to the windows, whose turns
        // stay as they are.
        let turns = [turn(0.0, 9.0, 0), turn(9.0, 10.0, 1)];
        let act = [chunk(0, &[(0.0, 5.0, 0), (5.0, 10.0, 1)])];
        let out = refine_turns(&turns, &act, 2, &[(0, CHUNK)], &undecided);
        assert_eq!(out.len(), 2, "{out:?}");
        assert_eq!((out[0].speaker, out[1].speaker), (0, 1));
        assert!((out[0].end - 9.0).abs() < 0.03, "{out:?}");
    }

    #[test]
    fn a_track_the_windows_split_evenly_takes_the_one_speaker_left() {
        // The second voice talks from 4.0 s; the windows straddle the change and hear it only
        // from 7.0 s (half its track), and its own voice cannot be told. The first track holds
        // speaker 0, so the second is speaker 1 throughout.
        let turns = [turn(0.0, 7.0, 0), turn(7.0, 10.0, 1)];
        let act = [chunk(0, &[(0.0, 4.0, 0), (4.0, 10.0, 1)])];
        let out = refine_turns(&turns, &act, 2, &[(0, CHUNK)], &undecided);
        assert_eq!(out.iter().map(|t| t.speaker).collect::<Vec<_>>(), vec![0, 1], "{out:?}");
        assert!((out[0].end - 4.0).abs() < 0.03, "{out:?}");
    }

    #[test]
    fn a_track_the_windows_mostly_agree_with_takes_its_speaker_throughout() {
        // The second voice starts at 5.0 s; the windows hear it from 5.8 s (84 % of its track).
        let turns = [turn(0.0, 5.8, 0), turn(5.8, 10.0, 1)];
        let act = [chunk(0, &[(0.0, 5.0, 0), (5.0, 10.0, 1)])];
        let out = refine_turns(&turns, &act, 2, &[(0, CHUNK)], &undecided);
        assert_eq!(out.len(), 2, "{out:?}");
        assert!((out[0].end - 5.0).abs() < 0.03, "{out:?}");
    }

    #[test]
    fn a_track_the_windows_split_takes_the_speaker_its_own_voice_names() {
        // A quick exchange: the windows hear speaker 0 throughout 0–6 s, but the model hears a
        // second voice at 2–3.5 s. Its votes all go to speaker 0, which the first track holds,
        // so it is asked, and its own audio sounds like speaker 1. (The model hears nobody at
        // 6–10 s: the window turn's speaker 1 stays there.)
        let turns = [turn(0.0, 6.0, 0), turn(6.0, 10.0, 1)];
        let act = [chunk(0, &[(0.0, 2.0, 0), (2.0, 3.5, 1), (3.5, 6.0, 0)])];
        let asked = std::cell::RefCell::new(Vec::new());
        let voice = |tracks: &[Vec<(usize, usize)>]| {
            asked.borrow_mut().extend_from_slice(tracks);
            vec![Some(1); tracks.len()]
        };
        let out = refine_turns(&turns, &act, 2, &[(0, CHUNK)], &voice);
        let spoken: Vec<(f64, f64, usize)> = out.iter().map(|t| (t.start, t.end, t.speaker)).collect();
        assert_eq!(out.iter().map(|t| t.speaker).collect::<Vec<_>>(), vec![0, 1, 0, 1], "{spoken:?}");
        assert!((out[1].start - 2.0).abs() < 0.03 && (out[1].end - 3.5).abs() < 0.03, "{spoken:?}");
        // Only the undecided track was asked, with its own solo audio (about 2.0–3.5 s).
        let asked = asked.into_inner();
        assert_eq!(asked.len(), 1, "{asked:?}");
        let (a, b) = (asked[0][0].0 as f64 / 16e3, asked[0].last().unwrap().1 as f64 / 16e3);
        assert!((a - 2.0).abs() < 0.03 && (b - 3.5).abs() < 0.03, "asked {a}–{b}");
    }

    #[test]
    fn a_voice_naming_a_speaker_another_track_holds_is_ignored() {
        let turns = [turn(0.0, 6.0, 0), turn(6.0, 10.0, 1)];
        let act = [chunk(0, &[(0.0, 2.0, 0), (2.0, 3.5, 1), (3.5, 6.0, 0)])];
        let voice = |tracks: &[Vec<(usize, usize)>]| vec![Some(0); tracks.len()];
        let out = refine_turns(&turns, &act, 2, &[(0, CHUNK)], &voice);
        assert_eq!(out.iter().map(|t| t.speaker).collect::<Vec<_>>(), vec![0, 1], "{out:?}");
        assert!((out[0].end - 6.0).abs() < 0.03, "{out:?}");
    }

    #[test]
    fn silence_to_the_model_keeps_the_window_label_and_turns_stay_in_speech() {
        let turns = [turn(1.0, 3.0, 0), turn(6.0, 8.0, 1)];
        let act = [chunk(0, &[(1.5, 2.5, 0), (6.0, 8.0, 1)])];
        let speech = [(16_000, 48_000), (96_000, 128_000)];
        let out = refine_turns(&turns, &act, 2, &speech, &undecided);
        for t in &out {
            assert!(speech.iter().any(|&(a, b)| t.start >= a as f64 / 16e3 - 1e-9 && t.end <= b as f64 / 16e3 + 1e-9));
        }
        let covered: f64 = out.iter().map(|t| t.end - t.start).sum();
        assert!((covered - 4.0).abs() < 0.05, "covered {covered}");
        assert_eq!(out.iter().map(|t| t.speaker).max(), Some(1));
    }

    #[test]
    fn more_tracks_than_speakers_share_and_labels_stay_compact() {
        let turns = [turn(0.0, 10.0, 0)];
        let act = [chunk(0, &[(0.0, 5.0, 0), (5.0, 10.0, 1)])];
        let out = refine_turns(&turns, &act, 1, &[(0, CHUNK)], &undecided);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].speaker, 0);
    }
}
