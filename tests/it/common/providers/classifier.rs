//! [`Classifier`]: a user's own classifier behind `openapi/http-engine.yaml`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::routing::post;
use serde_json::{Value, json};

use super::{Finding, serve, sha256_hex};

/// The classifier's findings by SHA-256, the requests it received, the answers it gave.
type ClassifierState = (HashMap<String, Finding>, Vec<Value>, Vec<Value>);

/// A user's own classifier behind `openapi/http-engine.yaml`: it downloads the presigned URL and
/// answers `ads` 95 for audio it was told about, nothing otherwise. Requests are recorded.
pub struct Classifier {
    pub url: String,
    state: Arc<Mutex<ClassifierState>>,
    _server: tokio::task::JoinHandle<()>,
}

impl Classifier {
    pub async fn start() -> Classifier {
        let state: Arc<Mutex<ClassifierState>> = Arc::default();
        let shared = state.clone();
        let http = reqwest::Client::new();
        let router = Router::new().route(
            "/classify",
            post(move |headers: HeaderMap, body: Bytes| {
                let (state, http) = (shared.clone(), http.clone());
                async move {
                    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    state.lock().unwrap().1.push(request.clone());
                    if headers.get("authorization").and_then(|v| v.to_str().ok())
                        != Some("Bearer classifier-token")
                    {
                        return (axum::http::StatusCode::UNAUTHORIZED, axum::Json(json!({})));
                    }
                    let url = request["url"].as_str().unwrap_or("");
                    let Ok(response) = http.get(url).send().await else {
                        return (axum::http::StatusCode::BAD_GATEWAY, axum::Json(json!({})));
                    };
                    let bytes = response.bytes().await.unwrap_or_default();
                    let finding = state.lock().unwrap().0.get(&sha256_hex(&bytes)).cloned();
                    let answer = match finding {
                        Some(f) => json!({f.label.clone(): {"score": f.score, "label": "classifier: ad pitch",
                            "segments": [{"offset_secs": 0.5, "duration_secs": 2.0, "score": f.score, "label": "pitch"}]}}),
                        None => json!({"porn": {"score": 3, "label": ""}, "ads": {"score": 5, "label": ""}}),
                    };
                    state.lock().unwrap().2.push(answer.clone());
                    (axum::http::StatusCode::OK, axum::Json(answer))
                }
            }),
        );
        let (url, server) = serve(router).await;
        Classifier {
            url: format!("{url}/classify"),
            state,
            _server: server,
        }
    }

    pub fn find(&self, sha256: &str, scene: &str, score: u8) {
        self.state.lock().unwrap().0.insert(
            sha256.to_owned(),
            Finding {
                label: scene.to_owned(),
                score,
            },
        );
    }

    pub fn requests(&self) -> Vec<Value> {
        self.state.lock().unwrap().1.clone()
    }

    pub fn answers(&self) -> Vec<Value> {
        self.state.lock().unwrap().2.clone()
    }
}

/// Panics unless `value` matches `components.schemas.<schema>` of `openapi/http-engine.yaml`
/// (checked by jsonschema in the venv, through `tests/tools/check_openapi.py`).
pub fn assert_http_contract(schema: &str, value: &Value) {
    use std::io::Write;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = root.join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing; install it with `localstack/install.sh` (scripts/test.sh does)",
        python.display()
    );
    let mut child = std::process::Command::new(python)
        .arg(root.join("tests/tools/check_openapi.py"))
        .arg(root.join("openapi/http-engine.yaml"))
        .arg(schema)
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("check_openapi.py starts");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(value.to_string().as_bytes())
        .expect("write JSON");
    let out = child.wait_with_output().expect("check_openapi.py runs");
    assert!(
        out.status.success(),
        "{value} does not match {schema} of openapi/http-engine.yaml:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
