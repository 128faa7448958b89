//! What chance gives queries of every length: whole tracks of 1–10 min that the library does not
//! hold (other games' soundtracks and the library composers' other tracks, uploaded as MP3, in the
//! telephone band or as shipped; every other one of the 150+ of the corpus) and their excerpts of
//! 8 s to 3 min score at most 60 against the test library and against a larger one holding other
//! tracks of the same soundtracks; the library's tracks uploaded whole, re-encoded, band-limited
//! or 3 % faster, score above 90. The corpus is in tests/it/common/whole_tracks.rs;
//! `bench/calibration.sh` measures all of it with every weighing (bench/README.md,
//! "Calibration").

use crate::common::chance::{self, Strongest};
use crate::common::corpus::{self, on_every_core, references};
use crate::common::whole_tracks;
use earshot::fingerprint::{Index, Weigh};

#[test]
fn whole_tracks_outside_the_library_score_60_or_less_at_every_length() {
    corpus::require_corpus();
    let tracks = whole_tracks::tracks();
    let library = whole_tracks::library(&tracks);
    let outside = tracks
        .iter()
        .filter(|t| !library.iter().any(|(_, p)| *p == t.path))
        .count();
    assert!(
        outside >= 150,
        "only {outside} whole tracks outside the larger library"
    );
    // Every other one (each kind of upload still in turn: MP3, telephone band, as shipped), to
    // keep the suite within its minutes; `bench/calibration.sh` measures all of them.
    let checked = whole_tracks::uploads(&tracks, &library, 2);
    let refs = on_every_core(&references(), |(path, _)| {
        (
            path.clone(),
            whole_tracks::print_of(std::path::Path::new(path)),
        )
    });
    let index = Index::build(refs);
    let larger = Index::build(on_every_core(&library, |(id, path)| {
        (id.clone(), whole_tracks::print_of(path))
    }));
    let queries = chance::queries(&checked);
    let lengths: std::collections::BTreeSet<&str> = queries
        .iter()
        .map(|q| whole_tracks::bucket(q.secs))
        .collect();
    assert_eq!(lengths.len(), whole_tracks::BUCKETS.len(), "{lengths:?}");

    // The test library holds none of them.
    let results = chance::strongest(&index, &queries, Weigh::default());
    let counted: Vec<&Strongest> = results.iter().collect();
    eprintln!(
        "{} queries from {} whole tracks against the test library:\n{}",
        counted.len(),
        checked.len(),
        chance::table(&counted)
    );
    let over: Vec<_> = counted
        .iter()
        .filter(|r| r.score() > 60)
        .map(|r| (r.query.what.clone(), r.significance(), r.score()))
        .collect();
    assert!(over.is_empty(), "outside the library, above 60: {over:#?}");

    // Nor does the larger one, but for uploads that hold one of its recordings (one piece shipped
    // twice), decided on agreement counts, not on the score.
    let results = chance::strongest(&larger, &queries, Weigh::default());
    let held = chance::holding_library_recordings(&results);
    let counted: Vec<&Strongest> = results
        .iter()
        .filter(|r| !held.contains(&r.query.upload))
        .collect();
    eprintln!(
        "against the larger library ({} references; {} uploads hold one of its recordings):\n{}",
        larger.len(),
        held.len(),
        chance::table(&counted)
    );
    assert!(held.len() <= 3, "{held:?}");
    let over: Vec<_> = counted
        .iter()
        .filter(|r| r.score() > 60)
        .map(|r| (r.query.what.clone(), r.significance(), r.score()))
        .collect();
    assert!(
        over.is_empty(),
        "outside the larger library, above 60: {over:#?}"
    );

    // The library's own tracks, uploaded whole, are found.
    let positives = whole_tracks::whole_positives();
    let found = on_every_core(&positives, |(_, reference, path)| {
        index
            .query(&whole_tracks::print_of(path))
            .into_iter()
            .find(|m| m.reference == *reference)
            .map_or(0, |m| m.score)
    });
    for ((how, reference, _), score) in positives.iter().zip(found) {
        assert!(
            score > 90,
            "reference {reference} whole, {how}: score {score}"
        );
    }
}
