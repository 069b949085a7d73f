//! A PDF (A4) written with `pdf-writer`, its text in fonts embedded as subsets, so transcripts
//! in Cyrillic, Greek, Chinese, Japanese, Korean and the Latin scripts render in any reader and
//! extract as text (`fonts` says which fonts and why; `embed` how they are written).

use harken_types::Transcript;
use pdf_writer::types::TextRenderingMode;
use pdf_writer::{Content, Filter, Finish, Name, Pdf, Rect, Ref, Str, TextStr};

use crate::{has_speakers, segments_with, timestamp, ExportOptions};

mod embed;
mod fonts;

use embed::FontSet;
use fonts::text_width;

const PAGE_W: f32 = 595.0;
const PAGE_H: f32 = 842.0;
const MARGIN: f32 = 56.0;
const SIZE: f32 = 11.0;
const LEADING: f32 = 15.0;

/// One line to print: bold or regular, grey or black, its size and text.
struct Line {
    bold: bool,
    grey: bool,
    size: f32,
    text: String,
    /// Extra space above the line, in points.
    gap: f32,
}

pub(crate) fn render(t: &Transcript, o: &ExportOptions) -> Vec<u8> {
    let pages = paginate(lines(t, o));
    let mut fonts = FontSet::new();
    let contents: Vec<Vec<u8>> = pages.iter().map(|lines| page_content(lines, &mut fonts)).collect();
    let used = fonts.used_faces();

    let mut pdf = Pdf::new();
    let mut next = Ref::new(1);
    let (catalog, tree, info) = (next.bump(), next.bump(), next.bump());
    let font_ids: Vec<Ref> = used.iter().map(|_| next.bump()).collect();
    let page_ids: Vec<(Ref, Ref)> = pages.iter().map(|_| (next.bump(), next.bump())).collect();
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree).kids(page_ids.iter().map(|p| p.0)).count(pages.len() as i32);
    pdf.document_info(info).title(TextStr("Transcript")).creator(TextStr("harken"));
    for (&(page_id, content_id), content) in page_ids.iter().zip(&contents) {
        let mut page = pdf.page(page_id);
        page.media_box(Rect::new(0.0, 0.0, PAGE_W, PAGE_H));
        page.parent(tree);
        page.contents(content_id);
        let mut resources = page.resources();
        let mut font_dict = resources.fonts();
        for (face, id) in used.iter().zip(&font_ids) {
            font_dict.pair(Name(&FontSet::resource_name(*face)), *id);
        }
        font_dict.finish();
        resources.finish();
        page.finish();
        pdf.stream(content_id, &deflate(content)).filter(Filter::FlateDecode);
    }
    fonts.write(&mut pdf, &font_ids, &mut next);
    pdf.finish()
}

/// A page's content stream. Bold is the regular face filled and stroked (one embedded weight
/// keeps the binary small; headers are the only bold text).
fn page_content(lines: &[Line], fonts: &mut FontSet) -> Vec<u8> {
    let mut content = Content::new();
    let mut y = PAGE_H - MARGIN;
    for line in lines {
        y -= line.gap + line.size.max(SIZE) * LEADING / SIZE;
        let gray = if line.grey { 0.4 } else { 0.0 };
        content.begin_text();
        content.set_fill_gray(gray);
        if line.bold {
            content.set_text_rendering_mode(TextRenderingMode::FillStroke);
            content.set_stroke_gray(gray);
            content.set_line_width(line.size / 30.0);
        } else {
            content.set_text_rendering_mode(TextRenderingMode::Fill);
        }
        content.next_line(MARGIN, y);
        for (face, cids) in fonts.encode(&line.text) {
            content.set_font(Name(&FontSet::resource_name(face)), line.size);
            content.show(Str(&cids));
        }
        content.end_text();
    }
    content.finish().into_vec()
}

/// zlib-compressed bytes, for a `FlateDecode` stream.
fn deflate(data: &[u8]) -> Vec<u8> {
    miniz_oxide::deflate::compress_to_vec_zlib(data, 6)
}

fn lines(t: &Transcript, o: &ExportOptions) -> Vec<Line> {
    let speakers = o.include_speakers && has_speakers(t);
    let width = PAGE_W - 2.0 * MARGIN;
    let mut out = vec![Line { bold: true, grey: false, size: 16.0, text: "Transcript".to_owned(), gap: 0.0 }];
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
            out.push(Line { bold: speakers, grey: true, size: 9.0, text: header.join("   "), gap });
            gap = 0.0;
        }
        for text in wrap_to_width(&seg.text, width, SIZE) {
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

/// Greedy word wrap by the fonts' glyph widths. A word wider than the line (a run of
/// ideographs, which are written without spaces) is broken between characters.
fn wrap_to_width(text: &str, width: f32, size: f32) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split([' ', '\t', '\n', '\r']).filter(|w| !w.is_empty()) {
        let sep = if line.is_empty() { "" } else { " " };
        if text_width(&line, size) + text_width(sep, size) + text_width(word, size) <= width {
            line.push_str(sep);
            line.push_str(word);
            continue;
        }
        if !line.is_empty() {
            lines.push(std::mem::take(&mut line));
        }
        for c in word.chars() {
            let mut buf = [0; 4];
            if !line.is_empty() && text_width(&line, size) + text_width(c.encode_utf8(&mut buf), size) > width {
                lines.push(std::mem::take(&mut line));
            }
            line.push(c);
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_a_pdf_with_embedded_subset_fonts() {
        let bytes = render(&crate::tests::with_speakers(), &ExportOptions::default());
        assert!(bytes.starts_with(b"%PDF-1.7"));
        assert!(bytes.ends_with(b"%%EOF") || bytes.ends_with(b"%%EOF\n"));
        let body = String::from_utf8_lossy(&bytes);
        for key in ["/Type0", "/CIDFontType2", "/FontFile2", "/ToUnicode", "/Identity-H"] {
            assert!(body.contains(key), "{key} missing");
        }
        assert!(body.contains("+DejaVuSans") && !body.contains("DroidSansFallback"), "only the faces drawn with");
        assert!(bytes.len() < 60_000, "a subset, not the whole font: {} bytes", bytes.len());
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
    fn text_without_spaces_breaks_between_characters() {
        let width = PAGE_W - 2.0 * MARGIN;
        let lines = wrap_to_width(&"東京は晴れです".repeat(20), width, SIZE);
        assert!(lines.len() > 1);
        assert!(lines.iter().all(|l| text_width(l, SIZE) <= width + 0.01));
        assert_eq!(lines.concat(), "東京は晴れです".repeat(20));
    }
}
