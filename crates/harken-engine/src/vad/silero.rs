//! Silero VAD v6 in plain Rust: the network faster-whisper's `vad_filter` runs, from the
//! safetensors file of the `silero-vad` PyPI wheel (`harken models fetch silero-vad`).
//!
//! Per 32 ms chunk (512 samples, with the previous chunk's last 64 samples as context): a
//! learned STFT (a strided convolution, 129 magnitudes × 4 frames), four ReLU convolutions
//! down to one 128-vector, an LSTM cell carried across chunks, and a sigmoid. The layer
//! layout follows the reference `tinygrad_model.py` shipped in the same wheel; the output
//! matches that reference on real speech (see the test).

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Context};

/// Samples per chunk the network was trained on at 16 kHz.
pub(crate) const CHUNK: usize = 512;
const CONTEXT: usize = 64;
const N_FFT: usize = 256;
const STFT_STRIDE: usize = 128;
const BINS: usize = N_FFT / 2 + 1;
const HIDDEN: usize = 128;

/// A 1-D convolution with kernel 3 and padding 1. Weights are kept as `[output][tap][input]`
/// and activations time-major (`[time][channel]`), so every inner product runs over contiguous
/// memory and vectorises.
struct Conv {
    weight: Vec<f32>,
    bias: Vec<f32>,
    inputs: usize,
    outputs: usize,
    stride: usize,
}

impl Conv {
    /// From PyTorch's `[output][input][tap]` layout.
    fn new(torch_weight: Vec<f32>, bias: Vec<f32>, inputs: usize, outputs: usize, stride: usize) -> Self {
        let mut weight = vec![0.0f32; torch_weight.len()];
        for o in 0..outputs {
            for i in 0..inputs {
                for k in 0..3 {
                    weight[(o * 3 + k) * inputs + i] = torch_weight[(o * inputs + i) * 3 + k];
                }
            }
        }
        Conv { weight, bias, inputs, outputs, stride }
    }

    /// `x` is `len × inputs`; returns `out_len × outputs` after ReLU.
    fn forward_relu(&self, x: &[f32], len: usize) -> (Vec<f32>, usize) {
        let out_len = (len + 2 - 3) / self.stride + 1;
        let mut y = vec![0.0f32; self.outputs * out_len];
        for t in 0..out_len {
            for o in 0..self.outputs {
                let mut acc = self.bias[o];
                for k in 0..3 {
                    let pos = (t * self.stride + k) as isize - 1;
                    if pos < 0 || pos as usize >= len {
                        continue;
                    }
                    let pos = pos as usize;
                    let w = &self.weight[(o * 3 + k) * self.inputs..(o * 3 + k + 1) * self.inputs];
                    acc += dot(w, &x[pos * self.inputs..(pos + 1) * self.inputs]);
                }
                y[t * self.outputs + o] = acc.max(0.0);
            }
        }
        (y, out_len)
    }
}

/// The loaded network; [`Silero::probabilities`] runs it over a recording.
pub(crate) struct Silero {
    stft: Vec<f32>,
    convs: [Conv; 4],
    w_ih: Vec<f32>,
    w_hh: Vec<f32>,
    bias: Vec<f32>,
    out_w: Vec<f32>,
    out_b: f32,
}

impl std::fmt::Debug for Silero {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Silero")
    }
}

