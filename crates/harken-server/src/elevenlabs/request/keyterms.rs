//! ElevenLabs' `keyterms`: words or phrases to recognise more accurately. harken has no
//! keyword-boosting decoder; it gives Whisper the terms as the text said before the audio (its
//! "previous text" prompt, which faster-whisper's `hotwords` also uses), so the decoder leans
//! towards their spelling. Checked against ElevenLabs' own rules, so a request it accepts is
//! accepted here and one it refuses is refused.

use crate::multipart::Form;
use crate::ApiError;

/// ElevenLabs' limits: how many terms, characters per term, words per term.
pub(super) const MAX_TERMS: usize = 1000;
pub(super) const MAX_CHARS: usize = 50;
pub(super) const MAX_WORDS: usize = 5;
const FORBIDDEN: &[char] = &['<', '>', '{', '}', '[', ']', '\\'];

/// The terms, as repeated `keyterms` fields (what the SDKs send) or one field holding a JSON list
/// of strings (what a hand-written `-F 'keyterms=["a","b"]'` sends).
pub(super) fn parse(form: &Form) -> Result<Vec<String>, ApiError> {
    let mut terms = Vec::new();
    for value in form.all("keyterms") {
        if value.starts_with('[') {
            let list: Vec<String> = serde_json::from_str(value).map_err(|_| {
                ApiError::Validation(format!(
                    "keyterms: expected repeated text fields or one JSON list of strings, received {:?}",
                    value.chars().take(80).collect::<String>()
                ))
            })?;
            terms.extend(list.into_iter().map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()));
        } else {
            terms.push(value.to_owned());
        }
    }
    if terms.len() > MAX_TERMS {
        return Err(ApiError::Validation(format!(
            "keyterms: expected at most {MAX_TERMS} terms, received {}",
            terms.len()
        )));
    }
    for (i, term) in terms.iter().enumerate() {
        check(term).map_err(|why| {
            let shown: String = term.chars().take(80).collect();
            ApiError::Validation(format!("keyterms[{i}]: expected {why}, received {shown:?}"))
        })?;
    }
    Ok(terms)
}

fn check(term: &str) -> Result<(), String> {
    if term.chars().count() > MAX_CHARS {
        return Err(format!("at most {MAX_CHARS} characters"));
    }
    if term.split_whitespace().count() > MAX_WORDS {
        return Err(format!("at most {MAX_WORDS} words"));
    }
    if term.contains(FORBIDDEN) {
        return Err("no < > { } [ ] or \\ characters".to_owned());
    }
    Ok(())
}

/// The prompt Whisper is given: the terms separated by commas, in the client's order. `None`
/// when there are none.
pub(super) fn prompt(terms: &[String]) -> Option<String> {
    (!terms.is_empty()).then(|| terms.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_are_elevenlabs_own() {
        assert!(check("Kubernetes").is_ok());
        assert!(check("a technical term of five").is_ok());
        assert_eq!(check("one two three four five six"), Err("at most 5 words".to_owned()));
        assert_eq!(check(&"x".repeat(51)), Err("at most 50 characters".to_owned()));
        assert!(check(&"é".repeat(50)).is_ok(), "characters, not bytes");
        assert!(check("a <b>").is_err() && check("x\\y").is_err());
    }

    #[test]
    fn the_prompt_lists_the_terms_in_order() {
        assert_eq!(prompt(&[]), None);
        let terms = vec!["Harken".to_owned(), "Scribe v2".to_owned()];
        assert_eq!(prompt(&terms).as_deref(), Some("Harken, Scribe v2"));
    }
}
