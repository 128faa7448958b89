//! A [`Job`] is one object version to moderate. This module turns every event shape earshot
//! accepts (DESIGN §2) into jobs: S3 notification records (direct, in an SQS body, wrapped in SNS
//! for SQS/HTTP or for Lambda), MinIO's webhook body, and EventBridge "Object Created". Test events
//! and non-create events are returned as [`Ignored`] so the source can acknowledge them.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// One object version to moderate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub bucket: String,
    /// The decoded key (events carry it URL-encoded).
    pub key: String,
    pub version_id: Option<String>,
    /// Without quotes.
    pub etag: Option<String>,
    pub size: Option<u64>,
    /// How the job came; the callback's `source`.
    #[serde(default)]
    pub origin: Origin,
    /// Judge the version again even when it was judged before (`earshot scan --rescan`, a
    /// retro-hunt match): the new judgement replaces the old one, under the same `trace_id`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rejudge: bool,
}

/// How a job came to earshot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// An upload's event (SQS, SNS, webhook, EventBridge, Lambda).
    #[default]
    Upload,
    /// `earshot scan`: an object already stored.
    Scan,
    /// An S3 Batch Operations task (`earshot-lambda`).
    Batch,
    /// A retro-hunt: a reference added later matched the object's kept fingerprint.
    Retro,
    /// `earshot moderate s3://…` or `earshot jobs replay`: a person asked.
    Manual,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Upload => "upload",
            Origin::Scan => "scan",
            Origin::Batch => "batch",
            Origin::Retro => "retro",
            Origin::Manual => "manual",
        }
    }
}

impl Job {
    pub fn new(bucket: impl Into<String>, key: impl Into<String>) -> Job {
        Job {
            bucket: bucket.into(),
            key: key.into(),
            version_id: None,
            etag: None,
            size: None,
            origin: Origin::Upload,
            rejudge: false,
        }
    }

    /// The same job, marked with how it came.
    pub fn with_origin(mut self, origin: Origin) -> Job {
        self.origin = origin;
        self
    }

    /// Stable per object version: the same bucket, key and version (or ETag) give the same id, so
    /// a duplicate event is recognised and its callback carries the same `trace_id`.
    pub fn trace_id(&self) -> String {
        let mut hash = Sha256::new();
        for part in [
            self.bucket.as_str(),
            self.key.as_str(),
            self.version_id.as_deref().unwrap_or(""),
            self.etag.as_deref().unwrap_or(""),
        ] {
            hash.update(part.as_bytes());
            hash.update([0]);
        }
        hex::encode(&hash.finalize()[..16])
    }
}

/// The field of earshot's own queue message, which carries a [`Job`] as it is.
pub const EARSHOT_JOB: &str = "earshot_job";

/// The queue message that hands `job` to whichever daemon receives it.
pub fn job_message(job: &Job) -> String {
    serde_json::json!({ EARSHOT_JOB: job }).to_string()
}

/// An event that was understood and deliberately not turned into a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ignored {
    pub reason: String,
}

/// What one event body holds.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub jobs: Vec<Job>,
    pub ignored: Vec<Ignored>,
}

#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("event is not JSON: {0}")]
    NotJson(#[from] serde_json::Error),
    #[error("event has an unknown shape (no Records, no SNS Message, no EventBridge detail)")]
    UnknownShape,
    #[error("event record {index} is malformed: {message}")]
    BadRecord { index: usize, message: String },
}

/// Parses one event body, whatever its wrapping.
///
/// # Errors
/// A body that is not JSON, has no recognisable shape, or holds a create record without a bucket
/// or key.
pub fn parse_event(body: &[u8]) -> Result<Parsed, EventError> {
    let value: Value = serde_json::from_slice(body)?;
    parse_event_value(&value)
}

/// [`parse_event`] for a body already parsed as JSON (a Lambda payload).
///
/// # Errors
/// As [`parse_event`], except that the body is JSON.
pub fn parse_event_value(value: &Value) -> Result<Parsed, EventError> {
    parse_value(value, 0)
}

