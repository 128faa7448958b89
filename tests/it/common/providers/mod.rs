//! Local servers that implement the moderation providers' documented contracts and check what the
//! real services check:
//!
//! - [`FakeAms`]: Tencent Cloud API 3.0 for AMS 2020-12-29. Every request must carry a valid
//!   TC3-HMAC-SHA256 `Authorization` for the known SecretId/SecretKey, a timestamp within 5 minutes
//!   and `X-TC-Version: 2020-12-29`, or it answers `AuthFailure.*`. It enforces a request rate
//!   (`RequestLimitExceeded`), downloads each task's `Input.Url` (a presigned URL must work), keeps
//!   at most 10 tasks in progress (more wait in a queue, as AMS's do), and POSTs the
//!   `DescribeTaskDetail`-shaped result to `CallbackUrl` with `X-Signature` = hex(sha256(seed +
//!   body)). It can be told to hold callbacks (released later), or to never call back.
//! - [`FakeShumei`]: `/audio/v4` checks every required field (`accessKey`, `appId`, `eventId`,
//!   `type`, `callback`, `data.btId`, `data.url`, `data.tokenId`, `data.lang`) and answers 1902
//!   naming a missing one; results go to `callback`; `/query_audio/v4` answers polls.
//!
//! What they find is set by the test: the SHA-256 of an audio file → a label and score.

mod classifier;
mod shumei;

// Used by the tests, not by every bench that includes this module.
#[allow(unused_imports)]
pub use classifier::{Classifier, assert_http_contract};
#[allow(unused_imports)]
pub use shumei::FakeShumei;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use earshot::engines::tc3;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub const AMS_SECRET_ID: &str = "AKIDearshotTESTSECRETID0123456789";
pub const AMS_SECRET_KEY: &str = "earshot-test-secret-key-0123456789";
pub const SHUMEI_ACCESS_KEY: &str = "earshot-shumei-access-key";

/// What a fake finds in audio with a given SHA-256.
#[derive(Debug, Clone)]
pub struct Finding {
    /// AMS `Label` (`Porn`, `Ad`, …) or Shumei `riskLabel1` (`porn`, `ad`, …).
    pub label: String,
    pub score: u8,
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The SHA-256 a fake keys findings by.
pub fn file_sha256(path: &std::path::Path) -> String {
    sha256_hex(&std::fs::read(path).expect("read audio"))
}

async fn serve(app: Router) -> (String, tokio::task::JoinHandle<()>) {
    let socket = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1");
    let addr: SocketAddr = socket.local_addr().expect("bound");
    let server = tokio::spawn(async move {
        axum::serve(socket, app).await.expect("fake serves");
    });
    (format!("http://{addr}"), server)
}

/// How the fake AMS delivers results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// POST each result to `CallbackUrl` once it is ready.
    Callback,
    /// Keep results until [`FakeAms::release`].
    Hold,
    /// Never call back: results only by `DescribeTaskDetail`.
    Never,
}

#[derive(Debug, Clone)]
pub struct AmsTask {
    pub task_id: String,
    pub data_id: String,
    pub callback_url: Option<String>,
    pub seed: Option<String>,
    /// `DescribeTaskDetail`'s body; `Status` RUNNING until done.
    pub detail: Value,
    pub done: bool,
    pub called_back: bool,
}

/// One API request as the fake saw it.
#[derive(Debug, Clone)]
pub struct AmsRequest {
    pub at: Instant,
    pub action: String,
    /// `None` when accepted, else the error code answered.
    pub error: Option<String>,
    pub tasks: usize,
}

#[derive(Default)]
struct AmsState {
    findings: HashMap<String, Finding>,
    /// SHA-256s whose tasks never finish.
    stuck: Vec<String>,
    tasks: HashMap<String, AmsTask>,
    requests: Vec<AmsRequest>,
    in_progress: usize,
    max_in_progress: usize,
    queued: usize,
    /// Tasks created and not yet finished (queued or worked on): what the caller's concurrency
    /// limit must keep down, since AMS itself queues whatever it is given.
    unfinished: usize,
    max_unfinished: usize,
}

