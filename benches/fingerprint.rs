//! The local engine's matching beside Chromaprint (Debian's `fpcalc`), on the corpus of
//! tests/it/common/corpus.rs, plus the index at 10,000 synthetic references. See bench/README.md.
//!
//! Recall at zero false positives: each method's threshold is set just above the best score any of
//! the 50+ non-library recordings reaches against any reference; a query counts as found when its
//! best reference is the right one and scores above that threshold.
//!
//! Chromaprint is compared the usual way for excerpts: the query's raw fingerprint (`fpcalc -raw`)
//! slid over each reference's, similarity = 1 − bit error rate over the overlap, best offset
//! wins. The overlap must be at least 40 items (about 5 s) or the whole query if shorter: with
//! fewer, silence matches silence at 1.000 and no threshold is left.
//!
//! `BENCH_INDEX_ONLY=1` runs only the index-at-scale part.

#[path = "../tests/it/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use common::corpus::{self, TRANSFORMS, references};
use earshot::audio::DecodeLimits;
use earshot::fingerprint::{Fingerprint, Index, Landmark, fingerprint_file};

const LIMITS: DecodeLimits = DecodeLimits {
    max_duration_secs: 24 * 3600,
};

fn earshot_fp(path: &Path) -> (Fingerprint, f64) {
    let suffix = earshot::rules::key_suffix(&path.to_string_lossy());
    let (info, fp) = fingerprint_file(path, suffix.as_deref(), LIMITS).expect("decodes");
    (fp, info.duration_secs())
}

fn chromaprint(path: &Path) -> Vec<u32> {
    let out = Command::new("fpcalc")
        .args(["-raw", "-length", "0"])
        .arg(path)
        .output()
        .expect("fpcalc runs (Debian package libchromaprint-tools)");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("FINGERPRINT="))
        .map(|v| v.split(',').filter_map(|x| x.parse().ok()).collect())
        .unwrap_or_default()
}

/// Best 1 − BER of `query` slid over `reference`.
fn chromaprint_similarity(query: &[u32], reference: &[u32]) -> f64 {
    let min_overlap = query.len().min(40);
    if min_overlap == 0 {
        return 0.0;
    }
    let mut best = 0.0f64;
    let (q, r) = (query.len() as isize, reference.len() as isize);
    for shift in (-(q - min_overlap as isize))..=(r - min_overlap as isize) {
        let (mut errors, mut items) = (0u32, 0u32);
        for i in 0..q {
            let j = i + shift;
            if j >= 0 && j < r {
                errors += (query[i as usize] ^ reference[j as usize]).count_ones();
                items += 1;
            }
        }
        if items as usize >= min_overlap {
            best = best.max(1.0 - f64::from(errors) / (32.0 * f64::from(items)));
        }
    }
    best
}

/// (best reference, score) for earshot, then for Chromaprint.
type Scored = ((usize, f64), (usize, f64));

struct Query {
    group: String,
    path: PathBuf,
    /// The right reference, or None for a non-library recording.
    expected: Option<usize>,
}

