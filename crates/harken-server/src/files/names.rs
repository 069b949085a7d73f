//! File names, times and durations as clients see them.

use std::time::Duration;

/// Longest file name kept, in characters.
const MAX_NAME_CHARS: usize = 200;

/// A file name safe in a URL segment and on any disk: the last path component of `raw`, letters,
/// digits and `.-_()` kept, anything else `_`; `None` when nothing usable is left.
pub(crate) fn sanitize_file_name(raw: &str) -> Option<String> {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or_default().trim();
    let cleaned: String = last
        .chars()
        .map(|c| if c.is_alphanumeric() || ".-_()".contains(c) { c } else { '_' })
        .take(MAX_NAME_CHARS)
        .collect();
    let trimmed = cleaned.trim_matches('.');
    (!trimmed.is_empty() && trimmed.chars().any(|c| c.is_alphanumeric())).then(|| trimmed.to_owned())
}

/// The last path segment of a URL, decoded, as a file name.
pub(crate) fn original_name_of_url(url: &str) -> Option<String> {
    let url = url::Url::parse(url.trim()).ok()?;
    let last = url.path_segments()?.rfind(|s| !s.is_empty())?;
    let decoded = percent_encoding::percent_decode_str(last).decode_utf8().ok()?;
    sanitize_file_name(&decoded)
}

/// Unix milliseconds as ISO 8601 UTC with milliseconds, like Kie's `2025-01-01T12:00:00.000Z`.
pub(crate) fn iso8601_ms(ms: i64) -> String {
    let (days, rem) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, s, milli) = (rem / 3_600_000, rem / 60_000 % 60, rem / 1000 % 60, rem % 1000);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{milli:03}Z")
}

/// `3 days`, `2 h`, `90 s`: for messages.
pub(crate) fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        s if s >= 86_400 && s % 86_400 == 0 => format!("{} day{}", s / 86_400, if s == 86_400 { "" } else { "s" }),
        s if s >= 3600 && s % 3600 == 0 => format!("{} h", s / 3600),
        s if s >= 60 && s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_made_safe() {
        assert_eq!(sanitize_file_name("../../etc/passwd").as_deref(), Some("passwd"));
        assert_eq!(sanitize_file_name("C:\\x\\My talk (1).wav").as_deref(), Some("My_talk_(1).wav"));
        assert_eq!(sanitize_file_name("réunion.mp3").as_deref(), Some("réunion.mp3"));
        assert_eq!(sanitize_file_name("a<script>.wav").as_deref(), Some("a_script_.wav"));
        assert_eq!(sanitize_file_name(".."), None);
        assert_eq!(sanitize_file_name("  "), None);
        assert_eq!(original_name_of_url("https://e.com/a/b/talk%201.mp3?sig=x").as_deref(), Some("talk_1.mp3"));
        assert_eq!(original_name_of_url("https://e.com/"), None);
    }

    #[test]
    fn times_read_like_kie() {
        assert_eq!(iso8601_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601_ms(1_735_732_800_123), "2025-01-01T12:00:00.123Z");
        assert_eq!(iso8601_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(human_duration(Duration::from_secs(3 * 86_400)), "3 days");
        assert_eq!(human_duration(Duration::from_secs(2)), "2 s");
    }
}
