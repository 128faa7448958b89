//! The reference index: every reference's landmarks, grouped by hash (a CSR table over the 2²¹
//! hash space), and the matcher that finds references inside a query.
//!
//! Matching: every query landmark is looked up under its own Δt and Δt ± 1 (a 5 % tempo change
//! moves Δt by up to 2.4 frames at the longest pairs); each hit gives a (reference, reference
//! frame, query frame) triple. A coarse pass keeps references with at least a few hits agreeing on
//! one 4-second offset band; a fine pass then scans time ratios 0.95–1.05 in steps of 0.01 and
//! counts, per ratio, hits whose `ref_frame − ratio × query_frame` fall in one 8-frame band. The
//! best (ratio, band) gives the match: its inlier count is its strength, their spans its segment.

mod density;
mod file;
mod significance;

pub use file::{IndexFileError, unique_suffix};
pub use significance::{SENSITIVE_AT, SUSPICIOUS_AT, score_of};

use super::{FRAME_SECS, Fingerprint, HASH_BITS, MAX_DT, dt_of};

const COARSE_BAND: i64 = 256;
/// Hits a reference needs in one 4 s offset band (or two neighbouring ones) to be aligned finely.
/// Chance reaches this for about 0.3 % of references of a 10,000-reference library against a
/// 3-minute query; a true 8 s excerpt puts far more there (the weakest measured: 75).
const MIN_COARSE_HITS: u32 = 10;
const FINE_BAND: f64 = 4.0;
/// The stretch of query over which agreement is counted as one piece of evidence: 10 s.
pub const LOCAL_FRAMES: u32 = 625;
/// Matches with fewer inlying landmarks than this are noise and not reported.
pub const MIN_MATCH_HITS: u32 = 6;
const RATIOS: [f64; 11] = [
    0.95, 0.96, 0.97, 0.98, 0.99, 1.0, 1.01, 1.02, 1.03, 1.04, 1.05,
];

/// How a match's agreement is weighed against chance (see [`Index::significance`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Weigh {
    /// Against what hashes spread evenly over every alignment give (before the whole-track
    /// calibration, bench/README.md "Calibration"; kept to measure against).
    Evenly,
    /// Against that, and against the reference's own other alignments with this query: agreement
    /// a loop or a sample shared by two pieces gives at each of its repetitions is not evidence
    /// that the query holds the reference's recording.
    AgainstOwnAlignments,
    /// By what the query reproduces of the reference where it agrees best (its
    /// [`Match::coverage`]) and how far that alignment stands out. A query holding the recording
    /// reproduces a fair share of the reference's landmarks there (at least 20 % under 10 dB of
    /// noise) and agrees best at one place: at least [`COVERED`] and a runner-up under
    /// [`REPEATS`] of the best is weighed [`Weigh::Evenly`] (the runner-up is the reference
    /// playing the passage again, varied). Otherwise [`Weigh::AgainstOwnAlignments`]: a loop two
    /// pieces share agrees about as well at each repetition; and under [`COVERED`] only the share
    /// of the agreement that coverage would explain counts (hits × coverage ÷ [`COVERED`]): the
    /// query shares part of the reference's sound there (one instrument's patch, a drum
    /// sample), not the recording.
    #[default]
    ByCoverage,
}

/// The coverage from which a match can reproduce the reference's recording (see
/// [`Weigh::ByCoverage`]). Measured (bench/README.md, "Calibration"): true excerpts and uploads
/// 0.20 at the least (8 s under 10 dB of noise); pieces sharing a patch or a sample with a
/// reference 0.14 at the most, and 0.17 for one sharing a loop.
pub const COVERED: f64 = 0.15;
/// The runner-up's share of the best alignment from which the pair is taken to share a loop
/// (see [`Weigh::ByCoverage`]). Measured: true excerpts and uploads 0.55 at the most, the piece
/// sharing a loop 0.98.
pub const REPEATS: f64 = 0.75;

