#![doc = include_str!("../README.md")]
//!
//! Module map: `fetch` (download), `guard` (SSRF address policy), `sniff` (content detection),
//! `decode` (demux + decode + mix), `mp4_edit` (MP4 gapless trim), `opus` (libopus adapter), `resample` (streaming 16 kHz).

mod decode;
mod fetch;
mod guard;
mod mp4_edit;
mod opus;
mod resample;
mod sniff;

pub use decode::{decode_file, decode_file_as, decode_file_channels, DecodeError, DecodedAudio};
pub use fetch::{FetchError, FetchPolicy, FetchedFile, Fetcher};
pub use resample::TARGET_RATE;
pub use sniff::{sniff, AudioFormat, SNIFF_LEN};
