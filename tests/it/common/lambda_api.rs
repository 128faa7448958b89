//! A local implementation of the Lambda Runtime API (2018-06-01) that the real `earshot-lambda`
//! binary talks to: `GET …/invocation/next` hands out queued events with the headers Lambda sends,
//! `POST …/invocation/{id}/response` and `…/error` record the answer, `POST …/init/error` records
//! an init failure.
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use tokio::sync::Notify;

/// How an invocation was answered.
#[derive(Debug, Clone)]
pub enum Answer {
    Response(serde_json::Value),
    Error(serde_json::Value),
}

#[derive(Default)]
struct Inner {
    queue: VecDeque<(String, serde_json::Value)>,
    answers: HashMap<String, Answer>,
    /// When the runtime first asked for work: the end of its init phase.
    first_next: Option<Instant>,
    init_error: Option<String>,
}

#[derive(Clone, Default)]
pub struct RuntimeApi {
    inner: Arc<Mutex<Inner>>,
    queued: Arc<Notify>,
    answered: Arc<Notify>,
    pub address: String,
}

impl RuntimeApi {
    pub async fn start() -> RuntimeApi {
        let socket = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1");
        let addr: SocketAddr = socket.local_addr().expect("bound");
        let api = RuntimeApi {
            address: addr.to_string(),
            ..RuntimeApi::default()
        };
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(api.clone());
        tokio::spawn(async move {
            axum::serve(socket, app).await.expect("runtime API serves");
        });
        api
    }

    /// The environment Lambda gives a `provided` runtime.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_LAMBDA_RUNTIME_API", self.address.clone()),
            ("AWS_LAMBDA_FUNCTION_NAME", "earshot".to_owned()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024".to_owned()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
            ("AWS_LAMBDA_LOG_STREAM_NAME", "test-stream".to_owned()),
            (
                "AWS_LAMBDA_LOG_GROUP_NAME",
                "/aws/lambda/earshot".to_owned(),
            ),
            // Lambda always sets the region and the role's credentials.
            ("AWS_REGION", "us-east-1".to_owned()),
            ("AWS_DEFAULT_REGION", "us-east-1".to_owned()),
            ("AWS_ACCESS_KEY_ID", "test".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "test".to_owned()),
            ("AWS_SESSION_TOKEN", "test".to_owned()),
        ]
    }

    /// Starts the real `earshot-lambda` against this API with the config file `config`, logging
    /// at `log_level` to `stderr`.
    pub fn spawn(
        &self,
        config: &std::path::Path,
        log_level: &str,
        stderr: std::process::Stdio,
    ) -> tokio::process::Child {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_earshot-lambda"))
            .envs(self.env())
            .env("EARSHOT_CONFIG", config)
            .env("RUST_LOG", log_level)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .expect("earshot-lambda starts")
    }

    /// Queues an invocation; returns its request id.
    pub fn invoke(&self, payload: serde_json::Value) -> String {
        static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let id = format!(
            "req-{}",
            COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        );
        self.lock().queue.push_back((id.clone(), payload));
        self.queued.notify_waiters();
        self.queued.notify_one();
        id
    }

    /// Waits for the answer to `id` (or panics after `timeout`).
    pub async fn answer(&self, id: &str, timeout: Duration) -> Answer {
        let deadline = Instant::now() + timeout;
        loop {
            let notified = self.answered.notified();
            if let Some(answer) = self.lock().answers.get(id) {
                return answer.clone();
            }
            if let Some(e) = &self.lock().init_error {
                panic!("the runtime reported an init error: {e}");
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "no answer to {id} within {timeout:?}");
            let _ = tokio::time::timeout(left.min(Duration::from_millis(200)), notified).await;
        }
    }

    /// When the runtime first asked for an invocation (its init phase ended).
    pub fn first_next(&self) -> Option<Instant> {
        self.lock().first_next
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("not poisoned")
    }
}

async fn next(State(api): State<RuntimeApi>) -> impl IntoResponse {
    api.lock().first_next.get_or_insert_with(Instant::now);
    loop {
        let notified = api.queued.notified();
        if let Some((id, payload)) = api.lock().queue.pop_front() {
            let deadline = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock after 1970")
                .as_millis()
                + 300_000;
            let mut headers = HeaderMap::new();
            let mut set = |name: &'static str, value: String| {
                headers.insert(name, value.parse().expect("header value"));
            };
            set("lambda-runtime-aws-request-id", id);
            set("lambda-runtime-deadline-ms", deadline.to_string());
            set(
                "lambda-runtime-invoked-function-arn",
                "arn:aws:lambda:us-east-1:000000000000:function:earshot".to_owned(),
            );
            set(
                "lambda-runtime-trace-id",
                "Root=1-00000000-000000000000000000000000;Sampled=0".to_owned(),
            );
            return (headers, payload.to_string());
        }
        let _ = tokio::time::timeout(Duration::from_millis(200), notified).await;
    }
}

async fn response(
    State(api): State<RuntimeApi>,
    Path(id): Path<String>,
    body: Bytes,
) -> StatusCode {
    let value = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    api.lock().answers.insert(id, Answer::Response(value));
    api.answered.notify_waiters();
    StatusCode::ACCEPTED
}

async fn error(State(api): State<RuntimeApi>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    let value = serde_json::from_slice(&body)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&body).into()));
    api.lock().answers.insert(id, Answer::Error(value));
    api.answered.notify_waiters();
    StatusCode::ACCEPTED
}

async fn init_error(State(api): State<RuntimeApi>, body: Bytes) -> StatusCode {
    api.lock().init_error = Some(String::from_utf8_lossy(&body).into_owned());
    api.answered.notify_waiters();
    StatusCode::ACCEPTED
}
