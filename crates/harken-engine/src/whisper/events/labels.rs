//! Caption annotations → a fixed, lower-case event vocabulary.
//!
//! Whisper learned non-speech markup from subtitles: "(laughs)", "[LAUGHTER]", "*applause*",
//! "[Music]", "♪", "(dog barking)", "[wind howling]". Each annotation is matched by keywords to
//! one label of [`VOCABULARY`]; an annotation that matches none ("[BLANK_AUDIO]", "(speaking
//! foreign language)", "(sighs)") is dropped: the tagger never invents a label.

/// Every label the tagger can emit, as it appears (in parentheses) in transcripts.
pub(crate) const VOCABULARY: &[&str] = &[
    "laughter",
    "applause",
    "cheering",
    "music",
    "singing",
    "dog barking",
    "cat meowing",
    "birds chirping",
    "rooster crowing",
    "whale song",
    "thunder",
    "rain",
    "wind",
    "car horn",
    "siren",
    "engine",
    "telephone ringing",
    "knocking",
    "gunshot",
    "explosion",
    "baby crying",
    "crying",
    "coughing",
    "sneezing",
    "whistling",
];

/// Keywords (matched against whole lower-case words, or word prefixes where marked with `*`)
/// and the label they give. Order matters: the first rule that matches wins, so specific
/// phrases ("car horn") come before the words they contain ("car").
#[rustfmt::skip] // one rule per line reads better than rustfmt's one keyword per line
const RULES: &[(&[&str], &str)] = &[
    (&["laugh*", "chuckl*", "giggl*", "cackl*"], "laughter"),
    (&["applau*", "clap*"], "applause"),
    (&["cheer*"], "cheering"),
    (&["horn*", "honk*"], "car horn"),
    (&["siren*"], "siren"),
    (&["bark*", "dog", "dogs", "woof*", "yelp*"], "dog barking"),
    (&["meow*", "cat", "cats", "purr*"], "cat meowing"),
    (&["bird*", "chirp*", "tweet*", "birdsong*", "robin*"], "birds chirping"),
    (&["rooster*", "crow", "crows", "crowing"], "rooster crowing"),
    (&["whale*"], "whale song"),
    (&["thunder*"], "thunder"),
    (&["rain*"], "rain"),
    (&["wind"], "wind"),
    (&["gunshot*", "gunfire", "shot", "shots"], "gunshot"),
    (&["explosion*"], "explosion"),
    (&["baby"], "baby crying"),
    (&["cry", "cries", "crying", "sobs", "sobbing", "weep*"], "crying"),
    (&["cough*"], "coughing"),
    (&["sneez*"], "sneezing"),
    (&["knock*"], "knocking"),
    (&["phone*", "telephone*", "ring*"], "telephone ringing"),
    (&["engine*", "motor*", "revving"], "engine"),
    (&["sing", "sings", "singing", "vocaliz*", "humming", "hums"], "singing"),
    (
        &[
            "music*", "song*", "piano*", "guitar*", "trumpet*", "violin*", "drum*", "orchestra*", "instrumental*", "melod*",
            "jazz*", "rock", "techno", "strings", "bells", "chimes", "chiming",
        ],
        "music",
    ),
    (&["whistl*"], "whistling"),
];

/// Annotations naming these are dropped whole: Whisper writes them over steady hiss and
/// room tone, where no listener would note an event.
const UNTRUSTED: &[&str] = &[
    "cricket*",
    "static",
    "silence",
    "blank",
    "inaudible",
    "noise",
    "foreign",
];

/// The annotations in a decoded text: spans in `(...)`, `[...]`, `*...*`, and runs of music
/// notes (which stand for music on their own).
pub(crate) fn annotations(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let close = match chars[i] {
            '(' => Some(')'),
            '[' => Some(']'),
            '*' => Some('*'),
            '♪' | '♫' | '♬' | '♩' => {
                out.push("♪".to_owned());
                while i < chars.len() && "♪♫♬♩".contains(chars[i]) {
                    i += 1;
                }
                continue;
            }
            _ => None,
        };
        if let Some(c) = close {
            if let Some(len) = chars[i + 1..].iter().position(|&x| x == c) {
                let inner: String = chars[i + 1..i + 1 + len].iter().collect();
                if !inner.trim().is_empty() {
                    out.push(inner.trim().to_owned());
                }
                i += len + 2;
                continue;
            }
        }
        i += 1;
    }
    out
}

