//! Speaker clustering of window embeddings, in two steps:
//! 1. **How many speakers**: average-linkage agglomerative clustering on cosine similarity
//!    (nearest-neighbour chain, O(n²)), cut where the best average similarity between two
//!    clusters falls below a threshold, two passes of reassignment to the closest centroid, and
//!    clusters under 5 % of the windows folded into their neighbours. Only the *count* of this
//!    partition is kept (or the requested number of speakers is used instead).
//! 2. **Who is who**: Ward-linkage clustering into exactly that many clusters, then two passes
//!    of reassignment to the closest centroid.
//!
//! Why two linkages: average linkage gives a threshold with a meaning (a mean cosine
//! similarity) and so a usable speaker count, but at a fixed count its partitions are poor: it
//! peels off a few outlying windows (half silence, overlapped speech) as clusters of their own
//! and lumps the real speakers together. Ward minimises the within-cluster variance, so its
//! clusters are balanced and compact. With the true count given, Ward halves the confusion on
//! clean multi-speaker recordings (12 % → 6 %) and lowers it on the AMI excerpts (17 % → 14 %);
//! see docs/DIARIZATION.md.
//!
//! Embeddings are L2-normalised, so cosine similarity is a dot product and squared Euclidean
//! distance is `2 − 2·similarity`. Very long recordings are clustered on an even subsample of
//! windows; the rest join the closest centroid.

/// How clusters are cut.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ClusterParams {
    /// Counting stops merging when the best average similarity between two clusters falls
    /// below this. Tuned on the `diar` clips and synthetic conversations (0.6–0.65 best; 0.7
    /// and up splits speakers, 0.55 and below merges them).
    pub(crate) threshold: f32,
    /// Clusters holding less than this fraction of the windows (noise, laughter, a cough) are
    /// folded into their closest neighbour.
    pub(crate) min_fraction: f32,
    /// At least this many speakers, unless the caller allows fewer: what the segmentation model
    /// heard talk within one 10 s stretch, a count the embeddings cannot argue away.
    pub(crate) min_speakers: usize,
    /// At most this many speakers counted: 32 (ElevenLabs' limit), or 1 when the segmentation
    /// model hears only one voice in the recording.
    pub(crate) max_speakers: usize,
    /// Above this many windows, an even subsample of this size is clustered and the other
    /// windows join the closest centroid: the distance matrix is n² floats (16 MB at 2 000,
    /// ≈ 40 minutes of speech). The 25-minute synthetic meeting clustered on a fifth of its
    /// windows (as a two-hour one would be) or two fifths lost 1.2–1.6 points of DER and one of
    /// its seven speakers (docs/DIARIZATION.md, "Longer than the clustering takes whole").
    pub(crate) max_clustered: usize,
}

impl Default for ClusterParams {
    fn default() -> Self {
        ClusterParams { threshold: 0.62, min_fraction: 0.05, min_speakers: 1, max_speakers: 32, max_clustered: 2000 }
    }
}

/// A cluster index per embedding, `0..k` without gaps: `k` counted, then at most `at_most`
/// (ElevenLabs' `num_speakers`: "the maximum amount of speakers"). A ceiling rather than a
/// count to force: forced to the true count, the `diar` clips' few-word speakers split the
/// main ones (DER 40.7 → 47.5 %), and a count set too high splits every voice
/// (docs/DIARIZATION.md, "`num_speakers` is a ceiling").
pub(crate) fn cluster(emb: &[Vec<f32>], at_most: Option<usize>, p: &ClusterParams) -> Vec<usize> {
    let n = emb.len();
    if n <= 1 {
        return vec![0; n];
    }
    let cap = p.max_clustered.max(2);
    let sample: Vec<usize> = if n > cap { (0..cap).map(|i| i * n / cap).collect() } else { (0..n).collect() };
    let sub: Vec<&[f32]> = sample.iter().map(|&i| emb[i].as_slice()).collect();
    let all: Vec<&[f32]> = emb.iter().map(Vec::as_slice).collect();
    let known: Vec<bool> = (0..n).map(|i| n <= cap || sample.binary_search(&i).is_ok()).collect();
    let counted = refine(&all, spread(&sample, &ahc(&sub, p), n), &known);
    let k = count(&fold_small(&all, counted, p.min_fraction)).max(p.min_speakers).min(p.max_speakers);
    let k = at_most.map_or(k, |most| k.min(most.max(1)));
    compact(refine(&all, spread(&sample, &ward(&sub, k), n), &known))
}

