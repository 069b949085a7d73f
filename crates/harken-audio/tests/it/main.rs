//! Integration tests for harken-audio: one binary, a module per area.
//!
//! All audio is real: generated here with Debian tools (sox, espeak-ng, ffmpeg) or read from the
//! shared test data. A missing tool or data folder fails the test with a message; nothing skips.

mod decode;
mod fetch;
mod testdata;
mod util;
