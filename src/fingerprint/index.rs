//! The reference index: every reference's landmarks, grouped by hash (a CSR table over the 2²¹
//! hash space), and the matcher that finds references inside a query.
//!
//! Matching: every query landmark is looked up under its own Δt and Δt ± 1 (a 5 % tempo change
//! moves Δt by up to 2.4 frames at the longest pairs); each hit gives a (reference, reference
//! frame, query frame) triple. A coarse pass keeps references with at least a few hits agreeing on
//! one 4-second offset band; a fine pass then scans time ratios 0.95–1.05 in steps of 0.01 and
//! counts, per ratio, hits whose `ref_frame − ratio × query_frame` fall in one 8-frame band. The
//! best (ratio, band) gives the match: its inlier count is its strength, their spans its segment.

use super::{FRAME_SECS, Fingerprint, MAX_DT, dt_of};

const HASH_BITS: u32 = 21;
const COARSE_BAND: i64 = 256;
/// Hits a reference needs in one 4 s offset band (or two neighbouring ones) to be aligned finely.
/// Chance reaches this for about 0.3 % of references of a 10,000-reference library against a
/// 3-minute query; a true 8 s excerpt puts far more there (the weakest measured: 75).
const MIN_COARSE_HITS: u32 = 10;
const FINE_BAND: f64 = 4.0;
/// Landmarks per independent chance agreement (see [`Index::significance`]). Measured on 498
/// queries outside the test library (tests/it/fingerprint.rs, 1,435 chance matches): counted one
/// by one, chance agreements reached a significance of 11.7, far beyond what 498 queries should
/// show (about log₁₀ 498 = 2.7); in clumps of 2 they reached 4.0, of 2.5 about 2.7, of 3 1.7. 3
/// errs on the side of calling agreement chance; true 8 s excerpts keep a significance of 37+.
const CLUMP: f64 = 3.0;
/// Significance (−log₁₀ false-alarm probability) at which a match becomes suspicious (61) and
/// sensitive (91).
pub const SUSPICIOUS_AT: f64 = 4.0;
pub const SENSITIVE_AT: f64 = 12.0;
/// Matches with fewer inlying landmarks than this are noise and not reported.
pub const MIN_MATCH_HITS: u32 = 6;
const RATIOS: [f64; 11] = [
    0.95, 0.96, 0.97, 0.98, 0.99, 1.0, 1.01, 1.02, 1.03, 1.04, 1.05,
];

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
    tables: Tables,
}

/// `offsets[h]..offsets[h + 1]` are the postings of hash `h`; a posting is (reference, frame)
/// packed as `reference << 32 | frame`.
enum Tables {
    Heap {
        offsets: Vec<u32>,
        postings: Vec<u64>,
    },
    /// Byte ranges of a mapped index file (checked for length and alignment when opened).
    Mapped {
        map: memmap2::Mmap,
        offsets: std::ops::Range<usize>,
        postings: std::ops::Range<usize>,
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
}

const FILE_MAGIC: &[u8; 8] = b"ESIX0001";
/// Magic, then six little-endian u64s: references, postings, hash bits, bytes of the ids' JSON,
/// bytes of the caller's metadata, and a checksum of the header.
const HEADER_BYTES: usize = 8 + 6 * 8;

/// An index file that cannot be used (it is then rebuilt from the library's entries).
#[derive(Debug, thiserror::Error)]
pub enum IndexFileError {
    #[error("index file {path}: {message}")]
    Io { path: String, message: String },
    #[error("index file {path} is not a valid earshot index: {message}")]
    Invalid { path: String, message: String },
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
        for (reference, (id, fp)) in refs.into_iter().enumerate() {
            for landmark in &fp.landmarks {
                let slot = &mut fill[landmark.hash as usize];
                postings[*slot as usize] = ((reference as u64) << 32) | u64::from(landmark.frame);
                *slot += 1;
            }
            ids.push(id);
            frames.push(fp.frames);
        }
        Index {
            ids,
            frames,
            tables: Tables::Heap { offsets, postings },
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
        for (id, fp) in added {
            let reference = ids.len() as u64;
            for landmark in &fp.landmarks {
                let slot = &mut fill[landmark.hash as usize];
                postings[*slot as usize] = (reference << 32) | u64::from(landmark.frame);
                *slot += 1;
            }
            ids.push(id);
            frames.push(fp.frames);
        }
        Index {
            ids,
            frames,
            tables: Tables::Heap {
                offsets: counts,
                postings,
            },
        }
    }