/// Labels of the subsample `sample` spread over all `n` windows (the others get 0 until the
/// first reassignment pass, which ignores them).
fn spread(sample: &[usize], sub_labels: &[usize], n: usize) -> Vec<usize> {
    let mut labels = vec![0; n];
    for (&i, &l) in sample.iter().zip(sub_labels) {
        labels[i] = l;
    }
    labels
}

/// Two passes of reassignment to the closest centroid; the first pass takes its centroids from
/// the `known` (clustered) windows only, so it is also what labels the rest of a subsample.
fn refine(all: &[&[f32]], mut labels: Vec<usize>, known: &[bool]) -> Vec<usize> {
    for pass in 0..2 {
        let cents = centroids(all, &labels, known, pass);
        labels = all.iter().map(|e| closest(e, &cents)).collect();
    }
    labels
}

/// The number of distinct labels.
fn count(labels: &[usize]) -> usize {
    let mut seen: Vec<usize> = labels.to_vec();
    seen.sort_unstable();
    seen.dedup();
    seen.len()
}

/// Ward-linkage clustering into `k` clusters (fewer only if there are fewer embeddings).
fn ward(emb: &[&[f32]], k: usize) -> Vec<usize> {
    let n = emb.len();
    let mut dist = vec![0.0f32; n * n];
    for i in 0..n {
        for j in i + 1..n {
            // Squared Euclidean distance of unit vectors; Ward's update is exact on it.
            let d = (2.0 - 2.0 * dot(emb[i], emb[j])).max(0.0);
            dist[i * n + j] = d;
            dist[j * n + i] = d;
        }
    }
    let merges = nn_chain(&mut dist, n, Linkage::Ward);
    let mut parent: Vec<usize> = (0..n).collect();
    for &(a, b, _) in merges.iter().take(n.saturating_sub(k.max(1))) {
        let (ra, rb) = (find(&mut parent, a), find(&mut parent, b));
        parent[rb] = ra;
    }
    (0..n).map(|i| find(&mut parent, i)).collect()
}

/// Average-linkage clustering while the best average similarity is at least the threshold (and
/// on past it while there are more than `max_speakers` clusters).
fn ahc(emb: &[&[f32]], p: &ClusterParams) -> Vec<usize> {
    let n = emb.len();
    let mut dist = vec![0.0f32; n * n];
    for i in 0..n {
        for j in i + 1..n {
            // 1 − similarity: the average of these distances is 1 − the average similarity.
            let d = 1.0 - dot(emb[i], emb[j]);
            dist[i * n + j] = d;
            dist[j * n + i] = d;
        }
    }
    let merges = nn_chain(&mut dist, n, Linkage::Average);
    let mut parent: Vec<usize> = (0..n).collect();
    let mut clusters = n;
    for &(a, b, d) in &merges {
        if 1.0 - d < p.threshold && clusters <= p.max_speakers {
            break;
        }
        let (ra, rb) = (find(&mut parent, a), find(&mut parent, b));
        parent[rb] = ra;
        clusters -= 1;
    }
    (0..n).map(|i| find(&mut parent, i)).collect()
}

/// How the distance from a merged cluster to the others is updated (Lance–Williams).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Linkage {
    /// Mean pairwise distance.
    Average,
    /// Increase of the within-cluster sum of squares (on squared Euclidean distances).
    Ward,
}

