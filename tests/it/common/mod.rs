//! Helpers shared by the integration tests: the real LocalStack (and moto server) reached through
//! earshot's own SDK client, a fresh bucket per test so tests run in parallel, a real HTTP
//! listener for callbacks, and audio made by ffmpeg/sox/espeak-ng at test time.
#![allow(dead_code)]

pub mod browser;
pub mod cache;
pub mod chance;
pub mod corpus;
pub mod gate;
pub mod lambda_api;
pub mod providers;
mod queues;
pub mod requests;
pub mod review_items;
pub mod whole_tracks;

#[allow(unused_imports)] // the benches share this module and use neither
pub use queues::{fresh_queue, queue_arn};

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use earshot::config::{
    Config, EngineConfig, MinioWebhookConfig, RuleConfig, S3Config, SqsConfig, WebhookConfig,
};

pub const LOCALSTACK: &str = "http://127.0.0.1:4566";

/// The moto server address: `MOTO_ENDPOINT` or 127.0.0.1:5055.
pub fn moto_endpoint() -> String {
    std::env::var("MOTO_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:5055".to_owned())
}

/// Panics with the command to run when LocalStack does not answer, or names both versions when
/// the one answering is not the pinned one: never skips.
pub fn require_localstack() {
    let url = format!("{LOCALSTACK}/_localstack/health");
    require(&url, "LocalStack", "localstack/start.sh");
    let health = std::process::Command::new("curl")
        .args(["-fsS", "--max-time", "5", &url])
        .output()
        .expect("curl runs");
    let found = serde_json::from_slice::<serde_json::Value>(&health.stdout)
        .ok()
        .and_then(|h| h["version"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned());
    let needed = pinned_localstack();
    assert_eq!(
        found, needed,
        "The LocalStack answering at {LOCALSTACK} is version {found}; earshot's tests need \
         {needed} (localstack/install.sh pins it). Stop that one, then run scripts/test.sh."
    );
}

/// The LocalStack version localstack/install.sh pins.
pub fn pinned_localstack() -> String {
    let install = include_str!("../../../localstack/install.sh");
    let pin = install.split("\"localstack-core[runtime]==").nth(1);
    pin.and_then(|rest| rest.split('"').next())
        .expect("install.sh pins localstack-core")
        .to_owned()
}

pub fn require_moto() {
    require(
        &format!("{}/moto-api/", moto_endpoint()),
        "moto server",
        "localstack/start-moto.sh",
    );
}

fn require(url: &str, what: &str, start: &str) {
    let ok = std::process::Command::new("curl")
        .args(["-fsS", "-o", "/dev/null", "--max-time", "5", url])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "{what} does not answer at {url}. Start it with `{start}` (or run the whole suite with \
         `scripts/test.sh`, which starts and stops it)."
    );
}

/// A command's stdout and stderr, after asserting that it succeeded (`what` names it).
pub fn succeeded(out: std::process::Output, what: &str) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{what}: {:?}\n{text}", out.status);
    text
}

pub fn s3_config(endpoint: &str) -> S3Config {
    S3Config {
        endpoint_url: Some(endpoint.to_owned()),
        region: Some("us-east-1".to_owned()),
        force_path_style: true,
        access_key_id: Some("test".to_owned()),
        secret_access_key: Some("test".to_owned()),
    }
}

/// earshot's own S3 client, pointed at `endpoint`.
pub async fn s3(endpoint: &str) -> aws_sdk_s3::Client {
    earshot::storage::s3_client(&s3_config(endpoint)).await
}

/// A name no other test (or earlier run) uses.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .subsec_nanos();
    format!("{prefix}-{}-{n}-{nanos}", std::process::id())
}

pub async fn fresh_bucket(s3: &aws_sdk_s3::Client) -> String {
    let bucket = unique("t");
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create bucket {bucket}: {e:?}"));
    bucket
}

pub async fn put_file(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    path: &Path,
    content_type: &str,
) {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .content_type(content_type)
        .body(ByteStream::from_path(path).await.expect("readable"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("put {bucket}/{key}: {e:?}"));
}

pub async fn put_bytes(s3: &aws_sdk_s3::Client, bucket: &str, key: &str, bytes: Vec<u8>) {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(bytes))
        .send()
        .await
        .unwrap_or_else(|e| panic!("put {bucket}/{key}: {e:?}"));
}

