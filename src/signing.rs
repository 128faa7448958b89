//! Signing and comparing secrets: the `X-Signature` scheme earshot signs its callbacks with and
//! checks AMS's results by (lowercase hex SHA-256 of `seed` followed by the exact body bytes),
//! constant-time comparison for every secret a request presents, and the SHA-256 of a file
//! (library entries' ids, the speech model's pin). A leaf: it imports nothing of the crate.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The SHA-256 of a file's bytes.
///
/// # Errors
/// The file cannot be read.
pub fn sha256_file(path: &std::path::Path) -> std::io::Result<[u8; 32]> {
    let mut file = std::fs::File::open(path)?;
    let mut hash = Sha256::new();
    std::io::copy(&mut file, &mut hash)?;
    Ok(hash.finalize().into())
}

/// `X-Signature`: lowercase hex SHA-256 of `seed` then `body`.
pub fn x_signature(seed: &str, body: &[u8]) -> String {
    let mut hash = Sha256::new();
    hash.update(seed.as_bytes());
    hash.update(body);
    hex::encode(hash.finalize())
}

/// Whether `presented` is the `X-Signature` of `body` under `seed`, compared in constant time.
pub fn x_signature_matches(seed: &str, body: &[u8], presented: &str) -> bool {
    constant_time_eq(x_signature(seed, body).as_bytes(), presented.as_bytes())
}

/// Compares secrets without leaking, through timing, how much of them matched (the length may
/// show).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_sha256_of_seed_then_body() {
        // printf 's3cret{}' | sha256sum
        assert_eq!(
            x_signature("s3cret", b"{}"),
            "30f655aafab9c6138e3976ed64bcae2c3999b383f938fcd1ad46632549b57edd"
        );
    }

    /// AMS's own example of a signed callback (`CreateAudioModerationTask`, "回调签名示例"): the
    /// scheme earshot signs its callbacks with and checks AMS's results by.
    #[test]
    fn signature_reproduces_the_ams_published_example() {
        let body =
            br#"{"TaskId": "task-video-X0zpcRUMzVidxj20","DataId":"test","Suggestion": "Block"}"#;
        let expected = "74f0ae6d1f1e4eb1ffe4162da480a812f8a4dc19fe5a52bacbcd2c862d3edcfd";
        assert_eq!(x_signature("dedb6dcc1cb7c63fde8fa5abfd57", body), expected);
        assert!(x_signature_matches(
            "dedb6dcc1cb7c63fde8fa5abfd57",
            body,
            expected
        ));
        assert!(!x_signature_matches("other", body, expected));
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(constant_time_eq(b"secret-token", b"secret-token"));
        assert!(!constant_time_eq(b"secret-token", b"secret-tokem"));
        assert!(!constant_time_eq(b"secret-token", b"secret-token-longer"));
        assert!(!constant_time_eq(b"", b"x"));
    }
}
