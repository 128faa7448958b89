//! An S3 Inventory report as a scan reads it: any bytes as `manifest.json` are a manifest or an
//! error; any bytes as one of its gzip-compressed CSV files give rows or an error, never a
//! panic, and never more memory than one row (a file that inflates to one endless line is
//! refused at the row limit). The input is split at the first NUL: the manifest before it, the
//! CSV file after it (compressed here, or taken as it is when it already starts like gzip).
#![no_main]

use std::io::Write as _;

use earshot::scan::input::InventoryManifest;

const SCHEMA: &[u8] = br#"{"sourceBucket": "media", "fileFormat": "CSV",
    "fileSchema": "Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, LastModifiedDate, ETag",
    "files": [{"key": "inventory/data/a.csv.gz"}]}"#;

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    let (manifest, csv) = match bytes.iter().position(|&b| b == 0) {
        Some(at) => (&bytes[..at], &bytes[at + 1..]),
        None => (bytes, &[][..]),
    };
    let parsed = InventoryManifest::parse(manifest);
    let manifest = match parsed {
        Ok(manifest) => manifest,
        Err(_) => InventoryManifest::parse(SCHEMA).expect("the schema parses"),
    };
    let gz = if csv.starts_with(&[0x1f, 0x8b]) {
        csv.to_vec()
    } else {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(csv).expect("in memory");
        gz.finish().expect("in memory")
    };
    let mut rows = manifest.rows(&gz[..], 0);
    let mut last = 0;
    while let Ok(Some((seq, candidate))) = rows.next_row() {
        assert_eq!(seq, last + 1, "rows are numbered one by one");
        last = seq;
        if let Some(candidate) = candidate {
            assert_eq!(candidate.seq, seq);
        }
    }
});