pub struct FakeAms {
    pub url: String,
    state: Arc<Mutex<AmsState>>,
    config: Arc<Mutex<AmsConfig>>,
    slots: Arc<tokio::sync::Semaphore>,
    http: reqwest::Client,
    _server: tokio::task::JoinHandle<()>,
}

#[derive(Debug, Clone)]
struct AmsConfig {
    delivery: Delivery,
    /// Requests per second accepted before `RequestLimitExceeded`.
    rate_limit: usize,
    /// How long a task takes once it has a slot.
    work: Duration,
}

#[derive(Clone)]
struct AmsApp {
    state: Arc<Mutex<AmsState>>,
    config: Arc<Mutex<AmsConfig>>,
    slots: Arc<tokio::sync::Semaphore>,
    http: reqwest::Client,
}

impl FakeAms {
    /// AMS's defaults: 20 requests/s, 10 tasks in progress.
    pub async fn start() -> FakeAms {
        let state: Arc<Mutex<AmsState>> = Arc::default();
        let config = Arc::new(Mutex::new(AmsConfig {
            delivery: Delivery::Callback,
            rate_limit: 20,
            work: Duration::from_millis(200),
        }));
        let slots = Arc::new(tokio::sync::Semaphore::new(10));
        let http = reqwest::Client::new();
        let app = AmsApp {
            state: state.clone(),
            config: config.clone(),
            slots: slots.clone(),
            http: http.clone(),
        };
        let router = Router::new().route("/", post(ams_api)).with_state(app);
        let (url, server) = serve(router).await;
        FakeAms {
            url,
            state,
            config,
            slots,
            http,
            _server: server,
        }
    }

    pub fn find(&self, sha256: &str, label: &str, score: u8) {
        self.lock().findings.insert(
            sha256.to_owned(),
            Finding {
                label: label.to_owned(),
                score,
            },
        );
    }

    /// Tasks for this audio never finish.
    pub fn stick(&self, sha256: &str) {
        self.lock().stuck.push(sha256.to_owned());
    }

    pub fn set_delivery(&self, delivery: Delivery) {
        self.config.lock().unwrap().delivery = delivery;
    }

    pub fn set_rate_limit(&self, per_sec: usize) {
        self.config.lock().unwrap().rate_limit = per_sec;
    }

    pub fn set_work(&self, work: Duration) {
        self.config.lock().unwrap().work = work;
    }

    pub fn tasks(&self) -> Vec<AmsTask> {
        self.lock().tasks.values().cloned().collect()
    }

    pub fn requests(&self) -> Vec<AmsRequest> {
        self.lock().requests.clone()
    }

    pub fn max_in_progress(&self) -> usize {
        self.lock().max_in_progress
    }

    /// The most tasks that were ever created and not yet finished at once.
    pub fn max_unfinished(&self) -> usize {
        self.lock().max_unfinished
    }

    /// The most requests accepted since `since` in any one-second window (as AMS counts its
    /// rate).
    pub fn max_accepted_per_second(&self, since: Instant) -> usize {
        let times: Vec<Instant> = self
            .requests()
            .iter()
            .filter(|r| r.error.is_none() && r.at >= since)
            .map(|r| r.at)
            .collect();
        max_in_window(&times, Duration::from_secs(1))
    }

    /// The most requests of any outcome in any one-second window (what reached the fake).
    pub fn max_requests_per_second(&self) -> usize {
        let times: Vec<Instant> = self.requests().iter().map(|r| r.at).collect();
        max_in_window(&times, Duration::from_secs(1))
    }

