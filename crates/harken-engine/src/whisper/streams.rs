//! Decoding order that keeps both batching and previous-text context.
//!
//! Whisper transcribes a window better when it sees the text of the window before it (the
//! `<|startofprev|>` prompt faster-whisper sends by default): names keep their spelling and
//! words cut at a window edge are read in context. Decoding windows strictly one after another
//! would lose batching (1.45× slower at beam 5). So a file's windows are split into up to
//! `batch` contiguous *streams*, and step `k` decodes the `k`-th window of every stream in one
//! batch: each window then follows its stream's previous window, decoded one step earlier.
//! Only the first window of each stream starts without context.

use std::ops::Range;

/// Previous-text tokens Whisper may see: half its 448-token context, less the prompt token
/// (`max_length // 2 - 1`, as OpenAI's and faster-whisper's decoders use).
pub(crate) const MAX_CONTEXT_TOKENS: usize = 223;

/// Contiguous runs of window indices, decoded side by side.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Streams {
    streams: Vec<Range<usize>>,
}

impl Streams {
    /// Splits `windows` windows into at most `batch` streams of nearly equal length.
    pub(crate) fn new(windows: usize, batch: usize) -> Self {
        let batch = batch.max(1);
        let per_stream = windows.div_ceil(batch).max(1);
        let streams = (0..windows).step_by(per_stream).map(|s| s..(s + per_stream).min(windows)).collect();
        Streams { streams }
    }

    /// Number of batches (the longest stream's length).
    pub(crate) fn steps(&self) -> usize {
        self.streams.iter().map(|r| r.len()).max().unwrap_or(0)
    }

    pub(crate) fn len(&self) -> usize {
        self.streams.len()
    }

    /// `(stream, window)` pairs decoded at `step`.
    pub(crate) fn at(&self, step: usize) -> Vec<(usize, usize)> {
        self.streams
            .iter()
            .enumerate()
            .filter(|(_, r)| step < r.len())
            .map(|(s, r)| (s, r.start + step))
            .collect()
    }
}

/// The text tokens each stream has produced so far, as decoding context.
#[derive(Debug, Clone)]
pub(crate) struct Contexts {
    initial: Vec<usize>,
    streams: Vec<Vec<usize>>,
    enabled: bool,
}

impl Contexts {
    /// `initial`: the caller's prompt tokens, which every stream starts from (and returns to
    /// after a reset). `enabled`: whether decoded text is carried to the next window.
    pub(crate) fn new(streams: usize, initial: Vec<usize>, enabled: bool) -> Self {
        let initial = tail(&initial, MAX_CONTEXT_TOKENS).to_vec();
        Contexts { streams: vec![initial.clone(); streams], initial, enabled }
    }

    /// The last `n` tokens of each listed stream's context, `n` being the shortest length among
    /// them: CTranslate2 batches prompts only when `<|startoftranscript|>` sits at the same
    /// position in each.
    pub(crate) fn for_batch(&self, streams: &[usize]) -> Vec<&[usize]> {
        let n = streams.iter().map(|&s| self.streams[s].len()).min().unwrap_or(0);
        streams.iter().map(|&s| tail(&self.streams[s], n)).collect()
    }

    /// Appends a window's text to its stream's context.
    pub(crate) fn push(&mut self, stream: usize, tokens: &[usize]) {
        if !self.enabled {
            return;
        }
        let context = &mut self.streams[stream];
        context.extend_from_slice(tokens);
        let excess = context.len().saturating_sub(MAX_CONTEXT_TOKENS);
        context.drain(..excess);
    }

    /// Forgets a stream's decoded text (after output that needed a high sampling temperature,
    /// which would mislead the next window).
    /// The caller's prompt, which every stream starts from.
    pub(crate) fn initial(&self) -> &[usize] {
        &self.initial
    }

    pub(crate) fn reset(&mut self, stream: usize) {
        self.streams[stream] = self.initial.clone();
    }
}

fn tail(tokens: &[usize], n: usize) -> &[usize] {
    &tokens[tokens.len().saturating_sub(n)..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_cover_every_window_once_in_order() {
        for windows in 0..20 {
            for batch in 1..6 {
                let s = Streams::new(windows, batch);
                assert!(s.len() <= batch);
                let mut seen: Vec<usize> = (0..s.steps()).flat_map(|k| s.at(k)).map(|(_, w)| w).collect();
                assert!(s.steps() <= windows.div_ceil(batch).max(if windows == 0 { 0 } else { 1 }));
                seen.sort_unstable();
                assert_eq!(seen, (0..windows).collect::<Vec<_>>(), "windows {windows} batch {batch}");
            }
        }
    }

    #[test]
    fn each_window_follows_its_predecessor_one_step_later() {
        let s = Streams::new(10, 4);
        assert_eq!(s.at(0), vec![(0, 0), (1, 3), (2, 6), (3, 9)]);
        assert_eq!(s.at(1), vec![(0, 1), (1, 4), (2, 7)]);
        assert_eq!(s.at(2), vec![(0, 2), (1, 5), (2, 8)]);
        assert_eq!(s.steps(), 3);
    }

    #[test]
    fn contexts_are_capped_equalised_and_reset() {
        let mut c = Contexts::new(2, vec![1, 2], true);
        c.push(0, &(10..400).collect::<Vec<_>>());
        c.push(1, &[7, 8, 9]);
        let batch = c.for_batch(&[0, 1]);
        assert_eq!(batch[1], &[1, 2, 7, 8, 9]);
        assert_eq!(batch[0], &[395, 396, 397, 398, 399]);
        assert_eq!(c.for_batch(&[0])[0].len(), MAX_CONTEXT_TOKENS);
        c.reset(0);
        assert_eq!(c.for_batch(&[0])[0], &[1, 2]);
    }

    #[test]
    fn disabled_contexts_keep_only_the_prompt() {
        let mut c = Contexts::new(1, vec![5], false);
        c.push(0, &[6, 7]);
        assert_eq!(c.for_batch(&[0])[0], &[5]);
    }
}
