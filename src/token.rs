//! Job tokens: what a provider callback URL carries so that any earshot replica, with no memory of
//! the job, can finish it when the result arrives.
//!
//! A token is `base64url(json) "." base64url(HMAC-SHA256(key, "earshot-job-v1." + base64url(json)))`.
//! The JSON names the engine, rule, bucket and expiry, and the jobs of one provider request (AMS
//! takes up to 10 tasks per call, all with one callback URL): trace id, key, version and ETag.
//! A token is checked (signature in constant time, then expiry) before anything in it is used.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;
use serde::{Deserialize, Serialize};

const CONTEXT: &str = "earshot-job-v1.";

/// One job of a provider request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenJob {
    #[serde(rename = "t")]
    pub trace_id: String,
    #[serde(rename = "k")]
    pub key: String,
    #[serde(rename = "v", default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    #[serde(rename = "e", default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
}

/// What a token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    #[serde(rename = "n")]
    pub engine: String,
    #[serde(rename = "r")]
    pub rule: String,
    #[serde(rename = "b")]
    pub bucket: String,
    /// Unix seconds after which the token is refused.
    #[serde(rename = "x")]
    pub expires: u64,
    #[serde(rename = "j")]
    pub jobs: Vec<TokenJob>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("malformed token")]
    Malformed,
    #[error("token signature does not match")]
    BadSignature,
    #[error("token expired at {expires} (now {now})")]
    Expired { expires: u64, now: u64 },
}

/// Signs and checks tokens with one key.
#[derive(Clone)]
pub struct Signer {
    key: hmac::Key,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(<redacted>)")
    }
}

impl Signer {
    pub fn new(key: &str) -> Signer {
        Signer {
            key: hmac::Key::new(hmac::HMAC_SHA256, key.as_bytes()),
        }
    }

    pub fn sign(&self, claims: &Claims) -> String {
        let json = serde_json::to_vec(claims).expect("claims serialise");
        let body = URL_SAFE_NO_PAD.encode(json);
        let tag = hmac::sign(&self.key, format!("{CONTEXT}{body}").as_bytes());
        format!("{body}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    /// The claims of a token this key signed and that has not expired at `now`.
    ///
    /// # Errors
    /// Malformed, not signed by this key, or expired.
    pub fn verify(&self, token: &str, now: u64) -> Result<Claims, TokenError> {
        let (body, tag) = token.split_once('.').ok_or(TokenError::Malformed)?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| TokenError::Malformed)?;
        hmac::verify(&self.key, format!("{CONTEXT}{body}").as_bytes(), &tag)
            .map_err(|_| TokenError::BadSignature)?;
        let json = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| TokenError::Malformed)?;
        let claims: Claims = serde_json::from_slice(&json).map_err(|_| TokenError::Malformed)?;
        if now > claims.expires {
            return Err(TokenError::Expired {
                expires: claims.expires,
                now,
            });
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> Claims {
        Claims {
            engine: "ams".into(),
            rule: "voice".into(),
            bucket: "media".into(),
            expires: 2_000,
            jobs: vec![TokenJob {
                trace_id: "0123456789abcdef0123456789abcdef".into(),
                key: "voice/a b+c.mp3".into(),
                version_id: None,
                etag: Some("9b2cf535f27731c974343645a3985328".into()),
            }],
        }
    }

    #[test]
    fn a_token_round_trips_and_is_url_safe() {
        let signer = Signer::new("k".repeat(32).as_str());
        let token = signer.sign(&claims());
        assert!(
            token
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        );
        assert_eq!(signer.verify(&token, 1_000), Ok(claims()));
    }

    #[test]
    fn tampered_foreign_and_expired_tokens_are_refused() {
        let signer = Signer::new("k".repeat(32).as_str());
        let token = signer.sign(&claims());
        let mut other = claims();
        other.jobs[0].key = "voice/other.mp3".into();
        let (_, tag) = token.split_once('.').unwrap();
        let forged_body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&other).unwrap());
        assert_eq!(
            signer.verify(&format!("{forged_body}.{tag}"), 1_000),
            Err(TokenError::BadSignature)
        );
        assert_eq!(
            Signer::new("x".repeat(32).as_str()).verify(&token, 1_000),
            Err(TokenError::BadSignature)
        );
        assert_eq!(
            signer.verify(&token, 2_001),
            Err(TokenError::Expired {
                expires: 2_000,
                now: 2_001
            })
        );
        assert_eq!(signer.verify("nodot", 0), Err(TokenError::Malformed));
    }
}
