//! Where a scan's objects come from, each in a fixed order so that a position (how many records
//! were read) names the same place when the scan starts again:
//!
//! - a listing of the bucket under a prefix (`ListObjectsV2`, in key order; resumed with
//!   `StartAfter`);
//! - an S3 Inventory report: its `manifest.json` and the CSV files it names, gzip-compressed, as
//!   S3 writes them (columns per `fileSchema`, keys URL-encoded);
//! - a file of keys, one per line (`key` or `s3://bucket/key`; `#` starts a comment).

use std::io::{BufRead, Read};

use aws_sdk_s3::Client;
use serde::Deserialize;
use tokio::sync::mpsc;

use crate::job::unquote;
use crate::layout;
use crate::storage::S3Failure;

/// One object a scan may judge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Its place in the input (1 for the first record).
    pub seq: u64,
    pub key: String,
    pub size: u64,
    /// Without quotes; None when the input does not say (a file of keys).
    pub etag: Option<String>,
    /// The current version, in a versioned bucket (events name it, so job ids include it).
    pub version_id: Option<String>,
    /// Seconds since the epoch; None when the input does not say.
    pub last_modified: Option<u64>,
}

/// What to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// List the bucket under the scan's prefix (its current versions, when it is versioned).
    Listing,
    /// An S3 Inventory report: `s3://bucket/path/manifest.json`.
    Inventory(String),
    /// A local file of keys.
    Keys(std::path::PathBuf),
}

impl Input {
    /// How the scan's checkpoint names its input.
    pub fn describe(&self) -> String {
        match self {
            Input::Listing => "listing".to_owned(),
            Input::Inventory(url) => format!("inventory {url}"),
            Input::Keys(path) => format!("keys {}", path.display()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("listing s3://{bucket}/{prefix}: {failure}")]
    List {
        bucket: String,
        prefix: String,
        failure: S3Failure,
    },
    #[error("reading s3://{bucket}/{key}: {message}")]
    Read {
        bucket: String,
        key: String,
        message: String,
    },
    #[error("inventory manifest {url}: {message}")]
    Manifest { url: String, message: String },
    #[error("keys file {path}: {message}")]
    Keys { path: String, message: String },
}

/// Reads the input into `out` in order, starting after record `skip` (and, for a listing, after
/// key `start_after`). Stops early when `out` is closed.
///
/// # Errors
/// The input could not be read.
pub async fn read(
    s3: &Client,
    bucket: &str,
    prefix: &str,
    input: &Input,
    skip: u64,
    start_after: Option<String>,
    out: mpsc::Sender<Candidate>,
) -> Result<(), InputError> {
    match input {
        Input::Listing if versioned(s3, bucket).await? => {
            list_versions(s3, bucket, prefix, skip, start_after, out).await
        }
        Input::Listing => list(s3, bucket, prefix, skip, start_after, out).await,
        Input::Inventory(url) => inventory(s3, url, skip, out).await,
        Input::Keys(path) => keys(bucket, path, skip, out).await,
    }
}

/// The key after every key under earshot's own area: a listing jumps over that area (it may hold
/// a record of every upload, and it is never moderated) by starting again after it.
fn past_reserved() -> String {
    format!("{}0", layout::BACKUP_ROOT.trim_end_matches('/'))
}

fn list_error(bucket: &str, prefix: &str, failure: S3Failure) -> InputError {
    InputError::List {
        bucket: bucket.to_owned(),
        prefix: prefix.to_owned(),
        failure,
    }
}

async fn list(
    s3: &Client,
    bucket: &str,
    prefix: &str,
    skip: u64,
    start_after: Option<String>,
    out: mpsc::Sender<Candidate>,
) -> Result<(), InputError> {
    let past_reserved = past_reserved();
    let mut start_after = start_after;
    let mut seq = skip;
    'listing: loop {
        let mut pages = s3
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .set_start_after(start_after.clone())
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| list_error(bucket, prefix, S3Failure::from_sdk(&e)))?;
            for object in page.contents() {
                let Some(key) = object.key() else { continue };
                if layout::is_reserved(key) {
                    start_after = Some(past_reserved.clone());
                    continue 'listing;
                }
                seq += 1;
                let candidate = Candidate {
                    seq,
                    key: key.to_owned(),
                    size: object.size().unwrap_or(0).max(0) as u64,
                    etag: object.e_tag().map(unquote),
                    version_id: None,
                    last_modified: object.last_modified().map(|t| t.secs().max(0) as u64),
                };
                if out.send(candidate).await.is_err() {
                    return Ok(());
                }
            }
        }
        return Ok(());
    }
}

