//! The fonts a PDF export embeds, and which of them draws each character.
//!
//! Why embedded, and why these: the 14 standard PDF fonts (Helvetica, ...) reach only
//! Windows-1252, so Russian, Greek or Chinese transcripts printed as `?`. Looking fonts up on the
//! host at run time would make a PDF's content depend on what the server machine happens to
//! have installed (a container usually has none), so two free fonts are compiled into the binary
//! (`fonts/README.md` gives their source, checksums and licences):
//! - DejaVu Sans (742 KB): Latin, Greek, Cyrillic, Armenian, Georgian, Hebrew, IPA;
//! - Droid Sans Fallback (3.3 MB): Chinese and Japanese (all 20,902 CJK Unified Ideographs,
//!   kana), Korean (all 11,172 Hangul syllables); the smallest free CJK font Debian ships (Noto
//!   Sans CJK is 16 MB a weight), and worth its size: Whisper transcribes all three languages.
//!
//! Each character is drawn by the first face that has a glyph for it; one neither has is drawn
//! as DejaVu's U+FFFD `�` (and extracts as U+FFFD), never silently dropped. Characters map to
//! glyphs one to one, without shaping: right for the alphabets and ideographs above, wrong for
//! scripts that need it (Arabic joining, Indic conjuncts) and for right-to-left order.
//! Only the glyphs a document uses are embedded (see `super::embed`).

use std::sync::OnceLock;

use ttf_parser::{Face, GlyphId};

/// One embedded face.
pub(super) struct EmbeddedFace {
    /// PostScript name, written (with a subset tag) as the PDF's `BaseFont`.
    pub name: &'static str,
    pub data: &'static [u8],
    pub face: Face<'static>,
}

impl EmbeddedFace {
    /// Advance width of a glyph in thousandths of an em (PDF text space units).
    pub(super) fn advance(&self, gid: u16) -> f32 {
        let units = self.face.glyph_hor_advance(GlyphId(gid)).unwrap_or(0);
        f32::from(units) * 1000.0 / f32::from(self.face.units_per_em())
    }

    /// A font-unit metric in thousandths of an em.
    pub(super) fn scale(&self, units: i16) -> f32 {
        f32::from(units) * 1000.0 / f32::from(self.face.units_per_em())
    }
}

static DEJAVU_SANS: &[u8] = include_bytes!("../../fonts/DejaVuSans.ttf");
static DROID_SANS_FALLBACK: &[u8] = include_bytes!("../../fonts/DroidSansFallback.ttf");

/// The faces in the order they are tried.
pub(super) fn faces() -> &'static [EmbeddedFace] {
    static FACES: OnceLock<Vec<EmbeddedFace>> = OnceLock::new();
    FACES.get_or_init(|| {
        [("DejaVuSans", DEJAVU_SANS), ("DroidSansFallback", DROID_SANS_FALLBACK)]
            .into_iter()
            .map(|(name, data)| EmbeddedFace {
                name,
                data,
                face: Face::parse(data, 0).unwrap_or_else(|e| panic!("bug: the embedded font {name} does not parse: {e}")),
            })
            .collect()
    })
}

/// Which face draws `c`, with which glyph, and the character the glyph stands for in extracted
/// text (`c`, or U+FFFD when no face has it).
pub(super) fn glyph(c: char) -> (usize, u16, char) {
    let c = if c.is_control() { ' ' } else { c };
    // CJK punctuation and full-width forms (`，` `。`) from the CJK face, which draws them to
    // match the ideographs beside them, though DejaVu has some of them too.
    let cjk_first = matches!(c, '\u{3000}'..='\u{303f}' | '\u{ff00}'..='\u{ffef}');
    let order: &[usize] = if cjk_first { &[1, 0] } else { &[0, 1] };
    for &i in order {
        if let Some(g) = faces()[i].face.glyph_index(c).filter(|g| g.0 != 0) {
            return (i, g.0, c);
        }
    }
    let replacement = faces()[0].face.glyph_index('\u{fffd}').expect("bug: DejaVu Sans has U+FFFD");
    (0, replacement.0, '\u{fffd}')
}

/// Width of `text` at `size` points.
pub(super) fn text_width(text: &str, size: f32) -> f32 {
    text.chars()
        .map(|c| {
            let (face, gid, _) = glyph(c);
            faces()[face].advance(gid)
        })
        .sum::<f32>()
        * size
        / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_script_finds_its_face() {
        assert_eq!(glyph('a').0, 0);
        assert_eq!(glyph('Ж').0, 0, "Cyrillic in DejaVu");
        assert_eq!(glyph('λ').0, 0, "Greek in DejaVu");
        assert_eq!(glyph('東').0, 1, "Han in Droid Sans Fallback");
        assert_eq!(glyph('か').0, 1, "kana in Droid Sans Fallback");
        assert_eq!(glyph('한').0, 1, "Hangul in Droid Sans Fallback");
        assert_eq!(glyph('，').0, 1, "full-width punctuation beside ideographs");
        let (face, _, shown) = glyph('\u{10fffd}');
        assert_eq!((face, shown), (0, '\u{fffd}'), "a character no face has is drawn as U+FFFD");
    }

    #[test]
    fn widths_come_from_the_font() {
        assert!(text_width("W", 10.0) > text_width("i", 10.0));
        assert!((text_width("東京", 10.0) - 20.0).abs() < 1.0, "ideographs are one em wide");
    }
}
