//! What chance gives the queries of [`super::whole_tracks`]: each query's strongest match against
//! an index, the uploads that hold a library recording, and the table by query length.

use std::path::PathBuf;

use earshot::fingerprint::Fingerprint;

use super::corpus::on_every_core;
use super::whole_tracks::{BUCKETS, bucket, lengths, print_of};

/// A query outside the library: what it is, its length, which upload it was cut from, and its
/// fingerprint.
pub struct Query {
    pub what: String,
    pub secs: f64,
    pub upload: usize,
    pub fp: Fingerprint,
}

/// Every upload of [`uploads`] fingerprinted on every core, with its excerpts ([`lengths`]).
pub fn queries(uploads: &[(String, PathBuf)]) -> Vec<Query> {
    let jobs: Vec<(usize, &(String, PathBuf))> = uploads.iter().enumerate().collect();
    on_every_core(&jobs, |&(upload, (what, path))| {
        let whole = print_of(path);
        lengths(&whole)
            .into_iter()
            .map(|(secs, fp)| Query {
                what: format!("{what}, {secs:.0} s"),
                secs,
                upload,
                fp,
            })
            .collect::<Vec<_>>()
    })
    .into_iter()
    .flatten()
    .collect()
}

/// The strongest match of a query against an index.
pub struct Strongest<'q> {
    pub query: &'q Query,
    /// The best match, if any.
    pub found: Option<earshot::fingerprint::Match>,
}

impl Strongest<'_> {
    pub fn significance(&self) -> f64 {
        self.found.as_ref().map_or(0.0, |m| m.significance)
    }

    pub fn score(&self) -> u8 {
        self.found.as_ref().map_or(0, |m| m.score)
    }
}

/// The same recording as a library track, not chance nor a shared loop: over 30 s or more, at
/// least 100 more agreeing landmarks than at any other alignment (a loop or a sample two pieces
/// share agrees about as well at each of its repetitions; one recording agrees best at one
/// place). Decided on the alignment's counts, not the score, so that it cannot hide a false alarm
/// of the score.
pub fn same_recording(found: &earshot::fingerprint::Match) -> bool {
    found.hits >= found.runner_up + 100 && found.segment.duration_secs >= 30.0
}

/// The strongest match of each query against `index`.
pub fn strongest<'q>(
    index: &earshot::fingerprint::Index,
    queries: &'q [Query],
    weigh: earshot::fingerprint::Weigh,
) -> Vec<Strongest<'q>> {
    let found = on_every_core(queries, |query| {
        index
            .query_weighing(&query.fp, weigh)
            .into_iter()
            .max_by(|a, b| a.significance.total_cmp(&b.significance))
    });
    queries
        .iter()
        .zip(found)
        .map(|(query, found)| Strongest { query, found })
        .collect()
}

/// The uploads that hold a library track's recording (some games ship one piece twice, remixed
/// or cut): their whole query is [`same_recording`] as a library track. They are true matches,
/// not chance, and leave the set of queries outside the library with all their excerpts.
pub fn holding_library_recordings(results: &[Strongest]) -> std::collections::BTreeSet<usize> {
    results
        .iter()
        .filter(|r| r.found.as_ref().is_some_and(same_recording))
        .filter(|r| {
            !results
                .iter()
                .any(|o| o.query.upload == r.query.upload && o.query.secs > r.query.secs)
        })
        .map(|r| r.query.upload)
        .collect()
}

/// A markdown table of [`strongest`] by length bucket: queries, the strongest chance significance
/// and its score, and how many scored above 60.
pub fn table(results: &[&Strongest]) -> String {
    let mut out = String::from(
        "| query length | queries | strongest chance significance | its score | above 60 |\n|---|---|---|---|---|\n",
    );
    for bucket_name in BUCKETS {
        let rows: Vec<_> = results
            .iter()
            .filter(|r| bucket(r.query.secs) == *bucket_name)
            .collect();
        let Some(top) = rows
            .iter()
            .max_by(|a, b| a.significance().total_cmp(&b.significance()))
        else {
            continue;
        };
        let over = rows.iter().filter(|r| r.score() > 60).count();
        out.push_str(&format!(
            "| {bucket_name} | {} | {:.2} | {} | {over} |\n",
            rows.len(),
            top.significance(),
            top.score()
        ));
    }
    out
}
