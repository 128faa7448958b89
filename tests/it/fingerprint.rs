//! Acoustic matching on real recordings that Debian ships (game music from extremetuxracer-data and
//! frozen-bubble-data, speech from pocketsphinx-testdata), transformed by ffmpeg/sox here: every
//! transform must find the right reference at the right offset with a score above 90 (sensitive),
//! and at least 300 queries outside the library, held-out music of the same composers and of three
//! more games under every transform included, must score at most 60. The corpus is in
//! tests/it/common/corpus.rs.

use std::path::Path;
use std::sync::OnceLock;

use crate::common::corpus::{self, LibraryQuery, Made, SPEECH_SECS, TRANSFORMS, references};
use earshot::audio::DecodeLimits;
use earshot::fingerprint::{Fingerprint, Index, Match, fingerprint_file};

const LIMITS: DecodeLimits = DecodeLimits {
    max_duration_secs: 3600,
};

fn fp(path: &Path) -> Fingerprint {
    let suffix = earshot::rules::key_suffix(&path.to_string_lossy());
    fingerprint_file(path, suffix.as_deref(), LIMITS)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .1
}

/// The library's index, built once for all tests in this file.
fn index() -> &'static Index {
    static INDEX: OnceLock<Index> = OnceLock::new();
    INDEX.get_or_init(|| {
        corpus::require_corpus();
        let refs = references();
        Index::build(corpus::on_every_core(&refs, |(path, _)| {
            (path.clone(), fp(Path::new(path)))
        }))
    })
}

fn score(found: &Match) -> u8 {
    found.score
}

/// Checks that `query` finds reference `expected` with a score above 90, aligned so that query
/// time `excerpt_at` (where the excerpt starts in the query) is reference time `start`, ±0.5 s.
fn assert_found(what: &str, query: &Path, expected: usize, start: f64, excerpt_at: f64) {
    let found = index().query(&fp(query));
    let best = found
        .first()
        .unwrap_or_else(|| panic!("{what}: nothing found"));
    assert_eq!(
        best.reference, expected,
        "{what}: wrong reference: {found:?}"
    );
    // Sensitive, also where the reference plays the passage again elsewhere (the excerpt then
    // agrees half as well at another alignment): it reproduces the reference's recording there.
    assert!(score(best) > 90, "{what}: score {} ({best:?})", score(best));
    let seg = &best.segment;
    let predicted = start + best.time_ratio * (seg.query_offset_secs - excerpt_at);
    assert!(
        (seg.reference_offset_secs - predicted).abs() <= 0.5,
        "{what}: aligned {:.2} s into the reference at query {:.2} s; the excerpt puts it at {predicted:.2} s",
        seg.reference_offset_secs,
        seg.query_offset_secs
    );
    assert!(
        seg.query_offset_secs >= excerpt_at - 0.5 && seg.query_offset_secs <= excerpt_at + 2.0,
        "{what}: the match starts {:.2} s into the query, the excerpt at {excerpt_at:.2} s",
        seg.query_offset_secs
    );
    eprintln!(
        "{what}: score {} ({} landmarks agree, significance {:.1})",
        score(best),
        best.hits,
        best.significance
    );
    if let Some(second) = found.get(1) {
        assert!(
            score(second) <= 60,
            "{what}: a wrong reference also scores {}: {second:?}",
            score(second)
        );
    }
}

/// The queries of the library made `made`, each with its reference and where it was cut.
fn queries(made: impl Fn(&Made) -> bool) -> Vec<(LibraryQuery, f64)> {
    let refs = references();
    let found: Vec<(LibraryQuery, f64)> = corpus::library_queries()
        .into_iter()
        .filter(|q| made(&q.made))
        .map(|q| {
            let start = refs[q.reference].1;
            (q, start)
        })
        .collect();
    assert!(!found.is_empty(), "no such queries");
    found
}

#[test]
fn every_transform_of_a_10_s_excerpt_is_found_at_its_offset() {
    let queries = queries(|m| matches!(m, Made::Transform(_)));
    assert_eq!(queries.len(), TRANSFORMS.len() * references().len());
    for (query, start) in queries {
        let Made::Transform(t) = query.made else {
            unreachable!("filtered")
        };
        let what = format!("{}, reference {}", TRANSFORMS[t].0, query.reference);
        assert_found(&what, &query.path, query.reference, start, 0.0);
    }
}

