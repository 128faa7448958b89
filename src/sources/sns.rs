//! SNS HTTP(S) subscriptions: the message envelope, and the check that a message really comes
//! from SNS before anything in it is trusted (AWS, "Verifying the signatures of Amazon SNS
//! messages"): the signing certificate must come from an SNS host (or an origin the config
//! trusts, such as LocalStack), be valid now, and its RSA key must verify the signature over the
//! canonical string of the message's fields (SHA1withRSA for `SignatureVersion` 1, SHA256withRSA
//! for 2). Certificates are fetched once per URL and kept.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use ring::signature::{self, UnparsedPublicKey};
use serde::Deserialize;
use url::Url;

/// An SNS message as POSTed to an HTTP(S) endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Message {
    #[serde(rename = "Type")]
    pub kind: String,
    pub message_id: String,
    pub topic_arn: String,
    pub message: String,
    pub timestamp: String,
    pub signature_version: String,
    pub signature: String,
    #[serde(rename = "SigningCertURL", alias = "SigningCertUrl")]
    pub signing_cert_url: String,
    pub subject: Option<String>,
    pub token: Option<String>,
    #[serde(rename = "SubscribeURL")]
    pub subscribe_url: Option<String>,
}

impl Message {
    /// The string SNS signs: selected fields as `Name\nvalue\n`, in byte order of their names.
    pub fn canonical(&self) -> String {
        let fields: Vec<(&str, Option<&str>)> = if self.kind == "Notification" {
            vec![
                ("Message", Some(&self.message)),
                ("MessageId", Some(&self.message_id)),
                ("Subject", self.subject.as_deref()),
                ("Timestamp", Some(&self.timestamp)),
                ("TopicArn", Some(&self.topic_arn)),
                ("Type", Some(&self.kind)),
            ]
        } else {
            vec![
                ("Message", Some(&self.message)),
                ("MessageId", Some(&self.message_id)),
                ("SubscribeURL", self.subscribe_url.as_deref()),
                ("Timestamp", Some(&self.timestamp)),
                ("Token", self.token.as_deref()),
                ("TopicArn", Some(&self.topic_arn)),
                ("Type", Some(&self.kind)),
            ]
        };
        fields
            .into_iter()
            .filter_map(|(name, value)| value.map(|v| format!("{name}\n{v}\n")))
            .collect()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SnsError {
    /// The message is not from SNS (or was changed on the way): refuse it.
    #[error("SNS message refused: {0}")]
    Refused(String),
    /// The signing certificate could not be fetched now: worth a retry by SNS.
    #[error("SNS signing certificate unavailable: {0}")]
    CertUnavailable(String),
}

/// Verifies SNS messages, keeping each signing certificate's public key once fetched.
pub struct Verifier {
    http: reqwest::Client,
    trusted_origins: Vec<String>,
    keys: Mutex<HashMap<String, Arc<Vec<u8>>>>,
}

impl Verifier {
    /// `trusted_origins`: `scheme://host:port` origins allowed to serve certificates besides SNS;
    /// `http` fetches the certificates (it should have a timeout).
    pub fn new(http: reqwest::Client, trusted_origins: &[String]) -> Verifier {
        let trusted_origins = trusted_origins
            .iter()
            .filter_map(|o| Url::parse(o).ok())
            .map(|u| u.origin().ascii_serialization())
            .collect();
        Verifier {
            http,
            trusted_origins,
            keys: Mutex::new(HashMap::new()),
        }
    }

    /// # Errors
    /// [`SnsError::Refused`] for a bad certificate URL, certificate or signature;
    /// [`SnsError::CertUnavailable`] when the certificate could not be downloaded.
    pub async fn verify(&self, message: &Message) -> Result<(), SnsError> {
        // An unknown version is refused before any certificate is fetched for it.
        algorithm(&message.signature_version)?;
        let url = Url::parse(&message.signing_cert_url).map_err(|e| {
            SnsError::Refused(format!(
                "SigningCertURL {:?}: {e}",
                message.signing_cert_url
            ))
        })?;
        if !self.cert_url_allowed(&url) {
            return Err(SnsError::Refused(format!(
                "SigningCertURL {url} is not an SNS host or a trusted origin"
            )));
        }
        let key = self.public_key(&url).await?;
        signed_by(message, &key)
    }

    fn cert_url_allowed(&self, url: &Url) -> bool {
        if self
            .trusted_origins
            .contains(&url.origin().ascii_serialization())
        {
            return true;
        }
        url.scheme() == "https"
            && url.port().is_none()
            && url.path().ends_with(".pem")
            && url.host_str().is_some_and(is_sns_host)
    }

    async fn public_key(&self, url: &Url) -> Result<Arc<Vec<u8>>, SnsError> {
        if let Some(key) = self.cached(url.as_str()) {
            return Ok(key);
        }
        let response = self
            .http
            .get(url.clone())
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| SnsError::CertUnavailable(format!("{url}: {e}")))?;
        let pem = response
            .bytes()
            .await
            .map_err(|e| SnsError::CertUnavailable(format!("{url}: {e}")))?;
        let key = Arc::new(public_key_of(&pem)?);
        self.keys
            .lock()
            .expect("the key cache is never poisoned")
            .insert(url.to_string(), key.clone());
        Ok(key)
    }

    fn cached(&self, url: &str) -> Option<Arc<Vec<u8>>> {
        self.keys
            .lock()
            .expect("the key cache is never poisoned")
            .get(url)
            .cloned()
    }
}

/// `sns.<region>.amazonaws.com` or `sns.<region>.amazonaws.com.cn`.
fn is_sns_host(host: &str) -> bool {
    let labels: Vec<&str> = host.split('.').collect();
    let region_ok = |r: &str| {
        !r.is_empty()
            && r.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    match labels.as_slice() {
        ["sns", region, "amazonaws", "com"] | ["sns", region, "amazonaws", "com", "cn"] => {
            region_ok(region)
        }
        _ => false,
    }
}

fn algorithm(version: &str) -> Result<&'static dyn signature::VerificationAlgorithm, SnsError> {
    match version {
        "1" => Ok(&signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY),
        "2" => Ok(&signature::RSA_PKCS1_2048_8192_SHA256),
        other => Err(SnsError::Refused(format!(
            "unknown SignatureVersion {other:?}"
        ))),
    }
}

/// Whether the message's signature is the RSA key's (PKCS#1 DER, as [`public_key_of`] gives it)
/// over its canonical string.
///
/// # Errors
/// [`SnsError::Refused`]: an unknown signature version, a signature that is not base64, or one
/// that does not match.
pub fn signed_by(message: &Message, key: &[u8]) -> Result<(), SnsError> {
    let algorithm = algorithm(&message.signature_version)?;
    let signature = base64::engine::general_purpose::STANDARD
        .decode(message.signature.trim())
        .map_err(|e| SnsError::Refused(format!("Signature is not base64: {e}")))?;
    UnparsedPublicKey::new(algorithm, key)
        .verify(message.canonical().as_bytes(), &signature)
        .map_err(|_| SnsError::Refused("signature does not match the message".to_owned()))
}

/// The RSA public key (PKCS#1 DER) of a PEM certificate that is valid now.
///
/// # Errors
/// [`SnsError::Refused`]: not a PEM X.509 certificate, or not valid now.
pub fn public_key_of(pem: &[u8]) -> Result<Vec<u8>, SnsError> {
    let refused = |what: String| SnsError::Refused(format!("signing certificate: {what}"));
    let (_, pem) =
        x509_parser::pem::parse_x509_pem(pem).map_err(|e| refused(format!("not PEM: {e}")))?;
    let cert = pem
        .parse_x509()
        .map_err(|e| refused(format!("not X.509: {e}")))?;
    if !cert.validity().is_valid() {
        return Err(refused("expired or not yet valid".to_owned()));
    }
    Ok(cert.public_key().subject_public_key.data.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sns_hosts_and_trusted_origins_may_serve_certificates() {
        let verifier = Verifier::new(
            reqwest::Client::new(),
            &["http://127.0.0.1:4566".to_owned()],
        );
        let allowed = |u: &str| verifier.cert_url_allowed(&Url::parse(u).expect("url"));
        assert!(allowed(
            "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem"
        ));
        assert!(allowed(
            "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-abc.pem"
        ));
        assert!(allowed("http://127.0.0.1:4566/_aws/sns/cert.pem"));
        for refused in [
            "http://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
            "https://sns.us-east-1.amazonaws.com.evil.example/x.pem",
            "https://evil.example/sns.us-east-1.amazonaws.com/x.pem",
            "https://sns.us-east-1.amazonaws.com:8443/x.pem",
            "https://sqs.us-east-1.amazonaws.com/x.pem",
            "http://127.0.0.1:4567/_aws/sns/cert.pem",
        ] {
            assert!(!allowed(refused), "{refused} must be refused");
        }
    }

    #[test]
    fn canonical_string_follows_the_documented_field_order() {
        let message = Message {
            kind: "Notification".to_owned(),
            message_id: "id".to_owned(),
            topic_arn: "arn".to_owned(),
            message: "body".to_owned(),
            timestamp: "t".to_owned(),
            signature_version: "1".to_owned(),
            signature: String::new(),
            signing_cert_url: String::new(),
            subject: None,
            token: None,
            subscribe_url: None,
        };
        assert_eq!(
            message.canonical(),
            "Message\nbody\nMessageId\nid\nTimestamp\nt\nTopicArn\narn\nType\nNotification\n"
        );
    }
}