/// Whether the bucket keeps versions (enabled, or suspended with versions kept).
async fn versioned(s3: &Client, bucket: &str) -> Result<bool, InputError> {
    let versioning = s3
        .get_bucket_versioning()
        .bucket(bucket)
        .send()
        .await
        .map_err(|e| list_error(bucket, "", S3Failure::from_sdk(&e)))?;
    Ok(versioning.status().is_some())
}

/// [`list`] for a versioned bucket: the current version of each key (not delete markers), with
/// its version id, so that a job's id is the one its upload event gave it.
async fn list_versions(
    s3: &Client,
    bucket: &str,
    prefix: &str,
    skip: u64,
    start_after: Option<String>,
    out: mpsc::Sender<Candidate>,
) -> Result<(), InputError> {
    let past_reserved = past_reserved();
    let mut key_marker = start_after;
    let mut version_marker: Option<String> = None;
    let mut seq = skip;
    loop {
        let page = s3
            .list_object_versions()
            .bucket(bucket)
            .prefix(prefix)
            .set_key_marker(key_marker.clone())
            .set_version_id_marker(version_marker.clone())
            .send()
            .await
            .map_err(|e| list_error(bucket, prefix, S3Failure::from_sdk(&e)))?;
        let mut jumped = false;
        for version in page.versions() {
            let Some(key) = version.key() else { continue };
            if layout::is_reserved(key) {
                key_marker = Some(past_reserved.clone());
                version_marker = None;
                jumped = true;
                break;
            }
            if version.is_latest() != Some(true) {
                continue;
            }
            seq += 1;
            let candidate = Candidate {
                seq,
                key: key.to_owned(),
                size: version.size().unwrap_or(0).max(0) as u64,
                etag: version.e_tag().map(unquote),
                version_id: version
                    .version_id()
                    .filter(|v| *v != "null")
                    .map(str::to_owned),
                last_modified: version.last_modified().map(|t| t.secs().max(0) as u64),
            };
            if out.send(candidate).await.is_err() {
                return Ok(());
            }
        }
        if jumped {
            continue;
        }
        if page.is_truncated() != Some(true) {
            return Ok(());
        }
        key_marker = page.next_key_marker().map(str::to_owned);
        version_marker = page.next_version_id_marker().map(str::to_owned);
    }
}

/// The parts of an S3 Inventory `manifest.json` a scan reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Manifest {
    source_bucket: String,
    file_format: String,
    /// `Bucket, Key, Size, LastModifiedDate, ETag, …`
    file_schema: String,
    files: Vec<ManifestFile>,
}

#[derive(Debug, Deserialize)]
struct ManifestFile {
    key: String,
}

/// The columns of an inventory CSV that a scan uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Columns {
    key: usize,
    size: Option<usize>,
    last_modified: Option<usize>,
    etag: Option<usize>,
    version_id: Option<usize>,
    is_latest: Option<usize>,
    delete_marker: Option<usize>,
}

