//! Speaker clustering of window embeddings: average-linkage agglomerative clustering on cosine
//! similarity (nearest-neighbour chain, O(n²)), cut at a similarity threshold or at the requested
//! number of speakers, then refined by reassigning every window to its closest centroid.
//!
//! Embeddings are L2-normalised, so cosine similarity is a dot product. Very long recordings are
//! clustered on an even subsample of windows; the rest join the closest centroid.

/// How clusters are cut.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ClusterParams {
    /// Merging stops when the best average similarity between two clusters falls below this.
    /// Tuned on the `diar` test clips (0.55–0.6 best; 0.65 and up splits speakers).
    pub(crate) threshold: f32,
    /// Without a requested count, clusters holding less than this fraction of the windows
    /// (noise, laughter, a cough) are folded into their closest neighbour.
    pub(crate) min_fraction: f32,
    pub(crate) max_speakers: usize,
}

impl Default for ClusterParams {
    fn default() -> Self {
        ClusterParams { threshold: 0.6, min_fraction: 0.05, max_speakers: 32 }
    }
}

/// Windows clustered by the full algorithm; above this the similarity matrix gets large.
const MAX_AHC: usize = 2000;

/// A cluster index per embedding, `0..k` without gaps. `num_speakers` forces `k` (as far as
/// there are embeddings).
pub(crate) fn cluster(emb: &[Vec<f32>], num_speakers: Option<usize>, p: &ClusterParams) -> Vec<usize> {
    let n = emb.len();
    if n <= 1 {
        return vec![0; n];
    }
    let sample: Vec<usize> =
        if n > MAX_AHC { (0..MAX_AHC).map(|i| i * n / MAX_AHC).collect() } else { (0..n).collect() };
    let sub: Vec<&[f32]> = sample.iter().map(|&i| emb[i].as_slice()).collect();
    let target = num_speakers.map(|k| k.clamp(1, p.max_speakers));
    let sub_labels = ahc(&sub, target, p);
    let mut labels = vec![0; n];
    for (&i, &l) in sample.iter().zip(&sub_labels) {
        labels[i] = l;
    }
    // Two passes of centroid reassignment; on a subsample this is also what labels the rest.
    let all: Vec<&[f32]> = emb.iter().map(Vec::as_slice).collect();
    let known: Vec<bool> = (0..n).map(|i| n <= MAX_AHC || sample.binary_search(&i).is_ok()).collect();
    for pass in 0..2 {
        let cents = centroids(&all, &labels, &known, pass);
        labels = all.iter().map(|e| closest(e, &cents)).collect();
    }
    if target.is_none() {
        labels = fold_small(&all, labels, p.min_fraction);
    }
    compact(labels)
}

/// Agglomerative clustering down to `target` clusters, or while the best similarity is at least
/// the threshold (and never more than `max_speakers` clusters).
fn ahc(emb: &[&[f32]], target: Option<usize>, p: &ClusterParams) -> Vec<usize> {
    let n = emb.len();
    let mut sim = vec![0.0f32; n * n];
    for i in 0..n {
        for j in i + 1..n {
            let s = dot(emb[i], emb[j]);
            sim[i * n + j] = s;
            sim[j * n + i] = s;
        }
    }
    let merges = nn_chain(&mut sim, n);
    let mut parent: Vec<usize> = (0..n).collect();
    let mut clusters = n;
    for &(a, b, s) in &merges {
        let done = match target {
            Some(k) => clusters <= k,
            None => s < p.threshold && clusters <= p.max_speakers,
        };
        if done {
            break;
        }
        let (ra, rb) = (find(&mut parent, a), find(&mut parent, b));
        parent[rb] = ra;
        clusters -= 1;
    }
    (0..n).map(|i| find(&mut parent, i)).collect()
}

