//! Streaming conversion to 16 kHz: downmix and resample in bounded chunks.
//!
//! Owns [`StreamResampler`] (any input rate to [`TARGET_RATE`], planar, fed block by block) and
//! [`Downmixer`] (average of all channels).
//!
//! Invariants:
//! - memory is bounded by one resampler chunk per channel plus the caller's output; nothing
//!   holds the whole original-rate signal;
//! - the output is aligned (the resampler's group delay is dropped) and has exactly
//!   `round(frames_in * 16000 / rate_in)` frames, so durations survive resampling;
//! - 16 kHz input passes through untouched.
//!
//! The resampler is rubato's FFT resampler: a windowed-sinc (Blackman-Harris) low-pass applied in
//! the frequency domain, exact for rational ratios and much cheaper than a time-domain sinc with
//! a long filter, which matters for hour-long 44.1/48 kHz files.

use rubato::{FftFixedIn, Resampler};

/// The sample rate everything is converted to.
pub const TARGET_RATE: u32 = 16_000;

/// Input frames per resampler call. Larger chunks give a longer (sharper) anti-alias filter.
const CHUNK: usize = 4096;

pub(crate) struct StreamResampler {
    rate_in: u32,
    inner: Option<FftFixedIn<f32>>,
    pending: Vec<Vec<f32>>,
    scratch_out: Vec<Vec<f32>>,
    delay_left: usize,
    frames_in: u64,
    frames_out: u64,
}

impl StreamResampler {
    pub(crate) fn new(rate_in: u32, channels: usize) -> Result<Self, String> {
        if rate_in == 0 || channels == 0 {
            return Err(format!("invalid stream: {rate_in} Hz, {channels} channels"));
        }
        let inner = if rate_in == TARGET_RATE {
            None
        } else {
            let r =
                FftFixedIn::<f32>::new(rate_in as usize, TARGET_RATE as usize, CHUNK, 1, channels)
                    .map_err(|e| format!("cannot resample from {rate_in} Hz: {e}"))?;
            Some(r)
        };
        let delay_left = inner.as_ref().map_or(0, |r| r.output_delay());
        let scratch_out = inner
            .as_ref()
            .map_or_else(Vec::new, |r| r.output_buffer_allocate(true));
        Ok(Self {
            rate_in,
            inner,
            pending: vec![Vec::with_capacity(2 * CHUNK); channels],
            scratch_out,
            delay_left,
            frames_in: 0,
            frames_out: 0,
        })
    }

    pub(crate) fn channels(&self) -> usize {
        self.pending.len()
    }

    /// Feeds one block of planar input; resampled frames are appended to `out` (one Vec per channel).
    pub(crate) fn push(&mut self, planes: &[&[f32]], out: &mut [Vec<f32>]) {
        debug_assert_eq!(
            planes.len(),
            self.channels(),
            "bug: channel count changed without a new resampler"
        );
        let frames = planes.first().map_or(0, |p| p.len());
        self.frames_in += frames as u64;
        if self.inner.is_none() {
            for (dst, src) in out.iter_mut().zip(planes) {
                dst.extend_from_slice(src);
            }
            self.frames_out += frames as u64;
            return;
        }
        for (dst, src) in self.pending.iter_mut().zip(planes) {
            dst.extend_from_slice(src);
        }
        while self.pending[0].len() >= CHUNK {
            self.process_chunk(out);
        }
    }

    /// Flushes the tail and trims the output to the exact expected length.
    pub(crate) fn finish(mut self, out: &mut [Vec<f32>]) {
        let expected = self.expected_frames();
        if self.inner.is_some() {
            // Zero-pad until the resampler has pushed out everything that depends on real input.
            while self.frames_out < expected {
                for p in &mut self.pending {
                    p.resize(CHUNK, 0.0);
                }
                self.process_chunk(out);
            }
        }
        let extra = (self.frames_out - expected.min(self.frames_out)) as usize;
        for ch in out.iter_mut() {
            let keep = ch.len() - extra.min(ch.len());
            ch.truncate(keep);
        }
    }