impl Columns {
    fn of(schema: &str) -> Option<Columns> {
        let names: Vec<String> = schema
            .split(',')
            .map(|c| c.trim().to_ascii_lowercase())
            .collect();
        let at = |name: &str| names.iter().position(|n| n == name);
        Some(Columns {
            key: at("key")?,
            size: at("size"),
            last_modified: at("lastmodifieddate"),
            etag: at("etag"),
            version_id: at("versionid"),
            is_latest: at("islatest"),
            delete_marker: at("isdeletemarker"),
        })
    }
}

/// What a scan needs from an S3 Inventory `manifest.json`: the source bucket, the columns, and
/// the CSV files in order.
#[derive(Debug)]
pub struct InventoryManifest {
    source_bucket: String,
    columns: Columns,
    pub files: Vec<String>,
}

impl InventoryManifest {
    /// # Errors
    /// Not a manifest, not CSV, or no `Key` column.
    pub fn parse(bytes: &[u8]) -> Result<InventoryManifest, String> {
        let manifest: Manifest = serde_json::from_slice(bytes)
            .map_err(|e| format!("not an S3 Inventory manifest: {e}"))?;
        if !manifest.file_format.eq_ignore_ascii_case("CSV") {
            return Err(format!(
                "fileFormat {} is not supported; configure the inventory as CSV",
                manifest.file_format
            ));
        }
        let columns = Columns::of(&manifest.file_schema)
            .ok_or_else(|| format!("fileSchema {:?} has no Key", manifest.file_schema))?;
        Ok(InventoryManifest {
            source_bucket: manifest.source_bucket,
            columns,
            files: manifest.files.into_iter().map(|f| f.key).collect(),
        })
    }

    /// The rows of one of its files (gzip-compressed CSV, read as a stream), numbered on from
    /// `seq` (the number of rows in the files before it).
    pub fn rows<R: Read>(&self, gz: R, seq: u64) -> InventoryRows<'_, R> {
        InventoryRows {
            manifest: self,
            csv: std::io::BufReader::new(flate2::read::MultiGzDecoder::new(gz)),
            seq,
            line: Vec::new(),
        }
    }
}

/// The longest CSV line an inventory row may be: S3 keys are at most 1,024 bytes, three times
/// that URL-encoded, and the other columns are short. A longer line is a damaged file.
const MAX_INVENTORY_LINE: usize = 64 * 1024;

/// The rows of one inventory file: each non-empty line counts (its number is a candidate's
/// `seq`); delete markers, non-current versions and rows of another bucket yield no candidate.
pub struct InventoryRows<'a, R: Read> {
    manifest: &'a InventoryManifest,
    csv: std::io::BufReader<flate2::read::MultiGzDecoder<R>>,
    seq: u64,
    line: Vec<u8>,
}

impl<R: Read> InventoryRows<'_, R> {
    /// The number of the last row read.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The next row: Ok(None) at the end; a row without a candidate is `Some(None)`.
    ///
    /// # Errors
    /// The file is not gzip-compressed UTF-8 CSV, or a line is longer than any row can be.
    pub fn next_row(&mut self) -> Result<Option<(u64, Option<Candidate>)>, String> {
        loop {
            self.line.clear();
            let limit = MAX_INVENTORY_LINE as u64 + 1;
            let read = (&mut self.csv)
                .take(limit)
                .read_until(b'\n', &mut self.line)
                .map_err(|e| format!("not gzip-compressed CSV: {e}"))?;
            if read == 0 {
                return Ok(None);
            }
            if self.line.len() > MAX_INVENTORY_LINE {
                return Err(format!(
                    "row {} is longer than {MAX_INVENTORY_LINE} bytes",
                    self.seq + 1
                ));
            }
            let line = std::str::from_utf8(&self.line)
                .map_err(|e| format!("row {} is not UTF-8: {e}", self.seq + 1))?;
            if line.trim().is_empty() {
                continue;
            }
            self.seq += 1;
            let fields = csv_fields(line.trim_end_matches(['\n', '\r']));
            let candidate = inventory_row(&fields, &self.manifest.columns, self.seq).filter(|_| {
                fields
                    .first()
                    .is_none_or(|b| b == &self.manifest.source_bucket)
            });
            return Ok(Some((self.seq, candidate)));
        }
    }
}