    /// Sends the held results of finished tasks.
    pub async fn release(&self) {
        self.set_delivery(Delivery::Callback);
        let ready: Vec<AmsTask> = self
            .tasks()
            .into_iter()
            .filter(|t| t.done && !t.called_back)
            .collect();
        let app = AmsApp {
            state: self.state.clone(),
            config: self.config.clone(),
            slots: self.slots.clone(),
            http: self.http.clone(),
        };
        for task in ready {
            call_back(&app, &task).await;
        }
    }

    /// Waits until `n` tasks exist.
    pub async fn wait_for_tasks(&self, n: usize, timeout: Duration) -> Vec<AmsTask> {
        super::eventually(timeout, &format!("{n} AMS tasks"), || async {
            let tasks = self.tasks();
            (tasks.len() >= n).then_some(tasks)
        })
        .await
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, AmsState> {
        self.state.lock().expect("not poisoned")
    }
}

/// The most instants within any window of length `window` (closed on the left, open on the right).
pub fn max_in_window(times: &[Instant], window: Duration) -> usize {
    let mut times = times.to_vec();
    times.sort();
    let mut best = 0;
    let mut start = 0;
    for end in 0..times.len() {
        while times[end] - times[start] >= window {
            start += 1;
        }
        best = best.max(end - start + 1);
    }
    best
}

fn ams_error(code: &str, message: &str) -> Value {
    json!({"Response": {"Error": {"Code": code, "Message": message},
                        "RequestId": uuid_like()}})
}

fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let hash = sha256_hex(format!("{nanos}-{n}").as_bytes());
    format!(
        "{}-{}-{}-{}-{}",
        &hash[..8],
        &hash[8..12],
        &hash[12..16],
        &hash[16..20],
        &hash[20..32]
    )
}

static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// What the real AMS checks of a request's signature; the error code when it fails.
fn check_tc3(headers: &HeaderMap, body: &[u8]) -> Result<(), (&'static str, String)> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let authorization = header("authorization").ok_or((
        "AuthFailure.SignatureFailure",
        "no Authorization".to_owned(),
    ))?;
    let parsed = tc3::parse_authorization(authorization).ok_or((
        "AuthFailure.SignatureFailure",
        format!("not TC3: {authorization}"),
    ))?;
    if parsed.secret_id != AMS_SECRET_ID {
        return Err(("AuthFailure.SecretIdNotFound", parsed.secret_id));
    }
    let timestamp: i64 = header("x-tc-timestamp")
        .and_then(|t| t.parse().ok())
        .ok_or(("MissingParameter", "X-TC-Timestamp".to_owned()))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    if (now - timestamp).abs() > 300 {
        return Err((
            "AuthFailure.SignatureExpire",
            format!("timestamp {timestamp}, now {now}"),
        ));
    }
    if parsed.service != "ams" || parsed.date != tc3::utc_date(timestamp) {
        return Err((
            "AuthFailure.SignatureFailure",
            "credential scope".to_owned(),
        ));
    }
    if parsed.signed_headers != "content-type;host" {
        return Err(("AuthFailure.SignatureFailure", parsed.signed_headers));
    }
    let request = tc3::Request {
        service: "ams",
        host: header("host").unwrap_or(""),
        content_type: header("content-type").unwrap_or(""),
        payload: body,
        timestamp,
    };
    let expected = tc3::signature(AMS_SECRET_KEY, &request);
    if expected != parsed.signature {
        return Err((
            "AuthFailure.SignatureFailure",
            "signature mismatch".to_owned(),
        ));
    }
    if header("x-tc-version") != Some("2020-12-29") {
        return Err(("InvalidParameterValue", "X-TC-Version".to_owned()));
    }
    Ok(())
}

