//! Word timing: turns CTranslate2's cross-attention DTW path into word start/end times, the
//! way faster-whisper does (`find_alignment`, `merge_punctuations`, the median-duration clamp).

use super::tokenizer::{is_unspaced, Tokenizer};

/// Encoder frames per second (20 ms each).
const FRAMES_PER_SECOND: f64 = 50.0;
const PREPENDED: &str = "\"'“¿([{-";
const APPENDED: &str = "\"'.。,，!！?？:：”)]}、";
const SENTENCE_END: &str = ".。!！?？";

/// One word with times relative to its window's start.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TimedWord {
    /// With its leading space, as decoded.
    pub(crate) text: String,
    pub(crate) tokens: Vec<usize>,
    pub(crate) start: f64,
    pub(crate) end: f64,
    /// Mean probability of the word's tokens.
    pub(crate) probability: f64,
}

/// What `align` returned for one window, in plain types.
pub(crate) struct Alignment {
    /// (text token index, encoder frame index) pairs along the DTW path.
    pub(crate) path: Vec<(i64, i64)>,
    pub(crate) token_probs: Vec<f32>,
}

/// Word times from the DTW path; `None` when the path is unusable (the caller falls back).
pub(crate) fn words_from_alignment(
    tok: &Tokenizer,
    text_tokens: &[usize],
    alignment: &Alignment,
    language: &str,
) -> Option<Vec<TimedWord>> {
    let words = tok.split_words(text_tokens, language);
    if words.is_empty() || alignment.path.is_empty() {
        return None;
    }
    // Boundaries between words in token positions: 0, len(w0), len(w0)+len(w1), ...
    let mut boundaries = vec![0usize];
    for (_, ids) in &words {
        boundaries.push(boundaries.last().unwrap() + ids.len());
    }
    // Times at which the DTW path moves to the next token.
    let mut jump_times = Vec::new();
    let mut previous = None;
    for &(t, f) in &alignment.path {
        if previous != Some(t) {
            jump_times.push(f as f64 / FRAMES_PER_SECOND);
        }
        previous = Some(t);
    }
    if jump_times.len() <= *boundaries.last()? {
        return None;
    }
    let probs = &alignment.token_probs;
    let timed = words
        .into_iter()
        .zip(boundaries.windows(2))
        .map(|((text, tokens), b)| {
            let p = &probs[b[0].min(probs.len())..b[1].min(probs.len())];
            let probability = if p.is_empty() { 0.0 } else { p.iter().map(|&x| x as f64).sum::<f64>() / p.len() as f64 };
            TimedWord { text, tokens, start: jump_times[b[0]], end: jump_times[b[1]], probability }
        })
        .collect();
    let mut timed = glue_unspaced(merge_punctuation(timed), language);
    clamp_long_words(&mut timed);
    Some(timed)
}

/// Evenly spread words over `[0, duration]` when alignment is unavailable.
pub(crate) fn spread_words(tok: &Tokenizer, text_tokens: &[usize], language: &str, duration: f64) -> Vec<TimedWord> {
    let words = tok.split_words(text_tokens, language);
    let n = words.len().max(1) as f64;
    let timed = words
        .into_iter()
        .enumerate()
        .map(|(i, (text, tokens))| TimedWord {
            text,
            tokens,
            start: duration * i as f64 / n,
            end: duration * (i + 1) as f64 / n,
            probability: 0.0,
        })
        .collect();
    glue_unspaced(merge_punctuation(timed), language)
}

/// Attaches opening punctuation to the following word and closing punctuation to the
/// preceding one, then drops the emptied entries.
fn merge_punctuation(mut words: Vec<TimedWord>) -> Vec<TimedWord> {
    // Opening marks, scanning backwards so "( (" chains collapse onto the word.
    let mut j = words.len().saturating_sub(1);
    for i in (0..words.len().saturating_sub(1)).rev() {
        let prev = &words[i];
        if prev.text.starts_with(' ') && is_one_of(prev.text.trim(), PREPENDED) {
            let (head, tail) = words.split_at_mut(j);
            let (prev, next) = (&mut head[i], &mut tail[0]);
            next.text = format!("{}{}", prev.text, next.text);
            let mut tokens = std::mem::take(&mut prev.tokens);
            tokens.extend(&next.tokens);
            next.tokens = tokens;
            prev.text.clear();
        } else {
            j = i;
        }
    }
    let mut i = 0;
    for j in 1..words.len() {
        if !words[i].text.ends_with(' ') && is_one_of(&words[j].text, APPENDED) {
            let (head, tail) = words.split_at_mut(j);
            let (prev, next) = (&mut head[i], &mut tail[0]);
            prev.text.push_str(&next.text);
            prev.tokens.extend(std::mem::take(&mut next.tokens));
            next.text.clear();
        } else {
            i = j;
        }
    }
    words.retain(|w| !w.text.is_empty());
    words
}