fn parse_value(value: &Value, depth: u8) -> Result<Parsed, EventError> {
    // earshot's own message (`earshot scan --enqueue`): {"earshot_job": {Job}}.
    if let Some(job) = value.get(EARSHOT_JOB) {
        let job: Job = serde_json::from_value(job.clone()).map_err(|e| EventError::BadRecord {
            index: 0,
            message: format!("{EARSHOT_JOB}: {e}"),
        })?;
        return Ok(Parsed {
            jobs: vec![job],
            ignored: Vec::new(),
        });
    }
    // SNS: {"Type":"Notification","Message":"<the S3 event as a string>"}.
    if let (Some(kind), Some(message)) = (
        value.get("Type").and_then(Value::as_str),
        value.get("Message").and_then(Value::as_str),
    ) && depth < 2
    {
        if kind != "Notification" {
            return Ok(ignored(format!("SNS message of type {kind}")));
        }
        let inner: Value = serde_json::from_str(message)?;
        return parse_value(&inner, depth + 1);
    }
    // S3 test event: {"Service":"Amazon S3","Event":"s3:TestEvent",...}.
    if let Some(event) = value.get("Event").and_then(Value::as_str) {
        return Ok(ignored(format!("{event} event")));
    }
    // EventBridge: {"detail-type":"Object Created","source":"aws.s3","detail":{...}}.
    if let Some(detail_type) = value.get("detail-type").and_then(Value::as_str) {
        return parse_eventbridge(detail_type, value);
    }
    // S3 notification (also MinIO's webhook body, which adds EventName and Key beside Records).
    if let Some(records) = value.get("Records").and_then(Value::as_array) {
        let mut parsed = Parsed::default();
        for (index, record) in records.iter().enumerate() {
            // SNS delivering to Lambda: {"Records":[{"EventSource":"aws:sns","Sns":{...}}]}.
            if let Some(sns) = record.get("Sns")
                && depth < 2
            {
                let inner = parse_value(sns, depth + 1)?;
                parsed.jobs.extend(inner.jobs);
                parsed.ignored.extend(inner.ignored);
                continue;
            }
            match parse_record(index, record)? {
                Ok(job) => parsed.jobs.push(job),
                Err(skip) => parsed.ignored.push(skip),
            }
        }
        return Ok(parsed);
    }
    Err(EventError::UnknownShape)
}

