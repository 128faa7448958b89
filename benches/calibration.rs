//! What chance gives queries of every length: the strongest chance significance of queries outside
//! the library (whole tracks of 1–10 min and their 8 s–3 min excerpts, tests/it/common/
//! whole_tracks.rs) by query length, against the test library of 8 tracks and a larger one. See
//! bench/README.md ("Calibration"). Writes bench/out/calibration.md.

#[path = "../tests/it/common/mod.rs"]
mod common;

use std::path::Path;
use std::time::Instant;

use common::chance;
use common::corpus;
use common::whole_tracks;
use earshot::fingerprint::{Index, Weigh};

/// Each weighing in turn: the first two are where calibration stood before (bench/README.md).
const WEIGHINGS: [(Weigh, &str); 3] = [
    (
        Weigh::Evenly,
        "first: against hashes spread evenly (Weigh::Evenly)",
    ),
    (
        Weigh::AgainstOwnAlignments,
        "second: and against its own other alignments (Weigh::AgainstOwnAlignments)",
    ),
    (
        Weigh::ByCoverage,
        "shipped: by what it reproduces of the reference (Weigh::ByCoverage)",
    ),
];

fn main() {
    corpus::require_corpus();
    let started = Instant::now();
    let tracks = whole_tracks::tracks();
    let library = whole_tracks::library(&tracks);
    let uploads = whole_tracks::uploads(&tracks, &library, 1);
    eprintln!(
        "{} tracks, {} in the larger library, {} uploads ({:.0} s)",
        tracks.len(),
        library.len(),
        uploads.len(),
        started.elapsed().as_secs_f64()
    );
    let fingerprinted = Instant::now();
    let refs = corpus::on_every_core(&library, |(id, path)| {
        (id.clone(), whole_tracks::print_of(path))
    });
    let small = Index::build(refs[..corpus::references().len()].to_vec());
    let large = Index::build(refs);
    let queries = chance::queries(&uploads);
    eprintln!(
        "{} queries fingerprinted in {:.0} s",
        queries.len(),
        fingerprinted.elapsed().as_secs_f64()
    );
    let queried = Instant::now();
    let mut results = Vec::new();
    for index in [&small, &large] {
        for weigh in WEIGHINGS {
            results.push(chance::strongest(index, &queries, weigh.0));
        }
    }
    eprintln!(
        "{} queries against both libraries, each weighing, in {:.0} s",
        queries.len(),
        queried.elapsed().as_secs_f64()
    );
    // Agreement counts do not depend on the weighing: the larger library's decide.
    let held = chance::holding_library_recordings(&results[WEIGHINGS.len()]);
    let mut report = format!(
        "{} whole uploads outside the library ({} queries with their excerpts); {} of them hold a \
         library track's recording (the same recording shipped twice) and are left out:\n\n",
        uploads.len(),
        queries.len(),
        held.len()
    );
    for &upload in &held {
        report.push_str(&format!("- {}\n", uploads[upload].0));
    }
    let names = [("the test library", &small), ("the larger library", &large)];
    for (i, result) in results.iter().enumerate() {
        let (name, index) = names[i / WEIGHINGS.len()];
        let weigh = WEIGHINGS[i % WEIGHINGS.len()].1;
        let outside: Vec<_> = result
            .iter()
            .filter(|r| !held.contains(&r.query.upload))
            .collect();
        report.push_str(&format!(
            "\n### Against {name} ({} references), {weigh}\n\n",
            index.len()
        ));
        report.push_str(&chance::table(&outside));
        let mut worst = outside.clone();
        worst.sort_by(|a, b| b.significance().total_cmp(&a.significance()));
        report.push_str("\nStrongest three:\n\n");
        for r in worst.iter().take(3) {
            let Some(found) = r.found.as_ref() else {
                continue;
            };
            report.push_str(&format!(
                "- {}: significance {:.2}, score {}, {} landmarks ({} in its densest 10 s, \
                 coverage {:.3}; {} at the next alignment) over {:.1} s, against {}\n",
                r.query.what,
                found.significance,
                found.score,
                found.hits,
                found.local_hits,
                found.coverage,
                found.runner_up,
                found.segment.duration_secs,
                index.reference(found.reference).0
            ));
        }
    }
    report.push_str(&positives(&small, &large));
    if std::env::var_os("CALIBRATION_MATCHES").is_some() {
        let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/out");
        std::fs::create_dir_all(&out).expect("bench/out");
        std::fs::write(
            out.join("calibration-matches.csv"),
            matches(&large, &queries),
        )
        .expect("writes");
    }
    println!("{report}");
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/out");
    std::fs::create_dir_all(&out).expect("bench/out");
    std::fs::write(out.join("calibration.md"), &report).expect("writes");
}

