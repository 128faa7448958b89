//! The review console (DESIGN §5): login-protected, server-rendered pages on `[console] listen`,
//! served by `earshot serve` or alone by `earshot console` (on [`crate::admin::serve`]).
//!
//! - `/` the queue (oldest first; filters by rule, scene, score; keyboard; batch decisions);
//! - `/item/<id>` one item: the upload's player at the matched segment beside the matched
//!   library reference at its own offset, scores per scene and per engine, the segments on a
//!   timeline, the keywords engines gave, and the decision;
//! - `/history` every result by day with COS's filters, and `/history.csv`;
//! - `/blocked` blocked objects, each restorable (admins) through [`Pipeline::restore`].
//!
//! Audio is never public: the upload through a presigned URL valid for five minutes, handed
//! out only to a signed-in user; a library recording proxied. Every decision goes through
//! [`Pipeline::decide_review`] (the claim, the audit log with the user's name); see [`auth`]
//! for sessions and CSRF.

mod audio;
pub mod auth;
mod history;
mod html;
mod queue;
mod waveform;

/// The history's CSV export of result rows (what `/history.csv` answers).
pub use html::csv as results_csv;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use crate::config::{ConsoleConfig, EngineConfig};
use crate::engines::local::LibraryStore;
use crate::pipeline::Pipeline;
use auth::{Auth, User};

/// How long a presigned URL for an upload's audio lives.
const AUDIO_URL_SECS: u64 = 300;

struct Console {
    pipeline: Arc<Pipeline>,
    auth: Auth,
    libraries: Vec<LibraryStore>,
    /// Where failed logins are counted (the first reviewed bucket, else the first rule's), so
    /// that every replica of the console sees them.
    logins_bucket: String,
}

/// The console's routes.
pub fn router(pipeline: Arc<Pipeline>, config: ConsoleConfig) -> Router {
    let libraries = pipeline
        .config
        .engines
        .values()
        .filter_map(|engine| match engine {
            EngineConfig::Local(local) => Some(LibraryStore::open(&local.library, &pipeline.s3)),
            _ => None,
        })
        .collect();
    let logins_bucket = pipeline
        .review_buckets()
        .into_iter()
        .next()
        .or_else(|| pipeline.rules().buckets().first().map(|b| (*b).to_owned()))
        .unwrap_or_default();
    let console = Arc::new(Console {
        auth: Auth::new(config),
        pipeline,
        libraries,
        logins_bucket,
    });
    Router::new()
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/", get(queue::queue))
        .route("/item/{id}", get(queue::item))
        .route("/item/{id}/decide", post(queue::decide))
        .route("/decide", post(queue::decide_batch))
        .route("/history", get(history::history))
        .route("/history.csv", get(history::history_csv))
        .route("/blocked", get(history::blocked))
        .route("/restore", post(history::restore))
        .route("/audio/{id}", get(audio::audio))
        .route("/waveform/{id}", get(waveform::waveform))
        .route("/reference/{id}", get(audio::reference))
        .with_state(console)
}

type Shared = State<Arc<Console>>;
type Peer = ConnectInfo<SocketAddr>;

impl Console {
    fn now(&self) -> u64 {
        self.pipeline.clock.now_secs()
    }

    /// The signed-in user, or the answer for a request without one: a page redirects to the
    /// login, anything else is refused.
    fn user(
        &self,
        headers: &HeaderMap,
        peer: SocketAddr,
        method: &Method,
        path: &str,
    ) -> Result<User, Box<Response>> {
        match self.auth.user(headers, peer.ip(), self.now()) {
            Some(user) => Ok(user),
            None if method == Method::GET => Err(Box::new(
                Redirect::to(&format!("/login?next={}", html::q(path))).into_response(),
            )),
            None => Err(Box::new(
                (StatusCode::UNAUTHORIZED, "Log in first.").into_response(),
            )),
        }
    }

    /// A state change: the user, the form, and a CSRF token that matches the session (and no
    /// foreign `Origin`).
    fn change(
        &self,
        headers: &HeaderMap,
        peer: SocketAddr,
        body: &Bytes,
    ) -> Result<(User, Form), Box<Response>> {
        let user = self.user(headers, peer, &Method::POST, "/")?;
        let form = Form::parse(body);
        let csrf = self.auth.csrf_token(&user);
        let behind_proxy = self.auth.trusted_proxy(peer.ip());
        if !same_origin(headers, behind_proxy) || !self.auth.csrf_ok(&user, form.one("csrf")) {
            tracing::warn!(user = %user.name, "Console: state change refused (CSRF token or Origin).");
            let page = html::message(
                "Refused",
                &user,
                &csrf,
                "error",
                "Refused: this form's CSRF token is missing or wrong (or it came from another site). Nothing was changed. Reload the page and try again.",
            );
            return Err(Box::new(
                (StatusCode::FORBIDDEN, Html(page)).into_response(),
            ));
        }
        Ok((user, form))
    }
}

/// `Origin`, when a browser sends one, must name this host: the `Host` the request came to, or,
/// from a trusted reverse proxy (`behind_proxy`), the `X-Forwarded-Host` the browser used (its
/// first value, the one the outermost proxy saw).
fn same_origin(headers: &HeaderMap, behind_proxy: bool) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return true;
    };
    let forwarded = behind_proxy
        .then(|| headers.get("x-forwarded-host")?.to_str().ok())
        .flatten()
        .and_then(|hosts| hosts.split(',').next())
        .map(str::trim)
        .filter(|host| !host.is_empty());
    let host = forwarded
        .or_else(|| headers.get(header::HOST).and_then(|h| h.to_str().ok()))
        .unwrap_or("");
    origin
        .split_once("://")
        .is_some_and(|(_, rest)| rest == host)
}

