//! A dictionary file from the bucket or a directory: any bytes parse and are checked, or are
//! refused, never a panic; a valid one compiles into a matcher.
#![no_main]

use earshot::engines::speech::dictionary::Dictionary;
use earshot::engines::speech::matcher::Matcher;

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    let Ok(dictionary) = serde_json::from_slice::<Dictionary>(bytes) else {
        return;
    };
    if dictionary.check().is_ok() {
        let _ = Matcher::build(std::slice::from_ref(&dictionary));
    }
});
