//! Decoding any supported file into 16 kHz f32, packet by packet.
//!
//! Owns [`decode_file`], [`decode_file_channels`], [`decode_file_as`], [`DecodedAudio`] and [`DecodeError`].
//! The pipeline is: sniff the content (refuse HTML/text/unknown with a clear message) → demux
//! with symphonia → decode each packet (symphonia codecs; libopus for Opus, see `opus.rs`) →
//! downmix (mono mode) → stream through the resampler → append to the output.
//!
//! Invariants:
//! - memory: one packet of original-rate audio and one resampler chunk at a time, plus the
//!   16 kHz output (reserved up front when the container knows its length);
//! - gapless: encoder delay/padding (LAME header, Opus pre-skip, Ogg end granule, ...) is
//!   removed, so durations match the source;
//! - damage: a packet that fails to decode is skipped (as players do) and a truncated tail ends
//!   the stream; the file fails only if too many packets in a row are bad or nothing decodes.
//!
//! Decoding is CPU-bound and synchronous: async callers use `tokio::task::spawn_blocking`.

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::path::Path;

use symphonia::core::audio::{AudioBuffer, AudioBufferRef, Signal};
use symphonia::core::codecs::{Decoder, DecoderOptions, CODEC_TYPE_NULL, CODEC_TYPE_OPUS};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::{FormatOptions, Packet};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

use crate::mp4_edit::{read_trim, Trim};
use crate::opus::{OpusDecoder, OpusSetupError};
use crate::resample::{Downmixer, StreamResampler, TARGET_RATE};
use crate::sniff::{classify, AudioFormat, Content, SNIFF_LEN};

/// Accepted types, as listed in every "unsupported" message.
const EXPECTED: &str = "expected mp3, wav, aac, m4a/mp4, ogg (vorbis/opus), flac or aiff";

/// Consecutive undecodable packets after which we call the file corrupt rather than damaged.
const MAX_CONSECUTIVE_ERRORS: usize = 64;

