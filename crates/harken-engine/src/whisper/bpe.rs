//! Text → Whisper tokens: GPT-2's byte-level BPE, for prompts (the caller's `prompt`, and the
//! previous window's text is already tokens).
//!
//! The merge ranks come from the model directory's `tokenizer.json` (Hugging Face format, which
//! faster-whisper model directories carry); token ids from `vocabulary.txt` via [`Tokenizer`].
//! Pre-tokenisation follows GPT-2's pattern
//! `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`, written out by
//! hand because the `regex` crate has no look-ahead.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context;

use super::tokenizer::{bytes_to_unicode, Tokenizer};

pub(crate) struct BpeEncoder {
    ranks: HashMap<(String, String), usize>,
    char_of_byte: [char; 256],
}

impl BpeEncoder {
    /// Reads the merges of `tokenizer.json`.
    pub(crate) fn load(model_dir: &Path) -> anyhow::Result<Self> {
        let path = model_dir.join("tokenizer.json");
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let doc: serde_json::Value = serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        let merges = doc
            .pointer("/model/merges")
            .and_then(|m| m.as_array())
            .with_context(|| format!("{} has no BPE merges", path.display()))?;
        let mut pairs = Vec::with_capacity(merges.len());
        for merge in merges {
            // Older files write "a b", newer ones ["a", "b"].
            let pair = match merge {
                serde_json::Value::String(s) => s.split_once(' ').map(|(a, b)| (a.to_owned(), b.to_owned())),
                serde_json::Value::Array(v) => match (v.first().and_then(|a| a.as_str()), v.get(1).and_then(|b| b.as_str())) {
                    (Some(a), Some(b)) => Some((a.to_owned(), b.to_owned())),
                    _ => None,
                },
                _ => None,
            };
            pairs.push(pair.with_context(|| format!("{} has a malformed merge {merge}", path.display()))?);
        }
        Ok(Self::from_merges(pairs))
    }

    pub(crate) fn from_merges(merges: Vec<(String, String)>) -> Self {
        let ranks = merges.into_iter().enumerate().map(|(rank, pair)| (pair, rank)).collect();
        let mut char_of_byte = ['\0'; 256];
        for (b, c) in bytes_to_unicode() {
            char_of_byte[b as usize] = c;
        }
        BpeEncoder { ranks, char_of_byte }
    }

    /// Token ids of `text`. Pieces the vocabulary lacks (none, for Whisper's own files) fall
    /// back to one token per byte.
    pub(crate) fn encode(&self, tok: &Tokenizer, text: &str) -> Vec<usize> {
        let mut ids = Vec::new();
        for piece in pre_tokenize(text) {
            let symbols: Vec<String> =
                piece.bytes().map(|b| self.char_of_byte[b as usize].to_string()).collect();
            for symbol in self.merge(symbols) {
                match tok.id_of(&symbol) {
                    Some(id) => ids.push(id),
                    None => ids.extend(symbol.chars().filter_map(|c| tok.id_of(&c.to_string()))),
                }
            }
        }
        ids
    }

    /// Applies merges, lowest rank first, until none applies.
    fn merge(&self, mut symbols: Vec<String>) -> Vec<String> {
        loop {
            let best = symbols
                .windows(2)
                .enumerate()
                .filter_map(|(i, w)| self.ranks.get(&(w[0].clone(), w[1].clone())).map(|&r| (r, i)))
                .min();
            let Some((rank, _)) = best else { return symbols };
            let mut merged = Vec::with_capacity(symbols.len());
            let mut i = 0;
            while i < symbols.len() {
                if i + 1 < symbols.len() && self.ranks.get(&(symbols[i].clone(), symbols[i + 1].clone())) == Some(&rank) {
                    merged.push(format!("{}{}", symbols[i], symbols[i + 1]));
                    i += 2;
                } else {
                    merged.push(std::mem::take(&mut symbols[i]));
                    i += 1;
                }
            }
            symbols = merged;
        }
    }
}

#[derive(PartialEq, Clone, Copy)]
enum Class {
    Letter,
    Number,
    Space,
    Other,
}

fn class(c: char) -> Class {
    if c.is_alphabetic() {
        Class::Letter
    } else if c.is_numeric() {
        Class::Number
    } else if c.is_whitespace() {
        Class::Space
    } else {
        Class::Other
    }
}