fn ignored(reason: String) -> Parsed {
    Parsed {
        jobs: Vec::new(),
        ignored: vec![Ignored { reason }],
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Record {
    event_name: Option<String>,
    s3: Option<RecordS3>,
}

#[derive(Deserialize)]
struct RecordS3 {
    bucket: RecordBucket,
    object: RecordObject,
}

#[derive(Deserialize)]
struct RecordBucket {
    name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RecordObject {
    key: String,
    size: Option<u64>,
    e_tag: Option<String>,
    version_id: Option<String>,
}

fn parse_record(index: usize, value: &Value) -> Result<Result<Job, Ignored>, EventError> {
    let record: Record =
        serde_json::from_value(value.clone()).map_err(|e| EventError::BadRecord {
            index,
            message: e.to_string(),
        })?;
    let name = record.event_name.unwrap_or_default();
    // AWS says "ObjectCreated:Put"; MinIO says "s3:ObjectCreated:Put".
    if !name.trim_start_matches("s3:").starts_with("ObjectCreated:") {
        return Ok(Err(Ignored {
            reason: format!("record {index} is a {name:?} event, not ObjectCreated"),
        }));
    }
    let s3 = record.s3.ok_or_else(|| EventError::BadRecord {
        index,
        message: "ObjectCreated record without an s3 section".to_owned(),
    })?;
    let key =
        decode_key(&s3.object.key).map_err(|message| EventError::BadRecord { index, message })?;
    Ok(Ok(Job {
        bucket: s3.bucket.name,
        key,
        version_id: s3
            .object
            .version_id
            .filter(|v| !v.is_empty() && v != "null"),
        etag: s3
            .object
            .e_tag
            .map(|e| unquote(&e))
            .filter(|e| !e.is_empty()),
        size: s3.object.size,
        origin: Origin::Upload,
        rejudge: false,
    }))
}

fn parse_eventbridge(detail_type: &str, value: &Value) -> Result<Parsed, EventError> {
    if detail_type != "Object Created" {
        return Ok(ignored(format!("EventBridge {detail_type:?} event")));
    }
    let bad = |message: &str| EventError::BadRecord {
        index: 0,
        message: message.to_owned(),
    };
    let detail = value.get("detail").ok_or_else(|| bad("no detail"))?;
    let bucket = detail
        .pointer("/bucket/name")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("no detail.bucket.name"))?;
    let object = detail
        .get("object")
        .ok_or_else(|| bad("no detail.object"))?;
    let raw_key = object
        .get("key")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("no detail.object.key"))?;
    // EventBridge encodes keys like S3 notifications do.
    let key = decode_key(raw_key).map_err(|m| bad(&m))?;
    let text = |field: &str| object.get(field).and_then(Value::as_str).map(str::to_owned);
    Ok(Parsed {
        jobs: vec![Job {
            bucket: bucket.to_owned(),
            key,
            version_id: text("version-id").filter(|v| v != "null"),
            etag: text("etag").map(|e| unquote(&e)),
            size: object.get("size").and_then(Value::as_u64),
            origin: Origin::Upload,
            rejudge: false,
        }],
        ignored: Vec::new(),
    })
}

/// Decodes an event key: `+` is a space, `%XX` a byte, and the bytes are UTF-8.
///
/// # Errors
/// The decoded bytes are not UTF-8.
fn decode_key(raw: &str) -> Result<String, String> {
    let spaced = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .map(|key| key.into_owned())
        .map_err(|e| format!("key {raw:?} does not decode to UTF-8: {e}"))
}

pub(crate) fn unquote(etag: &str) -> String {
    etag.trim().trim_matches('"').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_decode_like_s3_encodes_them() {
        let cases = [
            ("audio/a+b.mp3", "audio/a b.mp3"),
            ("audio/a%20b.mp3", "audio/a b.mp3"),
            ("audio/a%2Bb.mp3", "audio/a+b.mp3"),
            ("audio/%E5%A3%B0%E9%9F%B3.mp3", "audio/声音.mp3"),
            ("audio/caf%C3%A9+%26+bar.wav", "audio/café & bar.wav"),
            ("plain.mp3", "plain.mp3"),
        ];
        for (raw, want) in cases {
            assert_eq!(decode_key(raw).as_deref(), Ok(want), "{raw}");
        }
        assert!(decode_key("bad%FF.mp3").is_err());
    }

    #[test]
    fn trace_id_is_stable_per_version() {
        let mut a = Job::new("b", "k.mp3");
        a.etag = Some("e1".into());
        let mut b = a.clone();
        assert_eq!(a.trace_id(), b.trace_id());
        b.etag = Some("e2".into());
        assert_ne!(a.trace_id(), b.trace_id());
        assert_eq!(a.trace_id().len(), 32);
    }

    #[test]
    fn unknown_shapes_are_errors() {
        assert!(matches!(parse_event(b"{}"), Err(EventError::UnknownShape)));
        assert!(matches!(
            parse_event(b"not json"),
            Err(EventError::NotJson(_))
        ));
        let no_bucket =
            br#"{"Records":[{"eventName":"ObjectCreated:Put","s3":{"object":{"key":"a"}}}]}"#;
        assert!(matches!(
            parse_event(no_bucket),
            Err(EventError::BadRecord { index: 0, .. })
        ));
    }
}
