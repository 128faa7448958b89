//! Kept fingerprints for retro-hunts (`retro.keep`): the landmarks of every object a rule judged,
//! with the object's identity, compactly, in the bucket under `prints/<rule>/`.
//!
//! A job writes one small object (`loose/<trace_id>.espr`); [`compact`] packs loose ones into
//! `packs/<time>-<random>.espk` files of up to [`PACK_BYTES`], so that a hunt over a hundred
//! thousand uploads reads a few dozen objects. Packing is safe to run on several daemons at once:
//! a loose print is deleted only after a pack holding it is written, and a print found twice is
//! searched once.
//!
//! A print keeps one landmark in [`SAMPLE`], chosen by hash ([`Print::sample`]), so the same
//! landmarks are kept of every recording and a reference's alignment still shows, at an eighth of
//! the votes (a hunt's match only makes the object be judged again in full).
//!
//! The encoding: landmarks are in frame order; each takes three bytes, its hash's 18 remaining
//! bits and 6 bits of frame difference from the one before (63 and a LEB128 varint for a larger
//! difference). At 75–165 landmarks a second of music that is 0.1–0.25 MB per hour of audio.

use std::collections::HashSet;

use aws_sdk_s3::Client;

use super::{StateError, get_bytes, keys_under};
use crate::fingerprint::{Fingerprint, Landmark};
use crate::layout;

/// Packs are closed at about this size.
pub const PACK_BYTES: usize = 64 << 20;

const MAGIC: &[u8; 8] = b"ESPR0002";

/// One landmark in this many is kept: those whose hash is a multiple of it.
pub const SAMPLE: u32 = 8;

/// One kept fingerprint and the object version it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Print {
    pub trace_id: String,
    pub key: String,
    pub version_id: Option<String>,
    /// Without quotes.
    pub etag: String,
    pub fingerprint: Fingerprint,
}

impl Print {
    /// The landmarks a print keeps of `fingerprint`.
    pub fn sample(fingerprint: &Fingerprint) -> Fingerprint {
        Fingerprint {
            landmarks: fingerprint
                .landmarks
                .iter()
                .filter(|l| l.hash % SAMPLE == 0)
                .copied()
                .collect(),
            frames: fingerprint.frames,
        }
    }