/// The dendrogram as merges `(a, b, distance)`, closest first. `dist` (n × n, symmetric) is
/// overwritten.
fn nn_chain(dist: &mut [f32], n: usize, linkage: Linkage) -> Vec<(usize, usize, f32)> {
    let mut size = vec![1usize; n];
    let mut active = vec![true; n];
    let mut chain: Vec<usize> = Vec::new();
    let mut merges = Vec::with_capacity(n.saturating_sub(1));
    while merges.len() + 1 < n {
        if chain.is_empty() {
            chain.push(active.iter().position(|&a| a).expect("two clusters remain"));
        }
        let a = *chain.last().expect("chain is not empty");
        let prev = chain.len().checked_sub(2).map(|i| chain[i]);
        // The closest active cluster; the previous chain element wins ties, so the chain
        // always ends in a reciprocal pair.
        let mut best = prev.unwrap_or(usize::MAX);
        let mut best_d = prev.map_or(f32::INFINITY, |q| dist[a * n + q]);
        for k in 0..n {
            if active[k] && k != a && dist[a * n + k] < best_d {
                best = k;
                best_d = dist[a * n + k];
            }
        }
        if Some(best) != prev {
            chain.push(best);
            continue;
        }
        chain.truncate(chain.len() - 2);
        let b = best;
        merges.push((a, b, best_d));
        let (sa, sb) = (size[a] as f32, size[b] as f32);
        for k in 0..n {
            if active[k] && k != a && k != b {
                let (da, db) = (dist[a * n + k], dist[b * n + k]);
                let d = match linkage {
                    Linkage::Average => (sa * da + sb * db) / (sa + sb),
                    Linkage::Ward => {
                        let sk = size[k] as f32;
                        ((sa + sk) * da + (sb + sk) * db - sk * best_d) / (sa + sb + sk)
                    }
                };
                dist[a * n + k] = d;
                dist[k * n + a] = d;
            }
        }
        size[a] += size[b];
        active[b] = false;
    }
    // Both linkages are reducible, so sorting gives the same dendrogram (as scipy does).
    merges.sort_by(|x, y| x.2.total_cmp(&y.2));
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

/// Normalised mean embedding of each label of `labels` (`None` for a label no window has).
pub(crate) fn label_centroids(emb: &[Vec<f32>], labels: &[usize]) -> Vec<Option<Vec<f32>>> {
    let all: Vec<&[f32]> = emb.iter().map(Vec::as_slice).collect();
    centroids(&all, labels, &[], 1)
}

/// The label whose centroid is most similar to `e`.
pub(crate) fn closest(e: &[f32], cents: &[Option<Vec<f32>>]) -> usize {
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
pub(crate) fn compact(labels: Vec<usize>) -> Vec<usize> {
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
    fn a_requested_count_is_the_most_speakers() {
        let mut rng = Rng(3);
        let (emb, truth) = speakers(4, 10, 0.3, &mut rng);
        let p = ClusterParams::default();
        assert_eq!(cluster(&emb, Some(4), &p), truth);
        assert_eq!(count(&cluster(&emb, Some(2), &p)), 2);
        assert_eq!(count(&cluster(&emb, Some(1), &p)), 1);
        // Allowing more speakers than there are makes none up from the noise.
        assert_eq!(cluster(&emb, Some(6), &p), truth);
    }

    #[test]
    fn a_least_count_splits_voices_the_threshold_would_merge_but_a_request_wins() {
        // Two close voices: with the threshold alone they are one speaker.
        let mut rng = Rng(13);
        let base = normalised((0..64).map(|_| rng.next()).collect());
        let other: Vec<f32> = normalised(base.iter().map(|x| x + 0.35 * rng.next()).collect());
        let mut emb = Vec::new();
        for (centre, n) in [(&base, 20), (&other, 20)] {
            for _ in 0..n {
                emb.push(normalised(centre.iter().map(|x| x + 0.02 * rng.next()).collect()));
            }
        }
        let merged = ClusterParams { threshold: 0.3, ..ClusterParams::default() };
        assert_eq!(count(&cluster(&emb, None, &merged)), 1);
        let at_least_two = ClusterParams { min_speakers: 2, ..merged };
        let labels = cluster(&emb, None, &at_least_two);
        assert_eq!(labels, [vec![0; 20], vec![1; 20]].concat());
        assert_eq!(count(&cluster(&emb, Some(1), &at_least_two)), 1);
    }

    #[test]
    fn a_most_count_merges_voices_the_threshold_would_split_but_a_request_wins() {
        let mut rng = Rng(7);
        let (emb, _) = speakers(3, 20, 0.3, &mut rng);
        let one_voice = ClusterParams { max_speakers: 1, ..ClusterParams::default() };
        assert_eq!(cluster(&emb, None, &one_voice), vec![0; 60]);
        assert_eq!(count(&cluster(&emb, Some(3), &one_voice)), 1, "a request is clamped to the limit");
        let two = ClusterParams { max_speakers: 2, ..ClusterParams::default() };
        assert_eq!(count(&cluster(&emb, None, &two)), 2);
    }

    #[test]
    fn a_stray_window_is_folded_into_a_real_speaker() {
        let mut rng = Rng(5);
        let (mut emb, _) = speakers(2, 30, 0.3, &mut rng);
        emb.push(normalised((0..64).map(|_| rng.next()).collect()));
        assert_eq!(count(&cluster(&emb, None, &ClusterParams::default())), 2);
    }

    /// Ward's dendrogram the slow way: merge the pair whose union adds the least to the
    /// within-cluster sum of squares, recomputed from the points every time.
    fn ward_naive(emb: &[&[f32]]) -> Vec<f32> {
        let mut clusters: Vec<Vec<usize>> = (0..emb.len()).map(|i| vec![i]).collect();
        let sse = |c: &[usize]| -> f32 {
            let dim = emb[0].len();
            let mean: Vec<f32> = (0..dim).map(|d| c.iter().map(|&i| emb[i][d]).sum::<f32>() / c.len() as f32).collect();
            c.iter().map(|&i| emb[i].iter().zip(&mean).map(|(x, m)| (x - m) * (x - m)).sum::<f32>()).sum()
        };
        let mut heights = Vec::new();
        while clusters.len() > 1 {
            let mut best = (f32::INFINITY, 0, 0);
            for a in 0..clusters.len() {
                for b in a + 1..clusters.len() {
                    let u: Vec<usize> = clusters[a].iter().chain(&clusters[b]).copied().collect();
                    let inc = sse(&u) - sse(&clusters[a]) - sse(&clusters[b]);
                    if inc < best.0 {
                        best = (inc, a, b);
                    }
                }
            }
            let b = clusters.remove(best.2);
            clusters[best.1].extend(b);
            heights.push(best.0);
        }
        heights
    }

    #[test]
    fn ward_by_nearest_neighbour_chain_matches_the_definition() {
        let mut rng = Rng(13);
        let (emb, _) = speakers(3, 6, 0.8, &mut rng);
        let refs: Vec<&[f32]> = emb.iter().map(Vec::as_slice).collect();
        let n = refs.len();
        let mut dist = vec![0.0f32; n * n];
        for i in 0..n {
            for j in 0..n {
                dist[i * n + j] = if i == j { 0.0 } else { 2.0 - 2.0 * dot(refs[i], refs[j]) };
            }
        }
        let chain: Vec<f32> = nn_chain(&mut dist, n, Linkage::Ward).iter().map(|m| m.2).collect();
        // Lance–Williams on squared distances gives twice the increase in the sum of squares.
        let naive: Vec<f32> = ward_naive(&refs).into_iter().map(|h| 2.0 * h).collect();
        for (c, w) in chain.iter().zip(&naive) {
            assert!((c - w).abs() < 1e-3, "{chain:?} vs {naive:?}");
        }
    }

    #[test]
    fn outlying_windows_do_not_become_a_speaker_of_their_own() {
        // Two speakers of 12 windows each, plus two stray windows (half silence, say) that are
        // far from everything. Asked for two speakers, average linkage would give the strays
        // one cluster and lump both speakers into the other; Ward splits the speakers.
        let mut rng = Rng(17);
        let (mut emb, mut truth) = speakers(2, 12, 0.3, &mut rng);
        for _ in 0..2 {
            emb.push(normalised((0..64).map(|_| rng.next()).collect()));
            truth.push(usize::MAX);
        }
        let labels = cluster(&emb, Some(2), &ClusterParams::default());
        assert_eq!(&labels[..24], &truth[..24]);
    }

    #[test]
    fn long_inputs_are_subsampled_and_still_labelled() {
        let mut rng = Rng(9);
        let (emb, truth) = speakers(2, 1200, 0.3, &mut rng);
        assert_eq!(cluster(&emb, None, &ClusterParams::default()), truth);
        // A fortieth clustered, the rest joining the closest centroid.
        let few = ClusterParams { max_clustered: 60, ..ClusterParams::default() };
        assert_eq!(cluster(&emb, None, &few), truth);
        assert_eq!(cluster(&emb, Some(2), &few), truth);
    }
}
