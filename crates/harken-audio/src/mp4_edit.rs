//! Gapless trimming for MP4/M4A: the encoder delay and padding recorded in the edit list.
//!
//! AAC encoders prepend priming samples (1024 for most, 2112 for Apple's) and pad the last frame.
//! MP4 files say which part of the decoded stream is real in the audio track's edit list
//! (`moov/trak/edts/elst`); symphonia parses but does not apply it, so timestamps would start
//! ~23-48 ms late. This module reads the first audio track's edit and returns it as a
//! [`Trim`]. Anything unexpected (no moov, several real edits, absurd values) yields `None`:
//! decoding then proceeds untrimmed, which is off by a few tens of milliseconds at worst.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// The part of a decoded stream to keep, in seconds expressed as rationals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Trim {
    /// Skip this many units of `skip_scale` per second at the start.
    pub(crate) skip: u64,
    pub(crate) skip_scale: u64,
    /// Keep at most this many units of `keep_scale` per second (0 = to the end).
    pub(crate) keep: u64,
    pub(crate) keep_scale: u64,
}

impl Trim {
    /// (frames to skip, frames to keep) at a decoded sample rate.
    pub(crate) fn frames(&self, rate: u32) -> (u64, Option<u64>) {
        let at = |v: u64, scale: u64| (v as u128 * rate as u128 / scale.max(1) as u128) as u64;
        let keep = (self.keep > 0).then(|| at(self.keep, self.keep_scale));
        (at(self.skip, self.skip_scale), keep)
    }
}

/// Reads the edit list of the first sound track of an MP4 file.
pub(crate) fn read_trim(path: &Path) -> Option<Trim> {
    let moov = read_top_level_box(path, b"moov")?;
    let movie_scale = find(&moov, &[b"mvhd"]).and_then(header_timescale)?;
    for trak in children(&moov)
        .filter(|(t, _)| t == b"trak")
        .map(|(_, body)| body)
    {
        let is_sound =
            find(trak, &[b"mdia", b"hdlr"]).is_some_and(|h| h.get(8..12) == Some(b"soun"));
        if !is_sound {
            continue;
        }
        let media_scale = find(trak, &[b"mdia", b"mdhd"]).and_then(header_timescale)?;
        let elst = find(trak, &[b"edts", b"elst"])?;
        return parse_elst(elst, movie_scale, media_scale);
    }
    None
}

fn parse_elst(elst: &[u8], movie_scale: u64, media_scale: u64) -> Option<Trim> {
    let version = *elst.first()?;
    let count = be(elst.get(4..8)?) as usize;
    let entry_len = if version == 1 { 20 } else { 12 };
    let mut real = (0..count).filter_map(|i| {
        let e = elst.get(8 + i * entry_len..8 + (i + 1) * entry_len)?;
        let (duration, media_time) = if version == 1 {
            (be(&e[0..8]), be(&e[8..16]) as i64)
        } else {
            (be(&e[0..4]), be(&e[4..8]) as u32 as i32 as i64)
        };
        // media_time -1 is an empty edit (a pause before the media): not ours to render.
        (media_time >= 0).then_some((duration, media_time as u64))
    });
    let (duration, media_time) = real.next()?;
    if real.next().is_some() || media_time > 10 * media_scale {
        return None; // several segments, or a skip over 10 s: not simple priming
    }
    Some(Trim {
        skip: media_time,
        skip_scale: media_scale,
        keep: duration,
        keep_scale: movie_scale,
    })
}

/// The timescale of an mvhd / mdhd full box.
fn header_timescale(body: &[u8]) -> Option<u64> {
    let at = if *body.first()? == 1 { 20 } else { 12 };
    let scale = be(body.get(at..at + 4)?);
    (scale > 0).then_some(scale)
}

/// Walks top-level boxes by seeking and returns the body of the first `kind` (at most 64 MiB).
fn read_top_level_box(path: &Path, kind: &[u8; 4]) -> Option<Vec<u8>> {
    let mut file = File::open(path).ok()?;
    let file_len = file.metadata().ok()?.len();
    let mut pos = 0u64;
    while pos + 8 <= file_len {
        file.seek(SeekFrom::Start(pos)).ok()?;
        let mut header = [0u8; 16];
        file.read_exact(&mut header[..8]).ok()?;
        let (mut size, mut header_len) = (be(&header[0..4]), 8u64);
        if size == 1 {
            file.read_exact(&mut header[8..16]).ok()?;
            size = be(&header[8..16]);
            header_len = 16;
        } else if size == 0 {
            size = file_len - pos;
        }
        if size < header_len {
            return None;
        }
        if &header[4..8] == kind {
            let body_len = size - header_len;
            if body_len > 64 * 1024 * 1024 {
                return None;
            }
            let mut body = vec![0u8; body_len as usize];
            file.read_exact(&mut body).ok()?;
            return Some(body);
        }
        pos += size;
    }
    None
}

/// Child boxes of a container body: (type, body).
fn children(mut body: &[u8]) -> impl Iterator<Item = ([u8; 4], &[u8])> {
    std::iter::from_fn(move || {
        let size = be(body.get(0..4)?) as usize;
        let kind: [u8; 4] = body.get(4..8)?.try_into().ok()?;
        let (start, end) = match size {
            1 => (16, be(body.get(8..16)?) as usize),
            0 => (8, body.len()),
            n => (8, n),
        };
        if end < start || end > body.len() {
            return None;
        }
        let child = &body[start..end];
        body = &body[end..];
        Some((kind, child))
    })
}

fn find<'a>(body: &'a [u8], path: &[&[u8; 4]]) -> Option<&'a [u8]> {
    let (first, rest) = path.split_first()?;
    let (_, child) = children(body).find(|(k, _)| k == *first)?;
    if rest.is_empty() {
        Some(child)
    } else {
        find(child, rest)
    }
}

fn be(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0u64, |acc, b| (acc << 8) | *b as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elst_with_priming() {
        // version 0, one entry: duration 441000 (movie scale 1000 → 441 s), media_time 1024.
        let mut elst = vec![0, 0, 0, 0, 0, 0, 0, 1];
        elst.extend_from_slice(&441_000u32.to_be_bytes());
        elst.extend_from_slice(&1024u32.to_be_bytes());
        elst.extend_from_slice(&[0, 1, 0, 0]);
        let trim = parse_elst(&elst, 1000, 44100).unwrap();
        assert_eq!(trim.frames(44100), (1024, Some(441 * 44100)));
        assert_eq!(trim.frames(22050), (512, Some(441 * 22050)));
    }

    #[test]
    fn empty_edit_then_media() {
        let mut elst = vec![0, 0, 0, 0, 0, 0, 0, 2];
        elst.extend_from_slice(&500u32.to_be_bytes());
        elst.extend_from_slice(&u32::MAX.to_be_bytes()); // -1: empty edit
        elst.extend_from_slice(&[0, 1, 0, 0]);
        elst.extend_from_slice(&2000u32.to_be_bytes());
        elst.extend_from_slice(&2112u32.to_be_bytes());
        elst.extend_from_slice(&[0, 1, 0, 0]);
        assert_eq!(
            parse_elst(&elst, 1000, 48000).unwrap().frames(48000),
            (2112, Some(96000))
        );
    }
}