/// The average-linkage dendrogram as merges `(a, b, similarity)`, most similar first.
/// `sim` is overwritten.
fn nn_chain(sim: &mut [f32], n: usize) -> Vec<(usize, usize, f32)> {
    let mut size = vec![1usize; n];
    let mut active = vec![true; n];
    let mut chain: Vec<usize> = Vec::new();
    let mut merges = Vec::with_capacity(n - 1);
    while merges.len() < n - 1 {
        if chain.is_empty() {
            chain.push(active.iter().position(|&a| a).expect("two clusters remain"));
        }
        let a = *chain.last().expect("chain is not empty");
        let prev = chain.len().checked_sub(2).map(|i| chain[i]);
        // The most similar active cluster; the previous chain element wins ties, so the chain
        // always ends in a reciprocal pair.
        let mut best = prev.unwrap_or(usize::MAX);
        let mut best_s = prev.map_or(f32::NEG_INFINITY, |q| sim[a * n + q]);
        for k in 0..n {
            if active[k] && k != a && sim[a * n + k] > best_s {
                best = k;
                best_s = sim[a * n + k];
            }
        }
        if Some(best) != prev {
            chain.push(best);
            continue;
        }
        chain.truncate(chain.len() - 2);
        let b = best;
        merges.push((a, b, best_s));
        let (sa, sb) = (size[a] as f32, size[b] as f32);
        for k in 0..n {
            if active[k] && k != a && k != b {
                let s = (sa * sim[a * n + k] + sb * sim[b * n + k]) / (sa + sb);
                sim[a * n + k] = s;
                sim[k * n + a] = s;
            }
        }
        size[a] += size[b];
        active[b] = false;
    }
    // Average linkage is reducible, so sorting gives the same dendrogram (as scipy does).
    merges.sort_by(|x, y| y.2.total_cmp(&x.2));
    merges
}

fn find(parent: &mut [usize], mut i: usize) -> usize {
    while parent[i] != i {
        parent[i] = parent[parent[i]];
        i = parent[i];
    }
    i
}

/// Normalised mean embedding of each label (indexed by label value; empty labels get `None`).
/// Only embeddings with `known[i]` take part in the first pass.
fn centroids(emb: &[&[f32]], labels: &[usize], known: &[bool], pass: usize) -> Vec<Option<Vec<f32>>> {
    let k = labels.iter().max().map_or(0, |m| m + 1);
    let dim = emb.first().map_or(0, |e| e.len());
    let mut sums = vec![vec![0.0f32; dim]; k];
    let mut counts = vec![0usize; k];
    for (i, (e, &l)) in emb.iter().zip(labels).enumerate() {
        if pass > 0 || known[i] {
            sums[l].iter_mut().zip(e.iter()).for_each(|(s, x)| *s += x);
            counts[l] += 1;
        }
    }
    sums.into_iter()
        .zip(counts)
        .map(|(s, c)| {
            (c > 0).then(|| {
                let norm = s.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
                s.into_iter().map(|x| x / norm).collect()
            })
        })
        .collect()
}

fn closest(e: &[f32], cents: &[Option<Vec<f32>>]) -> usize {
    cents
        .iter()
        .enumerate()
        .filter_map(|(l, c)| c.as_ref().map(|c| (l, dot(e, c))))
        .max_by(|x, y| x.1.total_cmp(&y.1))
        .map_or(0, |(l, _)| l)
}

/// Moves the windows of clusters smaller than `min_fraction` of all windows to the closest
/// remaining cluster. The largest cluster always stays.
fn fold_small(emb: &[&[f32]], labels: Vec<usize>, min_fraction: f32) -> Vec<usize> {
    let k = labels.iter().max().map_or(0, |m| m + 1);
    let mut counts = vec![0usize; k];
    labels.iter().for_each(|&l| counts[l] += 1);
    let largest = (0..k).max_by_key(|&l| counts[l]).unwrap_or(0);
    let min = (min_fraction * labels.len() as f32).ceil() as usize;
    let keep: Vec<bool> = (0..k).map(|l| l == largest || counts[l] >= min).collect();
    if keep.iter().all(|&x| x) {
        return labels;
    }
    let known = vec![true; labels.len()];
    let cents: Vec<Option<Vec<f32>>> =
        centroids(emb, &labels, &known, 1).into_iter().enumerate().map(|(l, c)| c.filter(|_| keep[l])).collect();
    labels.iter().zip(emb).map(|(&l, e)| if keep[l] { l } else { closest(e, &cents) }).collect()
}

