//! [`FakeShumei`]: Shumei's audio file API, checking every required field.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use serde_json::{Value, json};

use std::time::Duration;

use super::{Finding, SHUMEI_ACCESS_KEY, serve, sha256_hex, uuid_like};

/// Shumei's audio file API.
pub struct FakeShumei {
    pub url: String,
    state: Arc<Mutex<ShumeiState>>,
    _server: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
struct ShumeiState {
    findings: HashMap<String, Finding>,
    /// Every request body, with the code answered.
    requests: Vec<(Value, i64)>,
    results: HashMap<String, Value>,
}

#[derive(Clone)]
struct ShumeiApp {
    state: Arc<Mutex<ShumeiState>>,
    http: reqwest::Client,
}

impl FakeShumei {
    pub async fn start() -> FakeShumei {
        let state: Arc<Mutex<ShumeiState>> = Arc::default();
        let app = ShumeiApp {
            state: state.clone(),
            http: reqwest::Client::new(),
        };
        let router = Router::new()
            .route("/audio/v4", post(shumei_audio))
            .route("/query_audio/v4", post(shumei_query))
            .with_state(app);
        let (url, server) = serve(router).await;
        FakeShumei {
            url,
            state,
            _server: server,
        }
    }

    pub fn find(&self, sha256: &str, label: &str) {
        self.state.lock().unwrap().findings.insert(
            sha256.to_owned(),
            Finding {
                label: label.to_owned(),
                score: 99,
            },
        );
    }

    pub fn requests(&self) -> Vec<(Value, i64)> {
        self.state.lock().unwrap().requests.clone()
    }
}

const SHUMEI_LANGS: [&str; 18] = [
    "zh", "en", "ar", "hi", "es", "fr", "ru", "pt", "id", "de", "ja", "tr", "vi", "it", "th", "tl",
    "ko", "ms",
];

/// What Shumei checks of a request: the code and message it answers when something is missing.
fn shumei_check(request: &Value) -> Result<(), (i64, String)> {
    if request["accessKey"] != SHUMEI_ACCESS_KEY {
        return Err((9101, "accessKey: 无权限操作".to_owned()));
    }
    for field in ["appId", "eventId", "callback"] {
        if request[field].as_str().is_none_or(str::is_empty) {
            return Err((1902, format!("参数不合法: {field}")));
        }
    }
    if request["type"].as_str().is_none_or(str::is_empty)
        && request["businessType"].as_str().is_none_or(str::is_empty)
    {
        return Err((1902, "参数不合法: type or businessType".to_owned()));
    }
    let data = &request["data"];
    for field in ["btId", "url", "tokenId"] {
        if data[field].as_str().is_none_or(str::is_empty) {
            return Err((1902, format!("参数不合法: data.{field}")));
        }
    }
    if data["btId"].as_str().is_some_and(|b| b.len() > 128) {
        return Err((1902, "参数不合法: data.btId over 128".to_owned()));
    }
    if !data["lang"]
        .as_str()
        .is_some_and(|l| SHUMEI_LANGS.contains(&l))
    {
        return Err((1902, "参数不合法: data.lang".to_owned()));
    }
    if !request["callback"]
        .as_str()
        .is_some_and(|c| c.starts_with("http://") || c.starts_with("https://"))
    {
        return Err((1902, "参数不合法: callback".to_owned()));
    }
    Ok(())
}

async fn shumei_audio(State(app): State<ShumeiApp>, body: Bytes) -> axum::Json<Value> {
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let request_id = uuid_like();
    if let Err((code, message)) = shumei_check(&request) {
        app.state.lock().unwrap().requests.push((request, code));
        return axum::Json(json!({"code": code, "message": message, "requestId": request_id}));
    }
    app.state
        .lock()
        .unwrap()
        .requests
        .push((request.clone(), 1100));
    let bt_id = request["data"]["btId"].as_str().unwrap().to_owned();
    tokio::spawn(shumei_work(app.clone(), request, request_id.clone()));
    axum::Json(json!({"code": 1100, "message": "成功", "requestId": request_id, "btId": bt_id}))
}

async fn shumei_work(app: ShumeiApp, request: Value, request_id: String) {
    tokio::time::sleep(Duration::from_millis(200)).await;
    let bt_id = request["data"]["btId"].as_str().unwrap().to_owned();
    let url = request["data"]["url"].as_str().unwrap();
    let downloaded = match app.http.get(url).send().await {
        Ok(response) if response.status().is_success() => response.bytes().await.ok(),
        _ => None,
    };
    let result = match downloaded {
        None => {
            json!({"code": 1903, "message": "音频下载失败", "requestId": request_id, "btId": bt_id})
        }
        Some(bytes) => {
            let finding = app
                .state
                .lock()
                .unwrap()
                .findings
                .get(&sha256_hex(&bytes))
                .cloned();
            let (level, detail) = match finding {
                Some(f) => (
                    "REJECT",
                    json!([{"audioStarttime": 0, "audioEndtime": 3,
                    "riskLevel": "REJECT", "riskLabel1": f.label, "riskLabel2": "", "riskLabel3": "",
                    "riskDescription": format!("{}: test finding", f.label), "audioText": ""}]),
                ),
                None => ("PASS", json!([])),
            };
            json!({"code": 1100, "message": "成功", "requestId": request_id, "btId": bt_id,
                   "riskLevel": level, "audioText": "", "audioTime": 3, "audioDetail": detail})
        }
    };
    app.state
        .lock()
        .unwrap()
        .results
        .insert(bt_id, result.clone());
    let callback = request["callback"].as_str().unwrap();
    for _ in 0..20 {
        if let Ok(response) = app.http.post(callback).json(&result).send().await
            && response.status().is_success()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn shumei_query(State(app): State<ShumeiApp>, body: Bytes) -> axum::Json<Value> {
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if request["accessKey"] != SHUMEI_ACCESS_KEY {
        return axum::Json(json!({"code": 9101, "message": "无权限操作"}));
    }
    let bt_id = request["btId"].as_str().unwrap_or("");
    let state = app.state.lock().unwrap();
    axum::Json(
        state
            .results
            .get(bt_id)
            .cloned()
            .unwrap_or_else(|| json!({"code": 1102, "message": "处理中", "btId": bt_id})),
    )
}