    /// Writes the index and `meta` (the caller's bytes, returned by [`Index::open`]) to `path`,
    /// through a temporary file beside it and a rename: a reader mapping `path` keeps the file it
    /// opened.
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn write(&self, path: &std::path::Path, meta: &[u8]) -> Result<(), IndexFileError> {
        use std::io::Write;
        let io = |e: std::io::Error| IndexFileError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        let ids = serde_json::to_vec(&self.ids).expect("strings serialise");
        let (offsets, postings) = (self.tables.offsets(), self.tables.postings());
        let name = path
            .file_name()
            .map_or_else(Default::default, |n| n.to_string_lossy().into_owned());
        let partial = path.with_file_name(format!(".{name}.{}.partial", unique_suffix()));
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let file = std::fs::File::create(&partial).map_err(io)?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
        let fields = [
            self.ids.len() as u64,
            postings.len() as u64,
            u64::from(HASH_BITS),
            ids.len() as u64,
            meta.len() as u64,
        ];
        let mut header = FILE_MAGIC.to_vec();
        for field in fields {
            header.extend_from_slice(&field.to_le_bytes());
        }
        header.extend_from_slice(&header_check(&fields).to_le_bytes());
        let written = (|| -> std::io::Result<()> {
            out.write_all(&header)?;
            write_padded(&mut out, bytemuck::cast_slice(&self.frames))?;
            write_padded(&mut out, bytemuck::cast_slice(offsets))?;
            out.write_all(bytemuck::cast_slice(postings))?;
            out.write_all(&ids)?;
            out.write_all(meta)?;
            out.into_inner().map_err(|e| e.into_error())?.sync_all()
        })();
        if let Err(e) = written.and_then(|()| std::fs::rename(&partial, path)) {
            let _ = std::fs::remove_file(&partial);
            return Err(io(e));
        }
        Ok(())
    }

    /// Maps an index file written by [`Index::write`]; returns it with the caller's metadata.
    ///
    /// # Errors
    /// The file cannot be read, or is not a complete index of this version.
    pub fn open(path: &std::path::Path) -> Result<(Index, Vec<u8>), IndexFileError> {
        let invalid = |message: String| IndexFileError::Invalid {
            path: path.display().to_string(),
            message,
        };
        let file = std::fs::File::open(path).map_err(|e| IndexFileError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        let map = map_file(&file).map_err(|e| IndexFileError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        if cfg!(target_endian = "big") {
            return Err(invalid(
                "index files are little-endian; this machine is not".into(),
            ));
        }
        if map.len() < HEADER_BYTES || &map[..8] != FILE_MAGIC {
            return Err(invalid("no ESIX0001 header".into()));
        }
        let field =
            |n: usize| u64::from_le_bytes(map[8 + n * 8..16 + n * 8].try_into().expect("8 bytes"));
        let fields = [field(0), field(1), field(2), field(3), field(4)];
        if field(5) != header_check(&fields) || fields[2] != u64::from(HASH_BITS) {
            return Err(invalid("header checksum or hash size differs".into()));
        }
        // Sizes no index can have (and whose sums below would overflow) are refused first.
        if fields.iter().any(|&f| f > map.len() as u64) {
            return Err(invalid("a size in the header exceeds the file".into()));
        }
        let [refs, postings, _, ids_len, meta_len] = fields.map(|f| f as usize);
        let frames_at = HEADER_BYTES;
        let offsets_at = frames_at + padded(refs * 4);
        let postings_at = offsets_at + padded(((1 << HASH_BITS) + 1) * 4);
        let ids_at = postings_at + postings * 8;
        let end = ids_at + ids_len + meta_len;
        if map.len() != end {
            return Err(invalid(format!(
                "{} bytes, the header says {end}",
                map.len()
            )));
        }
        let frames: Vec<u32> = map[frames_at..frames_at + refs * 4]
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
            .collect();
        let ids: Vec<String> = serde_json::from_slice(&map[ids_at..ids_at + ids_len])
            .map_err(|e| invalid(format!("ids: {e}")))?;
        if ids.len() != refs {
            return Err(invalid(format!("{} ids for {refs} references", ids.len())));
        }
        // The casts need 4- and 8-byte alignment (a mapping starts on a page; every table starts
        // on a multiple of 8 in the file).
        if bytemuck::try_cast_slice::<u8, u64>(&map[postings_at..ids_at]).is_err() {
            return Err(invalid("tables are not aligned in memory".into()));
        }
        let meta = map[ids_at + ids_len..end].to_vec();
        let tables = Tables::Mapped {
            offsets: offsets_at..offsets_at + ((1 << HASH_BITS) + 1) * 4,
            postings: postings_at..ids_at,
            map,
        };
        // The offsets are read whole (8 MB); the postings are not, so that a start touches none
        // of their pages: a query skips any naming a reference the index does not have.
        let offsets = tables.offsets();
        let sane = offsets[0] == 0
            && offsets.windows(2).all(|w| w[0] <= w[1])
            && offsets[offsets.len() - 1] as usize == postings;
        if !sane {
            return Err(invalid("tables are inconsistent".into()));
        }
        Ok((
            Index {
                ids,
                frames,
                tables,
            },
            meta,
        ))
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
            + self.ids.iter().map(|i| i.len() + 24).sum::<usize>()
    }

    /// Whether the tables are mapped from a file rather than held in memory.
    pub fn is_mapped(&self) -> bool {
        matches!(self.tables, Tables::Mapped { .. })
    }

    fn postings(&self, hash: u32) -> &[u64] {
        let h = hash as usize;
        let offsets = self.tables.offsets();
        &self.tables.postings()[offsets[h] as usize..offsets[h + 1] as usize]
    }

    /// Every reference found in `query` with at least [`MIN_MATCH_HITS`] agreeing landmarks,
    /// strongest first.
    pub fn query(&self, query: &Fingerprint) -> Vec<Match> {
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
                found.significance = self.significance(&totals, query.frames, found.hits);
                found.score = score_of(found.significance);
                matches.push(found);
            }
        }
        matches.sort_by(|a, b| b.hits.cmp(&a.hits).then(a.reference.cmp(&b.reference)));
        matches
    }