impl Silero {
    pub(crate) fn load(path: &Path) -> anyhow::Result<Self> {
        let bytes = std::fs::read(path).with_context(|| format!("reading the VAD model {}", path.display()))?;
        let mut t = read_safetensors(&bytes).with_context(|| format!("reading {}", path.display()))?;
        let mut conv = |n: usize, inputs: usize, outputs: usize, stride: usize| -> anyhow::Result<Conv> {
            let weight = take(&mut t, &format!("conv{n}.weight"), outputs * inputs * 3)?;
            Ok(Conv::new(weight, take(&mut t, &format!("conv{n}.bias"), outputs)?, inputs, outputs, stride))
        };
        let convs = [conv(1, BINS, 128, 1)?, conv(2, 128, 64, 2)?, conv(3, 64, 64, 2)?, conv(4, 64, HIDDEN, 1)?];
        let stft = take(&mut t, "stft_conv.weight", 2 * BINS * N_FFT)?;
        let w_ih = take(&mut t, "lstm_cell.weight_ih", 4 * HIDDEN * HIDDEN)?;
        let w_hh = take(&mut t, "lstm_cell.weight_hh", 4 * HIDDEN * HIDDEN)?;
        let b_ih = take(&mut t, "lstm_cell.bias_ih", 4 * HIDDEN)?;
        let b_hh = take(&mut t, "lstm_cell.bias_hh", 4 * HIDDEN)?;
        let bias = b_ih.iter().zip(&b_hh).map(|(a, b)| a + b).collect();
        let out_w = take(&mut t, "final_conv.weight", HIDDEN)?;
        let out_b = take(&mut t, "final_conv.bias", 1)?[0];
        Ok(Silero { stft, convs, w_ih, w_hh, bias, out_w, out_b })
    }

    /// Speech probability of every 512-sample chunk of 16 kHz `samples` (the last one
    /// zero-padded).
    pub(crate) fn probabilities(&self, samples: &[f32]) -> Vec<f32> {
        let mut h = vec![0.0f32; HIDDEN];
        let mut c = vec![0.0f32; HIDDEN];
        let mut input = vec![0.0f32; CONTEXT + CHUNK + CONTEXT];
        samples
            .chunks(CHUNK)
            .map(|chunk| {
                // Context (the previous chunk's tail) is already at the front.
                input[CONTEXT..CONTEXT + chunk.len()].copy_from_slice(chunk);
                input[CONTEXT + chunk.len()..CONTEXT + CHUNK].fill(0.0);
                let p = self.chunk(&mut input, &mut h, &mut c);
                input.copy_within(CHUNK..CHUNK + CONTEXT, 0);
                p
            })
            .collect()
    }

    /// One chunk: `input` holds context + chunk and room for the reflection padding.
    fn chunk(&self, input: &mut [f32], h: &mut [f32], c: &mut [f32]) -> f32 {
        let n = CONTEXT + CHUNK;
        // Reflection padding on the right: x[n + j] = x[n - 2 - j].
        for j in 0..CONTEXT {
            input[n + j] = input[n - 2 - j];
        }
        let frames = (input.len() - N_FFT) / STFT_STRIDE + 1;
        let mut mag = vec![0.0f32; BINS * frames];
        for f in 0..frames {
            let x = &input[f * STFT_STRIDE..f * STFT_STRIDE + N_FFT];
            for b in 0..BINS {
                let re = dot(&self.stft[b * N_FFT..(b + 1) * N_FFT], x);
                let im = dot(&self.stft[(BINS + b) * N_FFT..(BINS + b + 1) * N_FFT], x);
                mag[f * BINS + b] = (re * re + im * im).sqrt();
            }
        }
        let (mut x, mut len) = (mag, frames);
        for conv in &self.convs {
            (x, len) = conv.forward_relu(&x, len);
        }
        debug_assert_eq!(len, 1);
        // LSTM cell, PyTorch gate order: input, forget, cell, output.
        let gates: Vec<f32> = (0..4 * HIDDEN)
            .map(|g| {
                self.bias[g]
                    + dot(&self.w_ih[g * HIDDEN..(g + 1) * HIDDEN], &x)
                    + dot(&self.w_hh[g * HIDDEN..(g + 1) * HIDDEN], h)
            })
            .collect();
        for j in 0..HIDDEN {
            let (i, f, g, o) = (sigmoid(gates[j]), sigmoid(gates[HIDDEN + j]), gates[2 * HIDDEN + j].tanh(), sigmoid(gates[3 * HIDDEN + j]));
            c[j] = f * c[j] + i * g;
            h[j] = o * c[j].tanh();
        }
        let logit = self.out_b + h.iter().zip(&self.out_w).map(|(v, w)| v.max(0.0) * w).sum::<f32>();
        sigmoid(logit)
    }
}