/// An HTML page, never cached.
struct Html(String);

impl IntoResponse for Html {
    fn into_response(self) -> Response {
        (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            self.0,
        )
            .into_response()
    }
}

/// A form body, keys possibly repeated (the batch's ids).
struct Form(Vec<(String, String)>);

impl Form {
    fn parse(body: &Bytes) -> Form {
        Form(url::form_urlencoded::parse(body).into_owned().collect())
    }

    fn one(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// Only a path on this site (never `//host`), for the login's `next`.
fn local_path(next: &str) -> &str {
    if next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') {
        next
    } else {
        "/"
    }
}

async fn login_page(
    State(c): Shared,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let next = local_path(q.get("next").map_or("/", String::as_str));
    if c.auth.user(&headers, peer.ip(), c.now()).is_some() {
        return Redirect::to(next).into_response();
    }
    Html(html::login(next, None)).into_response()
}

async fn login(
    State(c): Shared,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !same_origin(&headers, c.auth.trusted_proxy(peer.ip())) {
        return (
            StatusCode::FORBIDDEN,
            "A login from another site is refused.",
        )
            .into_response();
    }
    let form = Form::parse(&body);
    let (name, password) = (form.one("user").to_owned(), form.one("password").to_owned());
    let next = local_path(form.one("next")).to_owned();
    let (s3, bucket) = (&c.pipeline.s3, c.logins_bucket.as_str());
    let since = c.now().saturating_sub(auth::LOCKOUT_SECS - 1);
    let failures = match crate::state::logins::failures_since(s3, bucket, &name, since).await {
        Ok(failures) => failures,
        Err(e) => {
            tracing::warn!(user = %name, error = %e, "Console: failed logins cannot be counted; login refused.");
            let page = html::login(
                &next,
                Some("The console cannot reach its bucket to check this login; try again shortly."),
            );
            return (StatusCode::SERVICE_UNAVAILABLE, Html(page)).into_response();
        }
    };
    if failures >= auth::MAX_FAILURES as usize {
        tracing::warn!(user = %name, failures, "Console: login refused after repeated failures.");
        let page = html::login(
            &next,
            Some("Too many failed logins for this user; try again later."),
        );
        return (StatusCode::TOO_MANY_REQUESTS, Html(page)).into_response();
    }
    let console = c.clone();
    let checked = {
        let name = name.clone();
        tokio::task::spawn_blocking(move || console.auth.check_password(&name, &password)).await
    };
    match checked {
        Ok(Some(_role)) => {
            if failures > 0
                && let Err(e) = crate::state::logins::clear(s3, bucket, &name).await
            {
                tracing::warn!(user = %name, error = %e, "Console: earlier failed logins not forgotten.");
            }
            tracing::info!(user = %name, "Console: logged in.");
            let session = c.auth.issue(&name, c.now());
            (
                StatusCode::SEE_OTHER,
                [
                    (header::SET_COOKIE, c.auth.cookie(Some(&session))),
                    (header::LOCATION, next),
                ],
            )
                .into_response()
        }
        _ => {
            if let Err(e) = crate::state::logins::record_failure(s3, bucket, &name, c.now()).await {
                tracing::warn!(user = %name, error = %e, "Console: failed login not counted.");
            }
            tracing::warn!(user = %name, "Console: wrong user name or password.");
            (
                StatusCode::UNAUTHORIZED,
                Html(html::login(&next, Some("Wrong user name or password."))),
            )
                .into_response()
        }
    }
}

async fn logout(
    State(c): Shared,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(refused) = c.change(&headers, peer, &body) {
        return *refused;
    }
    (
        StatusCode::SEE_OTHER,
        [
            (header::SET_COOKIE, c.auth.cookie(None)),
            (header::LOCATION, "/login".to_owned()),
        ],
    )
        .into_response()
}

fn score(text: Option<&String>) -> Option<u8> {
    text.and_then(|t| t.trim().parse().ok())
}

fn failed(error: impl std::fmt::Display) -> Response {
    tracing::error!(%error, "Console: request failed.");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("earshot could not do this: {error}"),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn only_local_paths_are_followed_after_login() {
        assert_eq!(local_path("/item/abc"), "/item/abc");
        assert_eq!(local_path("//evil.example/x"), "/");
        assert_eq!(local_path("https://evil.example/"), "/");
        assert_eq!(local_path("/\\evil"), "/");
    }

    #[test]
    fn origin_must_name_this_host() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8090"));
        assert!(same_origin(&headers, false));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8090"),
        );
        assert!(same_origin(&headers, false));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(!same_origin(&headers, false));
    }

    #[test]
    fn behind_a_trusted_proxy_origin_must_name_the_forwarded_host() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8090"));
        headers.insert(
            "x-forwarded-host",
            HeaderValue::from_static("review.example.com, 10.0.0.5:8080"),
        );
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://review.example.com"),
        );
        assert!(same_origin(&headers, true));
        // From a peer that is not a trusted proxy the header is anyone's to send.
        assert!(!same_origin(&headers, false));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8090"),
        );
        assert!(
            !same_origin(&headers, true),
            "the proxy's host is not the site's"
        );
        assert!(same_origin(&headers, false));
    }
}