/// Where a reference was found.
#[derive(Debug, Clone, PartialEq)]
pub struct MatchSegment {
    /// Seconds into the query where the match starts.
    pub query_offset_secs: f64,
    /// Seconds into the reference that line up with `query_offset_secs`.
    pub reference_offset_secs: f64,
    /// Seconds of the query the match spans.
    pub duration_secs: f64,
}

/// One reference found in a query.
#[derive(Debug, Clone, PartialEq)]
pub struct Match {
    /// Position of the reference in the index (see [`Index::reference`]).
    pub reference: usize,
    /// Query landmarks that agree on one alignment.
    pub hits: u32,
    /// Query landmarks inside the matched span (for a hit ratio).
    pub span_landmarks: u32,
    /// The most agreeing landmarks in any [`LOCAL_FRAMES`] of the query (diagnostic: how
    /// concentrated the agreement is).
    pub local_hits: u32,
    /// The share of the reference's landmarks in the stretch of those `local_hits` that the query
    /// reproduces (0–1).
    pub coverage: f64,
    /// Agreeing landmarks at the strongest other alignment of the same reference and ratio, off
    /// this match's own diagonal: what the pair's shared material (a loop, a sample) gives
    /// anywhere, weighed by [`Weigh::AgainstOwnAlignments`].
    pub runner_up: u32,
    /// Reference time per query time (1.05: the query plays 5 % faster).
    pub time_ratio: f64,
    /// −log₁₀ of the false-alarm probability: how unlikely it is that chance alone gives some
    /// reference of this library `hits` agreeing landmarks against this query (see
    /// [`Index::query`]). 3 means one query in a thousand.
    pub significance: f64,
    /// The 0–100 score of [`score_of`] for `significance`.
    pub score: u8,
    pub segment: MatchSegment,
}

/// An immutable index over reference fingerprints: built in memory ([`Index::build`],
/// [`Index::rebuild`]) or mapped from a file ([`Index::write`], [`Index::open`]).
pub struct Index {
    ids: Vec<String>,
    /// Spectrogram frames of each reference.
    frames: Vec<u32>,
    /// Where each reference's blocks start in the density table.
    density_starts: Vec<usize>,
    tables: Tables,
}

/// `offsets[h]..offsets[h + 1]` are the postings of hash `h`; a posting is (reference, frame)
/// packed as `reference << 32 | frame`.
enum Tables {
    Heap {
        offsets: Vec<u32>,
        postings: Vec<u64>,
        density: Vec<u16>,
    },
    /// Byte ranges of a mapped index file (checked for length and alignment when opened).
    Mapped {
        map: memmap2::Mmap,
        offsets: std::ops::Range<usize>,
        postings: std::ops::Range<usize>,
        density: std::ops::Range<usize>,
    },
}

impl Tables {
    fn offsets(&self) -> &[u32] {
        match self {
            Tables::Heap { offsets, .. } => offsets,
            Tables::Mapped { map, offsets, .. } => bytemuck::cast_slice(&map[offsets.clone()]),
        }
    }

    fn postings(&self) -> &[u64] {
        match self {
            Tables::Heap { postings, .. } => postings,
            Tables::Mapped { map, postings, .. } => bytemuck::cast_slice(&map[postings.clone()]),
        }
    }

    fn density(&self) -> &[u16] {
        match self {
            Tables::Heap { density, .. } => density,
            Tables::Mapped { map, density, .. } => bytemuck::cast_slice(&map[density.clone()]),
        }
    }
}

