//! TC3-HMAC-SHA256, the request signature of Tencent Cloud API 3.0, for POST requests with a JSON
//! body and the two headers every request signs (`content-type`, `host`).
//!
//! ```text
//! CanonicalRequest = POST \n / \n \n content-type:<ct>\nhost:<host>\n \n content-type;host \n hex(sha256(body))
//! StringToSign     = TC3-HMAC-SHA256 \n <timestamp> \n <date>/<service>/tc3_request \n hex(sha256(CanonicalRequest))
//! key              = HMAC(HMAC(HMAC("TC3" + SecretKey, date), service), "tc3_request")
//! Authorization    = TC3-HMAC-SHA256 Credential=<SecretId>/<scope>, SignedHeaders=content-type;host, Signature=hex(HMAC(key, StringToSign))
//! ```
//!
//! `date` is the UTC date of the timestamp. The unit test reproduces Tencent's worked example.

use ring::hmac;
use sha2::{Digest, Sha256};

pub const ALGORITHM: &str = "TC3-HMAC-SHA256";
pub const CONTENT_TYPE: &str = "application/json; charset=utf-8";
const SIGNED_HEADERS: &str = "content-type;host";

/// What is signed.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The product, the first label of the host: `ams`, `cvm`.
    pub service: &'a str,
    pub host: &'a str,
    pub content_type: &'a str,
    pub payload: &'a [u8],
    /// Unix seconds, sent as `X-TC-Timestamp`.
    pub timestamp: i64,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn hmac_sha256(key: &[u8], message: &str) -> hmac::Tag {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), message.as_bytes())
}

/// The UTC `YYYY-MM-DD` of a Unix timestamp.
pub fn utc_date(timestamp: i64) -> String {
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let days = timestamp.div_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

pub fn canonical_request(request: &Request<'_>) -> String {
    format!(
        "POST\n/\n\ncontent-type:{}\nhost:{}\n\n{SIGNED_HEADERS}\n{}",
        request.content_type.trim().to_ascii_lowercase(),
        request.host.trim().to_ascii_lowercase(),
        sha256_hex(request.payload)
    )
}

pub fn credential_scope(request: &Request<'_>) -> String {
    format!(
        "{}/{}/tc3_request",
        utc_date(request.timestamp),
        request.service
    )
}

pub fn string_to_sign(request: &Request<'_>) -> String {
    format!(
        "{ALGORITHM}\n{}\n{}\n{}",
        request.timestamp,
        credential_scope(request),
        sha256_hex(canonical_request(request).as_bytes())
    )
}

/// The hex signature.
pub fn signature(secret_key: &str, request: &Request<'_>) -> String {
    let date = utc_date(request.timestamp);
    let secret_date = hmac_sha256(format!("TC3{secret_key}").as_bytes(), &date);
    let secret_service = hmac_sha256(secret_date.as_ref(), request.service);
    let secret_signing = hmac_sha256(secret_service.as_ref(), "tc3_request");
    hex::encode(hmac_sha256(secret_signing.as_ref(), &string_to_sign(request)).as_ref())
}

/// The `Authorization` header.
pub fn authorization(secret_id: &str, secret_key: &str, request: &Request<'_>) -> String {
    format!(
        "{ALGORITHM} Credential={secret_id}/{}, SignedHeaders={SIGNED_HEADERS}, Signature={}",
        credential_scope(request),
        signature(secret_key, request)
    )
}

/// The parts of an `Authorization` header, as a server reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub secret_id: String,
    pub date: String,
    pub service: String,
    pub signed_headers: String,
    pub signature: String,
}

/// Reads an `Authorization` header; None when it is not TC3.
pub fn parse_authorization(header: &str) -> Option<Parsed> {
    let rest = header.strip_prefix(ALGORITHM)?.trim_start();
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for part in rest.split(',') {
        let (name, value) = part.trim().split_once('=')?;
        match name {
            "Credential" => credential = Some(value),
            "SignedHeaders" => signed_headers = Some(value),
            "Signature" => signature = Some(value),
            _ => return None,
        }
    }
    let mut scope = credential?.split('/');
    let secret_id = scope.next()?.to_owned();
    let date = scope.next()?.to_owned();
    let service = scope.next()?.to_owned();
    (scope.next()? == "tc3_request" && scope.next().is_none()).then_some(())?;
    Some(Parsed {
        secret_id,
        date,
        service,
        signed_headers: signed_headers?.to_owned(),
        signature: signature?.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tencent Cloud's worked example for TC3-HMAC-SHA256 ("Signature v3", CVM
    /// `DescribeInstances`): every intermediate value it prints, and the signature.
    #[test]
    fn reproduces_tencents_published_example() {
        let payload = br#"{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}"#;
        let request = Request {
            service: "cvm",
            host: "cvm.tencentcloudapi.com",
            content_type: "application/json; charset=utf-8",
            payload,
            timestamp: 1_551_113_065,
        };
        assert_eq!(
            sha256_hex(payload),
            "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
        );
        assert_eq!(
            canonical_request(&request),
            "POST\n/\n\ncontent-type:application/json; charset=utf-8\nhost:cvm.tencentcloudapi.com\n\n\
             content-type;host\n35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
        );
        assert_eq!(
            string_to_sign(&request),
            "TC3-HMAC-SHA256\n1551113065\n2019-02-25/cvm/tc3_request\n\
             5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"
        );
        let secret_id = "AKID**********************0123456789EXAMPLE";
        let secret_key = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE";
        assert_eq!(
            signature(secret_key, &request),
            "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
        );
        let header = authorization(secret_id, secret_key, &request);
        assert_eq!(
            header,
            "TC3-HMAC-SHA256 Credential=AKID**********************0123456789EXAMPLE/2019-02-25/cvm/tc3_request, \
             SignedHeaders=content-type;host, \
             Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
        );
        let parsed = parse_authorization(&header).expect("parses");
        assert_eq!(parsed.secret_id, secret_id);
        assert_eq!(parsed.date, "2019-02-25");
        assert_eq!(parsed.service, "cvm");
    }

    #[test]
    fn dates_are_utc() {
        // 1551113065 is 2019-02-26 00:44:25 in UTC+8 but still the 25th in UTC.
        assert_eq!(utc_date(1_551_113_065), "2019-02-25");
        assert_eq!(utc_date(0), "1970-01-01");
        assert_eq!(utc_date(951_782_400), "2000-02-29");
        assert_eq!(utc_date(1_795_219_200), "2026-11-21");
    }
}