#[test]
fn an_8_s_excerpt_is_found_under_10_db_snr_noise() {
    let queries = queries(|m| *m == Made::Noisy);
    assert_eq!(queries.len(), references().len());
    for (query, start) in queries {
        let what = format!("10 dB SNR, reference {}", query.reference);
        assert_found(&what, &query.path, query.reference, start, 0.0);
    }
}

#[test]
fn an_8_s_excerpt_embedded_in_speech_and_other_music_is_found_where_it_is() {
    let queries = queries(|m| *m == Made::Embedded);
    assert_eq!(queries.len(), references().len());
    for (query, start) in queries {
        let what = format!("embedded, reference {}", query.reference);
        assert_found(&what, &query.path, query.reference, start, SPEECH_SECS);
    }
}

#[test]
fn recordings_outside_the_library_score_60_or_less() {
    let mut queries: Vec<(String, std::path::PathBuf)> = corpus::negatives()
        .into_iter()
        .map(|p| (p.display().to_string(), p))
        .collect();
    let excerpts = corpus::held_out_excerpts();
    assert!(
        excerpts.len() >= 300,
        "only {} held-out excerpts",
        excerpts.len()
    );
    queries.extend(excerpts);
    let index = index();
    let mut worst: Vec<(f64, u8, u32, String)> = corpus::on_every_core(&queries, |(what, path)| {
        index
            .query(&fp(path))
            .into_iter()
            .map(|found| (found.significance, found.score, found.hits, what.clone()))
            .collect::<Vec<_>>()
    })
    .into_iter()
    .flatten()
    .collect();
    worst.sort_by(|a, b| b.0.total_cmp(&a.0));
    eprintln!(
        "{} queries outside the library; strongest chance matches:",
        queries.len()
    );
    for (significance, score, hits, what) in worst.iter().take(8) {
        eprintln!("  {what}: score {score}, {hits} landmarks, significance {significance:.2}");
    }
    let over: Vec<_> = worst.iter().filter(|w| w.1 > 60).collect();
    assert!(
        over.is_empty(),
        "queries outside the library scored above 60: {over:?}"
    );
}

#[test]
fn speech_re_encoded_to_amr_nb_is_found_at_its_offset() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A 24.7 s speech reference: Debian's five LibriVox recordings, one after another.
    let parts: Vec<String> = ["0870", "0880", "0890", "0920", "0930"]
        .iter()
        .map(|n| {
            format!(
                "{}/sense_and_sensibility_01_austen_64kb-{n}.wav",
                corpus::LIBRIVOX
            )
        })
        .collect();
    let speech = dir.path().join("speech.flac");
    let mut args: Vec<String> = Vec::new();
    for part in &parts {
        args.extend(["-i".to_owned(), part.clone()]);
    }
    let inputs: String = (0..parts.len()).map(|i| format!("[{i}:a]")).collect();
    args.extend([
        "-filter_complex".to_owned(),
        format!("{inputs}concat=n={}:v=0:a=1", parts.len()),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    corpus::ffmpeg(&args, &speech);
    let mut refs: Vec<(String, Fingerprint)> = references()
        .into_iter()
        .map(|(path, _)| (path.clone(), fp(Path::new(&path))))
        .collect();
    refs.push(("speech".to_owned(), fp(&speech)));
    let index = Index::build(refs);

    // 9 s from 11 s in, telephone-rate, through AMR-NB at 12.2 kbit/s.
    let excerpt = corpus::ffmpeg(
        &[
            "-ss",
            "11",
            "-t",
            "9",
            "-i",
            speech.to_str().expect("utf-8"),
            "-ar",
            "8000",
            "-ac",
            "1",
        ],
        &dir.path().join("excerpt.wav"),
    );
    let amr = crate::common::amr_encode(dir.path(), &excerpt, "nb");
    let found = index.query(&fp(&amr));
    let best = found.first().expect("found");
    assert_eq!(best.reference, 8, "{found:?}");
    assert!(score(best) > 90, "score {} ({best:?})", score(best));
    let predicted = 11.0 + best.time_ratio * best.segment.query_offset_secs;
    assert!(
        (best.segment.reference_offset_secs - predicted).abs() <= 0.5,
        "{best:?}"
    );
    eprintln!(
        "AMR-NB speech: score {} ({} landmarks agree)",
        score(best),
        best.hits
    );
}
