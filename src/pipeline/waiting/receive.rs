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
