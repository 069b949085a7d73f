//! Whisper's token vocabulary: special tokens, byte-level BPE decoding, and the split of a token
//! sequence into words that word timing needs.
//!
//! Encoding text (for prompts) is [`super::bpe`]'s job. The vocabulary comes from the model directory's `vocabulary.txt` (one token per
//! line, line N = token id N), the same file CTranslate2 loads.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Context};

/// Languages written without spaces between words: each character group is a word.
const UNSPACED_LANGUAGES: &[&str] = &["zh", "ja", "th", "lo", "my", "yue"];

pub(crate) struct Tokenizer {
    tokens: Vec<String>,
    ids: HashMap<String, usize>,
    byte_of_char: HashMap<char, u8>,
    pub(crate) eot: usize,
    pub(crate) sot: usize,
    pub(crate) transcribe: usize,
    pub(crate) no_timestamps: usize,
    /// `<|startofprev|>`, which opens previous-text context in a prompt.
    pub(crate) sot_prev: Option<usize>,
    pub(crate) multilingual: bool,
}

impl Tokenizer {
    /// Reads `vocabulary.txt`; `multilingual` comes from the model itself, which knows.
    pub(crate) fn load(model_dir: &Path, multilingual: bool) -> anyhow::Result<Self> {
        let path = model_dir.join("vocabulary.txt");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading the model vocabulary {}", path.display()))?;
        let mut tok = Self::from_tokens(text.lines().map(str::to_owned).collect())?;
        tok.multilingual = multilingual;
        Ok(tok)
    }

    fn from_tokens(tokens: Vec<String>) -> anyhow::Result<Self> {
        let ids: HashMap<String, usize> =
            tokens.iter().enumerate().map(|(i, t)| (t.clone(), i)).collect();
        let id = |t: &str| ids.get(t).copied().with_context(|| format!("vocabulary lacks {t}"));
        let eot = id("<|endoftext|>")?;
        let sot = id("<|startoftranscript|>")?;
        let no_timestamps = id("<|notimestamps|>")?;
        let transcribe = id("<|transcribe|>")?;
        // English-only vocabularies still list the language tokens; they are one token shorter.
        let multilingual = tokens.len() >= 51_865;
        if eot >= sot {
            bail!("vocabulary has <|endoftext|> after <|startoftranscript|>: not a Whisper vocabulary");
        }
        let sot_prev = ids.get("<|startofprev|>").copied();
        let byte_of_char = bytes_to_unicode().into_iter().map(|(b, c)| (c, b)).collect();
        Ok(Tokenizer { tokens, ids, byte_of_char, eot, sot, transcribe, no_timestamps, sot_prev, multilingual })
    }

    /// Token id of `<|xx|>` for a Whisper language code.
    pub(crate) fn language_token(&self, code: &str) -> Option<usize> {
        self.ids.get(&format!("<|{code}|>")).copied()
    }

    /// Id of a token written in the vocabulary's byte-level form.
    pub(crate) fn id_of(&self, token: &str) -> Option<usize> {
        self.ids.get(token).copied()
    }

    pub(crate) fn token_str(&self, id: usize) -> &str {
        self.tokens.get(id).map(String::as_str).unwrap_or("")
    }

    /// The prompt that starts decoding: `<|startoftranscript|>` then, for multilingual
    /// models, the language and `<|transcribe|>`.
    pub(crate) fn sot_sequence(&self, language: &str) -> Vec<usize> {
        match (self.multilingual, self.language_token(language)) {
            (true, Some(lang)) => vec![self.sot, lang, self.transcribe],
            _ => vec![self.sot],
        }
    }

    /// Text tokens only (no special or timestamp tokens).
    pub(crate) fn is_text(&self, id: usize) -> bool {
        id < self.eot
    }

    fn bytes_of(&self, ids: &[usize]) -> Vec<u8> {
        let mut bytes = Vec::new();
        for &id in ids.iter().filter(|&&id| self.is_text(id)) {
            for ch in self.token_str(id).chars() {
                match self.byte_of_char.get(&ch) {
                    Some(&b) => bytes.push(b),
                    // Not byte-level BPE (should not happen with Whisper vocabularies).
                    None => bytes.extend(ch.to_string().as_bytes()),
                }
            }
        }
        bytes
    }

    /// Decodes text tokens to a string (invalid UTF-8 becomes U+FFFD).
    pub(crate) fn decode(&self, ids: &[usize]) -> String {
        String::from_utf8_lossy(&self.bytes_of(ids)).into_owned()
    }

