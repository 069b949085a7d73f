//! Caption markup in the main transcription pass, which must never become words.
//!
//! The main pass suppresses `(`, `[`, `*` and `♪`, yet merged BPE tokens (" [♪") and symbol runs
//! ("¶¶¶") still slip through on music, and a bracket once opened carries caption words with it
//! ("[♪ OUTRO MUSIC PLAYING"). A word that opens a bracket starts markup that lasts until the
//! word closing it, or the end of the window; words with no letter or digit are markup too.

/// For each word text, whether it is caption markup.
pub(crate) fn markup_mask<S: AsRef<str>>(words: &[S]) -> Vec<bool> {
    let mut out = Vec::with_capacity(words.len());
    let mut open: Option<char> = None;
    for w in words {
        let w = w.as_ref().trim();
        if let Some(close) = open {
            out.push(true);
            if w.contains(close) {
                open = None;
            }
            continue;
        }
        let opener = w.chars().next().and_then(|c| match c {
            '[' => Some(']'),
            '(' => Some(')'),
            '*' => Some('*'),
            _ => None,
        });
        match opener {
            Some(close) => {
                out.push(true);
                if !w[1..].contains(close) {
                    open = Some(close);
                }
            }
            None => out.push(w.is_empty() || !w.chars().any(char::is_alphanumeric)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept(words: &[&str]) -> Vec<String> {
        words
            .iter()
            .zip(markup_mask(words))
            .filter(|(_, m)| !m)
            .map(|(w, _)| w.trim().to_owned())
            .collect()
    }

    #[test]
    fn closed_and_unclosed_brackets_take_their_words_with_them() {
        assert_eq!(kept(&[" Hello", " [Music]", " world."]), vec!["Hello", "world."]);
        assert_eq!(kept(&[" So", " (dog", " barking)", " anyway"]), vec!["So", "anyway"]);
        assert_eq!(
            kept(&[" [♪", " OUTRO", " MUSIC", " PLAYING", " [♪", " OUTRO"]),
            Vec::<String>::new()
        );
        assert_eq!(kept(&[" *applause*", " Thanks."]), vec!["Thanks."]);
    }

    #[test]
    fn symbol_runs_are_markup_and_ordinary_words_are_not() {
        assert_eq!(
            kept(&[" ¶¶¶¶", " ♪", " -", " Thank", " you.", " 3*4", " AI?"]),
            vec!["Thank", "you.", "3*4", "AI?"]
        );
    }
}