    /// −log₁₀ of the probability that chance alone puts `hits` agreeing landmarks in one
    /// alignment of some reference, for a query of `query_frames` frames whose lookups hit each
    /// reference `totals` times in all.
    ///
    /// Chance hits of reference r spread over every offset the query can take against it
    /// (`range` = its frames + the query's), so one alignment window of 2 × [`FINE_BAND`] frames
    /// expects λ = hits × window ÷ range of them, Poisson-distributed; the matcher tries
    /// range ÷ [`FINE_BAND`] windows at each of the [`RATIOS`]. Summed over the library:
    /// FA = Σ windows × P(Poisson(λ) ≥ k). Hits come in clumps (an anchor peak that lines up by
    /// chance often brings its paired peaks along, and one query landmark is looked up under three
    /// Δt), so counts are taken in units of [`CLUMP`] landmarks. A reference sharing many hashes
    /// with the query (one composer's instruments, a short or band-limited query whose few
    /// landmarks are common ones) thus needs proportionally more agreeing landmarks.
    fn significance(&self, totals: &[(u32, u32)], query_frames: u32, hits: u32) -> f64 {
        let k = f64::from(hits) / CLUMP;
        let mut log_terms: Vec<f64> = Vec::with_capacity(totals.len());
        for &(reference, total) in totals {
            let range = f64::from(self.frames[reference as usize] + query_frames).max(1.0);
            let lambda = f64::from(total) / CLUMP * (2.0 * FINE_BAND) / range;
            let windows = (range / FINE_BAND).max(1.0) * RATIOS.len() as f64;
            log_terms.push(windows.ln() + ln_poisson_tail(lambda, k));
        }
        let Some(top) = log_terms.iter().copied().reduce(f64::max) else {
            return f64::INFINITY;
        };
        let sum: f64 = log_terms.iter().map(|t| (t - top).exp()).sum();
        let ln_false_alarm = (top + sum.ln()).min(0.0);
        -ln_false_alarm / std::f64::consts::LN_10
    }