    /// The compact form (see the module documentation).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.fingerprint.landmarks.len() * 4);
        out.extend_from_slice(MAGIC);
        for text in [
            self.trace_id.as_str(),
            self.key.as_str(),
            self.version_id.as_deref().unwrap_or(""),
            self.etag.as_str(),
        ] {
            out.extend_from_slice(&(text.len() as u16).to_le_bytes());
            out.extend_from_slice(text.as_bytes());
        }
        out.extend_from_slice(&self.fingerprint.frames.to_le_bytes());
        out.extend_from_slice(&(self.fingerprint.landmarks.len() as u32).to_le_bytes());
        let mut previous = 0u32;
        for landmark in &self.fingerprint.landmarks {
            debug_assert_eq!(landmark.hash % SAMPLE, 0, "sampled with Print::sample");
            let delta = landmark.frame.saturating_sub(previous);
            previous = landmark.frame;
            let word = ((landmark.hash / SAMPLE) << 6) | delta.min(63);
            out.extend_from_slice(&word.to_le_bytes()[..3]);
            if delta >= 63 {
                let mut rest = delta;
                loop {
                    let byte = (rest & 0x7f) as u8;
                    rest >>= 7;
                    if rest == 0 {
                        out.push(byte);
                        break;
                    }
                    out.push(byte | 0x80);
                }
            }
        }
        out
    }

    /// Parses [`Print::to_bytes`]; None when the bytes are not a print.
    pub fn from_bytes(bytes: &[u8]) -> Option<Print> {
        let mut at = MAGIC.len();
        if bytes.get(..at)? != MAGIC {
            return None;
        }
        let mut text = || {
            let len = u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?) as usize;
            let value = std::str::from_utf8(bytes.get(at + 2..at + 2 + len)?).ok()?;
            at += 2 + len;
            Some(value.to_owned())
        };
        let (trace_id, key, version, etag) = (text()?, text()?, text()?, text()?);
        let word = |at: usize| -> Option<u32> {
            Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
        };
        let frames = word(at)?;
        if frames > crate::fingerprint::MAX_FRAMES {
            return None;
        }
        let count = word(at + 4)? as usize;
        at += 8;
        let mut landmarks = Vec::with_capacity(count.min(bytes.len() / 4));
        let mut frame = 0u32;
        for _ in 0..count {
            let word = bytes.get(at..at + 3)?;
            at += 3;
            let word = u32::from_le_bytes([word[0], word[1], word[2], 0]);
            let mut delta = word & 63;
            if delta == 63 {
                // A varint of at most five bytes whose value fits 32 bits, as `to_bytes` writes.
                delta = 0;
                let mut shift = 0;
                loop {
                    let byte = *bytes.get(at)?;
                    at += 1;
                    let part = u32::from(byte & 0x7f);
                    if shift == 28 && part > 0x0f {
                        return None;
                    }
                    delta |= part << shift;
                    if byte & 0x80 == 0 {
                        break;
                    }
                    shift += 7;
                    if shift > 28 {
                        return None;
                    }
                }
            }
            // Frames only grow, up to the print's length: anything else is damage.
            frame = frame.checked_add(delta).filter(|&f| f <= frames)?;
            landmarks.push(Landmark {
                hash: (word >> 6) * SAMPLE,
                frame,
            });
        }
        Some(Print {
            trace_id,
            key,
            version_id: (!version.is_empty()).then_some(version),
            etag,
            fingerprint: Fingerprint { landmarks, frames },
        })
    }
}

fn loose_prefix(rule: &str) -> String {
    format!("{}loose/", layout::prints_prefix(rule))
}

fn packs_prefix(rule: &str) -> String {
    format!("{}packs/", layout::prints_prefix(rule))
}

/// Keeps one job's print.
///
/// # Errors
/// S3 failed.
pub async fn keep(s3: &Client, bucket: &str, rule: &str, print: &Print) -> Result<(), StateError> {
    let key = format!("{}{}.espr", loose_prefix(rule), print.trace_id);
    super::put_bytes(s3, bucket, &key, print.to_bytes()).await
}

/// Packs the rule's loose prints; returns how many were packed.
///
/// # Errors
/// S3 failed (what was packed so far stays packed; the rest stays loose).
pub async fn compact(s3: &Client, bucket: &str, rule: &str) -> Result<usize, StateError> {
    let loose = keys_under(s3, bucket, &loose_prefix(rule)).await?;
    let mut packed = 0;
    let mut pack: Vec<u8> = Vec::new();
    let mut members: Vec<String> = Vec::new();
    for (i, key) in loose.iter().enumerate() {
        if let Some(bytes) = get_bytes(s3, bucket, key).await? {
            pack.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
            pack.extend_from_slice(&bytes);
            members.push(key.clone());
        }
        if pack.len() >= PACK_BYTES || (i + 1 == loose.len() && !members.is_empty()) {
            let name = format!(
                "{}{:012}-{:08x}.espk",
                packs_prefix(rule),
                crate::clock::system_secs(),
                fastrand::u32(..)
            );
            super::put_bytes(s3, bucket, &name, std::mem::take(&mut pack)).await?;
            for member in members.drain(..) {
                super::delete(s3, bucket, &member).await?;
                packed += 1;
            }
        }
    }
    Ok(packed)
}

