//! Records earshot keeps in the bucket and reads back (job records, dead letters and dead jobs,
//! review items and decisions, block and allow records, pending engine work, leases, scan
//! checkpoints, the console's result rows): any bytes read as any of them parse or are refused,
//! never a panic, and one that parses is written back and read again to the same record (what a
//! read-modify-write of a record relies on). The first byte picks the record.
#![no_main]

use serde::Serialize;
use serde::de::DeserializeOwned;

use earshot::state::{DeadJob, DeadLetter, JobRecord};
use earshot::state::{blocks, lease, pending, review};

fn round_trip<T: Serialize + DeserializeOwned>(json: &[u8]) {
    let Ok(record) = serde_json::from_slice::<T>(json) else {
        return;
    };
    let written = serde_json::to_vec(&record).expect("a record read serialises");
    let again: T = serde_json::from_slice(&written).expect("a record written reads back");
    let rewritten = serde_json::to_vec(&again).expect("serialises");
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&written).expect("JSON"),
        serde_json::from_slice::<serde_json::Value>(&rewritten).expect("JSON"),
        "a record changes when written back"
    );
}

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    let Some((&pick, json)) = bytes.split_first() else {
        return;
    };
    match pick % 16 {
        0 => round_trip::<JobRecord>(json),
        1 => round_trip::<DeadLetter>(json),
        2 => round_trip::<DeadJob>(json),
        3 => round_trip::<review::ReviewItem>(json),
        4 => round_trip::<review::ReviewDecision>(json),
        5 => round_trip::<review::ResultRow>(json),
        6 => round_trip::<blocks::BlockRecord>(json),
        7 => round_trip::<blocks::AuditEntry>(json),
        8 => round_trip::<blocks::Allowed>(json),
        9 => round_trip::<pending::EngineOutcome>(json),
        10 => round_trip::<pending::Waiting>(json),
        11 => round_trip::<pending::Task>(json),
        12 => round_trip::<lease::Generation>(json),
        13 => round_trip::<earshot::scan::Checkpoint>(json),
        14 => round_trip::<earshot::block::prior::PriorState>(json),
        _ => {
            if let Ok(key) = std::str::from_utf8(json) {
                let _ = earshot::layout::parse_review_open_key(key);
            }
            if let Ok(item) = serde_json::from_slice::<review::ReviewItem>(json) {
                let _ = serde_json::to_string(&item);
            }
            if let Ok(row) = serde_json::from_slice::<review::ResultRow>(json) {
                let _ = row.top_score();
            }
        }
    }
});