fn main() {
    if std::env::var("BENCH_INDEX_ONLY").is_ok_and(|v| v == "1") {
        println!("{}", index_at_scale());
        return;
    }
    corpus::require_corpus();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/out/fingerprint");
    std::fs::create_dir_all(&dir).expect("bench/out");
    let refs = references();

    // References, fingerprinted by both.
    let mut es_refs = Vec::new();
    let mut cp_refs = Vec::new();
    for (path, _) in &refs {
        es_refs.push((path.clone(), earshot_fp(Path::new(path)).0));
        cp_refs.push(chromaprint(Path::new(path)));
    }
    let index = Index::build(es_refs);

    // Queries.
    let mut queries = Vec::new();
    for (name, args, suffix) in TRANSFORMS {
        for (i, (path, start)) in refs.iter().enumerate() {
            let tag = format!("{}-{i}", name.replace([' ', ':', ',', '%', '+'], "_"));
            let path = corpus::transformed(&dir, &tag, path, *start, args, suffix);
            queries.push(Query {
                group: name.to_string(),
                path,
                expected: Some(i),
            });
        }
    }
    for (i, (path, start)) in refs.iter().enumerate() {
        let path_noisy = corpus::noisy(&dir, i, path, *start);
        queries.push(Query {
            group: "noise 10 dB SNR (8 s)".into(),
            path: path_noisy,
            expected: Some(i),
        });
        let path_embedded = corpus::embedded(&dir, i, path, *start);
        queries.push(Query {
            group: "embedded in speech+music (8 s)".into(),
            path: path_embedded,
            expected: Some(i),
        });
    }
    for path in corpus::negatives() {
        queries.push(Query {
            group: "non-library".into(),
            path,
            expected: None,
        });
    }

    // Score every query with both: (best reference, score) per method.
    let mut results = Vec::new();
    for query in &queries {
        let (fp, _) = earshot_fp(&query.path);
        let es = index
            .query(&fp)
            .first()
            .map(|m| (m.reference, f64::from(m.score)))
            .unwrap_or((usize::MAX, 0.0));
        let cq = chromaprint(&query.path);
        let cp = cp_refs
            .iter()
            .enumerate()
            .map(|(i, r)| (i, chromaprint_similarity(&cq, r)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap_or((usize::MAX, 0.0));
        results.push((es, cp));
    }
    let threshold = |pick: fn(&Scored) -> f64| {
        queries
            .iter()
            .zip(&results)
            .filter(|(q, _)| q.expected.is_none())
            .map(|(_, r)| pick(r))
            .fold(0.0f64, f64::max)
    };
    let es_threshold = threshold(|r| r.0.1);
    let cp_threshold = threshold(|r| r.1.1);
    for (label, pick) in [
        (
            "earshot",
            (|r: &((usize, f64), (usize, f64))| r.0.1) as fn(&_) -> f64,
        ),
        ("Chromaprint", |r| r.1.1),
    ] {
        let worst = queries
            .iter()
            .zip(&results)
            .filter(|(q, _)| q.expected.is_none())
            .max_by(|a, b| pick(a.1).total_cmp(&pick(b.1)))
            .map(|(q, r)| format!("{} ({:.3})", q.path.display(), pick(r)));
        eprintln!("{label}: highest non-library score: {worst:?}");
    }

    let mut groups: Vec<String> = Vec::new();
    for q in &queries {
        if q.expected.is_some() && !groups.contains(&q.group) {
            groups.push(q.group.clone());
        }
    }
    let mut table = String::from(
        "| transform | queries | earshot recall | Chromaprint recall |\n|---|---|---|---|\n",
    );
    let (mut es_total, mut cp_total, mut n_total) = (0, 0, 0);
    for group in &groups {
        let (mut n, mut es_ok, mut cp_ok) = (0, 0, 0);
        for (q, ((es_ref, es_score), (cp_ref, cp_score))) in queries.iter().zip(&results) {
            if &q.group != group {
                continue;
            }
            n += 1;
            let want = q.expected.expect("library query");
            es_ok += usize::from(*es_ref == want && *es_score > es_threshold);
            cp_ok += usize::from(*cp_ref == want && *cp_score > cp_threshold);
        }
        table.push_str(&format!(
            "| {group} | {n} | {:.0} % | {:.0} % |\n",
            100.0 * es_ok as f64 / n as f64,
            100.0 * cp_ok as f64 / n as f64
        ));
        es_total += es_ok;
        cp_total += cp_ok;
        n_total += n;
    }
    table.push_str(&format!(
        "| **all** | {n_total} | **{:.1} %** | **{:.1} %** |\n\nZero-false-positive thresholds over {} non-library recordings: earshot score > {es_threshold:.0}, Chromaprint similarity > {cp_threshold:.3}.\n",
        100.0 * es_total as f64 / n_total as f64,
        100.0 * cp_total as f64 / n_total as f64,
        queries.iter().filter(|q| q.expected.is_none()).count(),
    ));

    // Speed: MP3 decode + fingerprint, earshot in-process vs fpcalc, on the 10 s MP3 queries.
    let mp3s: Vec<&PathBuf> = queries
        .iter()
        .filter(|q| q.path.extension().is_some_and(|e| e == "mp3") && q.expected.is_some())
        .map(|q| &q.path)
        .collect();
    let start = Instant::now();
    let mut audio = 0.0;
    for path in &mp3s {
        audio += earshot_fp(path).1;
    }
    let es_speed = audio / start.elapsed().as_secs_f64();
    let start = Instant::now();
    for path in &mp3s {
        chromaprint(path);
    }
    let cp_speed = audio / start.elapsed().as_secs_f64();
    // And on whole tracks, where process start-up matters less.
    let start = Instant::now();
    let mut track_audio = 0.0;
    for (path, _) in &refs {
        track_audio += earshot_fp(Path::new(path)).1;
    }
    let es_tracks = track_audio / start.elapsed().as_secs_f64();
    let start = Instant::now();
    for (path, _) in &refs {
        chromaprint(Path::new(path));
    }
    let cp_tracks = track_audio / start.elapsed().as_secs_f64();
    table.push_str(&format!(
        "\n| speed (one core) | earshot decode + fingerprint | fpcalc (decode + fingerprint, a process per file) |\n|---|---|---|\n\
         | {} MP3 queries of 10 s | {es_speed:.0}× realtime | {cp_speed:.0}× realtime |\n\
         | the {} Ogg Vorbis library tracks ({:.0} min) | {es_tracks:.0}× realtime | {cp_tracks:.0}× realtime |\n",
        mp3s.len(),
        refs.len(),
        track_audio / 60.0
    ));

    table.push_str(&index_at_scale());
    println!("{table}");
    std::fs::write(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/out/fingerprint.md"),
        &table,
    )
    .expect("write");
}

/// 10,000 synthetic references totalling 30 hours at the corpus's landmark density; build time,
/// memory, and lookup time of 3-minute queries (half containing a reference excerpt).
fn index_at_scale() -> String {
    const REFS: u64 = 10_000;
    const SECS_EACH: f64 = 30.0 * 3600.0 / REFS as f64;
    const PER_SEC: f64 = 150.0;
    let frames = (SECS_EACH / earshot::fingerprint::FRAME_SECS) as u32;
    let per_frame = PER_SEC * earshot::fingerprint::FRAME_SECS;
    let synthetic = |seed: u64, frames: u32| {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut landmarks = Vec::new();
        let mut carry = 0.0;
        for frame in 0..frames {
            carry += per_frame;
            while carry >= 1.0 {
                carry -= 1.0;
                landmarks.push(Landmark {
                    hash: (next() % (1 << 21)) as u32,
                    frame,
                });
            }
        }
        Fingerprint { landmarks, frames }
    };
    let start = Instant::now();
    let refs: Vec<(String, Fingerprint)> = (0..REFS)
        .map(|i| (format!("ref{i}"), synthetic(i + 1, frames)))
        .collect();
    let generated = start.elapsed();
    let start = Instant::now();
    let index = Index::build(refs);
    let build = start.elapsed();
    let mb = index.table_bytes() as f64 / 1e6;

    let query_frames = (180.0 / earshot::fingerprint::FRAME_SECS) as u32;
    let mut times = Vec::new();
    let mut found = 0;
    for q in 0..100u64 {
        let mut query = synthetic(1_000_000 + q, query_frames);
        if q % 2 == 0 {
            // Splice 10 s of reference q × 37 in at 60 s.
            let source = synthetic(q * 37 % REFS + 1, frames);
            let at = (60.0 / earshot::fingerprint::FRAME_SECS) as u32;
            let len = (10.0 / earshot::fingerprint::FRAME_SECS) as u32;
            query.landmarks.extend(
                source
                    .landmarks
                    .iter()
                    .filter(|l| l.frame >= 100 && l.frame < 100 + len)
                    .map(|l| Landmark {
                        hash: l.hash,
                        frame: l.frame - 100 + at,
                    }),
            );
            query.landmarks.sort_by_key(|l| l.frame);
        }
        let start = Instant::now();
        let matches = index.query(&query);
        times.push(start.elapsed().as_secs_f64() * 1000.0);
        if q % 2 == 0
            && matches
                .first()
                .is_some_and(|m| m.reference == (q * 37 % REFS) as usize)
        {
            found += 1;
        }
    }
    times.sort_by(f64::total_cmp);
    format!(
        "\n| index at scale | value |\n|---|---|\n\
         | references / audio | {REFS} / 30 h ({PER_SEC:.0} landmarks/s, {:.0} M landmarks) |\n\
         | build time | {:.2} s (generating the fingerprints: {:.2} s) |\n\
         | index memory | {mb:.0} MB |\n\
         | lookup of a 3-min query, p50 / p99 (100 queries) | {:.1} ms / {:.1} ms |\n\
         | spliced 10 s excerpts found | {found} / 50 |\n",
        index.table_bytes() as f64 / 8e6 - (1 << 21) as f64 * 4.0 / 8e6,
        build.as_secs_f64(),
        generated.as_secs_f64(),
        times[49],
        times[98],
    )
}
