//! Kept prints and stored fingerprints read back from the bucket: a pack, a loose print or a
//! library reference's fingerprint, any bytes, parse or are refused; whatever parses can be
//! indexed and queried (what a retro-hunt and a library rebuild do with it) without a panic.
#![no_main]

use earshot::fingerprint::{Fingerprint, Index};
use earshot::state::prints::{Print, read_pack};

fn index_and_query(fingerprint: &Fingerprint) {
    let index = Index::build(vec![("reference".to_owned(), fingerprint.clone())]);
    let _ = index.query(fingerprint);
}

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    let mut prints = Vec::new();
    let _ = read_pack(bytes, |print| prints.push(print));
    prints.extend(Print::from_bytes(bytes));
    for print in &prints {
        let again = Print::from_bytes(&print.to_bytes()).expect("a print written reads back");
        assert_eq!(&again, print);
        index_and_query(&print.fingerprint);
    }
    if let Ok(fingerprint) = Fingerprint::from_bytes(bytes) {
        assert_eq!(
            Fingerprint::from_bytes(&fingerprint.to_bytes()).as_ref(),
            Ok(&fingerprint)
        );
        index_and_query(&fingerprint);
    }
});