/// The status of a HEAD on the object (200, 404…).
pub async fn head_status(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> u16 {
    match s3.head_object().bucket(bucket).key(key).send().await {
        Ok(_) => 200,
        Err(e) => e.raw_response().map_or(0, |r| r.status().as_u16()),
    }
}

pub async fn get_bytes(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Vec<u8> {
    s3.get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("get {bucket}/{key}: {e:?}"))
        .body
        .collect()
        .await
        .expect("body")
        .to_vec()
}

/// A callback received by [`Listener`].
#[derive(Debug, Clone)]
pub struct Received {
    /// When the request arrived.
    pub at: Instant,
    pub signature: Option<String>,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("callback body is JSON")
    }
}

/// A real HTTP server on 127.0.0.1 that records every POST to /hook.
pub struct Listener {
    pub url: String,
    received: Arc<Mutex<Vec<Received>>>,
    arrived: Arc<AtomicU32>,
    _server: tokio::task::JoinHandle<()>,
}

impl Listener {
    pub async fn start() -> Listener {
        Self::start_with_delay(Duration::ZERO).await
    }

    /// A listener that holds each request for `delay` before answering (a slow receiver).
    pub async fn start_with_delay(delay: Duration) -> Listener {
        use axum::Router;
        use axum::http::HeaderMap;
        use axum::routing::post;
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let arrived: Arc<AtomicU32> = Arc::default();
        let store = received.clone();
        let counter = arrived.clone();
        let app = Router::new().route(
            "/hook",
            post(move |headers: HeaderMap, body: axum::body::Bytes| {
                let store = store.clone();
                let counter = counter.clone();
                async move {
                    counter.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(delay).await;
                    let header = |name: &str| {
                        headers
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_owned)
                    };
                    store.lock().expect("not poisoned").push(Received {
                        at: Instant::now(),
                        signature: header("x-signature"),
                        content_type: header("content-type"),
                        body: body.to_vec(),
                    });
                    "ok"
                }
            }),
        );
        let socket = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1");
        let addr: SocketAddr = socket.local_addr().expect("bound");
        let server = tokio::spawn(async move {
            axum::serve(socket, app).await.expect("listener serves");
        });
        Listener {
            url: format!("http://{addr}/hook"),
            received,
            arrived,
            _server: server,
        }
    }

    /// Requests that have arrived, answered or not.
    pub fn arrived(&self) -> u32 {
        self.arrived.load(Ordering::SeqCst)
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().expect("not poisoned").clone()
    }

    /// Waits until `n` callbacks arrived (or panics after `timeout`).
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        eventually(
            timeout,
            &format!("{n} callbacks at {}", self.url),
            || async {
                let got = self.received();
                (got.len() >= n).then_some(got)
            },
        )
        .await
    }
}