async fn inventory(
    s3: &Client,
    url: &str,
    skip: u64,
    out: mpsc::Sender<Candidate>,
) -> Result<(), InputError> {
    let bad = |message: String| InputError::Manifest {
        url: url.to_owned(),
        message,
    };
    let (bucket, key) = url
        .strip_prefix("s3://")
        .and_then(|rest| rest.split_once('/'))
        .ok_or_else(|| bad("expected s3://bucket/…/manifest.json".to_owned()))?;
    let manifest = InventoryManifest::parse(&get(s3, bucket, key).await?).map_err(bad)?;
    let mut seq = 0u64;
    for file in &manifest.files {
        let gz = get(s3, bucket, file).await?;
        let mut rows = manifest.rows(&gz[..], seq);
        while let Some((at, candidate)) = rows.next_row().map_err(|message| InputError::Read {
            bucket: bucket.to_owned(),
            key: file.clone(),
            message,
        })? {
            let Some(candidate) = candidate.filter(|_| at > skip) else {
                continue;
            };
            if out.send(candidate).await.is_err() {
                return Ok(());
            }
        }
        seq = rows.seq();
    }
    Ok(())
}

/// One inventory row as a candidate; None for a delete marker or a non-current version.
fn inventory_row(fields: &[String], columns: &Columns, seq: u64) -> Option<Candidate> {
    let field = |i: Option<usize>| i.and_then(|i| fields.get(i)).filter(|f| !f.is_empty());
    if field(columns.delete_marker).is_some_and(|f| f == "true")
        || field(columns.is_latest).is_some_and(|f| f == "false")
    {
        return None;
    }
    let raw = fields.get(columns.key)?;
    // Inventory keys are URL-encoded like event keys.
    let key = percent_encoding::percent_decode_str(&raw.replace('+', " "))
        .decode_utf8()
        .ok()?
        .into_owned();
    Some(Candidate {
        seq,
        key,
        size: field(columns.size)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
        etag: field(columns.etag).map(|e| unquote(e)),
        version_id: field(columns.version_id)
            .filter(|v| v.as_str() != "null")
            .cloned(),
        last_modified: field(columns.last_modified).and_then(|t| {
            aws_smithy_types::DateTime::from_str(t, aws_smithy_types::date_time::Format::DateTime)
                .ok()
                .map(|t| t.secs().max(0) as u64)
        }),
    })
}

/// The fields of one CSV line, with quotes removed (`""` inside quotes is a quote).
fn csv_fields(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(std::mem::take(&mut field)),
            c => field.push(c),
        }
    }
    fields.push(field);
    fields
}

