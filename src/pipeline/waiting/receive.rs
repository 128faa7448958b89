//! A provider's result, POSTed to `/engines/<engine>/results/<token>`: the token is checked
//! (signature, expiry, engine), then the provider checks the body (AMS: `X-Signature`), then the
//! result must be for a job the token names. It is stored beside the waiting job, which is
//! finished once the provider has been answered. The core speaks no HTTP: a refusal is a
//! [`Rejection`], which the HTTP adapters (the admin listener, the Lambda function URL) map to a
//! status code with [`Rejection::status`].

use super::super::Pipeline;
use super::super::combine::engine_outcome;
use crate::engines::{Headers, ResultError};
use crate::state::pending;
use crate::token::TokenError;

/// A result taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// Stored beside its waiting job, which [`Pipeline::finish_after`] may now finish.
    Stored { bucket: String, trace_id: String },
    /// A notification that is not a final result (a task still running).
    NotFinal,
    /// For a job that no longer waits (finished, or abandoned after a failed submission).
    NoLongerWaiting,
}

impl Received {
    pub fn message(&self) -> &'static str {
        match self {
            Received::Stored { .. } => "ok",
            Received::NotFinal => "noted: not a final result",
            Received::NoLongerWaiting => "ignored: no job waits for this result",
        }
    }
}

/// A result refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("no engine named {0:?} takes results")]
    NoSuchEngine(String),
    #[error("no [async_jobs] token_key: results are not taken")]
    NotTaking,
    #[error("{0}")]
    BadToken(#[from] TokenError),
    #[error("token is for another engine")]
    WrongEngine,
    #[error("{0}")]
    NotAuthentic(String),
    #[error("{0}")]
    Malformed(String),
    #[error("result for {0:?}, which the token does not name")]
    NotNamed(String),
    /// Storing it failed for a passing reason: the provider should send it again.
    #[error("result not stored: {0}")]
    NotStored(String),
}

impl Rejection {
    /// The HTTP status an adapter answers with.
    pub fn status(&self) -> u16 {
        match self {
            Rejection::NoSuchEngine(_) | Rejection::NotTaking => 404,
            Rejection::BadToken(_)
            | Rejection::WrongEngine
            | Rejection::NotAuthentic(_)
            | Rejection::NotNamed(_) => 401,
            Rejection::Malformed(_) => 400,
            Rejection::NotStored(_) => 503,
        }
    }
}

impl Pipeline {
    /// Checks and stores a provider's result. The caller answers the provider, then calls
    /// [`Pipeline::finish_after`]: the provider need not wait for the block and the callback.
    ///
    /// # Errors
    /// Why the result was refused.
    pub async fn receive_result(
        &self,
        engine_name: &str,
        token: &str,
        headers: &Headers,
        body: &[u8],
    ) -> Result<Received, Rejection> {
        let refused = |rejection: Rejection| {
            tracing::warn!(engine = %engine_name, status = rejection.status(), message = %rejection, "Provider result refused.");
            rejection
        };
        let Some(provider) = self.engines.get(engine_name).and_then(|e| e.provider()) else {
            return Err(refused(Rejection::NoSuchEngine(engine_name.to_owned())));
        };
        let Some(tokens) = &self.tokens else {
            return Err(refused(Rejection::NotTaking));
        };
        let claims = tokens
            .verify(token, self.clock.now_secs())
            .map_err(|e| refused(e.into()))?;
        if claims.engine != engine_name {
            return Err(refused(Rejection::WrongEngine));
        }
        let result = match provider.read_result(headers, body) {
            Ok(Some(result)) => result,
            Ok(None) => return Ok(Received::NotFinal),
            Err(ResultError::Unauthenticated(e)) => {
                return Err(refused(Rejection::NotAuthentic(e)));
            }
            Err(ResultError::Malformed(e)) => return Err(refused(Rejection::Malformed(e))),
        };
        let Some(job) = claims.jobs.iter().find(|j| j.trace_id == result.trace_id) else {
            return Err(refused(Rejection::NotNamed(result.trace_id)));
        };
        let (bucket, trace_id) = (claims.bucket.as_str(), job.trace_id.as_str());
        provider.task_done(trace_id);
        self.metrics.engine_result(engine_name, "callback");
        let stored = async {
            if !pending::exists(&self.s3, bucket, trace_id).await? {
                return Ok::<_, crate::state::StateError>(false);
            }
            let outcome = engine_outcome(
                engine_name,
                result.outcome,
                "callback",
                self.clock.now_secs(),
            );
            pending::put_result(&self.s3, bucket, trace_id, &outcome).await?;
            Ok(true)
        }
        .await;
        match stored {
            Ok(true) => {
                tracing::info!(%trace_id, key = %job.key, engine = %engine_name, "Provider result received.");
                Ok(Received::Stored {
                    bucket: bucket.to_owned(),
                    trace_id: trace_id.to_owned(),
                })
            }
            Ok(false) => {
                tracing::info!(%trace_id, key = %job.key, "Result for a job that no longer waits (finished or abandoned); ignored.");
                Ok(Received::NoLongerWaiting)
            }
            // The provider will send it again.
            Err(e) => Err(refused(Rejection::NotStored(e.to_string()))),
        }
    }