/// Decoding failed. Messages are meant for the user who supplied the audio.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("could not read the audio file: {0}")]
    Io(#[from] std::io::Error),
    #[error("the audio file is empty (0 bytes)")]
    Empty,
    /// Recognisably not audio (HTML, JSON, text, an image, ...).
    #[error("unsupported audio: the content looks like {what}, not audio")]
    NotAudio { what: &'static str },
    #[error("unsupported audio type{}: {EXPECTED}", found.as_ref().map(|f| format!(" ({f})")).unwrap_or_default())]
    Unsupported { found: Option<String> },
    #[error("corrupt audio: {detail}")]
    Corrupt { detail: String },
    #[error("audio contains no samples")]
    NoSamples,
}

/// A whole file as 16 kHz mono.
#[derive(Debug, Clone)]
pub struct DecodedAudio {
    /// 16 kHz mono samples, nominally in [-1, 1].
    pub samples: Vec<f32>,
    /// Duration of the source, in seconds (equals `samples.len() / 16000` to within a sample).
    pub duration_s: f64,
    /// Sample rate of the source stream (the first one, if it changed mid-stream).
    pub source_sample_rate: u32,
    /// Channel count of the source stream.
    pub channels: usize,
    pub format: AudioFormat,
}

/// Decodes a file into 16 kHz mono (channels averaged).
pub fn decode_file(path: &Path) -> Result<DecodedAudio, DecodeError> {
    let decoded = run(path, Mode::Mono)?;
    let samples = decoded.out.into_iter().next().unwrap_or_default();
    Ok(DecodedAudio {
        samples,
        duration_s: decoded.duration_s,
        source_sample_rate: decoded.source_rate,
        channels: decoded.channels,
        format: decoded.format,
    })
}

/// Decodes a file into one 16 kHz signal per source channel, all of the same length.
pub fn decode_file_channels(path: &Path) -> Result<(Vec<Vec<f32>>, AudioFormat), DecodeError> {
    let decoded = run(path, Mode::Channels)?;
    Ok((decoded.out, decoded.format))
}

/// Decodes a file into 16 kHz signals: one per source channel when `per_channel` (for speaker
/// labels, which can use a voice per channel, and for one transcript per channel), else the
/// mono mix alone; with the duration in seconds.
pub fn decode_file_as(path: &Path, per_channel: bool) -> Result<(Vec<Vec<f32>>, f64), DecodeError> {
    if per_channel {
        let (channels, _) = decode_file_channels(path)?;
        let seconds = channels.first().map_or(0.0, |c| c.len() as f64 / f64::from(TARGET_RATE));
        Ok((channels, seconds))
    } else {
        let audio = decode_file(path)?;
        Ok((vec![audio.samples], audio.duration_s))
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Mono,
    Channels,
}

struct Decoded {
    out: Vec<Vec<f32>>,
    duration_s: f64,
    source_rate: u32,
    channels: usize,
    format: AudioFormat,
}

fn run(path: &Path, mode: Mode) -> Result<Decoded, DecodeError> {
    let format = sniff_file(path)?;
    let mss = MediaSourceStream::new(Box::new(File::open(path)?), Default::default());
    let mut hint = Hint::new();
    hint.with_extension(format.extension());
    let options = FormatOptions {
        enable_gapless: true,
        ..Default::default()
    };
    let probed = symphonia::default::get_probe()
        .format(&hint, mss, &options, &MetadataOptions::default())
        .map_err(|e| corrupt_or_unsupported(e, format))?;
    let mut reader = probed.format;
    let track = reader
        .tracks()
        .iter()
        .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
        .ok_or_else(|| DecodeError::Corrupt {
            detail: format!("no audio track found in the {format} container"),
        })?;
    let track_id = track.id;
    let params = track.codec_params.clone();
    let mut decoder = if params.codec == CODEC_TYPE_OPUS {
        PacketDecoder::Opus(OpusDecoder::new(&params).map_err(|e| match e {
            OpusSetupError::Unsupported(found) => DecodeError::Unsupported { found: Some(found) },
            OpusSetupError::Corrupt(detail) => DecodeError::Corrupt { detail },
        })?)
    } else {
        let dec = symphonia::default::get_codecs()
            .make(&params, &DecoderOptions::default())
            .map_err(|e| {
                let codec = symphonia::default::get_codecs()
                    .get_codec(params.codec)
                    .map_or_else(|| format!("{}", params.codec), |d| d.short_name.to_owned());
                match e {
                    SymError::Unsupported(_) => DecodeError::Unsupported {
                        found: Some(format!("{codec} audio in {format}")),
                    },
                    other => DecodeError::Corrupt {
                        detail: other.to_string(),
                    },
                }
            })?;
        PacketDecoder::Symphonia {
            decoder: dec,
            buf: None,
        }
    };

    let trim = if format == AudioFormat::Mp4 {
        read_trim(path)
    } else {
        None
    };
    let mut sink = Sink::new(mode, estimate_output_frames(&params), trim);
    let mut consecutive_errors = 0usize;
    let mut last_error = None;
    loop {
        let packet = match reader.next_packet() {
            Ok(p) => p,
            Err(SymError::IoError(e)) if e.kind() == ErrorKind::UnexpectedEof => break,
            Err(SymError::ResetRequired) => break, // a chained stream follows; we take the first
            Err(e @ (SymError::DecodeError(_) | SymError::IoError(_))) if sink.frames_in > 0 => {
                tracing::warn!(audio.format = %format, "stopping at damaged end of stream: {e}");
                break;
            }
            Err(e) => {
                return Err(DecodeError::Corrupt {
                    detail: e.to_string(),
                })
            }
        };
        if packet.track_id() != track_id {
            continue;
        }
        match decoder.decode(&packet, &mut sink) {
            Ok(()) => consecutive_errors = 0,
            Err(e) => {
                consecutive_errors += 1;
                tracing::debug!(audio.format = %format, "skipping undecodable packet: {e}");
                if consecutive_errors > MAX_CONSECUTIVE_ERRORS {
                    return Err(DecodeError::Corrupt { detail: e });
                }
                last_error = Some(e);
            }
        }
    }
    sink.finish(format, last_error)
}

/// Reads the start of the file and decides what it is.
fn sniff_file(path: &Path) -> Result<AudioFormat, DecodeError> {
    let mut head = Vec::with_capacity(SNIFF_LEN);
    File::open(path)?
        .take(SNIFF_LEN as u64)
        .read_to_end(&mut head)?;
    if head.is_empty() {
        return Err(DecodeError::Empty);
    }
    match classify(&head) {
        Content::Audio(format) => Ok(format),
        Content::NotAudio(what) => Err(DecodeError::NotAudio { what }),
        Content::Unknown(found) => Err(DecodeError::Unsupported {
            found: found.map(str::to_owned),
        }),
    }
}

fn corrupt_or_unsupported(e: SymError, format: AudioFormat) -> DecodeError {
    match e {
        SymError::IoError(io) if io.kind() == ErrorKind::UnexpectedEof => DecodeError::Corrupt {
            detail: format!("the {format} file ends inside its header"),
        },
        SymError::IoError(io) => DecodeError::Io(io),
        other => DecodeError::Corrupt {
            detail: format!("cannot read the {format} container: {other}"),
        },
    }
}

/// Output frames at 16 kHz if the container declares its length (used to reserve once).
fn estimate_output_frames(params: &symphonia::core::codecs::CodecParameters) -> Option<usize> {
    let (frames, rate) = (params.n_frames?, params.sample_rate?);
    // Cap the reservation: a lying header must not make us allocate gigabytes up front.
    let est = frames.checked_mul(TARGET_RATE as u64)? / rate.max(1) as u64 + 1;
    (est <= 24 * 3600 * TARGET_RATE as u64).then_some(est as usize)
}

enum PacketDecoder {
    Symphonia {
        decoder: Box<dyn Decoder>,
        buf: Option<AudioBuffer<f32>>,
    },
    Opus(OpusDecoder),
}

impl PacketDecoder {
    fn decode(&mut self, packet: &Packet, sink: &mut Sink) -> Result<(), String> {
        match self {
            PacketDecoder::Opus(opus) => {
                let channels = opus.channels();
                let planes = opus.decode(packet)?;
                debug_assert_eq!(planes.len(), channels);
                sink.push(&planes, crate::opus::OPUS_RATE)
                    .map_err(|e| e.to_string())
            }
            PacketDecoder::Symphonia { decoder, buf } => {
                let decoded = match decoder.decode(packet) {
                    Ok(d) => d,
                    Err(SymError::ResetRequired) => {
                        decoder.reset();
                        return Ok(());
                    }
                    Err(e) => return Err(e.to_string()),
                };
                let planes = to_f32(&decoded, buf);
                let rate = decoded.spec().rate;
                sink.push(&planes, rate).map_err(|e| e.to_string())
            }
        }
    }
}

/// Converts a decoded block to planar f32, reusing `buf` while the spec and size allow.
fn to_f32<'a>(
    decoded: &AudioBufferRef<'_>,
    buf: &'a mut Option<AudioBuffer<f32>>,
) -> Vec<&'a [f32]> {
    let fits = buf
        .as_ref()
        .is_some_and(|b| b.spec() == decoded.spec() && b.capacity() >= decoded.capacity());
    if !fits {
        *buf = Some(decoded.make_equivalent::<f32>());
    }
    let buf = buf.as_mut().expect("bug: buffer allocated just above");
    decoded.convert(buf);
    let frames = buf.frames();
    let buf: &'a AudioBuffer<f32> = buf;
    (0..buf.spec().channels.count())
        .map(|c| &buf.chan(c)[..frames])
        .collect()
}