async fn ams_api(State(app): State<AmsApp>, headers: HeaderMap, body: Bytes) -> axum::Json<Value> {
    let action = headers
        .get("x-tc-action")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let now = Instant::now();
    let record = |error: Option<&str>, tasks: usize| {
        app.state.lock().unwrap().requests.push(AmsRequest {
            at: now,
            action: action.clone(),
            error: error.map(str::to_owned),
            tasks,
        });
    };
    if let Err((code, message)) = check_tc3(&headers, &body) {
        record(Some(code), 0);
        return axum::Json(ams_error(code, &message));
    }
    let limit = app.config.lock().unwrap().rate_limit;
    let recent = {
        let state = app.state.lock().unwrap();
        state
            .requests
            .iter()
            .filter(|r| r.error.is_none() && now - r.at < Duration::from_secs(1))
            .count()
    };
    if recent >= limit {
        record(Some("RequestLimitExceeded"), 0);
        return axum::Json(ams_error(
            "RequestLimitExceeded",
            "The number of requests exceeds the frequency limit.",
        ));
    }
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        record(Some("InvalidParameter"), 0);
        return axum::Json(ams_error("InvalidParameter", "body is not JSON"));
    };
    match action.as_str() {
        "CreateAudioModerationTask" => create(&app, &request, record).await,
        "DescribeTaskDetail" => {
            record(None, 0);
            let task_id = request["TaskId"].as_str().unwrap_or("");
            let state = app.state.lock().unwrap();
            match state.tasks.get(task_id) {
                Some(task) => {
                    let mut detail = task.detail.clone();
                    detail["RequestId"] = json!(uuid_like());
                    axum::Json(json!({"Response": detail}))
                }
                None => axum::Json(ams_error("ResourceNotFound", "no such task")),
            }
        }
        _ => {
            record(Some("InvalidAction"), 0);
            axum::Json(ams_error("InvalidAction", &action))
        }
    }
}

async fn create(
    app: &AmsApp,
    request: &Value,
    record: impl Fn(Option<&str>, usize),
) -> axum::Json<Value> {
    let tasks = request["Tasks"].as_array().cloned().unwrap_or_default();
    if request["Type"] != "AUDIO" {
        record(Some("InvalidParameterValue"), 0);
        return axum::Json(ams_error(
            "InvalidParameterValue",
            "Type must be AUDIO here",
        ));
    }
    if tasks.is_empty() || tasks.len() > 10 {
        record(Some("InvalidParameterValue"), tasks.len());
        return axum::Json(ams_error("InvalidParameterValue", "Tasks: 1 to 10"));
    }
    for task in &tasks {
        if task["DataId"]
            .as_str()
            .is_none_or(|d| d.is_empty() || d.len() > 64)
            || task["Input"]["Url"].as_str().is_none()
        {
            record(Some("MissingParameter"), tasks.len());
            return axum::Json(ams_error("MissingParameter", "Tasks.N.DataId / Input.Url"));
        }
    }
    record(None, tasks.len());
    let mut results = Vec::new();
    for task in tasks {
        let task_id = uuid_like();
        let data_id = task["DataId"].as_str().unwrap().to_owned();
        let created = AmsTask {
            task_id: task_id.clone(),
            data_id: data_id.clone(),
            callback_url: request["CallbackUrl"].as_str().map(str::to_owned),
            seed: request["Seed"].as_str().map(str::to_owned),
            detail: json!({"TaskId": task_id, "DataId": data_id, "Status": "PENDING",
                           "Type": "AUDIO", "BizType": request["BizType"]}),
            done: false,
            called_back: false,
        };
        {
            let mut state = app.state.lock().unwrap();
            state.tasks.insert(task_id.clone(), created);
            state.unfinished += 1;
            state.max_unfinished = state.max_unfinished.max(state.unfinished);
        }
        let url = task["Input"]["Url"].as_str().unwrap().to_owned();
        tokio::spawn(work(app.clone(), task_id.clone(), url));
        results.push(
            json!({"DataId": data_id, "TaskId": task_id, "Code": "OK", "Message": "Success"}),
        );
    }
    axum::Json(json!({"Response": {"Results": results, "RequestId": uuid_like()}}))
}