    /// Finishes the job a stored result may have completed; a failure is logged and left to the
    /// sweep.
    pub async fn finish_after(&self, received: &Received) {
        let Received::Stored { bucket, trace_id } = received else {
            return;
        };
        if let Err(e) = self.finish(bucket, trace_id).await {
            tracing::warn!(error = %e, %trace_id, "Result stored; finishing the job failed and is left to the sweep.");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;
    use crate::config::Config;
    use crate::token::{Claims, Signer, TokenJob};

    const TOKEN_KEY: &str = "token-key-0123456789abcdef0123456789";

    async fn pipeline(now: u64) -> Pipeline {
        let config = Config::from_toml_str(&format!(
            r#"
            [engines.ams]
            type = "tencent_ams"
            secret_id = "AKIDsecretid"
            secret_key = "tc-secret-key"
            seed = "ams-seed-value"
            callback_base_url = "https://earshot.example.com"

            [async_jobs]
            token_key = "{TOKEN_KEY}"
            "#
        ))
        .expect("a valid config");
        let mut pipeline = Pipeline::new(config).await.expect("builds without I/O");
        pipeline.clock = Clock::fixed(now);
        pipeline
    }

    fn token(engine: &str, expires: u64) -> String {
        Signer::new(TOKEN_KEY).sign(&Claims {
            engine: engine.to_owned(),
            rule: "r".to_owned(),
            bucket: "b".to_owned(),
            expires,
            jobs: vec![TokenJob {
                trace_id: "t".to_owned(),
                key: "k.mp3".to_owned(),
                version_id: None,
                etag: None,
            }],
        })
    }

    /// Every refusal that needs no storage, on a clock the test fixes: the same token is good
    /// until its expiry and refused one second after.
    #[tokio::test]
    async fn results_are_refused_with_the_status_an_adapter_answers() {
        let body = br#"{"DataId":"t","TaskId":"x","Status":"FINISH","Suggestion":"Pass"}"#;
        let signed = |seed: &str| {
            let mut headers = Headers::default();
            headers.insert("X-Signature", &crate::signing::x_signature(seed, body));
            headers
        };
        let at_expiry = pipeline(1_000).await;
        let after_expiry = pipeline(1_001).await;
        let cases = [
            (
                &after_expiry,
                "ams",
                token("ams", 1_000),
                signed("ams-seed-value"),
                401,
            ),
            (
                &at_expiry,
                "ams",
                token("ams", 1_000),
                signed("forged"),
                401,
            ),
            (
                &at_expiry,
                "ams",
                token("sm", 1_000),
                signed("ams-seed-value"),
                401,
            ),
            (
                &at_expiry,
                "local",
                token("ams", 1_000),
                signed("ams-seed-value"),
                404,
            ),
            (
                &at_expiry,
                "ams",
                "not.a-token".to_owned(),
                signed("ams-seed-value"),
                401,
            ),
        ];
        for (pipeline, engine, token, headers, status) in cases {
            let refused = pipeline
                .receive_result(engine, &token, &headers, body)
                .await
                .expect_err("refused");
            assert_eq!(refused.status(), status, "{refused}");
        }
        let expired = after_expiry
            .receive_result("ams", &token("ams", 1_000), &signed("ams-seed-value"), body)
            .await
            .expect_err("expired");
        assert!(
            matches!(
                expired,
                Rejection::BadToken(TokenError::Expired {
                    expires: 1_000,
                    now: 1_001
                })
            ),
            "{expired:?}"
        );
    }
}
