//! Telephone-band audio: is there anything above 3.8 kHz in the speech?
//!
//! A phone call reaches us at 8 kHz (or band-limited to 300–3 400 Hz and resampled), so the
//! speaker encoder hears every voice through the same narrow band. The GE2E embeddings of
//! different people then lie closer together, and at the threshold tuned on wide-band speech
//! the counting merges them: the synthetic conversations passed through a phone line
//! (`bench/degrade.sh telephone`) scored 29.5 % DER against 8.9 % clean, speakers counted right
//! on 3 of 8. Raising the threshold for such recordings ([`NARROWBAND_THRESHOLD_RISE`]) brings
//! that to 15.8 % (6 of 8); docs/DIARIZATION.md, "Telephone, noise and
//! reverberation".

use std::sync::Arc;

use rustfft::num_complex::Complex32;
use rustfft::{Fft, FftPlanner};

use crate::api::SAMPLE_RATE;

/// How much the counting threshold (a mean cosine similarity) rises for telephone-band audio.
/// Measured on the telephone-band synthetic conversations (component benchmark, GE2E): 0.62
/// (unchanged) 29.5 %, 0.66 16.8 %, 0.67 15.8 %, 0.68 15.8 %, 0.70 16.9 %, 0.72 21.3 % DER.
pub(crate) const NARROWBAND_THRESHOLD_RISE: f32 = 0.05;

/// Below this share of the speech's power above [`CUTOFF_HZ`], the recording is telephone-band.
/// Measured with sox (power above 3.8 kHz over all power): 0.3–1.8 % on the AMI excerpts and
/// the an4 clip, 2–8 % on the synthetic conversations, 0.03 % on the quietest AMI excerpt
/// (trn02); ≤ 0.001 % after `bench/degrade.sh telephone`, and ≈ 0 on recordings that were
/// telephone-band to begin with (the pyannote sample, low-rate MP3 readings).
const NARROWBAND_SHARE: f64 = 1e-4;
const CUTOFF_HZ: f64 = 3_800.0;
const N_FFT: usize = 512;
/// At most this many frames are measured, spread evenly over the speech: ≈ 32 s of audio.
const MAX_FRAMES: usize = 1_000;

/// Whether the speech in `spans` (16 kHz sample spans) has next to nothing above 3.8 kHz.
/// No speech, or too little for one frame, is not telephone-band.
pub(crate) fn is_narrowband(samples: &[f32], spans: &[(usize, usize)]) -> bool {
    high_band_share(samples, spans).is_some_and(|share| share < NARROWBAND_SHARE)
}

/// The share of power above [`CUTOFF_HZ`] in Hann-windowed frames of the speech, or `None`
/// when the speech holds no frame or no power.
fn high_band_share(samples: &[f32], spans: &[(usize, usize)]) -> Option<f64> {
    let starts: Vec<usize> = spans
        .iter()
        .filter(|&&(a, b)| b <= samples.len() && b >= a + N_FFT)
        .flat_map(|&(a, b)| (a..=b - N_FFT).step_by(N_FFT))
        .collect();
    if starts.is_empty() {
        return None;
    }
    let stride = starts.len().div_ceil(MAX_FRAMES);
    let fft: Arc<dyn Fft<f32>> = FftPlanner::new().plan_fft_forward(N_FFT);
    let window = crate::mel::periodic_hann(N_FFT);
    let first_high = (CUTOFF_HZ / f64::from(SAMPLE_RATE) * N_FFT as f64).ceil() as usize;
    let (mut high, mut all) = (0.0f64, 0.0f64);
    let mut buf = vec![Complex32::default(); N_FFT];
    for &start in starts.iter().step_by(stride) {
        for (b, (&x, &w)) in buf.iter_mut().zip(samples[start..start + N_FFT].iter().zip(&window)) {
            *b = Complex32::new(x * w, 0.0);
        }
        fft.process(&mut buf);
        // Bins 1..=N/2: the DC offset of a recording is not its band.
        for (bin, c) in buf.iter().enumerate().take(N_FFT / 2 + 1).skip(1) {
            let power = f64::from(c.norm_sqr());
            all += power;
            if bin >= first_high {
                high += power;
            }
        }
    }
    (all > 0.0).then(|| high / all)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sum of tones (Hz) at 16 kHz, `secs` long.
    fn tones(freqs: &[f64], secs: f64) -> Vec<f32> {
        (0..(secs * f64::from(SAMPLE_RATE)) as usize)
            .map(|i| {
                let t = i as f64 / f64::from(SAMPLE_RATE);
                freqs.iter().map(|f| (0.2 * (2.0 * std::f64::consts::PI * f * t).sin()) as f32).sum()
            })
            .collect()
    }

    #[test]
    fn a_voice_band_of_tones_is_narrowband_and_one_above_it_is_not() {
        let phone = tones(&[300.0, 1_000.0, 2_500.0, 3_300.0], 2.0);
        assert!(is_narrowband(&phone, &[(0, phone.len())]));
        let wide = tones(&[300.0, 1_000.0, 2_500.0, 5_000.0], 2.0);
        assert!(!is_narrowband(&wide, &[(0, wide.len())]));
    }

    #[test]
    fn only_the_speech_spans_are_measured() {
        // Wide-band noise outside the span, a phone band inside it.
        let mut audio = tones(&[6_000.0], 1.0);
        let phone = tones(&[500.0, 2_000.0], 1.0);
        let span = (audio.len(), audio.len() + phone.len());
        audio.extend(&phone);
        audio.extend(tones(&[7_000.0], 1.0));
        assert!(is_narrowband(&audio, &[span]));
        assert!(!is_narrowband(&audio, &[(0, audio.len())]));
    }

    #[test]
    fn silence_or_no_speech_is_not_narrowband() {
        let silence = vec![0.0f32; 16_000];
        assert!(!is_narrowband(&silence, &[(0, silence.len())]));
        assert!(!is_narrowband(&silence, &[]));
        assert!(!is_narrowband(&silence, &[(0, 100)]));
    }
}