impl Index {
    /// Builds the index; `refs` pairs an id with its fingerprint.
    pub fn build(refs: Vec<(String, Fingerprint)>) -> Index {
        let buckets = 1usize << HASH_BITS;
        let mut counts = vec![0u32; buckets + 1];
        for (_, fp) in &refs {
            for landmark in &fp.landmarks {
                counts[landmark.hash as usize + 1] += 1;
            }
        }
        for h in 0..buckets {
            counts[h + 1] += counts[h];
        }
        let offsets = counts.clone();
        let mut fill = counts;
        let mut postings = vec![0u64; *offsets.last().expect("non-empty") as usize];
        let mut ids = Vec::with_capacity(refs.len());
        let mut frames = Vec::with_capacity(refs.len());
        let mut density = Vec::new();
        for (reference, (id, fp)) in refs.into_iter().enumerate() {
            for landmark in &fp.landmarks {
                let slot = &mut fill[landmark.hash as usize];
                postings[*slot as usize] = ((reference as u64) << 32) | u64::from(landmark.frame);
                *slot += 1;
            }
            density::push_blocks(&mut density, &fp);
            ids.push(id);
            frames.push(fp.frames);
        }
        Index {
            ids,
            density_starts: density::starts(&frames),
            frames,
            tables: Tables::Heap {
                offsets,
                postings,
                density,
            },
        }
    }