/// Renumbers labels to `0..k` in order of first appearance.
fn compact(labels: Vec<usize>) -> Vec<usize> {
    let mut seen: Vec<usize> = Vec::new();
    labels
        .into_iter()
        .map(|l| match seen.iter().position(|&s| s == l) {
            Some(i) => i,
            None => {
                seen.push(l);
                seen.len() - 1
            }
        })
        .collect()
}

pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic pseudo-random generator (xorshift), for noise.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> f32 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        }
    }

    fn normalised(v: Vec<f32>) -> Vec<f32> {
        let n = dot(&v, &v).sqrt();
        v.into_iter().map(|x| x / n).collect()
    }

    /// `per` noisy embeddings around each of `centres` random directions, in speaker order
    /// a a a b b b ... and the true labels.
    fn speakers(centres: usize, per: usize, noise: f32, rng: &mut Rng) -> (Vec<Vec<f32>>, Vec<usize>) {
        let dim = 64;
        let c: Vec<Vec<f32>> = (0..centres).map(|_| normalised((0..dim).map(|_| rng.next()).collect())).collect();
        let mut emb = Vec::new();
        let mut truth = Vec::new();
        for (s, centre) in c.iter().enumerate() {
            for _ in 0..per {
                emb.push(normalised(
                    centre.iter().map(|x| x + noise * rng.next() / (dim as f32).sqrt() * 4.0).collect(),
                ));
                truth.push(s);
            }
        }
        (emb, truth)
    }

    fn count(labels: &[usize]) -> usize {
        labels.iter().max().map_or(0, |m| m + 1)
    }

    #[test]
    fn three_separated_speakers_give_three_labels_matching_the_truth() {
        let mut rng = Rng(7);
        let (emb, truth) = speakers(3, 20, 0.3, &mut rng);
        let labels = cluster(&emb, None, &ClusterParams::default());
        assert_eq!(count(&labels), 3);
        // Same partition as the truth (labels are in order of first appearance, as is the truth).
        assert_eq!(labels, truth);
    }

    #[test]
    fn one_speaker_gives_one_label() {
        let mut rng = Rng(11);
        let (emb, _) = speakers(1, 40, 0.3, &mut rng);
        assert_eq!(count(&cluster(&emb, None, &ClusterParams::default())), 1);
        assert_eq!(cluster(&emb[..1], None, &ClusterParams::default()), vec![0]);
        assert!(cluster(&[], None, &ClusterParams::default()).is_empty());
    }

    #[test]
    fn the_requested_count_is_honoured() {
        let mut rng = Rng(3);
        let (emb, truth) = speakers(4, 10, 0.3, &mut rng);
        let p = ClusterParams::default();
        assert_eq!(cluster(&emb, Some(4), &p), truth);
        assert_eq!(count(&cluster(&emb, Some(2), &p)), 2);
        assert_eq!(count(&cluster(&emb, Some(1), &p)), 1);
        // Asking for more speakers than there are makes them up from the noise, as asked.
        assert_eq!(count(&cluster(&emb, Some(6), &p)), 6);
    }

    #[test]
    fn a_stray_window_is_folded_into_a_real_speaker() {
        let mut rng = Rng(5);
        let (mut emb, _) = speakers(2, 30, 0.3, &mut rng);
        emb.push(normalised((0..64).map(|_| rng.next()).collect()));
        assert_eq!(count(&cluster(&emb, None, &ClusterParams::default())), 2);
    }

    #[test]
    fn long_inputs_are_subsampled_and_still_labelled() {
        let mut rng = Rng(9);
        let (emb, truth) = speakers(2, 1200, 0.3, &mut rng);
        assert_eq!(cluster(&emb, None, &ClusterParams::default()), truth);
    }
}
