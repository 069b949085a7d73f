//! A PDF (A4, Helvetica, one of the 14 fonts every reader ships, so nothing is embedded) written
//! with `pdf-writer`. Text is WinAnsi-encoded: Latin scripts render; characters outside
//! Windows-1252 (CJK, Cyrillic, ...) print as `?`, a limit of the built-in fonts that a later
//! version can lift by embedding a Unicode font.

use harken_types::Transcript;
use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str, TextStr};

use crate::{has_speakers, segments_with, timestamp, ExportOptions};

const PAGE_W: f32 = 595.0;
const PAGE_H: f32 = 842.0;
const MARGIN: f32 = 56.0;
const SIZE: f32 = 11.0;
const LEADING: f32 = 15.0;

/// One line to print: its font (regular or bold), grey or black, and its WinAnsi bytes.
struct Line {
    bold: bool,
    grey: bool,
    size: f32,
    text: Vec<u8>,
    /// Extra space above the line, in points.
    gap: f32,
}

pub(crate) fn render(t: &Transcript, o: &ExportOptions) -> Vec<u8> {
    let pages = paginate(lines(t, o));
    let mut pdf = Pdf::new();
    let catalog = Ref::new(1);
    let tree = Ref::new(2);
    let regular = Ref::new(3);
    let bold = Ref::new(4);
    let info = Ref::new(5);
    let first_page = 6;
    let page_ids: Vec<Ref> = (0..pages.len()).map(|i| Ref::new(first_page + 2 * i as i32)).collect();
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree).kids(page_ids.iter().copied()).count(pages.len() as i32);
    pdf.document_info(info).title(TextStr("Transcript")).creator(TextStr("harken"));
    pdf.type1_font(regular).base_font(Name(b"Helvetica")).encoding_predefined(Name(b"WinAnsiEncoding"));
    pdf.type1_font(bold).base_font(Name(b"Helvetica-Bold")).encoding_predefined(Name(b"WinAnsiEncoding"));
    for (i, lines) in pages.iter().enumerate() {
        let page_id = page_ids[i];
        let content_id = Ref::new(page_id.get() + 1);
        let mut page = pdf.page(page_id);
        page.media_box(Rect::new(0.0, 0.0, PAGE_W, PAGE_H));
        page.parent(tree);
        page.contents(content_id);
        let mut resources = page.resources();
        let mut fonts = resources.fonts();
        fonts.pair(Name(b"F1"), regular);
        fonts.pair(Name(b"F2"), bold);
        fonts.finish();
        resources.finish();
        page.finish();
        let mut content = Content::new();
        let mut y = PAGE_H - MARGIN;
        for line in lines {
            y -= line.gap + line.size.max(SIZE) * LEADING / SIZE;
            content.begin_text();
            content.set_font(Name(if line.bold { b"F2" } else { b"F1" }), line.size);
            content.set_fill_gray(if line.grey { 0.4 } else { 0.0 });
            content.next_line(MARGIN, y);
            content.show(Str(&line.text));
            content.end_text();
        }
        pdf.stream(content_id, &content.finish());
    }
    pdf.finish()
}

fn lines(t: &Transcript, o: &ExportOptions) -> Vec<Line> {
    let speakers = o.include_speakers && has_speakers(t);
    let width = PAGE_W - 2.0 * MARGIN;
    let mut out = vec![Line { bold: true, grey: false, size: 16.0, text: win_ansi("Transcript"), gap: 0.0 }];
    for seg in segments_with(t, o) {
        let mut header = Vec::new();
        if let (true, Some(s)) = (speakers, &seg.speaker_id) {
            header.push(s.clone());
        }
        if o.include_timestamps {
            header.push(format!("{} - {}", timestamp(seg.start, '.'), timestamp(seg.end, '.')));
        }
        let mut gap = 8.0;
        if !header.is_empty() {
            out.push(Line { bold: speakers, grey: true, size: 9.0, text: win_ansi(&header.join("   ")), gap });
            gap = 0.0;
        }
        for text in wrap_to_width(&win_ansi(&seg.text), width, SIZE) {
            out.push(Line { bold: false, grey: false, size: SIZE, text, gap });
            gap = 0.0;
        }
    }
    out
}

