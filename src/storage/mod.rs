//! The AWS SDK clients, built once from config, and the few helpers every stage that talks to S3
//! shares: reading an S3 error's HTTP status and code, building an object's URL, and ([`object`])
//! reading and writing earshot's own small objects.

pub mod object;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::config::Credentials;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

use crate::config::S3Config;

/// The shared SDK config: region, endpoint and credentials from `[s3]`, else the AWS default chain.
pub async fn sdk_config(s3: &S3Config, endpoint_url: Option<&str>) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(region) = &s3.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(endpoint) = endpoint_url {
        loader = loader.endpoint_url(endpoint);
    }
    if let (Some(id), Some(secret)) = (&s3.access_key_id, &s3.secret_access_key) {
        loader = loader.credentials_provider(Credentials::new(
            id.clone(),
            secret.clone(),
            None,
            None,
            "earshot-config",
        ));
    }
    loader.load().await
}

/// The S3 client every stage uses.
pub async fn s3_client(s3: &S3Config) -> aws_sdk_s3::Client {
    let shared = sdk_config(s3, s3.endpoint_url.as_deref()).await;
    let config = aws_sdk_s3::config::Builder::from(&shared)
        .force_path_style(s3.force_path_style)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// [`s3_client`], calling `count` with the operation's name (`HeadObject`, `GetObject`…) for
/// every request it sends, retries included: what `earshot_s3_requests` counts.
pub async fn s3_client_counted(
    s3: &S3Config,
    counters: crate::metrics::S3Counters,
) -> aws_sdk_s3::Client {
    let shared = sdk_config(s3, s3.endpoint_url.as_deref()).await;
    let config = aws_sdk_s3::config::Builder::from(&shared)
        .force_path_style(s3.force_path_style)
        .interceptor(CountRequests(counters))
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

struct CountRequests(crate::metrics::S3Counters);

impl std::fmt::Debug for CountRequests {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CountRequests")
    }
}

impl aws_sdk_s3::config::Intercept for CountRequests {
    fn name(&self) -> &'static str {
        "CountRequests"
    }

    fn read_before_transmit(
        &self,
        _context: &aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _components: &aws_sdk_s3::config::RuntimeComponents,
        config: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        if let Some(operation) =
            config.load::<aws_smithy_runtime_api::client::orchestrator::Metadata>()
        {
            self.0.request(operation.name());
        }
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &aws_sdk_s3::config::interceptors::FinalizerInterceptorContextRef<'_>,
        _components: &aws_sdk_s3::config::RuntimeComponents,
        config: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        if let Some(operation) =
            config.load::<aws_smithy_runtime_api::client::orchestrator::Metadata>()
        {
            let status = context.response().map(|r| r.status().as_u16());
            self.0.answered(operation.name(), status);
        }
        Ok(())
    }
}

/// The SQS client, reaching `endpoint_url` when given (LocalStack), else AWS.
pub async fn sqs_client(s3: &S3Config, endpoint_url: Option<&str>) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(&sdk_config(s3, endpoint_url).await)
}

/// An S3 failure, reduced to what callers decide on.
#[derive(Debug, Clone)]
pub struct S3Failure {
    /// The HTTP status, when a response arrived.
    pub status: Option<u16>,
    /// The S3 error code (`NoSuchKey`, `AccessControlListNotSupported`…), when the body had one.
    pub code: Option<String>,
    pub message: String,
}

impl S3Failure {
    pub fn from_sdk<E>(error: &SdkError<E, HttpResponse>) -> S3Failure
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let status = error.raw_response().map(|raw| raw.status().as_u16());
        let code = error.code().map(str::to_owned);
        let message = match error {
            SdkError::ServiceError(service) => service
                .err()
                .message()
                .map(str::to_owned)
                .unwrap_or_else(|| service.err().to_string()),
            other => format!(
                "{}",
                aws_smithy_types::error::display::DisplayErrorContext(other)
            ),
        };
        S3Failure {
            status,
            code,
            message,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.status == Some(404)
            || matches!(
                self.code.as_deref(),
                Some("NoSuchKey" | "NoSuchVersion" | "NotFound")
            )
    }

    pub fn is_precondition_failed(&self) -> bool {
        self.status == Some(412) || self.code.as_deref() == Some("PreconditionFailed")
    }

    /// Transient: no response, throttling, or a server error. Worth retrying.
    pub fn is_transient(&self) -> bool {
        match self.status {
            None => true,
            Some(status) => status >= 500 || status == 429 || status == 408,
        }
    }
}

impl std::fmt::Display for S3Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.status, &self.code) {
            (Some(status), Some(code)) => write!(f, "HTTP {status} {code}: {}", self.message),
            (Some(status), None) => write!(f, "HTTP {status}: {}", self.message),
            (None, Some(code)) => write!(f, "{code}: {}", self.message),
            (None, None) => f.write_str(&self.message),
        }
    }
}

/// The URL of an object as the callback reports it: `endpoint/bucket/key` with path-style
/// endpoints, the virtual-hosted AWS URL otherwise.
pub fn object_url(s3: &S3Config, bucket: &str, key: &str) -> String {
    let key = encode_key(key);
    match &s3.endpoint_url {
        Some(endpoint) => format!("{}/{bucket}/{key}", endpoint.trim_end_matches('/')),
        None => {
            let region = s3.region.as_deref().unwrap_or("us-east-1");
            format!("https://{bucket}.s3.{region}.amazonaws.com/{key}")
        }
    }
}

/// A presigned URL could not be made.
#[derive(Debug, Clone, thiserror::Error)]
#[error("presigning s3://{bucket}/{key}: {message}")]
pub struct PresignError {
    pub bucket: String,
    pub key: String,
    pub message: String,
}

/// A presigned GET URL of one object version, valid for `expires_in`: what a remote engine
/// downloads the upload from.
///
/// # Errors
/// The expiry is out of range (over 7 days) or signing failed.
pub async fn presigned_get(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    version_id: Option<&str>,
    expires_in: std::time::Duration,
) -> Result<String, PresignError> {
    let failed = |message: String| PresignError {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        message,
    };
    let config = aws_sdk_s3::presigning::PresigningConfig::expires_in(expires_in)
        .map_err(|e| failed(e.to_string()))?;
    let request = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .set_version_id(version_id.map(str::to_owned))
        .presigned(config)
        .await
        .map_err(|e| failed(e.to_string()))?;
    Ok(request.uri().to_owned())
}

/// Percent-encodes a key for a URL path or an `x-amz-copy-source`, keeping `/`.
pub fn encode_key(key: &str) -> String {
    const KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'/')
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(key, KEEP).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_encoded_for_urls() {
        assert_eq!(
            encode_key("audio/a b+c/声.mp3"),
            "audio/a%20b%2Bc/%E5%A3%B0.mp3"
        );
        let s3 = S3Config {
            endpoint_url: Some("http://127.0.0.1:4566/".into()),
            ..S3Config::default()
        };
        assert_eq!(
            object_url(&s3, "media", "audio/x y.mp3"),
            "http://127.0.0.1:4566/media/audio/x%20y.mp3"
        );
    }
}
