//! Language codes: Whisper speaks ISO 639-1 (plus `haw`, `yue`, and `jw` for Javanese);
//! the contract speaks ISO 639-3. Macrolanguages map to their ISO 639-3 macrolanguage code
//! (`zh` → `zho`, `ms` → `msa`), as ISO 639-2/T does.

/// (Whisper code, ISO 639-3) for every language Whisper knows.
const TABLE: &[(&str, &str)] = &[
    ("en", "eng"), ("zh", "zho"), ("de", "deu"), ("es", "spa"), ("ru", "rus"), ("ko", "kor"),
    ("fr", "fra"), ("ja", "jpn"), ("pt", "por"), ("tr", "tur"), ("pl", "pol"), ("ca", "cat"),
    ("nl", "nld"), ("ar", "ara"), ("sv", "swe"), ("it", "ita"), ("id", "ind"), ("hi", "hin"),
    ("fi", "fin"), ("vi", "vie"), ("he", "heb"), ("uk", "ukr"), ("el", "ell"), ("ms", "msa"),
    ("cs", "ces"), ("ro", "ron"), ("da", "dan"), ("hu", "hun"), ("ta", "tam"), ("no", "nor"),
    ("th", "tha"), ("ur", "urd"), ("hr", "hrv"), ("bg", "bul"), ("lt", "lit"), ("la", "lat"),
    ("mi", "mri"), ("ml", "mal"), ("cy", "cym"), ("sk", "slk"), ("te", "tel"), ("fa", "fas"),
    ("lv", "lav"), ("bn", "ben"), ("sr", "srp"), ("az", "aze"), ("sl", "slv"), ("kn", "kan"),
    ("et", "est"), ("mk", "mkd"), ("br", "bre"), ("eu", "eus"), ("is", "isl"), ("hy", "hye"),
    ("ne", "nep"), ("mn", "mon"), ("bs", "bos"), ("kk", "kaz"), ("sq", "sqi"), ("sw", "swa"),
    ("gl", "glg"), ("mr", "mar"), ("pa", "pan"), ("si", "sin"), ("km", "khm"), ("sn", "sna"),
    ("yo", "yor"), ("so", "som"), ("af", "afr"), ("oc", "oci"), ("ka", "kat"), ("be", "bel"),
    ("tg", "tgk"), ("sd", "snd"), ("gu", "guj"), ("am", "amh"), ("yi", "yid"), ("lo", "lao"),
    ("uz", "uzb"), ("fo", "fao"), ("ht", "hat"), ("ps", "pus"), ("tk", "tuk"), ("nn", "nno"),
    ("mt", "mlt"), ("sa", "san"), ("lb", "ltz"), ("my", "mya"), ("bo", "bod"), ("tl", "tgl"),
    ("mg", "mlg"), ("as", "asm"), ("tt", "tat"), ("haw", "haw"), ("ln", "lin"), ("ha", "hau"),
    ("ba", "bak"), ("jw", "jav"), ("su", "sun"), ("yue", "yue"),
];

/// Extra ISO 639-3 / 639-2/B spellings users send for the same languages.
const ALIASES: &[(&str, &str)] = &[
    ("cmn", "zh"), ("ger", "de"), ("fre", "fr"), ("chi", "zh"), ("dut", "nl"), ("cze", "cs"),
    ("rum", "ro"), ("gre", "el"), ("per", "fa"), ("arm", "hy"), ("baq", "eu"), ("ice", "is"),
    ("geo", "ka"), ("mac", "mk"), ("mao", "mi"), ("may", "ms"), ("alb", "sq"), ("slo", "sk"),
    ("wel", "cy"), ("bur", "my"), ("tib", "bo"), ("zsm", "ms"), ("nob", "no"), ("jv", "jw"),
    ("fil", "tl"), ("pes", "fa"), ("arb", "ar"), ("swh", "sw"), ("ekk", "et"), ("lvs", "lv"),
    ("uzn", "uz"), ("khk", "mn"), ("pbu", "ps"), ("als", "sq"),
];

/// The ISO 639-3 code for a Whisper language code.
pub fn iso639_1_to_3(code: &str) -> Option<&'static str> {
    TABLE.iter().find(|(w, _)| *w == code).map(|(_, t)| *t)
}

/// The Whisper language code for an ISO 639-3 code.
pub fn iso639_3_to_1(code: &str) -> Option<&'static str> {
    TABLE.iter().find(|(_, t)| *t == code).map(|(w, _)| *w)
}

/// Reads a user-supplied language (ISO 639-1 or 639-3, any case) into Whisper's code.
/// `None` when the language is not one Whisper knows.
pub fn normalize_language_code(input: &str) -> Option<&'static str> {
    let code = input.trim().to_ascii_lowercase();
    if let Some((w, _)) = TABLE.iter().find(|(w, t)| *w == code || *t == code) {
        return Some(w);
    }
    ALIASES.iter().find(|(a, _)| *a == code).map(|(_, w)| *w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_iso_forms_read_to_whisper_codes() {
        assert_eq!(normalize_language_code("en"), Some("en"));
        assert_eq!(normalize_language_code("ENG"), Some("en"));
        assert_eq!(normalize_language_code("cmn"), Some("zh"));
        assert_eq!(normalize_language_code("xx"), None);
        assert_eq!(iso639_1_to_3("de"), Some("deu"));
        assert_eq!(iso639_3_to_1("jav"), Some("jw"));
    }

    #[test]
    fn table_has_no_duplicates() {
        for (i, (a, b)) in TABLE.iter().enumerate() {
            for (c, d) in &TABLE[i + 1..] {
                assert!(a != c && b != d, "{a}/{b} duplicated");
            }
        }
    }
}
