//! The index file: the tables written once and mapped read-only by every reader, with the ids
//! and the caller's metadata after them.

use super::{HASH_BITS, Index, Tables, density};

/// Version 2 added the landmark-density table (a version-1 file is refused, so rebuilt).
const FILE_MAGIC: &[u8; 8] = b"ESIX0002";
/// Magic, then six little-endian u64s: references, postings, hash bits, bytes of the ids' JSON,
/// bytes of the caller's metadata, and a checksum of the header.
const HEADER_BYTES: usize = 8 + 6 * 8;

/// An index file that cannot be used (it is then rebuilt from the library's entries).
#[derive(Debug, thiserror::Error)]
pub enum IndexFileError {
    #[error("index file {path}: {message}")]
    Io { path: String, message: String },
    #[error("index file {path} is not a valid earshot index: {message}")]
    Invalid { path: String, message: String },
}

impl Index {
    /// Writes the index and `meta` (the caller's bytes, returned by [`Index::open`]) to `path`,
    /// through a temporary file beside it and a rename: a reader mapping `path` keeps the file it
    /// opened.
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn write(&self, path: &std::path::Path, meta: &[u8]) -> Result<(), IndexFileError> {
        use std::io::Write;
        let io = |e: std::io::Error| IndexFileError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        let ids = serde_json::to_vec(&self.ids).expect("strings serialise");
        let (offsets, postings) = (self.tables.offsets(), self.tables.postings());
        let name = path
            .file_name()
            .map_or_else(Default::default, |n| n.to_string_lossy().into_owned());
        let partial = path.with_file_name(format!(".{name}.{}.partial", unique_suffix()));
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let file = std::fs::File::create(&partial).map_err(io)?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
        let fields = [
            self.ids.len() as u64,
            postings.len() as u64,
            u64::from(HASH_BITS),
            ids.len() as u64,
            meta.len() as u64,
        ];
        let mut header = FILE_MAGIC.to_vec();
        for field in fields {
            header.extend_from_slice(&field.to_le_bytes());
        }
        header.extend_from_slice(&header_check(&fields).to_le_bytes());
        let written = (|| -> std::io::Result<()> {
            out.write_all(&header)?;
            write_padded(&mut out, bytemuck::cast_slice(&self.frames))?;
            write_padded(&mut out, bytemuck::cast_slice(self.tables.density()))?;
            write_padded(&mut out, bytemuck::cast_slice(offsets))?;
            out.write_all(bytemuck::cast_slice(postings))?;
            out.write_all(&ids)?;
            out.write_all(meta)?;
            out.into_inner().map_err(|e| e.into_error())?.sync_all()
        })();
        if let Err(e) = written.and_then(|()| std::fs::rename(&partial, path)) {
            let _ = std::fs::remove_file(&partial);
            return Err(io(e));
        }
        Ok(())
    }