/// Polls `condition` every 50 ms until it gives a value, which it returns; panics naming `what`
/// after `timeout`. The one way tests wait for something to happen.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut condition: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = condition().await {
            return value;
        }
        assert!(
            start.elapsed() < timeout,
            "waited {timeout:?} for {what}, in vain"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The value of one series (`name{labels}`) on the `/metrics` page at `base`, when it is there.
pub async fn scrape(base: &str, series: &str) -> Option<f64> {
    let page = reqwest::get(format!("{base}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    page.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.parse().ok())
}

/// An address nothing listens on.
pub fn unreachable_url() -> String {
    format!("http://127.0.0.1:{}/hook", free_port())
}

/// A config with one rule for a test bucket on `endpoint` and the local engine on `library`; a
/// test changes what it needs on the value.
pub fn config_at(
    endpoint: &str,
    bucket: &str,
    callback_url: &str,
    mode: &str,
    library: &Path,
) -> Config {
    let text = config_text(endpoint, bucket, callback_url, mode, library);
    Config::from_toml_str(&text).unwrap_or_else(|e| panic!("test config: {e}"))
}

/// The TOML text of [`config_at`].
fn config_text(
    endpoint: &str,
    bucket: &str,
    callback_url: &str,
    mode: &str,
    library: &Path,
) -> String {
    format!(
        r#"
        [s3]
        endpoint_url = "{endpoint}"
        region = "us-east-1"
        force_path_style = true
        access_key_id = "test"
        secret_access_key = "test"

        [[rules]]
        id = "uploads"
        bucket = "{bucket}"
        prefix = "audio/"
        scenes = ["porn", "ads", "illegal"]
        block = {{ enabled = true, mode = "{mode}", min_score = 90 }}
        callback = {{ url = "{callback_url}", seed = "s3cret", max_attempts = 3, initial_backoff_ms = 50, timeout_secs = 30, detail = true }}

        [engines.local]
        type = "local"
        library = "{}"
        "#,
        library.display()
    )
}

/// An `[engines.NAME]` table, as a user writes it, read into its typed value.
pub fn engine_section(text: &str) -> EngineConfig {
    toml::from_str(text).unwrap_or_else(|e| panic!("engine section: {e}\n{text}"))
}

/// `[sources.sqs]` on a LocalStack queue, long-polling for 1 s.
pub fn sqs_source(queue_url: &str, max_concurrency: usize, visibility_secs: u32) -> SqsConfig {
    SqsConfig {
        queue_url: queue_url.to_owned(),
        endpoint_url: Some(LOCALSTACK.to_owned()),
        max_concurrency,
        wait_time_secs: 1,
        visibility_timeout_secs: visibility_secs,
    }
}

/// `[sources.webhook]` on 127.0.0.1:`port` with earshot's defaults, taking MinIO's events with
/// `minio_token` when given.
pub fn webhook_source(port: u16, minio_token: Option<&str>) -> WebhookConfig {
    WebhookConfig {
        listen: format!("127.0.0.1:{port}"),
        max_concurrency: 8,
        queue_capacity: 256,
        retry_after_secs: 5,
        max_attempts: 8,
        retry_initial_ms: 1000,
        minio: minio_token.map(|token| MinioWebhookConfig {
            auth_token: token.to_owned(),
        }),
        sns: None,
    }
}

/// A second rule like the first, for `bucket`.
pub fn another_rule(config: &Config, id: &str, bucket: &str) -> RuleConfig {
    let mut rule = config.rules[0].clone();
    rule.id = id.to_owned();
    rule.bucket = bucket.to_owned();
    rule
}

/// The TOML `earshot` reads for a typed config (what a test changes, it changes on the value).
pub fn config_toml(config: &Config) -> String {
    toml::to_string(config).unwrap_or_else(|e| panic!("test config serialises: {e}"))
}

/// [`config_at`] on LocalStack.
pub fn config(bucket: &str, callback_url: &str, mode: &str, library: &Path) -> Config {
    config_at(LOCALSTACK, bucket, callback_url, mode, library)
}

/// `earshot --config CONFIG ARGS…` run to its end, logging JSON at `warn`.
pub fn earshot(config: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_earshot"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env("EARSHOT_LOG_FORMAT", "json")
        .env("RUST_LOG", "warn")
        .output()
        .expect("earshot runs")
}

/// Runs a command, panicking with its stderr when it fails.
pub fn run(command: &mut Command) {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        out.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Audio from an ffmpeg lavfi `source`, encoded per the output's extension and `codec_args`.
pub fn synthesize(path: &Path, source: &str, codec_args: &[&str]) -> PathBuf {
    run(Command::new("ffmpeg")
        .args([
            "-nostdin",
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            source,
        ])
        .args(codec_args)
        .arg(path));
    path.to_owned()
}

/// A test tone of `secs` seconds at `freq` Hz (`codec_args` e.g. `["-c:a", "libvorbis"]`).
pub fn tone(path: &Path, secs: f64, freq: u32, codec_args: &[&str]) -> PathBuf {
    let source = format!("sine=frequency={freq}:sample_rate=44100:duration={secs}");
    synthesize(path, &source, codec_args)
}

/// Music-like material: a chord with tremolo and vibrato, so VBR encoders vary their bitrate.
pub fn music(path: &Path, secs: f64, codec_args: &[&str]) -> PathBuf {
    let source = format!(
        "aevalsrc=exprs='0.3*sin(2*PI*220*t)*(1+sin(2*PI*0.5*t))+0.2*sin(2*PI*330*t)+0.1*sin(2*PI*(440+200*sin(2*PI*0.2*t))*t)':s=44100:d={secs}"
    );
    synthesize(path, &source, codec_args)
}

/// `len` pseudo-random bytes (xorshift32 from `seed`): compressed-looking data, reproducible.
pub fn noise(len: usize, seed: u32) -> Vec<u8> {
    let mut state = seed.max(1);
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as u8
        })
        .collect()
}

/// Speech from espeak-ng, encoded by ffmpeg from the output's extension.
pub fn speech(path: &Path, text: &str) -> PathBuf {
    let wav = path.with_extension("speech.wav");
    run(Command::new("espeak-ng").args(["-w"]).arg(&wav).arg(text));
    run(Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i"])
        .arg(&wav)
        .arg(path));
    path.to_owned()
}

/// Local engine library with `file` added as known `scene` content by `earshot library add`'s
/// own code: a real entry with its fingerprint, so uploads match it as excerpts too, not only
/// byte for byte.
pub async fn library_with(dir: &Path, file: &Path, scene: earshot::model::Scene) -> PathBuf {
    use earshot::commands::library::{Action, run};
    let library = dir.join("library");
    let config = Config::from_toml_str(&format!(
        "[engines.local]\ntype = \"local\"\nlibrary = \"{}\"\n",
        library.display()
    ))
    .expect("a library config");
    let add = Action::Add {
        scene,
        label: "known-bad".to_owned(),
        sources: vec![file.display().to_string()],
    };
    run(config, "local", add)
        .await
        .unwrap_or_else(|e| panic!("library add {}: {e}", file.display()));
    library
}

/// The tests' known-bad clip (a 4 s 880 Hz tone, 96 kb/s MP3) in `dir`, and a library in
/// `dir/library` that knows it as porn: (clip, library).
pub async fn known_bad_in_library(dir: &Path) -> (PathBuf, PathBuf) {
    let known_bad = tone(&dir.join("known-bad.mp3"), 4.0, 880, &["-b:a", "96k"]);
    let library = library_with(dir, &known_bad, earshot::model::Scene::Porn).await;
    (known_bad, library)
}

/// The id `earshot library add` printed for its single entry (it must have succeeded).
pub fn added_id(add: &std::process::Output) -> String {
    assert!(
        add.status.success(),
        "{}",
        String::from_utf8_lossy(&add.stderr)
    );
    String::from_utf8_lossy(&add.stdout)
        .split_whitespace()
        .next()
        .expect("id")
        .to_owned()
}

/// Verifies `X-Signature` = hex(sha256(seed + body)).
pub fn signature_ok(received: &Received, seed: &str) -> bool {
    received.signature.as_deref()
        == Some(earshot::signing::x_signature(seed, &received.body).as_str())
}

/// A FLAC file whose header is intact and whose audio frames are overwritten with noise.
pub fn corrupt_flac(dir: &Path) -> PathBuf {
    let path = tone(&dir.join("source-for-corrupt.flac"), 10.0, 440, &[]);
    let mut bytes = std::fs::read(&path).expect("read");
    let len = bytes.len().saturating_sub(8192);
    bytes.truncate(8192);
    bytes.extend(noise(len, 0x9e37_79b9));
    let corrupt = dir.join("corrupt.flac");
    std::fs::write(&corrupt, bytes).expect("write");
    corrupt
}

/// Encodes `wav` (mono, 8 kHz for `nb`, 16 kHz for `wb`) as AMR with tests/tools/amr_encode.c,
/// which the first call compiles against Debian's libopencore-amrnb and libvo-amrwbenc.
pub fn amr_encode(dir: &Path, wav: &Path, band: &str) -> PathBuf {
    let tool = dir.join("amr_encode");
    if !tool.exists() {
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/amr_encode.c");
        run(Command::new("cc")
            .args(["-O2", "-o"])
            .arg(&tool)
            .arg(&source)
            .args(["-lopencore-amrnb", "-lvo-amrwbenc"]));
    }
    let out = dir.join(format!(
        "{}-{band}.amr",
        wav.file_stem().and_then(|s| s.to_str()).unwrap_or("clip")
    ));
    let pcm = Command::new("ffmpeg")
        .args(["-nostdin", "-loglevel", "error", "-i"])
        .arg(wav)
        .args(["-f", "s16le", "-"])
        .output()
        .expect("ffmpeg runs");
    let mut encoder = Command::new(&tool)
        .arg(band)
        .stdin(std::process::Stdio::piped())
        .stdout(std::fs::File::create(&out).expect("create"))
        .spawn()
        .expect("amr_encode runs");
    use std::io::Write;
    encoder
        .stdin
        .take()
        .expect("stdin")
        .write_all(&pcm.stdout)
        .expect("write");
    assert!(encoder.wait().expect("waits").success());
    out
}

/// `earshot serve` as users run it: the real binary with a config file, logging JSON to a file.
pub struct Daemon {
    pub child: tokio::process::Child,
    pub log: PathBuf,
}

impl Daemon {
    /// Writes `config` to `dir/earshot.toml` and starts `earshot serve` on it.
    pub fn start(dir: &Path, config: &Config) -> Daemon {
        Daemon::spawn(dir, &config_toml(config))
    }

    /// Writes `config_text` to `dir/earshot.toml` and starts `earshot serve` on it.
    pub fn spawn(dir: &Path, config_text: &str) -> Daemon {
        Daemon::spawn_logging(dir, config_text, "info")
    }

    /// [`Daemon::spawn`] with `RUST_LOG` = `filter`.
    pub fn spawn_logging(dir: &Path, config_text: &str, filter: &str) -> Daemon {
        Daemon::spawn_command(dir, config_text, filter, "serve")
    }

    /// `earshot <command>` (`serve`, `console`) as a long-running process.
    pub fn spawn_command(dir: &Path, config_text: &str, filter: &str, command: &str) -> Daemon {
        let config = dir.join("earshot.toml");
        std::fs::write(&config, config_text).expect("write config");
        let log = dir.join("earshot.log");
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_earshot"))
            .arg("--config")
            .arg(&config)
            .arg(command)
            .env("EARSHOT_LOG_FORMAT", "json")
            .env("RUST_LOG", filter)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .kill_on_drop(true)
            .spawn()
            .expect("earshot serve starts");
        Daemon { child, log }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn assert_running(&mut self) {
        let status = self.child.try_wait().expect("status");
        assert!(
            status.is_none(),
            "earshot serve exited ({status:?}); log:\n{}",
            self.log()
        );
    }

    /// Waits until `url` answers (any status), or panics with the log.
    pub async fn wait_until_listening(&mut self, url: &str) {
        let client = reqwest::Client::new();
        let what = format!("{url} answering (earshot's log is {})", self.log.display());
        eventually(Duration::from_secs(60), &what, || {
            self.assert_running();
            let request = client.get(url).send();
            async move { request.await.ok().map(drop) }
        })
        .await;
    }

    /// SIGTERM, then the exit status (within 60 s).
    pub async fn terminate(mut self) -> (std::process::ExitStatus, String) {
        let pid = self.child.id().expect("running").to_string();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill runs");
        assert!(sent.success());
        let status = tokio::time::timeout(Duration::from_secs(60), self.child.wait())
            .await
            .expect("earshot exits within 60 s of SIGTERM")
            .expect("exit status");
        let log = self.log();
        (status, log)
    }
}

/// A port nothing listens on right now, for a server the test is about to start.
pub fn free_port() -> u16 {
    let socket = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    socket.local_addr().expect("bound").port()
}

/// An S3 `ObjectCreated:Put` notification for one object, as S3 sends it (key URL-encoded).
pub fn s3_event(bucket: &str, key: &str) -> serde_json::Value {
    let encoded = earshot::storage::encode_key(key);
    serde_json::json!({"Records": [{
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": bucket}, "object": {"key": encoded}}
    }]})
}

/// Audio the local engine scores in the suspicious band (61–90): a 20 s reference in a library
/// in `dir/library` (as porn), and an upload with 3 s of an unrelated tone, then 1.76 s of the
/// reference from its 5th second, so the match sits about 3 s into the upload and 5 s into the
/// reference: (upload, library). So short an excerpt of this steady synthetic music agrees on
/// few enough landmarks that chance could give them (measured: 73; 1.72–1.78 s all score 73–78,
/// 1.6 s 53, 2 s 88, 5 s 100).
pub async fn suspicious_in_library(dir: &Path) -> (PathBuf, PathBuf) {
    let reference = music(&dir.join("reference.mp3"), 20.0, &["-b:a", "128k"]);
    let library = library_with(dir, &reference, earshot::model::Scene::Porn).await;
    let upload = dir.join("suspicious.mp3");
    run(Command::new("ffmpeg")
        .args(["-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i"])
        .arg("sine=frequency=300:sample_rate=44100:duration=3")
        .args(["-ss", "5", "-t", "1.76", "-i"])
        .arg(&reference)
        .args([
            "-filter_complex",
            "[0:a]volume=0.2[a];[a][1:a]concat=n=2:v=0:a=1",
            "-ac",
            "1",
            "-b:a",
            "96k",
        ])
        .arg(&upload));
    (upload, library)
}

/// A config under human review: scores from 60 to 90 wait for a person.
pub fn human_review(config: &mut Config, hold: bool, timeout_secs: u64) {
    let block = &mut config.rules[0].block;
    block.review = earshot::config::Review::Human;
    block.min_score = 60;
    block.hold_for_review = hold;
    block.review_timeout_secs = timeout_secs;
}