/// Splits lines over pages so none runs past the bottom margin.
fn paginate(lines: Vec<Line>) -> Vec<Vec<Line>> {
    let mut pages: Vec<Vec<Line>> = vec![Vec::new()];
    let mut used = 0.0;
    for line in lines {
        let height = line.gap + line.size.max(SIZE) * LEADING / SIZE;
        if used + height > PAGE_H - 2.0 * MARGIN && !pages.last().is_some_and(|p| p.is_empty()) {
            pages.push(Vec::new());
            used = 0.0;
        }
        used += height;
        pages.last_mut().expect("at least one page").push(line);
    }
    pages
}

/// Greedy word wrap by Helvetica's glyph widths.
fn wrap_to_width(text: &[u8], width: f32, size: f32) -> Vec<Vec<u8>> {
    let mut lines: Vec<Vec<u8>> = Vec::new();
    let mut line: Vec<u8> = Vec::new();
    for word in text.split(|b| *b == b' ').filter(|w| !w.is_empty()) {
        let candidate_w = text_width(&line, size) + text_width(b" ", size) + text_width(word, size);
        if !line.is_empty() && candidate_w > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(b' ');
        }
        line.extend_from_slice(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

fn text_width(text: &[u8], size: f32) -> f32 {
    text.iter().map(|b| glyph_width(*b) as f32).sum::<f32>() * size / 1000.0
}

/// Helvetica advance widths (AFM, 1/1000 em) for printable ASCII; 556 (a digit) otherwise.
fn glyph_width(b: u8) -> u16 {
    const ASCII: [u16; 95] = [
        278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278, // ' '..'/'
        556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556, // '0'..'?'
        1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778, // '@'..'O'
        667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556, // 'P'..'_'
        333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556, // '`'..'o'
        556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584, // 'p'..'~'
    ];
    match b {
        32..=126 => ASCII[(b - 32) as usize],
        _ => 556,
    }
}

/// Windows-1252 bytes for `s`; characters it cannot carry become `?`.
fn win_ansi(s: &str) -> Vec<u8> {
    s.chars()
        .map(|c| match c {
            ' '..='~' => c as u8,
            '\u{a0}'..='\u{ff}' => c as u32 as u8,
            '€' => 0x80,
            '‚' => 0x82,
            '„' => 0x84,
            '…' => 0x85,
            '‘' => 0x91,
            '’' => 0x92,
            '“' => 0x93,
            '”' => 0x94,
            '•' => 0x95,
            '–' => 0x96,
            '—' => 0x97,
            '\t' | '\n' | '\r' => b' ',
            _ => b'?',
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_a_pdf_with_the_words() {
        let bytes = render(&crate::tests::with_speakers(), &ExportOptions::default());
        assert!(bytes.starts_with(b"%PDF-1.7"));
        assert!(bytes.ends_with(b"%%EOF") || bytes.ends_with(b"%%EOF\n"));
        let body = String::from_utf8_lossy(&bytes);
        assert!(body.contains("(Why?) Tj") && body.contains("/Helvetica"));
    }

    #[test]
    fn long_text_wraps_and_paginates() {
        let mut t = crate::tests::sample();
        let long = "word ".repeat(4000);
        t.words[0].text = long.trim().to_owned();
        let pages = paginate(lines(&t, &ExportOptions::default()));
        assert!(pages.len() > 3);
        for line in pages.iter().flatten() {
            assert!(text_width(&line.text, line.size) <= PAGE_W - 2.0 * MARGIN + 0.01);
        }
    }

    #[test]
    fn win_ansi_maps_latin_and_replaces_the_rest() {
        assert_eq!(win_ansi("café – 東"), vec![b'c', b'a', b'f', 0xe9, b' ', 0x96, b' ', b'?']);
    }
}
