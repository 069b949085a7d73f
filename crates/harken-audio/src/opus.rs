//! Opus packet decoding with libopus, for Ogg Opus streams demuxed by symphonia.
//!
//! Symphonia parses the Ogg pages and hands us packets, with the OpusHead in the codec
//! parameters' extra data and the end trim (from the final granule position) computed as
//! per-packet `trim_end`. This module owns turning
//! those packets into planar 48 kHz f32 and applying the trims and the header's output gain.
//! (symphonia 0.5.5 does not turn the pre-skip into `trim_start`, so we drop it here; the code
//! stays correct if a later symphonia does.)
//!
//! Limits: mono and stereo (mapping family 0, or family 1 with a single stream). More channels
//! need libopus' multistream decoder, which the `opus` crate does not expose; such files fail
//! with an "unsupported" error rather than decoding wrongly.

use symphonia::core::codecs::CodecParameters;
use symphonia::core::formats::Packet;

/// libopus always decodes at 48 kHz here; it is also the rate Ogg Opus granule positions use.
pub(crate) const OPUS_RATE: u32 = 48_000;

/// The longest Opus packet is 120 ms.
const MAX_FRAMES: usize = OPUS_RATE as usize * 120 / 1000;

pub(crate) struct OpusDecoder {
    decoder: opus::Decoder,
    channels: usize,
    gain: f32,
    /// Pre-skip frames not yet dropped (see `decode`).
    pre_skip_left: usize,
    interleaved: Vec<f32>,
    planes: Vec<Vec<f32>>,
}

/// Why a stream cannot be decoded: unsupported (a limitation) or corrupt (a bad file).
#[derive(Debug)]
pub(crate) enum OpusSetupError {
    Unsupported(String),
    Corrupt(String),
}

impl OpusDecoder {
    pub(crate) fn new(params: &CodecParameters) -> Result<Self, OpusSetupError> {
        let head = params.extra_data.as_deref().ok_or_else(|| {
            OpusSetupError::Corrupt("Ogg Opus stream without an OpusHead header".into())
        })?;
        if head.len() < 19 || !head.starts_with(b"OpusHead") {
            return Err(OpusSetupError::Corrupt("malformed OpusHead header".into()));
        }
        let channels = head[9] as usize;
        let pre_skip = u16::from_le_bytes([head[10], head[11]]) as usize;
        let gain_q8 = i16::from_le_bytes([head[16], head[17]]);
        let family = head[18];
        let single_stream = family == 0 || (head.len() >= 21 && head[19] == 1);
        let layout = match (channels, single_stream) {
            (1, true) => opus::Channels::Mono,
            (2, true) => opus::Channels::Stereo,
            (0, _) => return Err(OpusSetupError::Corrupt("OpusHead declares 0 channels".into())),
            _ => {
                return Err(OpusSetupError::Unsupported(format!(
                    "Ogg Opus with {channels} channels (mapping family {family}); only mono and stereo Opus are supported"
                )))
            }
        };
        let decoder = opus::Decoder::new(OPUS_RATE, layout)
            .map_err(|e| OpusSetupError::Corrupt(format!("opus decoder setup failed: {e}")))?;
        Ok(Self {
            decoder,
            channels,
            // Output gain is Q7.8 dB, to be applied by every decoder (RFC 7845 §5.1).
            gain: 10f32.powf(gain_q8 as f32 / (20.0 * 256.0)),
            pre_skip_left: pre_skip,
            interleaved: vec![0.0; MAX_FRAMES * channels],
            planes: vec![Vec::with_capacity(MAX_FRAMES); channels],
        })
    }

    pub(crate) fn channels(&self) -> usize {
        self.channels
    }

    /// Decodes one packet into planar frames at 48 kHz, trimmed as the demuxer asked.
    pub(crate) fn decode(&mut self, packet: &Packet) -> Result<Vec<&[f32]>, String> {
        let frames = self
            .decoder
            .decode_float(&packet.data, &mut self.interleaved, false)
            .map_err(|e| format!("opus: {e}"))?;
        // symphonia 0.5 computes the end trim from the final granule position but does not
        // always turn the pre-skip into `trim_start`; drop whatever part of the pre-skip it did
        // not, so the first packets are trimmed exactly once either way.
        let mut start = (packet.trim_start() as usize).min(frames);
        self.pre_skip_left -= start.min(self.pre_skip_left);
        let end = frames.saturating_sub(packet.trim_end() as usize).max(start);
        let extra = self.pre_skip_left.min(end - start);
        self.pre_skip_left -= extra;
        start += extra;
        for (c, plane) in self.planes.iter_mut().enumerate() {
            plane.clear();
            plane.extend(
                self.interleaved[start * self.channels..end * self.channels]
                    .iter()
                    .skip(c)
                    .step_by(self.channels)
                    .map(|s| s * self.gain),
            );
        }
        Ok(self.planes.iter().map(Vec::as_slice).collect())
    }
}
