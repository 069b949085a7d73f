//! Content sniffing: what a file *is*, judged by its first bytes, never by a header or extension.
//!
//! Owns [`AudioFormat`] and [`sniff`]. Also classifies common non-audio content (HTML, JSON,
//! text, images, ...) so that both the fetcher and the decoder can tell the user what they got
//! instead of "unsupported".
//!
//! Invariants: sniffing never panics on any input (it is fuzzed by the tests with truncated
//! prefixes); text never sniffs as MPEG audio (0xFF cannot occur in UTF-8); a bare MPEG or ADTS
//! frame sync is only trusted when the following frame header also checks out (or the data ends
//! first), because random binary data often contains a lone sync pattern.

/// A supported audio container/codec, decided by content.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AudioFormat {
    /// MPEG audio (layer III, also layers I/II), optionally behind an ID3v2 tag.
    Mp3,
    /// RIFF WAVE (PCM integer or float, ADPCM).
    Wav,
    /// AAC in an ADTS stream.
    Aac,
    /// ISO base media (m4a / mp4 / mov), AAC or ALAC inside.
    Mp4,
    /// Ogg with a Vorbis first stream.
    OggVorbis,
    /// Ogg with an Opus first stream.
    OggOpus,
    /// Native FLAC.
    Flac,
    /// AIFF / AIFF-C. Not in the documented list, but cheap to accept and real recordings use it.
    Aiff,
}

impl AudioFormat {
    /// The MIME type a server should have sent for this content.
    pub fn mime(&self) -> &'static str {
        match self {
            AudioFormat::Mp3 => "audio/mpeg",
            AudioFormat::Wav => "audio/wav",
            AudioFormat::Aac => "audio/aac",
            AudioFormat::Mp4 => "audio/mp4",
            AudioFormat::OggVorbis | AudioFormat::OggOpus => "audio/ogg",
            AudioFormat::Flac => "audio/flac",
            AudioFormat::Aiff => "audio/aiff",
        }
    }

    /// A short human name, e.g. for logs and error messages.
    pub fn name(&self) -> &'static str {
        match self {
            AudioFormat::Mp3 => "mp3",
            AudioFormat::Wav => "wav",
            AudioFormat::Aac => "aac",
            AudioFormat::Mp4 => "m4a/mp4",
            AudioFormat::OggVorbis => "ogg/vorbis",
            AudioFormat::OggOpus => "ogg/opus",
            AudioFormat::Flac => "flac",
            AudioFormat::Aiff => "aiff",
        }
    }

    /// The usual file extension (without the dot), used for downloaded files and decoder hints.
    pub fn extension(&self) -> &'static str {
        match self {
            AudioFormat::Mp3 => "mp3",
            AudioFormat::Wav => "wav",
            AudioFormat::Aac => "aac",
            AudioFormat::Mp4 => "m4a",
            AudioFormat::OggVorbis => "ogg",
            AudioFormat::OggOpus => "opus",
            AudioFormat::Flac => "flac",
            AudioFormat::Aiff => "aiff",
        }
    }
}