/// One task: wait for a slot (at most 10 in progress), download, judge, finish, call back.
async fn work(app: AmsApp, task_id: String, url: String) {
    {
        let mut state = app.state.lock().unwrap();
        state.queued += 1;
    }
    // AMS's concurrency is moderation in progress; delivering the result is not part of it.
    let slot = app.slots.clone().acquire_owned().await.unwrap();
    {
        let mut state = app.state.lock().unwrap();
        state.queued -= 1;
        state.in_progress += 1;
        state.max_in_progress = state.max_in_progress.max(state.in_progress);
        state.tasks.get_mut(&task_id).unwrap().detail["Status"] = json!("RUNNING");
    }
    let work = app.config.lock().unwrap().work;
    tokio::time::sleep(work).await;
    let downloaded = match app.http.get(&url).send().await {
        Ok(response) if response.status().is_success() => response
            .bytes()
            .await
            .map(|b| b.to_vec())
            .map_err(|e| e.to_string()),
        Ok(response) => Err(format!("HTTP {}", response.status())),
        Err(e) => Err(e.to_string()),
    };
    let stuck = {
        let mut state = app.state.lock().unwrap();
        let sha = downloaded.as_ref().ok().map(|b| sha256_hex(b));
        let stuck = sha.as_ref().is_some_and(|s| state.stuck.contains(s));
        let finding = sha.and_then(|s| state.findings.get(&s).cloned());
        let task = state.tasks.get_mut(&task_id).unwrap();
        if !stuck {
            let detail = &mut task.detail;
            match (&downloaded, finding) {
                (Err(e), _) => {
                    detail["Status"] = json!("ERROR");
                    detail["ErrorType"] = json!("URL_ERROR");
                    detail["ErrorDescription"] = json!(format!("download failed: {e}"));
                }
                (Ok(_), Some(finding)) => {
                    detail["Status"] = json!("FINISH");
                    detail["Suggestion"] = json!("Block");
                    detail["Label"] = json!(finding.label);
                    detail["Labels"] = json!([{"Label": finding.label, "Suggestion": "Block",
                                               "Score": finding.score, "SubLabel": ""}]);
                    detail["AudioSegments"] = json!([{"OffsetTime": "0", "Result": {
                        "HitFlag": 1, "Label": finding.label, "Suggestion": "Block",
                        "Score": finding.score, "Text": "", "Duration": "3000"}}]);
                }
                (Ok(_), None) => {
                    detail["Status"] = json!("FINISH");
                    detail["Suggestion"] = json!("Pass");
                    detail["Label"] = json!("Normal");
                    detail["Labels"] =
                        json!([{"Label": "Normal", "Suggestion": "Pass", "Score": 0}]);
                }
            }
            task.done = true;
            state.unfinished -= 1;
        }
        state.in_progress -= 1;
        stuck
    };
    drop(slot);
    if stuck {
        return;
    }
    let task = app.state.lock().unwrap().tasks[&task_id].clone();
    if app.config.lock().unwrap().delivery == Delivery::Callback {
        call_back(&app, &task).await;
    }
}

async fn call_back(app: &AmsApp, task: &AmsTask) {
    let Some(url) = &task.callback_url else {
        return;
    };
    let body = serde_json::to_vec(&task.detail).unwrap();
    let mut request = app
        .http
        .post(url)
        .header("Content-Type", "application/json")
        .body(body.clone());
    if let Some(seed) = &task.seed {
        let signature = sha256_hex(&[seed.as_bytes(), &body].concat());
        request = request.header("X-Signature", signature);
    }
    // AMS retries a failed callback; a few tries cover a receiver that is restarting.
    for _ in 0..20 {
        if let Ok(response) = request.try_clone().unwrap().send().await
            && response.status().is_success()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    app.state
        .lock()
        .unwrap()
        .tasks
        .get_mut(&task.task_id)
        .unwrap()
        .called_back = true;
}