/// Calls `each` with every print of a pack (records of a 4-byte little-endian length and a
/// print), in order.
///
/// # Errors
/// What is damaged: a record running past the end, or one that is not a print.
pub fn read_pack(pack: &[u8], mut each: impl FnMut(Print)) -> Result<(), &'static str> {
    let mut at = 0;
    while at + 4 <= pack.len() {
        let len = u32::from_le_bytes(pack[at..at + 4].try_into().expect("4 bytes")) as usize;
        let record = pack
            .get(at + 4..at.saturating_add(4).saturating_add(len))
            .ok_or("a record runs past the end")?;
        at += 4 + len;
        each(Print::from_bytes(record).ok_or("a record is not a print")?);
    }
    if at == pack.len() {
        Ok(())
    } else {
        Err("the pack ends inside a record's length")
    }
}

/// Calls `each` with every kept print of the rule (each trace id once); returns the bytes read.
///
/// # Errors
/// S3 failed or a pack is damaged.
pub async fn for_each(
    s3: &Client,
    bucket: &str,
    rule: &str,
    mut each: impl FnMut(Print),
) -> Result<u64, StateError> {
    let mut seen = HashSet::new();
    let mut read = 0u64;
    for key in keys_under(s3, bucket, &packs_prefix(rule)).await? {
        let Some(pack) = get_bytes(s3, bucket, &key).await? else {
            continue;
        };
        read += pack.len() as u64;
        read_pack(&pack, |print| {
            if seen.insert(print.trace_id.clone()) {
                each(print);
            }
        })
        .map_err(|what| StateError::corrupt(bucket, &key, what))?;
    }
    for key in keys_under(s3, bucket, &loose_prefix(rule)).await? {
        let Some(bytes) = get_bytes(s3, bucket, &key).await? else {
            continue;
        };
        read += bytes.len() as u64;
        if let Some(print) = Print::from_bytes(&bytes)
            && seen.insert(print.trace_id.clone())
        {
            each(print);
        }
    }
    Ok(read)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An input a fuzz target found, kept in `tests/fixtures/fuzz/`.
    fn fuzz_fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/tests/fixtures/fuzz/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn a_print_whose_frame_delta_wraps_is_refused_not_misread() {
        // Found by the `prints` fuzz target: a varint of more than 32 bits wrapped a landmark's
        // frame below the one before it, and the print read back differently once written.
        assert_eq!(
            Print::from_bytes(&fuzz_fixture("prints-frame-delta-wraps.bin")),
            None
        );
    }

    #[test]
    fn a_print_longer_than_any_recording_is_refused_not_matched() {
        // Found by the `prints` fuzz target: a print claiming about 500 million frames made a
        // retro-hunt's match allocate 7 GB.
        assert_eq!(
            Print::from_bytes(&fuzz_fixture("prints-frames-beyond-any-recording.bin")),
            None
        );
    }

    #[test]
    fn a_print_round_trips_in_about_three_bytes_a_landmark() {
        let mut frame = 0;
        let landmarks: Vec<Landmark> = (0..5000u32)
            .map(|i| {
                frame += if i % 100 == 0 { 1000 } else { (i * 7919) % 9 };
                Landmark {
                    hash: ((i * 104_729) & 0x1f_ffff) / SAMPLE * SAMPLE,
                    frame,
                }
            })
            .collect();
        let print = Print {
            trace_id: "0123456789abcdef0123456789abcdef".into(),
            key: "audio/ü b.mp3".into(),
            version_id: None,
            etag: "d41d8cd98f00b204e9800998ecf8427e".into(),
            fingerprint: Fingerprint {
                landmarks,
                frames: frame + 3,
            },
        };
        let sampled = Print::sample(&Fingerprint {
            landmarks: (0..80).map(|h| Landmark { hash: h, frame: h }).collect(),
            frames: 80,
        });
        assert_eq!(sampled.landmarks.len(), 10);
        let bytes = print.to_bytes();
        assert_eq!(Print::from_bytes(&bytes), Some(print));
        assert!(
            bytes.len() < 5000 * 3 + 50 * 2 + 200,
            "{} bytes",
            bytes.len()
        );
        assert_eq!(Print::from_bytes(&bytes[..bytes.len() - 1]), None);
        assert_eq!(Print::from_bytes(b"not a print"), None);
    }
}
