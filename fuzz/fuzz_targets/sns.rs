//! SNS message verification: any bytes as a POSTed message are a message or an error; any
//! bytes as a signing certificate give a public key or a refusal; a message's signature is
//! checked against any key (the certificate's, or raw bytes) without a panic, and a message
//! nobody signed is never accepted. The input is split at the first NUL: the message before it,
//! the certificate after it.
#![no_main]

use earshot::sources::sns::{Message, public_key_of, signed_by};

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    let (message, certificate) = match bytes.iter().position(|&b| b == 0) {
        Some(at) => (&bytes[..at], &bytes[at + 1..]),
        None => (bytes, &[][..]),
    };
    let key = public_key_of(certificate).ok();
    let Ok(message) = serde_json::from_slice::<Message>(message) else {
        return;
    };
    let _ = message.canonical();
    let key = key.unwrap_or_else(|| certificate.to_vec());
    assert!(
        signed_by(&message, &key).is_err(),
        "a message signed by no one was accepted"
    );
});