    /// A new index of the references of this one for which `keep` holds, in their order, then
    /// `added`; one pass over the postings, without the references' fingerprints.
    pub fn rebuild(
        &self,
        keep: &dyn Fn(usize) -> bool,
        added: Vec<(String, Fingerprint)>,
    ) -> Index {
        let kept: Vec<usize> = (0..self.len()).filter(|&r| keep(r)).collect();
        let mut renumber = vec![u32::MAX; self.len()];
        for (new, &old) in kept.iter().enumerate() {
            renumber[old] = new as u32;
        }
        let buckets = 1usize << HASH_BITS;
        let (old_offsets, old_postings) = (self.tables.offsets(), self.tables.postings());
        let mut counts = vec![0u32; buckets + 1];
        for h in 0..buckets {
            let bucket = &old_postings[old_offsets[h] as usize..old_offsets[h + 1] as usize];
            counts[h + 1] = bucket
                .iter()
                .filter(|p| renumber[(*p >> 32) as usize] != u32::MAX)
                .count() as u32;
        }
        for (_, fp) in &added {
            for landmark in &fp.landmarks {
                counts[landmark.hash as usize + 1] += 1;
            }
        }
        for h in 0..buckets {
            counts[h + 1] += counts[h];
        }
        let mut postings = vec![0u64; counts[buckets] as usize];
        let mut fill = counts.clone();
        for h in 0..buckets {
            let bucket = &old_postings[old_offsets[h] as usize..old_offsets[h + 1] as usize];
            for posting in bucket {
                let new = renumber[(posting >> 32) as usize];
                if new != u32::MAX {
                    postings[fill[h] as usize] = (u64::from(new) << 32) | (posting & 0xffff_ffff);
                    fill[h] += 1;
                }
            }
        }
        let mut ids: Vec<String> = kept.iter().map(|&r| self.ids[r].clone()).collect();
        let mut frames: Vec<u32> = kept.iter().map(|&r| self.frames[r]).collect();
        let mut density: Vec<u16> = kept
            .iter()
            .flat_map(|&r| self.blocks(r).iter().copied())
            .collect();
        for (id, fp) in added {
            let reference = ids.len() as u64;
            for landmark in &fp.landmarks {
                let slot = &mut fill[landmark.hash as usize];
                postings[*slot as usize] = (reference << 32) | u64::from(landmark.frame);
                *slot += 1;
            }
            density::push_blocks(&mut density, &fp);
            ids.push(id);
            frames.push(fp.frames);
        }
        Index {
            ids,
            density_starts: density::starts(&frames),
            frames,
            tables: Tables::Heap {
                offsets: counts,
                postings,
                density,
            },
        }
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The id and duration of reference `n`.
    pub fn reference(&self, n: usize) -> (&str, f64) {
        (&self.ids[n], f64::from(self.frames[n]) * FRAME_SECS)
    }

    /// Bytes of the index's tables (in memory, or mapped from its file).
    pub fn table_bytes(&self) -> usize {
        self.tables.offsets().len() * 4
            + self.tables.postings().len() * 8
            + self.tables.density().len() * 2
            + self.ids.iter().map(|i| i.len() + 24).sum::<usize>()
    }

    /// Whether the tables are mapped from a file rather than held in memory.
    pub fn is_mapped(&self) -> bool {
        matches!(self.tables, Tables::Mapped { .. })
    }

    /// Reference `n`'s landmark counts by block (see [`density`]).
    fn blocks(&self, n: usize) -> &[u16] {
        let start = self.density_starts[n];
        &self.tables.density()[start..start + density::blocks_of(self.frames[n])]
    }

    fn postings(&self, hash: u32) -> &[u64] {
        let h = hash as usize;
        let offsets = self.tables.offsets();
        &self.tables.postings()[offsets[h] as usize..offsets[h + 1] as usize]
    }

    /// Every reference found in `query` with at least [`MIN_MATCH_HITS`] agreeing landmarks,
    /// strongest first.
    pub fn query(&self, query: &Fingerprint) -> Vec<Match> {
        self.query_weighing(query, Weigh::default())
    }

    /// [`Index::query`], weighing agreement as `weigh` says.
    pub fn query_weighing(&self, query: &Fingerprint, weigh: Weigh) -> Vec<Match> {
        // (reference, reference frame, query landmark index)
        let mut hits: Vec<(u32, u32, u32)> = Vec::new();
        // The same hits as `reference << 32 | coarse offset band`, for a sort-and-count pass.
        let mut coarse: Vec<u64> = Vec::new();
        for (qi, landmark) in query.landmarks.iter().enumerate() {
            let dt = dt_of(landmark.hash);
            let base = landmark.hash & !0x3f;
            let query_frame = i64::from(landmark.frame);
            for variant in [dt, dt.wrapping_sub(1), dt + 1] {
                if variant == 0 || variant > MAX_DT || (variant != dt && dt < 4) {
                    continue;
                }
                let postings = self.postings(base | variant);
                hits.reserve(postings.len());
                coarse.reserve(postings.len());
                for posting in postings {
                    let (reference, frame) = ((posting >> 32) as u32, *posting as u32);
                    if reference as usize >= self.ids.len() {
                        continue;
                    }
                    hits.push((reference, frame, qi as u32));
                    // Offsets are shifted by 2³¹ frames to stay positive.
                    let band = (i64::from(frame) - query_frame + (1 << 31)) / COARSE_BAND;
                    coarse.push((u64::from(reference) << 32) | band as u64);
                }
            }
        }
        if hits.is_empty() {
            return Vec::new();
        }
        // Coarse: references with enough hits in one offset band (or two neighbouring ones).
        radix_sort(&mut coarse);
        let mut candidates: Vec<u32> = Vec::new();
        // (reference, hits in any alignment): what chance gives each reference.
        let mut totals: Vec<(u32, u32)> = Vec::new();
        let mut i = 0;
        let mut previous: Option<(u64, u32)> = None;
        while i < coarse.len() {
            let key = coarse[i];
            let run = coarse[i..].partition_point(|&k| k == key) as u32;
            let reference = (key >> 32) as u32;
            match totals.last_mut() {
                Some((r, n)) if *r == reference => *n += run,
                _ => totals.push((reference, run)),
            }
            let neighbour = previous
                .filter(|&(k, _)| k + 1 == key)
                .map_or(0, |(_, count)| count);
            if run + neighbour >= MIN_COARSE_HITS && candidates.last() != Some(&reference) {
                candidates.push(reference);
            }
            previous = Some((key, run));
            i += run as usize;
        }
        if candidates.is_empty() {
            return Vec::new();
        }
        hits.retain(|(reference, _, _)| candidates.binary_search(reference).is_ok());
        hits.sort_unstable();

        let mut matches = Vec::new();
        for group in hits.chunk_by(|a, b| a.0 == b.0) {
            if let Some(mut found) = self.align(query, group) {
                let own = Some((found.reference as u32, found.runner_up));
                let hits = f64::from(found.hits);
                let (hits, own) = match weigh {
                    Weigh::Evenly => (hits, None),
                    Weigh::AgainstOwnAlignments => (hits, own),
                    Weigh::ByCoverage
                        if found.coverage >= COVERED
                            && f64::from(found.runner_up) < REPEATS * hits =>
                    {
                        (hits, None)
                    }
                    Weigh::ByCoverage => (hits * (found.coverage / COVERED).min(1.0), own),
                };
                found.significance = self.significance(&totals, query.frames, hits, own);
                found.score = score_of(found.significance);
                matches.push(found);
            }
        }
        matches.sort_by(|a, b| b.hits.cmp(&a.hits).then(a.reference.cmp(&b.reference)));
        matches
    }

    /// The best alignment of one reference's hits, if strong enough.
    fn align(&self, query: &Fingerprint, hits: &[(u32, u32, u32)]) -> Option<Match> {
        let query_frame = |qi: u32| f64::from(query.landmarks[qi as usize].frame);
        // Hits counted per offset band in an array over every band a hit can fall in (a counting
        // pass per ratio, not a sort: long queries bring hundreds of thousands of hits).
        let lowest =
            -(f64::from(query.frames) * RATIOS[RATIOS.len() - 1] / FINE_BAND).ceil() as i64 - 2;
        let highest = (f64::from(self.frames[hits[0].0 as usize]) / FINE_BAND).ceil() as i64 + 2;
        let mut counts = vec![0u32; (highest - lowest + 2) as usize];
        let count_at = |ratio: f64, counts: &mut Vec<u32>| {
            counts.fill(0);
            for &(_, frame, qi) in hits {
                let band =
                    ((f64::from(frame) - ratio * query_frame(qi)) / FINE_BAND).floor() as i64;
                let slot = (band - lowest).clamp(0, counts.len() as i64 - 2) as usize;
                counts[slot] += 1;
            }
        };
        let mut best: Option<(u32, f64, i64)> = None;
        for ratio in RATIOS {
            count_at(ratio, &mut counts);
            // The densest pair of neighbouring bands.
            for slot in 0..counts.len() - 1 {
                if counts[slot] == 0 {
                    continue;
                }
                let count = counts[slot] + counts[slot + 1];
                if best.is_none_or(|(c, r, _)| {
                    count > c || (count == c && (ratio - 1.0).abs() < (r - 1.0).abs())
                }) {
                    best = Some((count, ratio, slot as i64 + lowest));
                }
            }
        }
        let (_, ratio, band) = best?;
        // The strongest alignment off this one's diagonal, which drifts by up to half a ratio
        // step over the query.
        let drift = (0.006 * f64::from(query.frames) / FINE_BAND).ceil() as i64 + 3;
        count_at(ratio, &mut counts);
        let runner_up = (0..counts.len() - 1)
            .filter(|&slot| counts[slot] > 0 && (slot as i64 + lowest - band).abs() > drift)
            .map(|slot| counts[slot] + counts[slot + 1])
            .max()
            .unwrap_or(0);

        let low = band as f64 * FINE_BAND;
        let high = low + 2.0 * FINE_BAND;
        let mut inliers: Vec<(u32, u32)> = hits
            .iter()
            .filter(|&&(_, frame, qi)| {
                let d = f64::from(frame) - ratio * query_frame(qi);
                d >= low && d < high
            })
            .map(|&(_, frame, qi)| (qi, frame))
            .collect();
        inliers.sort_unstable();
        inliers.dedup_by_key(|(qi, _)| *qi);
        let count = inliers.len() as u32;
        if count < MIN_MATCH_HITS {
            return None;
        }
        // The densest LOCAL_FRAMES of the query (inliers are in query order).
        let mut local_hits = 0u32;
        let mut densest = 0..=0;
        let mut from = 0;
        for to in 0..inliers.len() {
            let end = query.landmarks[inliers[to].0 as usize].frame;
            while query.landmarks[inliers[from].0 as usize].frame + LOCAL_FRAMES <= end {
                from += 1;
            }
            if (to - from + 1) as u32 > local_hits {
                local_hits = (to - from + 1) as u32;
                densest = from..=to;
            }
        }
        let (low_frame, high_frame) = inliers[densest]
            .iter()
            .fold((u32::MAX, 0), |(low, high), &(_, f)| {
                (low.min(f), high.max(f))
            });
        let own =
            density::landmarks_between(self.blocks(hits[0].0 as usize), low_frame, high_frame);
        let coverage = (f64::from(local_hits) / own.max(1.0)).min(1.0);
        let (first_qi, first_frame) = inliers[0];
        let (last_qi, _) = inliers[inliers.len() - 1];
        let start = query.landmarks[first_qi as usize].frame;
        let end = query.landmarks[last_qi as usize].frame;
        let span_landmarks = query
            .landmarks
            .iter()
            .filter(|l| l.frame >= start && l.frame <= end)
            .count() as u32;
        Some(Match {
            reference: hits[0].0 as usize,
            hits: count,
            span_landmarks,
            local_hits,
            coverage,
            runner_up,
            time_ratio: ratio,
            significance: 0.0,
            score: 0,
            segment: MatchSegment {
                query_offset_secs: f64::from(start) * FRAME_SECS,
                reference_offset_secs: f64::from(first_frame) * FRAME_SECS,
                duration_secs: f64::from(end - start) * FRAME_SECS,
            },
        })
    }
}

/// LSD radix sort of u64 keys, a byte at a time, skipping bytes every key shares: several times
/// faster than a comparison sort for the hundreds of thousands of hits of a long query.
fn radix_sort(keys: &mut Vec<u64>) {
    let mut scratch = vec![0u64; keys.len()];
    for shift in (0..64).step_by(8) {
        let mut counts = [0usize; 256];
        for &key in keys.iter() {
            counts[((key >> shift) & 0xff) as usize] += 1;
        }
        if counts.contains(&keys.len()) {
            continue;
        }
        let mut start = 0;
        for count in counts.iter_mut() {
            let n = *count;
            *count = start;
            start += n;
        }
        for &key in keys.iter() {
            let digit = ((key >> shift) & 0xff) as usize;
            scratch[counts[digit]] = key;
            counts[digit] += 1;
        }
        std::mem::swap(keys, &mut scratch);
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::{Landmark, pack};
    use super::*;

    pub(super) fn synthetic(seed: u64, frames: u32) -> Fingerprint {
        let mut state = seed.max(1);
        let mut landmarks = Vec::new();
        for frame in (0..frames).step_by(2) {
            for _ in 0..3 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let f1 = 20 + (state % 199) as u32;
                let df = ((state >> 8) % 121) as i32 - 60;
                let dt = 1 + ((state >> 16) % 48) as u32;
                landmarks.push(Landmark {
                    hash: pack(f1, df, dt),
                    frame,
                });
            }
        }
        Fingerprint { landmarks, frames }
    }

    #[test]
    fn an_excerpt_is_found_at_its_offset() {
        let refs: Vec<(String, Fingerprint)> = (0..20)
            .map(|i| (format!("ref{i}"), synthetic(i + 1, 3000)))
            .collect();
        let target = refs[7].1.clone();
        let index = Index::build(refs);
        // Frames 1000..1500 of ref 7, shifted to start at query frame 200.
        let excerpt = Fingerprint {
            landmarks: target
                .landmarks
                .iter()
                .filter(|l| (1000..1500).contains(&l.frame))
                .map(|l| Landmark {
                    hash: l.hash,
                    frame: l.frame - 800,
                })
                .collect(),
            frames: 800,
        };
        let found = index.query(&excerpt);
        assert_eq!(found[0].reference, 7, "{found:?}");
        assert_eq!(found[0].time_ratio, 1.0);
        let seg = &found[0].segment;
        assert!(
            (seg.query_offset_secs - 200.0 * FRAME_SECS).abs() < 0.05,
            "{seg:?}"
        );
        assert!(
            (seg.reference_offset_secs - 1000.0 * FRAME_SECS).abs() < 0.05,
            "{seg:?}"
        );
        assert!(
            found.iter().skip(1).all(|m| m.hits < found[0].hits / 10),
            "{found:?}"
        );
    }

    /// Every `every`-th landmark of `reference`'s frames 1000..1500, placed at each of `at` in
    /// other music.
    fn part_of(reference: &Fingerprint, every: usize, at: &[u32]) -> Fingerprint {
        let part: Vec<&Landmark> = reference
            .landmarks
            .iter()
            .filter(|l| (1000..1500).contains(&l.frame))
            .step_by(every)
            .collect();
        let mut landmarks: Vec<Landmark> = at
            .iter()
            .flat_map(|&start| {
                part.iter().map(move |l| Landmark {
                    hash: l.hash,
                    frame: l.frame - 1000 + start,
                })
            })
            .collect();
        // The rest of the query: other music.
        let frames = at.iter().max().copied().unwrap_or(0) + 600;
        landmarks.extend(synthetic(999, frames).landmarks);
        landmarks.sort_by_key(|l| l.frame);
        Fingerprint { landmarks, frames }
    }

    #[test]
    fn agreement_is_weighed_by_what_the_query_reproduces_of_the_reference() {
        let refs: Vec<(String, Fingerprint)> = (0..20)
            .map(|i| (format!("ref{i}"), synthetic(i + 1, 3000)))
            .collect();
        let target = refs[7].1.clone();
        let index = Index::build(refs);
        let weighed = |query: &Fingerprint, weigh| {
            let found = index.query_weighing(query, weigh);
            assert_eq!(found[0].reference, 7, "{found:?}");
            found[0].clone()
        };
        // A third of the reference's landmarks there, at one place: its recording.
        let recording = part_of(&target, 3, &[200]);
        let found = weighed(&recording, Weigh::ByCoverage);
        assert!((found.coverage - 1.0 / 3.0).abs() < 0.05, "{found:?}");
        assert_eq!(
            found.significance,
            weighed(&recording, Weigh::Evenly).significance
        );
        assert_eq!(found.score, 100);
        // A fortieth of them (one instrument's patch): only the share coverage explains counts.
        let patch = part_of(&target, 40, &[200]);
        let (found, evenly) = (
            weighed(&patch, Weigh::ByCoverage),
            weighed(&patch, Weigh::Evenly),
        );
        assert!(found.coverage < COVERED, "{found:?}");
        assert!(evenly.score > 60, "{evenly:?}");
        assert!(found.score <= 60, "{found:?}");
        // The same third at two places (a loop): weighed against its own other alignments.
        let looped = part_of(&target, 3, &[200, 1400]);
        let found = weighed(&looped, Weigh::ByCoverage);
        assert!(
            f64::from(found.runner_up) >= REPEATS * f64::from(found.hits),
            "{found:?}"
        );
        assert_eq!(
            found.significance,
            weighed(&looped, Weigh::AgainstOwnAlignments).significance
        );
        assert!(found.score <= 60, "{found:?}");
    }

    #[test]
    fn radix_sort_sorts() {
        let mut keys: Vec<u64> = (0..10_000u64)
            .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (i << 40))
            .collect();
        let mut expected = keys.clone();
        expected.sort_unstable();
        radix_sort(&mut keys);
        assert_eq!(keys, expected);
    }

    #[test]
    fn unrelated_queries_find_nothing() {
        let refs: Vec<(String, Fingerprint)> = (0..20)
            .map(|i| (format!("ref{i}"), synthetic(i + 1, 3000)))
            .collect();
        let index = Index::build(refs);
        let found = index.query(&synthetic(999, 3000));
        assert!(found.is_empty(), "{found:?}");
    }
}
