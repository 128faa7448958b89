//! `Index::open` on arbitrary files: the library's index is a file on disk (rebuilt from the
//! library when it cannot be used), mapped and trusted for its tables once opened. A valid index
//! of two references is built once; each input then damages a copy of it (its bytes are
//! (offset, value) patches, the first byte says whether the header's checksum is sealed again
//! and whether the file is cut short) so that the fuzzer reaches the checks past the header.
//! Whatever opens is queried without a panic. The raw input is opened as a file too.
#![no_main]

use std::sync::OnceLock;

use earshot::fingerprint::{Fingerprint, Index, Landmark};

/// The index file's header: magic, then six little-endian u64s (references, postings, hash
/// bits, ids' bytes, metadata bytes, checksum of the five before).
const HEADER_BYTES: usize = 8 + 6 * 8;

fn seal(file: &mut [u8]) {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for n in 0..5 {
        let field = u64::from_le_bytes(file[8 + n * 8..16 + n * 8].try_into().expect("8 bytes"));
        hash = (hash ^ field).wrapping_mul(0x0100_0000_01b3);
    }
    file[48..56].copy_from_slice(&hash.to_le_bytes());
}

fn fingerprint(seed: u32, frames: u32) -> Fingerprint {
    let landmarks = (0..400u32)
        .map(|n| Landmark {
            hash: (n.wrapping_mul(2_654_435_761).wrapping_add(seed)) & ((1 << 21) - 1),
            frame: n * frames / 400,
        })
        .collect();
    Fingerprint { landmarks, frames }
}

fn valid() -> &'static (Vec<u8>, Fingerprint) {
    static VALID: OnceLock<(Vec<u8>, Fingerprint)> = OnceLock::new();
    VALID.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("library.esix");
        let query = fingerprint(7, 900);
        Index::build(vec![
            ("a".to_owned(), query.clone()),
            ("b".to_owned(), fingerprint(11, 1500)),
        ])
        .write(&path, b"{\"meta\": 1}")
        .expect("written");
        (std::fs::read(&path).expect("read"), query)
    })
}

fn open_and_query(bytes: &[u8], query: &Fingerprint) {
    let Ok(mut file) = tempfile::NamedTempFile::new() else {
        return;
    };
    if std::io::Write::write_all(&mut file, bytes).is_err() {
        return;
    }
    if let Ok((index, _meta)) = Index::open(file.path()) {
        for n in 0..index.len() {
            let _ = index.reference(n);
        }
        let _ = index.query(query);
    }
}

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    let (valid, query) = valid();
    open_and_query(bytes, query);
    let Some((&how, patches)) = bytes.split_first() else {
        return;
    };
    let mut file = valid.clone();
    for patch in patches.chunks_exact(6) {
        let at = u32::from_le_bytes(patch[..4].try_into().expect("4 bytes")) as usize;
        // Half the patches land in the header and the tables just after it, where the checks are.
        let at = if at & 1 == 0 {
            (at >> 1) % (HEADER_BYTES + 4096).min(file.len())
        } else {
            (at >> 1) % file.len()
        };
        let end = (at + 2).min(file.len());
        file[at..end].copy_from_slice(&patch[4..4 + (end - at)]);
    }
    if how & 1 == 1 {
        seal(&mut file);
    }
    if how & 2 == 2 {
        let cut = usize::from(how >> 2) * file.len() / 64;
        file.truncate(cut);
    }
    open_and_query(&file, query);
});
