//! A headless Chromium driven over WebDriver (Debian's `chromium` and `chromium-driver`, which
//! the test command installs): a small client on the project's own HTTP client, enough for the
//! console's tests — navigate, find, type, click, keys, run a script, take a screenshot.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// Fails loudly, with the command that installs them, when the browser is missing.
pub fn require_browser() {
    assert!(
        Path::new(CHROMEDRIVER).exists() && Path::new(CHROMIUM).exists(),
        "the console tests need Debian's chromium and chromium-driver: run scripts/install-deps.sh \
         (or `apt-get install chromium chromium-driver`)"
    );
}

/// A running chromedriver on a free port; stopped (by its process id) when dropped.
pub struct Driver {
    child: Child,
    base: String,
    http: reqwest::Client,
    _profiles: tempfile::TempDir,
}

impl Driver {
    pub async fn start() -> Driver {
        require_browser();
        let port = super::free_port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let driver = Driver {
            child,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
            _profiles: tempfile::tempdir().expect("tempdir"),
        };
        let status = format!("{}/status", driver.base);
        super::eventually(Duration::from_secs(30), "chromedriver answers", || {
            let http = driver.http.clone();
            let status = status.clone();
            async move {
                let ready = http
                    .get(&status)
                    .send()
                    .await
                    .ok()?
                    .json::<Value>()
                    .await
                    .ok()?;
                ready["value"]["ready"].as_bool().filter(|r| *r)
            }
        })
        .await;
        driver
    }

    /// A new browser window with its own profile (its own cookies).
    pub async fn browser(&self) -> Browser {
        let profile = self
            ._profiles
            .path()
            .join(format!("p{}", fastrand::u32(..)));
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                         "--no-first-run", "--disable-background-networking",
                         "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                         "--window-size=1280,1000",
                         format!("--user-data-dir={}", profile.display())]
            }
        }}});
        let created: Value = self
            .http
            .post(format!("{}/session", self.base))
            .json(&capabilities)
            .send()
            .await
            .expect("chromedriver answers")
            .json()
            .await
            .expect("JSON");
        let id = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {created}"))
            .to_owned();
        Browser {
            http: self.http.clone(),
            base: format!("{}/session/{id}", self.base),
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One browser session.
pub struct Browser {
    http: reqwest::Client,
    base: String,
}

impl Browser {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.request(method, &url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer: Value = request
            .send()
            .await
            .expect("chromedriver answers")
            .json()
            .await
            .expect("JSON");
        if answer["value"]["error"].is_string() {
            panic!("WebDriver {path}: {}", answer["value"]);
        }
        answer["value"].clone()
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn goto(&self, url: &str) {
        self.post("/url", json!({ "url": url })).await;
    }

    pub async fn url(&self) -> String {
        self.call(reqwest::Method::GET, "/url", None)
            .await
            .as_str()
            .expect("a URL")
            .to_owned()
    }

    pub async fn find(&self, css: &str) -> String {
        let found = self
            .post("/element", json!({"using": "css selector", "value": css}))
            .await;
        found[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("{css}: {found}"))
            .to_owned()
    }

    pub async fn count(&self, css: &str) -> usize {
        self.post("/elements", json!({"using": "css selector", "value": css}))
            .await
            .as_array()
            .map_or(0, Vec::len)
    }

    pub async fn click(&self, css: &str) {
        let id = self.find(css).await;
        self.post(&format!("/element/{id}/click"), json!({})).await;
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css).await;
        self.post(&format!("/element/{id}/value"), json!({ "text": text }))
            .await;
    }

    pub async fn text(&self, css: &str) -> String {
        let id = self.find(css).await;
        self.call(reqwest::Method::GET, &format!("/element/{id}/text"), None)
            .await
            .as_str()
            .unwrap_or("")
            .to_owned()
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and returns its value.
    pub async fn exec(&self, script: &str, args: Value) -> Value {
        self.post("/execute/sync", json!({"script": script, "args": args}))
            .await
    }

    /// Runs an asynchronous script: it calls `arguments[arguments.length - 1]` with its value.
    /// The text the page's own `fetch` of `path` gets (with the page's session).
    pub async fn fetch_text(&self, path: &str) -> String {
        self.exec_async(
            "const done = arguments[arguments.length - 1];
             fetch(arguments[0]).then(r => r.text()).then(done);",
            json!([path]),
        )
        .await
        .as_str()
        .expect("text")
        .to_owned()
    }

    pub async fn exec_async(&self, script: &str, args: Value) -> Value {
        self.post("/execute/async", json!({"script": script, "args": args}))
            .await
    }

    /// Presses keys as a person would, on whatever has the focus.
    pub async fn keys(&self, keys: &str) {
        let mut actions = Vec::new();
        for key in keys.chars() {
            actions.push(json!({"type": "keyDown", "value": key.to_string()}));
            actions.push(json!({"type": "keyUp", "value": key.to_string()}));
        }
        self.post(
            "/actions",
            json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]}),
        )
        .await;
    }

    /// Waits until `condition` (a script's return value) is true.
    pub async fn wait_until(&self, what: &str, condition: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            if self.exec(condition, json!([])).await.as_bool() == Some(true) {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {what} at {}",
                self.url().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn screenshot(&self, path: &Path) {
        use base64::Engine as _;
        let png = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().expect("base64"))
            .expect("a PNG");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("screenshot directory");
        }
        std::fs::write(path, bytes).expect("screenshot written");
    }

    pub async fn quit(self) {
        let _ = self
            .http
            .delete(&self.base)
            .send()
            .await
            .expect("chromedriver answers");
    }
}

/// A console served in-process over `pipeline`, as `earshot serve` serves it.
pub struct Served {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    stop: tokio_util::sync::CancellationToken,
    task: tokio::task::JoinHandle<Result<(), std::io::Error>>,
}

impl Served {
    /// Serves the console and waits until it answers.
    pub async fn start(
        pipeline: std::sync::Arc<earshot::pipeline::Pipeline>,
        console: &earshot::config::ConsoleConfig,
    ) -> Served {
        let stop = tokio_util::sync::CancellationToken::new();
        let router = earshot::console::router(pipeline, console.clone());
        let (listen, until) = (console.listen.clone(), stop.clone());
        let task = tokio::spawn(async move { earshot::admin::serve(&listen, router, until).await });
        let base = format!("http://{}", console.listen);
        super::eventually(Duration::from_secs(10), "the console listens", || async {
            reqwest::get(format!("{base}/login")).await.ok().map(|_| ())
        })
        .await;
        Served { base, stop, task }
    }

    /// Stops serving; panics if serving failed.
    pub async fn stop(self) {
        self.stop.cancel();
        self.task.await.expect("joins").expect("served");
    }
}