/// Collects decoded blocks: downmixes (mono mode) and resamples into the 16 kHz output.
struct Sink {
    mode: Mode,
    out: Vec<Vec<f32>>,
    reserve: Option<usize>,
    resampler: Option<StreamResampler>,
    downmix: Downmixer,
    first: Option<(u32, usize)>,
    /// Gapless trim the container asked for but the demuxer did not apply (MP4 edit lists).
    trim: Option<Trim>,
    skip_left: u64,
    keep_left: Option<u64>,
    rate: u32,
    frames_in: u64,
    duration_s: f64,
}

impl Sink {
    fn new(mode: Mode, reserve: Option<usize>, trim: Option<Trim>) -> Self {
        Sink {
            mode,
            out: Vec::new(),
            reserve,
            resampler: None,
            downmix: Downmixer::default(),
            first: None,
            trim,
            skip_left: 0,
            keep_left: None,
            rate: 0,
            frames_in: 0,
            duration_s: 0.0,
        }
    }

    fn push(&mut self, planes: &[&[f32]], rate: u32) -> Result<(), DecodeError> {
        let frames = planes.first().map_or(0, |p| p.len());
        if frames == 0 {
            return Ok(());
        }
        if !(1000..=1_000_000).contains(&rate) {
            return Err(DecodeError::Corrupt {
                detail: format!("implausible sample rate {rate} Hz"),
            });
        }
        if let Some(trim) = self.trim.take() {
            (self.skip_left, self.keep_left) = trim.frames(rate);
        }
        let start = self.skip_left.min(frames as u64) as usize;
        self.skip_left -= start as u64;
        let end = match self.keep_left.as_mut() {
            Some(keep) => {
                let n = (*keep).min((frames - start) as u64);
                *keep -= n;
                start + n as usize
            }
            None => frames,
        };
        if start >= end {
            return Ok(());
        }
        let trimmed: Vec<&[f32]> = planes.iter().map(|p| &p[start..end]).collect();
        let (planes, frames) = (&trimmed[..], end - start);
        let (_, channels) = *self.first.get_or_insert((rate, planes.len()));
        let out_channels = match self.mode {
            Mode::Mono => 1,
            Mode::Channels if planes.len() == channels => channels,
            Mode::Channels => {
                return Err(DecodeError::Corrupt {
                    detail: format!("channel count changed from {channels} to {}", planes.len()),
                })
            }
        };
        if self.out.is_empty() {
            self.out = (0..out_channels)
                .map(|_| Vec::with_capacity(self.reserve.unwrap_or(0)))
                .collect();
        }
        if rate != self.rate {
            // First block, or the rate changed mid-stream (chained MP3/Ogg): restart the resampler.
            self.flush();
            self.resampler = Some(
                StreamResampler::new(rate, out_channels)
                    .map_err(|detail| DecodeError::Corrupt { detail })?,
            );
            self.rate = rate;
        }
        let resampler = self
            .resampler
            .as_mut()
            .expect("bug: resampler created above");
        match self.mode {
            Mode::Mono => resampler.push(&[self.downmix.mix(planes)], &mut self.out),
            Mode::Channels => resampler.push(planes, &mut self.out),
        }
        self.frames_in += frames as u64;
        self.duration_s += frames as f64 / rate as f64;
        Ok(())
    }

    fn flush(&mut self) {
        if let Some(r) = self.resampler.take() {
            r.finish(&mut self.out);
        }
    }

    fn finish(
        mut self,
        format: AudioFormat,
        last_error: Option<String>,
    ) -> Result<Decoded, DecodeError> {
        self.flush();
        let Some((source_rate, channels)) = self.first else {
            return Err(match last_error {
                Some(detail) => DecodeError::Corrupt { detail },
                None => DecodeError::NoSamples,
            });
        };
        for ch in &mut self.out {
            ch.shrink_to_fit();
        }
        Ok(Decoded {
            out: self.out,
            duration_s: self.duration_s,
            source_rate,
            channels,
            format,
        })
    }
}