    /// The best alignment of one reference's hits, if strong enough.
    fn align(&self, query: &Fingerprint, hits: &[(u32, u32, u32)]) -> Option<Match> {
        let query_frame = |qi: u32| f64::from(query.landmarks[qi as usize].frame);
        let mut best: Option<(u32, f64, i64)> = None;
        let mut bands: Vec<i64> = Vec::with_capacity(hits.len());
        for ratio in RATIOS {
            bands.clear();
            bands.extend(hits.iter().map(|&(_, frame, qi)| {
                ((f64::from(frame) - ratio * query_frame(qi)) / FINE_BAND).floor() as i64
            }));
            bands.sort_unstable();
            // The densest pair of neighbouring bands.
            let mut i = 0;
            while i < bands.len() {
                let band = bands[i];
                let until_next = bands[i..].partition_point(|&b| b <= band + 1);
                let count = until_next as u32;
                if best.is_none_or(|(c, r, _)| {
                    count > c || (count == c && (ratio - 1.0).abs() < (r - 1.0).abs())
                }) {
                    best = Some((count, ratio, band));
                }
                i += bands[i..].partition_point(|&b| b <= band);
            }
        }
        let (_, ratio, band) = best?;
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

/// A suffix no other writer of this machine uses at the same time: the process id and a count.
pub fn unique_suffix() -> String {
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}-{n}", std::process::id())
}

fn padded(bytes: usize) -> usize {
    bytes.div_ceil(8) * 8
}

fn write_padded(out: &mut impl std::io::Write, bytes: &[u8]) -> std::io::Result<()> {
    out.write_all(bytes)?;
    out.write_all(&[0u8; 8][..padded(bytes.len()) - bytes.len()])
}

/// A check of the header's fields (a file cut short or from elsewhere fails it).
fn header_check(fields: &[u64; 5]) -> u64 {
    fields.iter().fold(0xcbf2_9ce4_8422_2325u64, |hash, field| {
        (hash ^ field).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Maps `file` read-only.
#[allow(unsafe_code)]
fn map_file(file: &std::fs::File) -> std::io::Result<memmap2::Mmap> {
    // SAFETY: the mapping is read-only and index files are never modified in place: writers
    // write a new file and rename it over the old one (`Index::write`), so the mapped file's
    // contents cannot change under the mapping. Truncation by something outside earshot would
    // fault, like any file removed under a reader; the tables are checked once when opened.
    unsafe { memmap2::Mmap::map(file) }
}

/// ln P(X ≥ k) for X ~ Poisson(λ), for real k ≥ 0 (the sum starts at ⌈k⌉).
fn ln_poisson_tail(lambda: f64, k: f64) -> f64 {
    let k = k.ceil();
    if k <= 0.0 {
        return 0.0;
    }
    if lambda <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if lambda >= k {
        return 0.0;
    }
    // ln pmf(k), then the terms after it relative to it: pmf(j + 1) = pmf(j) × λ / (j + 1).
    let ln_pmf = k * lambda.ln() - lambda - ln_factorial(k);
    let (mut term, mut sum, mut j) = (1.0f64, 1.0f64, k);
    while term > 1e-12 * sum && j < k + 10_000.0 {
        j += 1.0;
        term *= lambda / j;
        sum += term;
    }
    (ln_pmf + sum.ln()).min(0.0)
}

/// ln n! (exact below 20, Stirling's series above).
fn ln_factorial(n: f64) -> f64 {
    if n < 20.0 {
        return (2..=n as u64).map(|i| (i as f64).ln()).sum();
    }
    n * n.ln() - n + 0.5 * (2.0 * std::f64::consts::PI * n).ln() + 1.0 / (12.0 * n)
        - 1.0 / (360.0 * n.powi(3))
}

/// Maps a match's significance (−log₁₀ of its false-alarm probability) to COS's 0–100 scale:
/// under [`SUSPICIOUS_AT`] normal (0–59, rising with it), from it to [`SENSITIVE_AT`] suspicious
/// (61–90), above that sensitive (91–100, 100 from [`SENSITIVE_AT`] + 10).
pub fn score_of(significance: f64) -> u8 {
    if !significance.is_finite() || significance <= 0.0 {
        return if significance.is_infinite() && significance > 0.0 {
            100
        } else {
            0
        };
    }
    if significance < SUSPICIOUS_AT {
        return (59.0 * significance / SUSPICIOUS_AT).floor() as u8;
    }
    if significance < SENSITIVE_AT {
        let t = (significance - SUSPICIOUS_AT) / (SENSITIVE_AT - SUSPICIOUS_AT);
        return (61.0 + t * 29.0).round() as u8;
    }
    let t = ((significance - SENSITIVE_AT) / 10.0).min(1.0);
    (91.0 + t * 9.0).round() as u8
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
mod tests {
    use super::super::{Landmark, pack};
    use super::*;

    fn synthetic(seed: u64, frames: u32) -> Fingerprint {
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

    #[test]
    fn significance_maps_onto_the_documented_bands() {
        // (significance, lowest, highest)
        let table = [
            (f64::NEG_INFINITY, 0, 0),
            (0.0, 0, 0),
            (1.7, 20, 30),
            (SUSPICIOUS_AT - 0.01, 55, 59),
            (SUSPICIOUS_AT, 61, 61),
            ((SUSPICIOUS_AT + SENSITIVE_AT) / 2.0, 74, 77),
            (SENSITIVE_AT - 0.01, 90, 90),
            (SENSITIVE_AT, 91, 91),
            (SENSITIVE_AT + 5.0, 95, 96),
            (SENSITIVE_AT + 10.0, 100, 100),
            (900.0, 100, 100),
            (f64::INFINITY, 100, 100),
        ];
        for (significance, low, high) in table {
            let score = score_of(significance);
            assert!(
                (low..=high).contains(&score),
                "{significance} → {score}, want {low}–{high}"
            );
        }
    }

    #[test]
    fn poisson_tails_match_direct_sums() {
        for (lambda, k) in [(0.1f64, 1u32), (0.5, 3), (2.0, 7), (0.03, 25), (4.0, 60)] {
            let mut pmf = (-lambda).exp();
            let mut below = 0.0;
            for j in 0..k {
                below += pmf;
                pmf *= lambda / f64::from(j + 1);
            }
            let mut direct = 0.0;
            let mut term = pmf;
            for j in k..k + 200 {
                direct += term;
                term *= lambda / f64::from(j + 1);
            }
            let got = ln_poisson_tail(lambda, f64::from(k));
            let want = if direct > 1e-300 {
                direct.ln()
            } else {
                (1.0 - below).ln()
            };
            assert!(
                (got - want).abs() < 1e-6 * want.abs().max(1.0),
                "λ {lambda}, k {k}: {got} vs {want}"
            );
        }
        assert_eq!(ln_poisson_tail(3.0, 0.0), 0.0);
        assert_eq!(ln_poisson_tail(5.0, 2.0), 0.0);
    }

    #[test]
    fn agreement_is_weighed_against_what_chance_gives_this_query_and_library() {
        let refs: Vec<(String, Fingerprint)> = (0..20)
            .map(|i| (format!("ref{i}"), synthetic(i + 1, 3000)))
            .collect();
        let index = Index::build(refs);
        let quiet = [(0u32, 50u32)];
        let busy = [(0u32, 2000u32)];
        let library: Vec<(u32, u32)> = (0..20).map(|r| (r, 2000)).collect();
        // The same 30 agreeing landmarks mean less when the query shares many hashes with the
        // reference (a short or band-limited query of common landmarks, one composer's sound)…
        let against_quiet = index.significance(&quiet, 500, 30);
        let against_busy = index.significance(&busy, 500, 30);
        assert!(
            against_quiet > against_busy + 3.0,
            "{against_quiet} vs {against_busy}"
        );
        // …and when many references could have given them by chance.
        let against_library = index.significance(&library, 500, 30);
        assert!(
            against_busy > against_library + 1.0,
            "{against_busy} vs {against_library}"
        );
        // More agreement is always more significant.
        assert!(index.significance(&busy, 500, 60) > against_busy + 3.0);
    }

    #[test]
    fn a_rebuilt_or_stored_index_answers_like_a_built_one() {
        let refs: Vec<(String, Fingerprint)> = (0..12)
            .map(|i| (format!("ref{i}"), synthetic(i + 1, 2000)))
            .collect();
        let query = |index: &Index, r: usize| {
            let found = index.query(&refs[r].1);
            let best = &found[0];
            (
                index.reference(best.reference).0.to_owned(),
                best.hits,
                best.score,
            )
        };
        // Built from refs 0..8, then 3 dropped and 8..12 added: as if built from those.
        let first = Index::build(refs[..8].to_vec());
        let rebuilt = first.rebuild(&|r| first.reference(r).0 != "ref3", refs[8..].to_vec());
        let kept: Vec<(String, Fingerprint)> = refs
            .iter()
            .filter(|(id, _)| id != "ref3")
            .cloned()
            .collect();
        let built = Index::build(kept);
        assert_eq!(rebuilt.len(), 11);
        for r in [0, 5, 9, 11] {
            assert_eq!(query(&rebuilt, r), query(&built, r));
        }
        assert!(rebuilt.query(&refs[3].1).iter().all(|m| m.score < 61));

        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("index").join("library.idx");
        rebuilt.write(&path, b"{\"meta\":1}").expect("writes");
        let (opened, meta) = Index::open(&path).expect("opens");
        assert!(opened.is_mapped());
        assert_eq!(meta, b"{\"meta\":1}");
        assert_eq!(opened.table_bytes(), rebuilt.table_bytes());
        for r in [0, 5, 9, 11] {
            assert_eq!(query(&opened, r), query(&built, r));
        }
        assert_eq!(opened.reference(10), rebuilt.reference(10));

        // A file cut short, or not an index, is refused.
        let bytes = std::fs::read(&path).expect("reads");
        let cut = dir.path().join("cut.idx");
        std::fs::write(&cut, &bytes[..bytes.len() - 9]).expect("writes");
        assert!(Index::open(&cut).is_err());
        std::fs::write(&cut, b"ESIX0001 not really").expect("writes");
        assert!(Index::open(&cut).is_err());
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
