//! What chance gives queries of every length: 150+ whole tracks of 1–10 min that the library does
//! not hold (other games' soundtracks and the library composers' other tracks, uploaded as MP3, in
//! the telephone band or as shipped) and their excerpts of 8 s to 3 min score at most 60 against
//! the test library; the library's tracks uploaded whole, re-encoded, band-limited or 3 % faster,
//! score above 90 against a larger library that also holds a fifth of those soundtracks. The
//! corpus is in tests/it/common/whole_tracks.rs; `bench/calibration.sh` prints the tables, and
//! what the larger library still gets wrong (bench/README.md, "Calibration").

use crate::common::chance::{self, Strongest};
use crate::common::corpus::{self, on_every_core, references};
use crate::common::whole_tracks;
use earshot::fingerprint::{Index, Weigh};

#[test]
fn whole_tracks_outside_the_library_score_60_or_less_at_every_length() {
    corpus::require_corpus();
    let tracks = whole_tracks::tracks();
    let library = whole_tracks::library(&tracks);
    let uploads = whole_tracks::uploads(&tracks, &library);
    let refs = on_every_core(&library, |(id, path)| {
        (id.clone(), whole_tracks::print_of(path))
    });
    let small = Index::build(refs[..references().len()].to_vec());
    let large = Index::build(refs);
    let queries = chance::queries(&uploads);

    let against_large = chance::strongest(&large, &queries, Weigh::default());
    // A few games ship one recording twice (remixed, cut, or a stem beside its mix): those uploads
    // are found, as they should be, and are not counted as outside the library.
    let held = chance::holding_library_recordings(&against_large);
    for &upload in &held {
        eprintln!("holds a library recording: {}", uploads[upload].0);
    }
    assert!(
        held.len() <= 5,
        "{} uploads hold a library recording",
        held.len()
    );
    let outside = uploads.len() - held.len();
    assert!(
        outside >= 150,
        "only {outside} whole tracks outside the library"
    );
    let lengths: std::collections::BTreeSet<&str> = queries
        .iter()
        .map(|q| whole_tracks::bucket(q.secs))
        .collect();
    assert_eq!(lengths.len(), whole_tracks::BUCKETS.len(), "{lengths:?}");

    let against_small = chance::strongest(&small, &queries, Weigh::default());
    let counted: Vec<&Strongest> = against_small
        .iter()
        .filter(|r| !held.contains(&r.query.upload))
        .collect();
    eprintln!(
        "{} queries against the test library ({} references):\n{}",
        counted.len(),
        small.len(),
        chance::table(&counted)
    );
    let over: Vec<_> = counted
        .iter()
        .filter(|r| r.score() > 60)
        .map(|r| (r.query.what.clone(), r.significance(), r.score()))
        .collect();
    assert!(over.is_empty(), "outside the library, above 60: {over:#?}");

    // The library's own tracks, uploaded whole, are found against the larger library.
    let positives = whole_tracks::whole_positives();
    let found = on_every_core(&positives, |(_, reference, path)| {
        large
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