    /// Splits text tokens into words, each with its token ids. Word texts keep their leading
    /// space; concatenated they give `decode(ids)`.
    pub(crate) fn split_words(&self, ids: &[usize], language: &str) -> Vec<(String, Vec<usize>)> {
        let pieces = self.split_on_unicode(ids);
        if is_unspaced(language) {
            return pieces;
        }
        let mut words: Vec<(String, Vec<usize>)> = Vec::new();
        for (piece, piece_ids) in pieces {
            let starts_word = piece.starts_with(' ') || is_punctuation(piece.trim());
            match words.last_mut() {
                Some((w, t)) if !starts_word => {
                    w.push_str(&piece);
                    t.extend(piece_ids);
                }
                _ => words.push((piece, piece_ids)),
            }
        }
        words
    }

    /// Groups tokens so that each group decodes to whole characters (a multi-byte character
    /// may span several tokens).
    fn split_on_unicode(&self, ids: &[usize]) -> Vec<(String, Vec<usize>)> {
        let mut out = Vec::new();
        let mut pending_ids = Vec::new();
        let mut pending_bytes = Vec::new();
        for &id in ids.iter().filter(|&&id| self.is_text(id)) {
            pending_ids.push(id);
            pending_bytes.extend(self.bytes_of(&[id]));
            if let Ok(s) = std::str::from_utf8(&pending_bytes) {
                out.push((s.to_owned(), std::mem::take(&mut pending_ids)));
                pending_bytes.clear();
            }
        }
        if !pending_ids.is_empty() {
            out.push((String::from_utf8_lossy(&pending_bytes).into_owned(), pending_ids));
        }
        out
    }
}

/// Whether the language is written without spaces between words (each character group is a word).
pub(crate) fn is_unspaced(language: &str) -> bool {
    UNSPACED_LANGUAGES.contains(&language)
}

fn is_punctuation(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_punctuation())
}

/// GPT-2's reversible map from bytes to printable characters.
pub(crate) fn bytes_to_unicode() -> Vec<(u8, char)> {
    let printable = |b: u8| (b'!'..=b'~').contains(&b) || (0xA1..=0xAC).contains(&b) || (0xAE..=0xFF).contains(&b);
    let mut extra = 0u32;
    (0..=255u8)
        .map(|b| {
            if printable(b) {
                (b, char::from(b))
            } else {
                extra += 1;
                (b, char::from_u32(255 + extra).expect("valid code point"))
            }
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A toy vocabulary in Whisper's layout (text tokens, then the specials).
    pub(crate) fn toy() -> Tokenizer {
        let mut t: Vec<String> =
            ["He", "llo", "Ġworld", ",", "Ġhow", "Ġare", "Ġyou", "?", "Ġ(", "laugh", "s", ")", "ĠâĢ", "ľ", "Hi", "âĢĿ"]
                .iter()
                .map(|s| s.to_string())
                .collect();
        t.resize(51_865 - 6, "pad".to_owned());
        for s in ["<|endoftext|>", "<|startoftranscript|>", "<|en|>", "<|de|>", "<|transcribe|>", "<|notimestamps|>"] {
            t.push(s.to_owned());
        }
        Tokenizer::from_tokens(t).unwrap()
    }

    #[test]
    fn decodes_byte_level_bpe() {
        let tok = toy();
        assert_eq!(tok.decode(&[0, 1, 2, 3]), "Hello world,");
        // "“Hi”" spread over tokens that are partial UTF-8 sequences.
        assert_eq!(tok.decode(&[12, 13, 14, 15]), " \u{201c}Hi\u{201d}");
    }

    #[test]
    fn words_start_at_spaces_and_punctuation_is_separate() {
        let tok = toy();
        let words: Vec<String> =
            tok.split_words(&[0, 1, 2, 3, 4, 5, 6, 7], "en").into_iter().map(|(w, _)| w).collect();
        assert_eq!(words, vec!["Hello", " world", ",", " how", " are", " you", "?"]);
    }

    #[test]
    fn multibyte_characters_are_not_cut() {
        let tok = toy();
        let pieces = tok.split_on_unicode(&[12, 13, 14]);
        assert_eq!(pieces[0].0, " \u{201c}");
        assert_eq!(pieces[0].1, vec![12, 13]);
    }

    #[test]
    fn sot_sequence_depends_on_model_kind() {
        let tok = toy();
        assert!(tok.multilingual);
        assert_eq!(tok.sot_sequence("en"), vec![tok.sot, tok.language_token("en").unwrap(), tok.transcribe]);
    }
}