/// Splits text the way GPT-2's pattern does (see the module docs).
fn pre_tokenize(text: &str) -> Vec<&str> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let at = |i: usize| if i < chars.len() { chars[i].0 } else { text.len() };
    let mut pieces = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let start = i;
        let c = chars[i].1;
        if let Some(n) = contraction(&text[at(i)..]) {
            i += n;
        } else if c == ' ' && i + 1 < chars.len() && class(chars[i + 1].1) != Class::Space {
            let k = class(chars[i + 1].1);
            i += 1;
            while i < chars.len() && class(chars[i].1) == k {
                i += 1;
            }
        } else if class(c) == Class::Space {
            while i < chars.len() && class(chars[i].1) == Class::Space {
                i += 1;
            }
            // `\s+(?!\S)`: leave the last space to the word that follows.
            if i < chars.len() && i - start > 1 {
                i -= 1;
            }
        } else {
            let k = class(c);
            i += 1;
            while i < chars.len() && class(chars[i].1) == k {
                i += 1;
            }
        }
        pieces.push(&text[at(start)..at(i)]);
    }
    pieces
}

/// Length in chars of an English contraction at the start of `s` ('s, 't, 're, 've, 'm, 'll, 'd).
fn contraction(s: &str) -> Option<usize> {
    let rest = s.strip_prefix('\'')?;
    if ["re", "ve", "ll"].iter().any(|p| rest.starts_with(p)) {
        Some(3)
    } else if ["s", "t", "m", "d"].iter().any(|p| rest.starts_with(p)) {
        Some(2)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pre_tokenizes_like_gpt2() {
        assert_eq!(pre_tokenize("Hello world"), vec!["Hello", " world"]);
        assert_eq!(pre_tokenize("I don't know."), vec!["I", " don", "'t", " know", "."]);
        assert_eq!(pre_tokenize("it's 105% sure"), vec!["it", "'s", " 105", "%", " sure"]);
        assert_eq!(pre_tokenize("a  b"), vec!["a", " ", " b"]);
        assert_eq!(pre_tokenize("end  "), vec!["end", "  "]);
        assert_eq!(pre_tokenize("x\n\ny"), vec!["x", "\n", "\n", "y"]);
        assert_eq!(pre_tokenize(" ...!?"), vec![" ...!?"]);
        assert_eq!(pre_tokenize("Über café"), vec!["Über", " café"]);
    }

    #[test]
    fn merges_lowest_rank_first() {
        let enc = BpeEncoder::from_merges(vec![
            ("l".into(), "o".into()),
            ("H".into(), "e".into()),
            ("He".into(), "lo".into()),
            ("l".into(), "lo".into()),
        ]);
        let symbols = "Hello".chars().map(|c| c.to_string()).collect();
        assert_eq!(enc.merge(symbols), vec!["He", "llo"]);
    }

    #[test]
    fn encodes_with_the_vocabulary() {
        let tok = crate::whisper::tokenizer::tests::toy();
        let enc = BpeEncoder::from_merges(vec![
            ("l".into(), "l".into()),
            ("ll".into(), "o".into()),
            ("H".into(), "e".into()),
            ("Ġ".into(), "w".into()),
            ("o".into(), "r".into()),
            ("Ġw".into(), "or".into()),
            ("l".into(), "d".into()),
            ("Ġwor".into(), "ld".into()),
        ]);
        let ids = enc.encode(&tok, "Hello world,");
        assert_eq!(tok.decode(&ids), "Hello world,");
        assert_eq!(ids, vec![0, 1, 2, 3]);
    }

    /// Ids from Hugging Face `tokenizers` on the same `tokenizer.json` (the reference
    /// implementation), for the `base` model's vocabulary.
    #[test]
    fn matches_the_reference_tokenizer_on_the_real_vocabulary() {
        let dir = std::env::var_os("HARKEN_MODELS_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(harken_models::default_models_dir)
            .join("base");
        assert!(dir.join("tokenizer.json").exists(), "{} is missing: run `harken models fetch base`", dir.display());
        let tok = Tokenizer::load(&dir, true).unwrap();
        let enc = BpeEncoder::load(&dir).unwrap();
        let cases: [(&str, &[usize]); 3] = [
            (" Hello world, I don't know.", &[2425, 1002, 11, 286, 500, 380, 458, 13]),
            (
                " Kubernetes, Anthropic, Siobhán Ó Conchubhair — 105%!",
                &[23145, 11, 12727, 39173, 11, 4909, 996, 71, 7200, 35232, 2656, 339, 836, 46135, 3466, 33705, 4, 0],
            ),
            (" Привет, мир. 日本語のテキスト", &[38932, 11, 20536, 13, 220, 27311, 31348, 2972, 22985, 15535, 40498]),
        ];
        for (text, ids) in cases {
            assert_eq!(enc.encode(&tok, text), ids, "{text}");
            assert_eq!(tok.decode(ids), text);
        }
    }
}