    /// Output frames that correspond to the input seen so far.
    pub(crate) fn expected_frames(&self) -> u64 {
        (self.frames_in * TARGET_RATE as u64 + self.rate_in as u64 / 2) / self.rate_in as u64
    }

    fn process_chunk(&mut self, out: &mut [Vec<f32>]) {
        let Some(inner) = self.inner.as_mut() else {
            return;
        };
        let input: Vec<&[f32]> = self.pending.iter().map(|p| &p[..CHUNK]).collect();
        let (_, produced) = inner
            .process_into_buffer(&input, &mut self.scratch_out, None)
            .expect("bug: resampler buffers are sized by the resampler itself");
        let skip = self.delay_left.min(produced);
        self.delay_left -= skip;
        for (dst, src) in out.iter_mut().zip(&self.scratch_out) {
            dst.extend_from_slice(&src[skip..produced]);
        }
        self.frames_out += (produced - skip) as u64;
        for p in &mut self.pending {
            p.drain(..CHUNK);
        }
    }
}

/// Averages all channels of a planar block into one, reusing its buffer.
#[derive(Default)]
pub(crate) struct Downmixer {
    mono: Vec<f32>,
}

impl Downmixer {
    pub(crate) fn mix<'a>(&'a mut self, planes: &[&'a [f32]]) -> &'a [f32] {
        match planes {
            [] => &[],
            [only] => only,
            [first, rest @ ..] => {
                self.mono.clear();
                self.mono.extend_from_slice(first);
                for plane in rest {
                    for (acc, s) in self.mono.iter_mut().zip(plane.iter()) {
                        *acc += *s;
                    }
                }
                let scale = 1.0 / planes.len() as f32;
                self.mono.iter_mut().for_each(|s| *s *= scale);
                &self.mono
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(rate: u32, freq: f32, frames: usize) -> Vec<f32> {
        (0..frames)
            .map(|i| (2.0 * std::f32::consts::PI * freq * i as f32 / rate as f32).sin() * 0.5)
            .collect()
    }

    fn resample_in_blocks(rate: u32, input: &[f32], block: usize) -> Vec<f32> {
        let mut r = StreamResampler::new(rate, 1).unwrap();
        let mut out = vec![Vec::new()];
        for b in input.chunks(block) {
            r.push(&[b], &mut out);
        }
        r.finish(&mut out);
        out.pop().unwrap()
    }

    #[test]
    fn exact_length_for_common_rates() {
        for rate in [
            8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000, 88200, 96000,
        ] {
            for frames in [0usize, 1, 100, 4095, 4096, 4097, 44_100 * 3 + 17] {
                let out = resample_in_blocks(rate, &vec![0.1; frames], 1152);
                let expected = (frames as u64 * 16000 + rate as u64 / 2) / rate as u64;
                assert_eq!(out.len() as u64, expected, "rate {rate}, {frames} frames");
            }
        }
    }

    #[test]
    fn sine_keeps_phase_and_amplitude() {
        let input = sine(44100, 440.0, 44100 * 2);
        let out = resample_in_blocks(44100, &input, 777);
        let reference = sine(16000, 440.0, out.len());
        // Ignore the edges, where the filter sees zero padding.
        let err = out[1000..out.len() - 1000]
            .iter()
            .zip(&reference[1000..])
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(err < 0.01, "max error {err}");
    }

    #[test]
    fn removes_content_above_nyquist() {
        // 12 kHz at 48 kHz must not alias into the 16 kHz output (Nyquist 8 kHz).
        let out = resample_in_blocks(48000, &sine(48000, 12000.0, 48000), 4096);
        let rms = (out[1000..out.len() - 1000]
            .iter()
            .map(|s| s * s)
            .sum::<f32>()
            / (out.len() - 2000) as f32)
            .sqrt();
        assert!(rms < 0.001, "aliased energy rms {rms}");
    }

    #[test]
    fn downmix_averages() {
        let mut d = Downmixer::default();
        assert_eq!(d.mix(&[&[1.0, 0.0][..], &[0.0, 0.0][..]]), &[0.5, 0.0]);
    }
}