/// In languages written with spaces, a word the model wrote without a space before it belongs
/// to the previous word: "105" + "%", "well" + "-known". Whisper's own word split makes such
/// symbols separate words for alignment; left separate they would gain a spacing item.
fn glue_unspaced(words: Vec<TimedWord>, language: &str) -> Vec<TimedWord> {
    if is_unspaced(language) {
        return words;
    }
    let mut out: Vec<TimedWord> = Vec::with_capacity(words.len());
    for w in words {
        match out.last_mut() {
            Some(prev) if !w.text.starts_with(char::is_whitespace) => {
                let (n, m) = (prev.tokens.len() as f64, w.tokens.len() as f64);
                prev.probability = (prev.probability * n + w.probability * m) / (n + m).max(1.0);
                prev.text.push_str(&w.text);
                prev.tokens.extend(w.tokens);
                prev.end = prev.end.max(w.end);
            }
            _ => out.push(w),
        }
    }
    out
}

fn is_one_of(s: &str, set: &str) -> bool {
    let mut chars = s.chars();
    matches!((chars.next(), chars.next()), (Some(c), None) if set.contains(c))
}

/// Words at sentence boundaries often absorb the pause after them; keep them within twice the
/// median word duration (faster-whisper's heuristic, median capped at 0.7 s).
fn clamp_long_words(words: &mut [TimedWord]) {
    let mut durations: Vec<f64> = words.iter().map(|w| w.end - w.start).filter(|d| *d > 0.0).collect();
    if durations.is_empty() {
        return;
    }
    durations.sort_by(f64::total_cmp);
    let median = durations[durations.len() / 2].min(0.7);
    let max = median * 2.0;
    for i in 0..words.len() {
        if words[i].end - words[i].start <= max {
            continue;
        }
        let ends_sentence = words[i].text.chars().last().is_some_and(|c| SENTENCE_END.contains(c));
        let after_sentence =
            i > 0 && words[i - 1].text.chars().last().is_some_and(|c| SENTENCE_END.contains(c));
        if ends_sentence || i + 1 == words.len() {
            words[i].end = words[i].start + max;
        } else if after_sentence || i == 0 {
            words[i].start = words[i].end - max;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tokenizer::tests::toy;
    use super::*;

    #[test]
    fn jumps_in_the_path_become_word_boundaries() {
        let tok = toy();
        // "Hello world," → tokens He, llo, Ġworld, ","; path rows 0..4 (the last row is eot).
        let path = vec![(0, 0), (0, 5), (1, 10), (2, 25), (2, 30), (3, 50), (4, 55)];
        let alignment = Alignment { path, token_probs: vec![0.9, 0.8, 0.7, 0.6] };
        let words = words_from_alignment(&tok, &[0, 1, 2, 3], &alignment, "en").unwrap();
        let got: Vec<(&str, f64, f64)> = words.iter().map(|w| (w.text.as_str(), w.start, w.end)).collect();
        assert_eq!(got, vec![("Hello", 0.0, 0.5), (" world,", 0.5, 1.0)]);
        assert!((words[0].probability - 0.85).abs() < 1e-6);
    }

    #[test]
    fn opening_parenthesis_joins_the_next_word() {
        let tok = toy();
        let words = spread_words(&tok, &[8, 9, 10, 11], "en", 1.0);
        let texts: Vec<&str> = words.iter().map(|w| w.text.as_str()).collect();
        assert_eq!(texts, vec![" (laughs)"]);
    }

    #[test]
    fn symbols_written_without_a_space_join_their_word() {
        let word = |text: &str, start: f64| TimedWord { text: text.into(), tokens: vec![0], start, end: start + 0.5, probability: 0.5 };
        let glued = glue_unspaced(vec![word(" 105", 0.0), word("%", 0.5), word(" after", 1.0)], "en");
        let texts: Vec<&str> = glued.iter().map(|w| w.text.as_str()).collect();
        assert_eq!(texts, vec![" 105%", " after"]);
        assert_eq!(glued[0].end, 1.0);
        assert_eq!(glue_unspaced(vec![word("你", 0.0), word("好", 0.5)], "zh").len(), 2);
    }

    #[test]
    fn a_short_path_is_refused() {
        let tok = toy();
        let alignment = Alignment { path: vec![(0, 0)], token_probs: vec![] };
        assert!(words_from_alignment(&tok, &[0, 1, 2], &alignment, "en").is_none());
    }
}
