//! The fonts one document uses: glyphs are numbered in the order they are first drawn (those
//! numbers are the subset font's glyph ids and, with `Identity-H`, the CIDs in the content
//! streams), and at the end each face that drew anything is written as a Type0 font over a
//! CIDFontType2 with the subset embedded (`FontFile2`), its widths, and a `ToUnicode` map so the
//! text can be searched, copied and extracted (`pdftotext`).

use pdf_writer::types::{CidFontType, FontFlags, SystemInfo, UnicodeCmap};
use pdf_writer::{Filter, Finish, Name, Pdf, Rect, Ref, Str};
use subsetter::GlyphRemapper;

use super::fonts::{faces, glyph, EmbeddedFace};

const IDENTITY: SystemInfo<'static> = SystemInfo { registry: Str(b"Adobe"), ordering: Str(b"Identity"), supplement: 0 };

/// Glyph use of one face in this document.
#[derive(Default)]
struct FaceUse {
    /// Original glyph id → subset glyph id.
    remapper: GlyphRemapper,
    /// Subset glyph id → the character it stands for, as first drawn.
    to_unicode: Vec<(u16, char)>,
}

/// The fonts of one document being written.
pub(super) struct FontSet {
    used: Vec<Option<FaceUse>>,
}

impl FontSet {
    pub(super) fn new() -> FontSet {
        FontSet { used: faces().iter().map(|_| None).collect() }
    }

    /// The resource name a face is shown under on every page.
    pub(super) fn resource_name(face: usize) -> Vec<u8> {
        format!("F{face}").into_bytes()
    }

    /// `text` as runs of (face, 2-byte big-endian CIDs), recording the glyphs it needs.
    pub(super) fn encode(&mut self, text: &str) -> Vec<(usize, Vec<u8>)> {
        let mut runs: Vec<(usize, Vec<u8>)> = Vec::new();
        for c in text.chars() {
            let (face, gid, shown) = glyph(c);
            let used = self.used[face].get_or_insert_with(FaceUse::default);
            let known = used.remapper.get(gid).is_some();
            let cid = used.remapper.remap(gid);
            if !known {
                used.to_unicode.push((cid, shown));
            }
            match runs.last_mut() {
                Some((f, bytes)) if *f == face => bytes.extend_from_slice(&cid.to_be_bytes()),
                _ => runs.push((face, cid.to_be_bytes().to_vec())),
            }
        }
        runs
    }

    /// The faces drawn with, in order.
    pub(super) fn used_faces(&self) -> Vec<usize> {
        (0..self.used.len()).filter(|i| self.used[*i].is_some()).collect()
    }

    /// Writes each used face as a Type0 font at `ids[k]` (one per [`Self::used_faces`] entry),
    /// taking further object ids from `next`.
    pub(super) fn write(self, pdf: &mut Pdf, ids: &[Ref], next: &mut Ref) {
        let used: Vec<(usize, FaceUse)> =
            self.used.into_iter().enumerate().filter_map(|(i, u)| u.map(|u| (i, u))).collect();
        for ((face, usage), &type0) in used.into_iter().zip(ids) {
            write_face(pdf, &faces()[face], usage, type0, next);
        }
    }
}

fn write_face(pdf: &mut Pdf, f: &EmbeddedFace, usage: FaceUse, type0: Ref, next: &mut Ref) {
    let (cid_font, descriptor, file, cmap_id) = (next.bump(), next.bump(), next.bump(), next.bump());
    let old_gids: Vec<u16> = usage.remapper.remapped_gids().collect();
    let name = format!("{}+{}", subset_tag(&old_gids), f.name);
    let name = Name(name.as_bytes());

    pdf.type0_font(type0)
        .base_font(name)
        .encoding_predefined(Name(b"Identity-H"))
        .descendant_font(cid_font)
        .to_unicode(cmap_id);

    let mut cid = pdf.cid_font(cid_font);
    cid.subtype(CidFontType::Type2).base_font(name).system_info(IDENTITY).font_descriptor(descriptor);
    cid.cid_to_gid_map_predefined(Name(b"Identity"));
    cid.widths().consecutive(0, old_gids.iter().map(|g| f.advance(*g)));
    cid.finish();

    let face = &f.face;
    let bbox = face.global_bounding_box();
    let ascent = f.scale(face.ascender());
    pdf.font_descriptor(descriptor)
        .name(name)
        .flags(FontFlags::SYMBOLIC)
        .bbox(Rect::new(
            f.scale(bbox.x_min),
            f.scale(bbox.y_min),
            f.scale(bbox.x_max),
            f.scale(bbox.y_max),
        ))
        .italic_angle(0.0)
        .ascent(ascent)
        .descent(f.scale(face.descender()))
        .cap_height(face.capital_height().map_or(ascent, |h| f.scale(h)))
        .stem_v(80.0)
        .font_file2(file);

    let subset = subsetter::subset(f.data, 0, &usage.remapper)
        .unwrap_or_else(|e| panic!("bug: subsetting the embedded font {} failed: {e}", f.name));
    let compressed = super::deflate(&subset);
    pdf.stream(file, &compressed).filter(Filter::FlateDecode).pair(Name(b"Length1"), subset.len() as i32);

    let mut cmap = UnicodeCmap::new(Name(b"Custom"), IDENTITY);
    for (cid, c) in usage.to_unicode {
        cmap.pair(cid, c);
    }
    pdf.cmap(cmap_id, &cmap.finish());
}

/// The six capital letters PDF prefixes a subset font's name with, derived from the glyph set
/// (FNV-1a) so the same transcript gives the same file.
fn subset_tag(gids: &[u16]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for g in gids {
        for b in g.to_be_bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    (0..6).map(|i| char::from(b'A' + ((h >> (i * 5)) % 26) as u8)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_split_by_face_and_glyphs_are_numbered_once() {
        let mut set = FontSet::new();
        let runs = set.encode("ab東a");
        assert_eq!(runs.len(), 3);
        assert_eq!((runs[0].0, runs[0].1.len()), (0, 4));
        assert_eq!(runs[1].0, 1);
        assert_eq!(runs[2].1, runs[0].1[..2].to_vec(), "'a' keeps its number");
        assert_eq!(set.used_faces(), vec![0, 1]);
    }

    #[test]
    fn tags_are_six_capitals_and_stable() {
        let t = subset_tag(&[0, 5, 9]);
        assert_eq!(t.len(), 6);
        assert!(t.bytes().all(|b| b.is_ascii_uppercase()));
        assert_eq!(t, subset_tag(&[0, 5, 9]));
    }
}