/// Removes a tensor of known size from the loaded set.
fn take(tensors: &mut HashMap<String, Vec<f32>>, name: &str, len: usize) -> anyhow::Result<Vec<f32>> {
    let v = tensors.remove(name).with_context(|| format!("the VAD model has no tensor {name}"))?;
    if v.len() != len {
        bail!("VAD tensor {name} has {} values, expected {len}", v.len());
    }
    Ok(v)
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// Dot product in 8 independent lanes, which the compiler turns into SIMD.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// The float32 tensors of a safetensors file: 8-byte header length, a JSON header of
/// `{name: {dtype, shape, data_offsets}}`, then the raw little-endian data.
fn read_safetensors(bytes: &[u8]) -> anyhow::Result<HashMap<String, Vec<f32>>> {
    let header_len = u64::from_le_bytes(bytes.get(..8).context("file too short")?.try_into()?) as usize;
    let header = bytes.get(8..8 + header_len).context("header runs past the end of the file")?;
    let data = &bytes[8 + header_len..];
    let header: HashMap<String, serde_json::Value> = serde_json::from_slice(header).context("parsing the header")?;
    let mut tensors = HashMap::new();
    for (name, info) in header.into_iter().filter(|(n, _)| n != "__metadata__") {
        if info["dtype"] != "F32" {
            bail!("tensor {name} is {}, only F32 is supported", info["dtype"]);
        }
        let offsets = info["data_offsets"].as_array().context("data_offsets")?;
        let (start, end) = (offsets[0].as_u64().context("offset")? as usize, offsets[1].as_u64().context("offset")? as usize);
        let raw = data.get(start..end).with_context(|| format!("tensor {name} runs past the end of the file"))?;
        tensors.insert(name, raw.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect());
    }
    Ok(tensors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_safetensors() {
        let header = br#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"__metadata__":{"x":"y"}}"#;
        let mut file = (header.len() as u64).to_le_bytes().to_vec();
        file.extend_from_slice(header);
        file.extend(1.5f32.to_le_bytes());
        file.extend((-2.0f32).to_le_bytes());
        assert_eq!(read_safetensors(&file).unwrap()["a"], vec![1.5, -2.0]);
        assert!(read_safetensors(&file[..10]).is_err());
    }

    #[test]
    fn dot_matches_the_naive_sum() {
        let a: Vec<f32> = (0..19).map(|i| i as f32 * 0.5).collect();
        let b: Vec<f32> = (0..19).map(|i| 1.0 - i as f32 * 0.1).collect();
        let naive: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - naive).abs() < 1e-4);
    }

    /// Probabilities of the reference definition shipped in the same wheel
    /// (`tinygrad_model.py`, run in numpy on these weights) on chunks of jfk.wav. The wheel's
    /// ONNX files hold another weight snapshot and differ by a few hundredths.
    #[test]
    fn matches_the_reference_model_on_real_speech() {
        let model = std::env::var_os("HARKEN_MODELS_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(harken_models::default_models_dir)
            .join("silero-vad/silero_vad_16k.safetensors");
        assert!(model.exists(), "{} is missing: run `harken models fetch silero-vad`", model.display());
        let audio = crate::diarize::eval::testdata_dir().join("asr/jfk_inaugural_excerpt.wav");
        let samples = harken_audio::decode_file(&audio).unwrap_or_else(|e| panic!("{}: {e}", audio.display())).samples;
        let probs = Silero::load(&model).unwrap().probabilities(&samples);
        assert_eq!(probs.len(), 344);
        let reference = [0.018, 0.0658, 0.239, 0.0698, 0.0494, 0.022, 0.0261, 0.0283, 0.0202, 0.0248, 0.6456, 0.984];
        for (i, (p, r)) in probs.iter().zip(reference).enumerate() {
            assert!((p - r).abs() < 0.001, "chunk {i}: {p} vs reference {r}");
        }
        let reference_later = [0.0027, 0.0022, 0.3164, 0.9766, 0.9871, 0.9955, 0.9945, 0.9943, 0.9915, 0.993, 0.9905, 0.9904];
        for (i, (p, r)) in probs[100..].iter().zip(reference_later).enumerate() {
            assert!((p - r).abs() < 0.001, "chunk {}: {p} vs reference {r}", 100 + i);
        }
    }
}