/// The weakest true match per kind of query (the test library's excerpts under every transform,
/// and its tracks uploaded whole), against both libraries.
fn positives(small: &Index, large: &Index) -> String {
    let mut queries: Vec<(String, usize, std::path::PathBuf)> = corpus::library_queries()
        .into_iter()
        .map(|q| {
            let kind = match q.made {
                corpus::Made::Transform(t) => format!("10 s, {}", corpus::TRANSFORMS[t].0),
                corpus::Made::Noisy => "8 s, 10 dB SNR".to_owned(),
                corpus::Made::Embedded => "8 s, embedded".to_owned(),
            };
            (kind, q.reference, q.path)
        })
        .collect();
    queries.extend(
        whole_tracks::whole_positives()
            .into_iter()
            .map(|(how, r, path)| (format!("whole, {how}"), r, path)),
    );
    let prints = corpus::on_every_core(&queries, |(_, _, path)| whole_tracks::print_of(path));
    let mut out = String::from(
        "\n### True matches: the weakest per kind\n\n| kind | queries | weakest significance (test library) | its score | largest runner-up share | weakest significance (larger library) | its score | largest runner-up share | found |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    let mut kinds: Vec<&str> = Vec::new();
    for (kind, _, _) in &queries {
        if !kinds.contains(&kind.as_str()) {
            kinds.push(kind);
        }
    }
    for kind in kinds {
        let mut cells = Vec::new();
        let mut found_all = true;
        let mut count = 0;
        for index in [small, large] {
            let mut weakest = (f64::INFINITY, 100u8);
            let mut runner = 0.0f64;
            count = 0;
            for ((k, reference, _), fp) in queries.iter().zip(&prints) {
                if k != kind {
                    continue;
                }
                count += 1;
                let best = index
                    .query(fp)
                    .into_iter()
                    .find(|m| m.reference == *reference);
                if let Some(m) = &best {
                    runner = runner.max(f64::from(m.runner_up) / f64::from(m.hits));
                }
                let (significance, score) = best.map_or((0.0, 0), |m| (m.significance, m.score));
                found_all &= score > 90;
                if significance < weakest.0 {
                    weakest = (significance, score);
                }
            }
            cells.push(format!("{:.1} | {} | {runner:.2}", weakest.0, weakest.1));
        }
        let found = if found_all { "all > 90" } else { "NOT ALL" };
        out.push_str(&format!(
            "| {kind} | {count} | {} | {found} |\n",
            cells.join(" | ")
        ));
    }
    out
}

/// Every match of every query outside the library and of every true match against `index`, both
/// weighings, as CSV (with `CALIBRATION_MATCHES=1`: bench/out/calibration-matches.csv).
fn matches(index: &Index, queries: &[chance::Query]) -> String {
    let mut rows: Vec<(
        String,
        String,
        f64,
        &earshot::fingerprint::Fingerprint,
        Option<usize>,
    )> = queries
        .iter()
        .map(|q| ("outside".to_owned(), q.what.clone(), q.secs, &q.fp, None))
        .collect();
    let positives: Vec<(String, usize, std::path::PathBuf)> = corpus::library_queries()
        .into_iter()
        .map(|q| (format!("{:?}", q.made), q.reference, q.path))
        .chain(whole_tracks::whole_positives())
        .collect();
    let prints = corpus::on_every_core(&positives, |(_, _, path)| whole_tracks::print_of(path));
    for ((what, reference, _), fp) in positives.iter().zip(&prints) {
        rows.push((
            "true".to_owned(),
            what.clone(),
            fp.duration_secs(),
            fp,
            Some(*reference),
        ));
    }
    let lines = corpus::on_every_core(&rows, |(set, what, secs, fp, truth)| {
        let evenly = index.query_weighing(fp, Weigh::Evenly);
        let own = index.query_weighing(fp, Weigh::AgainstOwnAlignments);
        let mut out = String::new();
        for ((m, e), o) in index.query(fp).into_iter().zip(evenly).zip(own) {
            let set = match truth {
                Some(r) if *r != m.reference => "wrong reference",
                _ => set.as_str(),
            };
            out.push_str(&format!(
                "{set},\"{what}\",{secs:.1},\"{}\",{},{},{},{:.3},{:.1},{:.2},{:.2},{:.2}\n",
                index.reference(m.reference).0,
                m.hits,
                m.runner_up,
                m.local_hits,
                m.coverage,
                m.segment.duration_secs,
                e.significance,
                o.significance,
                m.significance
            ));
        }
        out
    });
    let mut csv = String::from(
        "set,query,secs,reference,hits,runner_up,densest_10s,coverage,span_secs,evenly,against_own_alignments,by_coverage\n",
    );
    csv.push_str(&lines.concat());
    csv
}