async fn keys(
    bucket: &str,
    path: &std::path::Path,
    skip: u64,
    out: mpsc::Sender<Candidate>,
) -> Result<(), InputError> {
    let file = std::fs::File::open(path).map_err(|e| InputError::Keys {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    let mut seq = 0u64;
    for line in std::io::BufReader::new(file).lines() {
        let line = line.map_err(|e| InputError::Keys {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        seq += 1;
        if seq <= skip {
            continue;
        }
        let key = match line.strip_prefix("s3://") {
            Some(rest) => match rest.split_once('/') {
                Some((b, key)) if b == bucket => key,
                _ => {
                    return Err(InputError::Keys {
                        path: path.display().to_string(),
                        message: format!("line {seq}: {line} is not in bucket {bucket}"),
                    });
                }
            },
            None => line,
        };
        let candidate = Candidate {
            seq,
            key: key.to_owned(),
            size: 0,
            etag: None,
            version_id: None,
            last_modified: None,
        };
        if out.send(candidate).await.is_err() {
            return Ok(());
        }
    }
    Ok(())
}

async fn get(s3: &Client, bucket: &str, key: &str) -> Result<Vec<u8>, InputError> {
    let read = |message: String| InputError::Read {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        message,
    };
    let out = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| read(S3Failure::from_sdk(&e).to_string()))?;
    let bytes = out.body.collect().await.map_err(|e| read(e.to_string()))?;
    Ok(bytes.into_bytes().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inventory_rows_read_per_the_schema() {
        let columns = Columns::of(
            "Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, LastModifiedDate, ETag",
        )
        .expect("has Key");
        let row = |line: &str| inventory_row(&csv_fields(line), &columns, 7);
        let found = row(r#""media","audio/a%20b+c.mp3","v1","true","false","1234","2026-11-01T10:00:00.000Z","0123abcd""#)
            .expect("a current object");
        assert_eq!(found.key, "audio/a b c.mp3");
        assert_eq!(found.size, 1234);
        assert_eq!(found.etag.as_deref(), Some("0123abcd"));
        assert_eq!(found.version_id.as_deref(), Some("v1"));
        assert_eq!(found.last_modified, Some(1_793_527_200));
        assert_eq!(found.seq, 7);
        assert!(
            row(
                r#""media","audio/old.mp3","v0","false","false","1","2026-11-01T10:00:00.000Z","e""#
            )
            .is_none()
        );
        assert!(
            row(r#""media","audio/gone.mp3","v2","true","true","","2026-11-01T10:00:00.000Z","""#)
                .is_none()
        );
        assert_eq!(
            csv_fields(r#""a ""quoted"" name",2"#),
            ["a \"quoted\" name", "2"]
        );
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        use std::io::Write as _;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(bytes).expect("in memory");
        gz.finish().expect("in memory")
    }

    const MANIFEST: &[u8] = br#"{"sourceBucket": "media", "fileFormat": "CSV",
        "fileSchema": "Bucket, Key, Size", "files": [{"key": "inv/a.csv.gz"}]}"#;

    #[test]
    fn inventory_files_are_read_row_by_row_numbered_across_files() {
        let manifest = InventoryManifest::parse(MANIFEST).expect("a CSV manifest");
        assert_eq!(manifest.files, ["inv/a.csv.gz"]);
        let gz = gzip(
            b"\"media\",\"a.mp3\",\"5\"\r\n\n\"other\",\"b.mp3\",\"6\"\n\"media\",\"c.mp3\",\"7\"",
        );
        let mut rows = manifest.rows(&gz[..], 10);
        let (seq, a) = rows.next_row().expect("readable").expect("a row");
        assert_eq!(
            (seq, a.map(|c| (c.key, c.size))),
            (11, Some(("a.mp3".to_owned(), 5)))
        );
        assert_eq!(rows.next_row().expect("readable"), Some((12, None)));
        let (seq, c) = rows.next_row().expect("readable").expect("a row");
        assert_eq!((seq, c.map(|c| c.key)), (13, Some("c.mp3".to_owned())));
        assert_eq!(rows.next_row().expect("readable"), None);
        assert_eq!(rows.seq(), 13);
        assert!(
            InventoryManifest::parse(
                br#"{"sourceBucket": "m", "fileFormat": "ORC",
                "fileSchema": "Key", "files": []}"#
            )
            .is_err_and(|e| e.contains("ORC"))
        );
    }

    #[test]
    fn an_inventory_file_without_line_ends_is_refused_not_read_whole() {
        let manifest = InventoryManifest::parse(MANIFEST).expect("a CSV manifest");
        let gz = gzip(&vec![b'a'; 8 << 20]);
        let refused = manifest
            .rows(&gz[..], 0)
            .next_row()
            .expect_err("no row is that long");
        assert!(refused.contains("longer than"), "{refused}");
        let refused = manifest
            .rows(&b"not gzip"[..], 0)
            .next_row()
            .expect_err("not gzip");
        assert!(refused.contains("not gzip-compressed CSV"), "{refused}");
    }
}