impl std::fmt::Display for AudioFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What the first bytes of some content say it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Content {
    Audio(AudioFormat),
    /// Recognisably not audio: "HTML", "JSON", "text", "a PNG image", ...
    NotAudio(&'static str),
    /// Binary we do not support; sometimes we know what it is ("WebM/Matroska").
    Unknown(Option<&'static str>),
}

/// How many bytes [`sniff`] wants to see to be sure (it works with fewer).
pub const SNIFF_LEN: usize = 16 * 1024;

/// Detects a supported audio format from the first bytes of a file (ideally [`SNIFF_LEN`]).
/// Ogg is told apart by its first packet ("OpusHead" vs "\x01vorbis"). HTML, JSON, text and
/// unknown binary give `None`.
pub fn sniff(head: &[u8]) -> Option<AudioFormat> {
    match classify(head) {
        Content::Audio(format) => Some(format),
        _ => None,
    }
}

pub(crate) fn classify(head: &[u8]) -> Content {
    if let Some(after) = skip_id3(head) {
        return match after {
            // The tag runs past what we have (cover art): ID3v2 almost always fronts MP3.
            None => Content::Audio(AudioFormat::Mp3),
            Some(rest) => match classify_magic(rest).or_else(|| scan_frames(rest)) {
                Some(format) => Content::Audio(format),
                None if rest.is_empty() => Content::Audio(AudioFormat::Mp3),
                None => Content::Unknown(None),
            },
        };
    }
    if let Some(format) = classify_magic(head) {
        return Content::Audio(format);
    }
    if let Some(what) = non_audio(head) {
        return Content::NotAudio(what);
    }
    if let Some(format) = scan_frames(head) {
        return Content::Audio(format);
    }
    Content::Unknown(known_unsupported(head))
}

/// `Some(None)`: ID3 tag longer than `head`; `Some(Some(rest))`: the bytes after the tag(s).
fn skip_id3(head: &[u8]) -> Option<Option<&[u8]>> {
    if head.len() < 10 || &head[..3] != b"ID3" {
        return None;
    }
    let size = head[6..10]
        .iter()
        .fold(0usize, |acc, b| (acc << 7) | (*b as usize & 0x7f));
    let footer = if head[5] & 0x10 != 0 { 10 } else { 0 };
    let end = 10 + size + footer;
    if end > head.len() {
        return Some(None);
    }
    let rest = &head[end..];
    // Some files carry several tags, or zero padding after the tag.
    let rest = &rest[rest.iter().take(4096).take_while(|b| **b == 0).count()..];
    match skip_id3(rest) {
        Some(inner) => Some(inner),
        None => Some(Some(rest)),
    }
}

fn classify_magic(head: &[u8]) -> Option<AudioFormat> {
    let at = |range: std::ops::Range<usize>| head.get(range);
    if at(0..4) == Some(b"RIFF") && at(8..12) == Some(b"WAVE") {
        return Some(AudioFormat::Wav);
    }
    if at(0..4) == Some(b"FORM") && matches!(at(8..12), Some(b"AIFF") | Some(b"AIFC")) {
        return Some(AudioFormat::Aiff);
    }
    if at(0..4) == Some(b"fLaC") {
        return Some(AudioFormat::Flac);
    }
    if at(0..4) == Some(b"OggS") {
        return ogg_codec(head);
    }
    if at(4..8) == Some(b"ftyp") {
        // ISO BMFF also carries still images; refuse those brands.
        let brand = at(8..12).unwrap_or(b"    ");
        let images: [&[u8]; 6] = [b"heic", b"heix", b"avif", b"mif1", b"msf1", b"avis"];
        return (!images.contains(&brand)).then_some(AudioFormat::Mp4);
    }
    None
}

/// The codec of the first logical stream, from the first packet of the first page.
fn ogg_codec(head: &[u8]) -> Option<AudioFormat> {
    let segments = *head.get(26)? as usize;
    let packet = head.get(27 + segments..)?;
    if packet.starts_with(b"OpusHead") {
        Some(AudioFormat::OggOpus)
    } else if packet.starts_with(b"\x01vorbis") {
        Some(AudioFormat::OggVorbis)
    } else if packet.starts_with(b"\x7fFLAC") {
        Some(AudioFormat::Flac) // Ogg FLAC: symphonia's Ogg demuxer maps it.
    } else {
        None
    }
}

/// Finds a run of MPEG audio or ADTS frame headers within the first few KiB.
fn scan_frames(head: &[u8]) -> Option<AudioFormat> {
    let limit = head.len().min(8 * 1024);
    for offset in 0..limit {
        let Some((format, len)) = frame_header(&head[offset..]) else {
            continue;
        };
        let next = offset + len;
        if next + 4 > head.len() {
            // No room to confirm with a second header: trust only a header at the very start.
            if offset == 0 {
                return Some(format);
            }
            continue;
        }
        if matches!(frame_header(&head[next..]), Some((f, _)) if f == format) {
            return Some(format);
        }
    }
    None
}

/// An MPEG audio or ADTS frame header at the start of `b`: its format and frame length.
fn frame_header(b: &[u8]) -> Option<(AudioFormat, usize)> {
    if b.len() < 7 || b[0] != 0xFF || (b[1] & 0xE0) != 0xE0 {
        return None;
    }
    let layer = (b[1] >> 1) & 3;
    if layer == 0 {
        // ADTS: 12-bit sync, layer 00; sampling index 13..15 is invalid.
        if (b[1] & 0xF6) != 0xF0 || ((b[2] >> 2) & 0xF) > 12 {
            return None;
        }
        let len = (((b[3] & 3) as usize) << 11) | ((b[4] as usize) << 3) | ((b[5] as usize) >> 5);
        return (len >= 7).then_some((AudioFormat::Aac, len));
    }
    let version = (b[1] >> 3) & 3; // 3 = MPEG-1, 2 = MPEG-2, 0 = MPEG-2.5, 1 reserved
    let bitrate_index = (b[2] >> 4) as usize;
    let rate_index = ((b[2] >> 2) & 3) as usize;
    if version == 1 || bitrate_index == 0 || bitrate_index == 15 || rate_index == 3 {
        return None;
    }
    const KBPS: [[u16; 14]; 5] = [
        [
            32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448,
        ], // v1 layer I
        [
            32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384,
        ], // v1 layer II
        [
            32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320,
        ], // v1 layer III
        [
            32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256,
        ], // v2 layer I
        [8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160], // v2 layer II/III
    ];
    let table = match (version == 3, layer) {
        (true, 3) => 0,
        (true, 2) => 1,
        (true, _) => 2,
        (false, 3) => 3,
        (false, _) => 4,
    };
    let bitrate = KBPS[table][bitrate_index - 1] as usize * 1000;
    let rate = [44100, 48000, 32000][rate_index]
        >> (match version {
            3 => 0,
            2 => 1,
            _ => 2,
        });
    let padding = ((b[2] >> 1) & 1) as usize;
    let len = match layer {
        3 => (12 * bitrate / rate + padding) * 4,
        1 if version != 3 => 72 * bitrate / rate + padding,
        _ => 144 * bitrate / rate + padding,
    };
    Some((AudioFormat::Mp3, len))
}

/// Recognisable non-audio content, named for an error message.
fn non_audio(head: &[u8]) -> Option<&'static str> {
    let binary: [(&[u8], &'static str); 8] = [
        (b"%PDF", "a PDF document"),
        (b"\x89PNG", "a PNG image"),
        (b"\xFF\xD8\xFF", "a JPEG image"),
        (b"GIF8", "a GIF image"),
        (b"PK\x03\x04", "a ZIP archive"),
        (b"\x1F\x8B", "gzip-compressed data"),
        (b"\x7FELF", "a program (ELF executable)"),
        (b"MZ", "a program (Windows executable)"),
    ];
    if let Some((_, what)) = binary.iter().find(|(magic, _)| head.starts_with(magic)) {
        return Some(what);
    }
    let sample = &head[..head.len().min(1024)];
    let text = sample.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(sample);
    let trimmed = &text[text.iter().take_while(|b| b.is_ascii_whitespace()).count()..];
    let lower: Vec<u8> = trimmed
        .iter()
        .take(512)
        .map(u8::to_ascii_lowercase)
        .collect();
    let contains = |needle: &[u8]| lower.windows(needle.len()).any(|w| w == needle);
    if lower.starts_with(b"<!doctype html")
        || lower.starts_with(b"<html")
        || contains(b"<html")
        || contains(b"<head")
        || contains(b"<body")
    {
        return Some("HTML");
    }
    if lower.starts_with(b"<?xml") || lower.starts_with(b"<") && is_text(text) {
        return Some("XML");
    }
    if (lower.starts_with(b"{") || lower.starts_with(b"[")) && is_text(text) {
        return Some("JSON");
    }
    if !text.is_empty() && is_text(text) {
        return Some("text");
    }
    None
}

/// UTF-8 (allowing a character cut at the end) without control characters other than whitespace.
fn is_text(bytes: &[u8]) -> bool {
    let valid = match std::str::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) if e.error_len().is_none() => {
            std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or("")
        }
        Err(_) => return false,
    };
    !valid.is_empty()
        && valid
            .chars()
            .all(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t' | '\x0c'))
}

/// Audio we recognise but do not accept, to make the "unsupported" message concrete.
fn known_unsupported(head: &[u8]) -> Option<&'static str> {
    if head.starts_with(b"\x1A\x45\xDF\xA3") {
        Some("WebM/Matroska")
    } else if head.starts_with(b"OggS") {
        Some("Ogg with a codec other than Vorbis, Opus or FLAC")
    } else if head.starts_with(b"caff") {
        Some("Core Audio (CAF)")
    } else if head.starts_with(b"#!AMR") {
        Some("AMR")
    } else if head.starts_with(b"RF64") || head.starts_with(b"BW64") {
        Some("RF64/BW64 wave")
    } else if head.starts_with(b"0&\xB2\x75") {
        Some("Windows Media (ASF/WMA)")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_numbers() {
        assert_eq!(
            sniff(b"RIFF\x24\x00\x00\x00WAVEfmt "),
            Some(AudioFormat::Wav)
        );
        assert_eq!(sniff(b"fLaC\x00\x00\x00\x22"), Some(AudioFormat::Flac));
        assert_eq!(
            sniff(b"\x00\x00\x00\x20ftypM4A \x00\x00\x00\x00"),
            Some(AudioFormat::Mp4)
        );
        assert_eq!(sniff(b"\x00\x00\x00\x20ftypheic\x00\x00\x00\x00"), None);
        assert_eq!(sniff(b"FORM\x00\x00\x00\x00AIFF"), Some(AudioFormat::Aiff));
    }

    fn ogg_page(packet: &[u8]) -> Vec<u8> {
        let mut page = b"OggS\x00\x02".to_vec();
        page.extend_from_slice(&[0; 20]);
        page.push(1);
        page.push(packet.len() as u8);
        page.extend_from_slice(packet);
        page
    }

    #[test]
    fn ogg_by_first_packet() {
        assert_eq!(
            sniff(&ogg_page(b"OpusHead\x01\x02")),
            Some(AudioFormat::OggOpus)
        );
        assert_eq!(
            sniff(&ogg_page(b"\x01vorbis\x00\x00")),
            Some(AudioFormat::OggVorbis)
        );
        assert_eq!(sniff(&ogg_page(b"\x80theora")), None);
        assert_eq!(
            classify(&ogg_page(b"\x80theora")),
            Content::Unknown(Some("Ogg with a codec other than Vorbis, Opus or FLAC"))
        );
    }

    #[test]
    fn mpeg_frames_need_confirmation() {
        // MPEG-1 layer III, 128 kb/s, 44.1 kHz, no padding: 417-byte frames.
        let mut mp3 = vec![0xFF, 0xFB, 0x90, 0x00];
        mp3.resize(417, 0);
        mp3.extend_from_slice(&[0xFF, 0xFB, 0x90, 0x00]);
        mp3.resize(900, 0);
        assert_eq!(sniff(&mp3), Some(AudioFormat::Mp3));
        // A lone sync inside random binary is not enough.
        let mut junk = vec![0x13u8; 200];
        junk.extend_from_slice(&[0xFF, 0xFB, 0x90, 0x00]);
        junk.resize(2000, 0x42);
        assert_eq!(sniff(&junk), None);
        // ID3 tag that runs past the head: assume MP3.
        let mut id3 = b"ID3\x04\x00\x00\x00\x01\x00\x00".to_vec();
        id3.resize(100, 0);
        assert_eq!(sniff(&id3), Some(AudioFormat::Mp3));
    }

    #[test]
    fn adts() {
        // AAC LC, 44.1 kHz, stereo, 100-byte frames.
        let header = |len: usize| {
            [
                0xFF,
                0xF1,
                0x50,
                0x80 | ((len >> 11) & 3) as u8,
                (len >> 3) as u8,
                ((len & 7) << 5) as u8 | 0x1F,
                0xFC,
            ]
        };
        let mut aac = header(100).to_vec();
        aac.resize(100, 0);
        aac.extend_from_slice(&header(120));
        aac.resize(300, 0);
        assert_eq!(sniff(&aac), Some(AudioFormat::Aac));
    }

    #[test]
    fn non_audio_is_named() {
        assert_eq!(
            classify(b"\xEF\xBB\xBF  <!DOCTYPE html><html>"),
            Content::NotAudio("HTML")
        );
        assert_eq!(
            classify(b"<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code>"),
            Content::NotAudio("XML")
        );
        assert_eq!(
            classify(b"{\"error\": \"not found\"}"),
            Content::NotAudio("JSON")
        );
        assert_eq!(
            classify("plain text, caf\u{e9}".as_bytes()),
            Content::NotAudio("text")
        );
        assert_eq!(
            classify(b"\x89PNG\r\n\x1a\n"),
            Content::NotAudio("a PNG image")
        );
        assert_eq!(
            classify(b"\x1A\x45\xDF\xA3\x01\x02"),
            Content::Unknown(Some("WebM/Matroska"))
        );
        assert_eq!(
            classify(&[0u8, 1, 2, 3, 200, 17, 0, 9]),
            Content::Unknown(None)
        );
    }

    #[test]
    fn never_panics_on_prefixes() {
        let inputs: [&[u8]; 4] = [
            b"ID3\x04\x00\x10\x00\x00\x00\x05abcde\xFF\xFB\x90",
            b"OggS\x00\x02",
            b"\xFF\xF1\x50\x80\x0C",
            b"RIFF\x00",
        ];
        for input in inputs {
            for n in 0..=input.len() {
                let _ = classify(&input[..n]);
            }
        }
    }
}