    /// Maps an index file written by [`Index::write`]; returns it with the caller's metadata.
    ///
    /// # Errors
    /// The file cannot be read, or is not a complete index of this version.
    pub fn open(path: &std::path::Path) -> Result<(Index, Vec<u8>), IndexFileError> {
        let invalid = |message: String| IndexFileError::Invalid {
            path: path.display().to_string(),
            message,
        };
        let file = std::fs::File::open(path).map_err(|e| IndexFileError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        let map = map_file(&file).map_err(|e| IndexFileError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        if cfg!(target_endian = "big") {
            return Err(invalid(
                "index files are little-endian; this machine is not".into(),
            ));
        }
        if map.len() < HEADER_BYTES || &map[..8] != FILE_MAGIC {
            return Err(invalid("no ESIX0002 header".into()));
        }
        let field =
            |n: usize| u64::from_le_bytes(map[8 + n * 8..16 + n * 8].try_into().expect("8 bytes"));
        let fields = [field(0), field(1), field(2), field(3), field(4)];
        if field(5) != header_check(&fields) || fields[2] != u64::from(HASH_BITS) {
            return Err(invalid("header checksum or hash size differs".into()));
        }
        // Sizes no index can have (and whose sums below would overflow) are refused first.
        if fields.iter().any(|&f| f > map.len() as u64) {
            return Err(invalid("a size in the header exceeds the file".into()));
        }
        let [refs, postings, _, ids_len, meta_len] = fields.map(|f| f as usize);
        let frames_at = HEADER_BYTES;
        let density_at = frames_at + padded(refs * 4);
        if map.len() < density_at {
            return Err(invalid("shorter than its frame table".into()));
        }
        let frames: Vec<u32> = map[frames_at..frames_at + refs * 4]
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
            .collect();
        let density_starts = density::starts(&frames);
        let blocks: usize = frames.iter().map(|&f| density::blocks_of(f)).sum();
        let offsets_at = density_at + padded(blocks * 2);
        let postings_at = offsets_at + padded(((1 << HASH_BITS) + 1) * 4);
        let ids_at = postings_at + postings * 8;
        let end = ids_at + ids_len + meta_len;
        if map.len() != end {
            return Err(invalid(format!(
                "{} bytes, the header says {end}",
                map.len()
            )));
        }
        let ids: Vec<String> = serde_json::from_slice(&map[ids_at..ids_at + ids_len])
            .map_err(|e| invalid(format!("ids: {e}")))?;
        if ids.len() != refs {
            return Err(invalid(format!("{} ids for {refs} references", ids.len())));
        }
        // The casts need 4- and 8-byte alignment (a mapping starts on a page; every table starts
        // on a multiple of 8 in the file).
        if bytemuck::try_cast_slice::<u8, u64>(&map[postings_at..ids_at]).is_err() {
            return Err(invalid("tables are not aligned in memory".into()));
        }
        let meta = map[ids_at + ids_len..end].to_vec();
        let tables = Tables::Mapped {
            offsets: offsets_at..offsets_at + ((1 << HASH_BITS) + 1) * 4,
            postings: postings_at..ids_at,
            density: density_at..density_at + blocks * 2,
            map,
        };
        // The offsets are read whole (8 MB); the postings are not, so that a start touches none
        // of their pages: a query skips any naming a reference the index does not have.
        let offsets = tables.offsets();
        let sane = offsets[0] == 0
            && offsets.windows(2).all(|w| w[0] <= w[1])
            && offsets[offsets.len() - 1] as usize == postings;
        if !sane {
            return Err(invalid("tables are inconsistent".into()));
        }
        Ok((
            Index {
                ids,
                frames,
                density_starts,
                tables,
            },
            meta,
        ))
    }
}

/// A suffix no other writer of this machine uses at the same time: the process id and a count.
pub fn unique_suffix() -> String {
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}-{n}", std::process::id())
}

fn padded(bytes: usize) -> usize {
    bytes.div_ceil(8) * 8
}

fn write_padded(out: &mut impl std::io::Write, bytes: &[u8]) -> std::io::Result<()> {
    out.write_all(bytes)?;
    out.write_all(&[0u8; 8][..padded(bytes.len()) - bytes.len()])
}

/// A check of the header's fields (a file cut short or from elsewhere fails it).
fn header_check(fields: &[u64; 5]) -> u64 {
    fields.iter().fold(0xcbf2_9ce4_8422_2325u64, |hash, field| {
        (hash ^ field).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Maps `file` read-only.
#[allow(unsafe_code)]
fn map_file(file: &std::fs::File) -> std::io::Result<memmap2::Mmap> {
    // SAFETY: the mapping is read-only and index files are never modified in place: writers
    // write a new file and rename it over the old one (`Index::write`), so the mapped file's
    // contents cannot change under the mapping. Truncation by something outside earshot would
    // fault, like any file removed under a reader; the tables are checked once when opened.
    unsafe { memmap2::Mmap::map(file) }
}

#[cfg(test)]
mod tests {
    use super::super::tests::synthetic;
    use super::*;
    use crate::fingerprint::Fingerprint;

    #[test]
    fn a_rebuilt_or_stored_index_answers_like_a_built_one() {
        let refs: Vec<(String, Fingerprint)> = (0..12)
            .map(|i| (format!("ref{i}"), synthetic(i + 1, 2000)))
            .collect();
        let query = |index: &Index, r: usize| {
            let found = index.query(&refs[r].1);
            let best = &found[0];
            (
                index.reference(best.reference).0.to_owned(),
                best.hits,
                best.score,
            )
        };
        // Built from refs 0..8, then 3 dropped and 8..12 added: as if built from those.
        let first = Index::build(refs[..8].to_vec());
        let rebuilt = first.rebuild(&|r| first.reference(r).0 != "ref3", refs[8..].to_vec());
        let kept: Vec<(String, Fingerprint)> = refs
            .iter()
            .filter(|(id, _)| id != "ref3")
            .cloned()
            .collect();
        let built = Index::build(kept);
        assert_eq!(rebuilt.len(), 11);
        for r in [0, 5, 9, 11] {
            assert_eq!(query(&rebuilt, r), query(&built, r));
        }
        assert!(rebuilt.query(&refs[3].1).iter().all(|m| m.score < 61));

        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("index").join("library.idx");
        rebuilt.write(&path, b"{\"meta\":1}").expect("writes");
        let (opened, meta) = Index::open(&path).expect("opens");
        assert!(opened.is_mapped());
        assert_eq!(meta, b"{\"meta\":1}");
        assert_eq!(opened.table_bytes(), rebuilt.table_bytes());
        for r in [0, 5, 9, 11] {
            assert_eq!(query(&opened, r), query(&built, r));
        }
        assert_eq!(opened.reference(10), rebuilt.reference(10));

        // A file cut short, or not an index, is refused.
        let bytes = std::fs::read(&path).expect("reads");
        let cut = dir.path().join("cut.idx");
        std::fs::write(&cut, &bytes[..bytes.len() - 9]).expect("writes");
        assert!(Index::open(&cut).is_err());
        std::fs::write(&cut, b"ESIX0001 not really").expect("writes");
        assert!(Index::open(&cut).is_err());
    }
}
