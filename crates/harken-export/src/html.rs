//! A standalone HTML page: one paragraph per segment, with speaker and time range when asked.

use harken_types::Transcript;

use crate::{has_speakers, segments_with, timestamp, ExportOptions};

pub(crate) fn render(t: &Transcript, o: &ExportOptions) -> String {
    let speakers = o.include_speakers && has_speakers(t);
    let mut out = String::from(concat!(
        "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n<title>Transcript</title>\n",
        "<style>body{font-family:sans-serif;max-width:50em;margin:2em auto;line-height:1.5}",
        ".meta{color:#666;font-size:.85em;margin-right:.5em}.speaker{font-weight:bold;margin-right:.5em}</style>\n",
        "</head>\n<body>\n<h1>Transcript</h1>\n"
    ));
    out.push_str(&format!("<p class=\"meta\">Language: {}</p>\n", escape(&t.language_code)));
    for seg in segments_with(t, o) {
        out.push_str("<p class=\"segment\">");
        if let (true, Some(s)) = (speakers, &seg.speaker_id) {
            out.push_str(&format!("<span class=\"speaker\">{}</span>", escape(s)));
        }
        if o.include_timestamps {
            out.push_str(&format!(
                "<span class=\"meta\" data-start=\"{:.3}\" data-end=\"{:.3}\">[{} - {}]</span>",
                seg.start,
                seg.end,
                timestamp(seg.start, '.'),
                timestamp(seg.end, '.')
            ));
        }
        out.push_str(&escape(&seg.text));
        out.push_str("</p>\n");
    }
    out.push_str("</body>\n</html>\n");
    out
}

pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_labels() {
        let mut t = crate::tests::with_speakers();
        t.words[0].text = "<b>&".into();
        let html = render(&t, &ExportOptions::default());
        assert!(html.contains("&lt;b&gt;&amp;"));
        assert!(html.contains("<span class=\"speaker\">speaker_1</span>"));
        let bare = render(&t, &ExportOptions { include_speakers: false, include_timestamps: false, ..Default::default() });
        assert!(!bare.contains("speaker_1") && !bare.contains("00:00"));
    }
}