/// The vocabulary label for one annotation's inner text, if any rule fits.
pub(crate) fn label(annotation: &str) -> Option<&'static str> {
    if annotation.chars().all(|c| "♪♫♬♩ ".contains(c)) && !annotation.trim().is_empty() {
        return Some("music");
    }
    let lower = annotation.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphabetic())
        .filter(|w| !w.is_empty())
        .collect();
    if words.iter().any(|w| UNTRUSTED.iter().any(|k| matches(k, w))) {
        return None;
    }
    RULES
        .iter()
        .find(|(keys, _)| keys.iter().any(|k| words.iter().any(|w| matches(k, w))))
        .map(|&(_, label)| label)
        .inspect(|label| {
            debug_assert!(
                VOCABULARY.contains(label),
                "bug: rule label {label} is not in the vocabulary"
            )
        })
}

fn matches(key: &str, word: &str) -> bool {
    match key.strip_suffix('*') {
        Some(prefix) if !prefix.contains('*') => word.starts_with(prefix),
        _ => key == word,
    }
}

/// Distinct labels in a decoded text, in order of appearance.
pub(crate) fn labels_in(text: &str) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for l in annotations(text).iter().filter_map(|a| label(a)) {
        if !out.contains(&l) {
            out.push(l);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whisper_annotations_map_to_the_vocabulary() {
        let cases = [
            (" (laughs)", Some("laughter")),
            (" [LAUGHTER]", Some("laughter")),
            ("*chuckles*", Some("laughter")),
            (" (audience applauding)", Some("applause")),
            ("[APPLAUSE]", Some("applause")),
            (" [Music]", Some("music")),
            (" (upbeat music)", Some("music")),
            (" [MUSIC PLAYING]", Some("music")),
            (" ♪", Some("music")),
            (" ♪♪♪", Some("music")),
            (" (dog barking)", Some("dog barking")),
            (" [dog barks]", Some("dog barking")),
            (" (thunder rumbling)", Some("thunder")),
            (" [wind howling]", Some("wind")),
            (" (birds chirping)", Some("birds chirping")),
            (" (car horn honking)", Some("car horn")),
            (" (horn honks)", Some("car horn")),
            (" (coughs)", Some("coughing")),
            (" (whale calls)", Some("whale song")),
            (" (crickets chirping)", None),
        ];
        for (text, want) in cases {
            assert_eq!(labels_in(text).first().copied(), want, "{text}");
        }
    }

    #[test]
    fn unknown_annotations_and_plain_words_give_nothing() {
        for text in [
            " [BLANK_AUDIO]",
            " (speaking foreign language)",
            " (sighs)",
            " (inaudible)",
            " Hello there.",
            " BAH!",
            "",
            " [ ]",
            " (the",
        ] {
            assert!(labels_in(text).is_empty(), "{text}");
        }
    }

    #[test]
    fn several_annotations_give_distinct_labels_in_order() {
        assert_eq!(
            labels_in(" [Music] (laughter) [Music] so (applause)"),
            vec!["music", "laughter", "applause"]
        );
        assert_eq!(annotations("a (b) [c] *d* ♪ e"), vec!["b", "c", "d", "♪"]);
    }

    #[test]
    fn every_rule_names_a_vocabulary_label() {
        for (_, label) in RULES {
            assert!(VOCABULARY.contains(label), "{label}");
        }
    }

    #[test]
    fn keywords_match_whole_words_or_prefixes() {
        // "crowd" must not become a rooster, nor "scary" a car.
        assert_eq!(label("crowd murmuring"), None);
        assert_eq!(label("scary noise"), None);
        assert_eq!(label("ring ringing"), Some("telephone ringing"));
    }
}
