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

pub mod auth;
mod html;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use crate::config::{ConsoleConfig, EngineConfig, ReviewVerdict, Role};
use crate::engines::local::LibraryStore;
use crate::pipeline::{DecideRequest, Pipeline, RestoreRequest, Restored, ReviewError};
use crate::state::blocks;
use crate::state::review::{self, ResultRow};
use auth::{Auth, User};

/// How long a presigned URL for an upload's audio lives.
const AUDIO_URL_SECS: u64 = 300;

struct Console {
    pipeline: Arc<Pipeline>,
    auth: Auth,
    libraries: Vec<LibraryStore>,
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
    let console = Arc::new(Console {
        auth: Auth::new(config),
        pipeline,
        libraries,
    });
    Router::new()
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/", get(queue))
        .route("/item/{id}", get(item))
        .route("/item/{id}/decide", post(decide))
        .route("/decide", post(decide_batch))
        .route("/history", get(history))
        .route("/history.csv", get(history_csv))
        .route("/blocked", get(blocked))
        .route("/restore", post(restore))
        .route("/audio/{id}", get(audio))
        .route("/reference/{id}", get(reference))
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
        if !same_origin(headers) || !self.auth.csrf_ok(&user, form.one("csrf")) {
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

/// `Origin`, when a browser sends one, must name this host.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
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

fn verdict(text: &str) -> Option<ReviewVerdict> {
    match text {
        "block" => Some(ReviewVerdict::Block),
        "pass" => Some(ReviewVerdict::Pass),
        _ => None,
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

async fn login(State(c): Shared, headers: HeaderMap, body: Bytes) -> Response {
    if !same_origin(&headers) {
        return (
            StatusCode::FORBIDDEN,
            "A login from another site is refused.",
        )
            .into_response();
    }
    let form = Form::parse(&body);
    let (name, password) = (form.one("user").to_owned(), form.one("password").to_owned());
    let next = local_path(form.one("next")).to_owned();
    if c.auth.locked_out(&name, c.now()) {
        tracing::warn!(user = %name, "Console: login refused after repeated failures.");
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
            c.auth.record_login(&name, true, c.now());
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
            c.auth.record_login(&name, false, c.now());
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

fn failed(error: impl std::fmt::Display) -> Response {
    tracing::error!(%error, "Console: request failed.");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("earshot could not do this: {error}"),
    )
        .into_response()
}

fn score(text: Option<&String>) -> Option<u8> {
    text.and_then(|t| t.trim().parse().ok())
}

async fn queue(
    State(c): Shared,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let user = match c.user(&headers, peer, &Method::GET, "/") {
        Ok(user) => user,
        Err(to_login) => return *to_login,
    };
    let filter = html::QueueFilter {
        rule: q.get("rule").cloned().unwrap_or_default(),
        scene: q.get("scene").cloned().unwrap_or_default(),
        min: score(q.get("min")),
        max: score(q.get("max")),
    };
    let items = match c.pipeline.review_queue().await {
        Ok(items) => items,
        Err(e) => return failed(e),
    };
    let shown: Vec<_> = items.into_iter().filter(|i| filter.keeps(i)).collect();
    let rules: Vec<String> = c
        .pipeline
        .rules()
        .all()
        .iter()
        .filter(|r| r.block.review == crate::config::Review::Human)
        .map(|r| r.id.clone())
        .collect();
    let csrf = c.auth.csrf_token(&user);
    Html(html::queue(
        &user,
        &csrf,
        &shown,
        &filter,
        &rules,
        q.get("done").map(String::as_str),
    ))
    .into_response()
}

async fn item(
    State(c): Shared,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let user = match c.user(&headers, peer, &Method::GET, &format!("/item/{id}")) {
        Ok(user) => user,
        Err(to_login) => return *to_login,
    };
    let (item, decision) = match c.pipeline.review_item(&id).await {
        Ok(found) => found,
        Err(ReviewError::NotFound { .. }) => {
            return (StatusCode::NOT_FOUND, "No such review item.").into_response();
        }
        Err(e) => return failed(e),
    };
    // The strongest segment: where the upload's player starts, and the reference it matched.
    let best = item
        .scenes
        .values()
        .flat_map(|s| s.segments.iter())
        .max_by_key(|s| s.score);
    let mut matched = html::Matched {
        offset_secs: best.map_or(0.0, |s| s.offset_secs),
        reference: None,
    };
    if let Some(segment) = best
        && let Some(reference) = &segment.reference_id
    {
        matched.reference = Some((
            reference.clone(),
            segment.reference_offset_secs.unwrap_or(0.0),
            segment.label.clone(),
        ));
    }
    let queue: Vec<String> = c
        .pipeline
        .review_ids()
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|(_, q)| q.trace_id)
        .collect();
    let at = queue.iter().position(|id| *id == item.trace_id);
    let neighbours = match at {
        Some(i) => (
            i.checked_sub(1).map(|p| queue[p].as_str()),
            queue.get(i + 1).map(String::as_str),
        ),
        None => (None, queue.first().map(String::as_str)),
    };
    let csrf = c.auth.csrf_token(&user);
    Html(html::item(
        &user,
        &csrf,
        &item,
        decision.as_ref(),
        &matched,
        neighbours,
    ))
    .into_response()
}

async fn decide(
    State(c): Shared,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (user, form) = match c.change(&headers, peer, &body) {
        Ok(ok) => ok,
        Err(refused) => return *refused,
    };
    let csrf = c.auth.csrf_token(&user);
    let Some(verdict) = verdict(form.one("verdict")) else {
        return (StatusCode::BAD_REQUEST, "verdict must be block or pass").into_response();
    };
    // The next item, looked up before this one leaves the queue.
    let queue = c.pipeline.review_ids().await.unwrap_or_default();
    let next = queue
        .iter()
        .skip_while(|(_, q)| q.trace_id != id)
        .nth(1)
        .map(|(_, q)| q.trace_id.clone());
    let request = DecideRequest {
        verdict,
        by: user.name.clone(),
        reason: form.one("reason").to_owned(),
    };
    match c.pipeline.decide_review(&id, &request).await {
        Ok(_) => {
            let done = html::q(&format!("{} {}", verdict.as_str(), id));
            let to = match next {
                Some(next) => format!("/item/{next}?done={done}"),
                None => format!("/?done={done}"),
            };
            Redirect::to(&to).into_response()
        }
        Err(e @ ReviewError::Conflict(_)) => (
            StatusCode::CONFLICT,
            Html(html::message(
                "Already decided",
                &user,
                &csrf,
                "error",
                &format!("Not changed: {e}."),
            )),
        )
            .into_response(),
        Err(e @ ReviewError::NoReason) => (
            StatusCode::BAD_REQUEST,
            Html(html::message(
                "A reason is required",
                &user,
                &csrf,
                "error",
                &e.to_string(),
            )),
        )
            .into_response(),
        Err(e) => failed(e),
    }
}

async fn decide_batch(
    State(c): Shared,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (user, form) = match c.change(&headers, peer, &body) {
        Ok(ok) => ok,
        Err(refused) => return *refused,
    };
    let csrf = c.auth.csrf_token(&user);
    let ids = form.all("id");
    let reason = form.one("reason").trim();
    let Some(verdict) = verdict(form.one("verdict")) else {
        return (StatusCode::BAD_REQUEST, "verdict must be block or pass").into_response();
    };
    if ids.is_empty() || reason.is_empty() {
        let page = html::message(
            "Nothing decided",
            &user,
            &csrf,
            "error",
            "A batch decision needs at least one selected item and a reason.",
        );
        return (StatusCode::BAD_REQUEST, Html(page)).into_response();
    }
    let request = DecideRequest {
        verdict,
        by: user.name.clone(),
        reason: reason.to_owned(),
    };
    let (mut done, mut refused) = (0, Vec::new());
    for id in &ids {
        match c.pipeline.decide_review(id, &request).await {
            Ok(_) => done += 1,
            Err(e) => refused.push(e.to_string()),
        }
    }
    let mut text = format!(
        "{} {done} of {} selected items.",
        if verdict == ReviewVerdict::Block {
            "Blocked"
        } else {
            "Passed"
        },
        ids.len()
    );
    if !refused.is_empty() {
        text.push_str(&format!(" Not decided: {}.", refused.join("; ")));
    }
    let status = if refused.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::CONFLICT
    };
    (
        status,
        Html(html::message(
            "Batch decision",
            &user,
            &csrf,
            if refused.is_empty() { "flash" } else { "error" },
            &text,
        )),
    )
        .into_response()
}

/// The history's filters from the query; the range defaults to the last seven days.
fn history_filter(q: &HashMap<String, String>, now: u64) -> html::HistoryFilter {
    let get = |k: &str| q.get(k).map(|v| v.trim().to_owned()).unwrap_or_default();
    let mut filter = html::HistoryFilter {
        from: get("from"),
        to: get("to"),
        result: get("result"),
        scene: get("scene"),
        label: get("label"),
        min: score(q.get("min")),
        max: score(q.get("max")),
        name: get("name"),
    };
    if crate::clock::day_start(&filter.to).is_none() {
        filter.to = crate::clock::day(now);
    }
    if crate::clock::day_start(&filter.from).is_none() {
        filter.from = crate::clock::day(now.saturating_sub(6 * 86_400));
    }
    filter
}

/// Every kept row of every day in the filter's range, by day (no cap on the range).
async fn history_rows(
    c: &Console,
    filter: &html::HistoryFilter,
) -> Result<Vec<(String, Vec<ResultRow>)>, crate::state::StateError> {
    let mut by_day: std::collections::BTreeMap<String, Vec<ResultRow>> = Default::default();
    for bucket in c.pipeline.rules().buckets() {
        for day in review::result_days(&c.pipeline.s3, bucket).await? {
            if day < filter.from || day > filter.to {
                continue;
            }
            let rows = review::results_of_day(&c.pipeline.s3, bucket, &day).await?;
            by_day
                .entry(day)
                .or_default()
                .extend(rows.into_iter().filter(|r| filter.keeps(r)));
        }
    }
    Ok(by_day
        .into_iter()
        .map(|(day, mut rows)| {
            rows.sort_by_key(|r| r.judged_at);
            (day, rows)
        })
        .collect())
}

async fn history(
    State(c): Shared,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let user = match c.user(&headers, peer, &Method::GET, "/history") {
        Ok(user) => user,
        Err(to_login) => return *to_login,
    };
    let filter = history_filter(&q, c.now());
    match history_rows(&c, &filter).await {
        Ok(days) => Html(html::history(
            &user,
            &c.auth.csrf_token(&user),
            &filter,
            &days,
        ))
        .into_response(),
        Err(e) => failed(e),
    }
}

async fn history_csv(
    State(c): Shared,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(to_login) = c.user(&headers, peer, &Method::GET, "/history") {
        return *to_login;
    }
    let filter = history_filter(&q, c.now());
    match history_rows(&c, &filter).await {
        Ok(days) => {
            let rows: Vec<ResultRow> = days.into_iter().flat_map(|(_, rows)| rows).collect();
            let name = format!(
                "attachment; filename=\"earshot-{}-{}.csv\"",
                filter.from, filter.to
            );
            (
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                    (header::CONTENT_DISPOSITION, name),
                    (header::CACHE_CONTROL, "no-store".to_owned()),
                ],
                html::csv(&rows),
            )
                .into_response()
        }
        Err(e) => failed(e),
    }
}

async fn blocked(State(c): Shared, ConnectInfo(peer): Peer, headers: HeaderMap) -> Response {
    let user = match c.user(&headers, peer, &Method::GET, "/blocked") {
        Ok(user) => user,
        Err(to_login) => return *to_login,
    };
    let mut records = Vec::new();
    for bucket in c.pipeline.rules().buckets() {
        match blocks::all_blocks(&c.pipeline.s3, bucket).await {
            Ok(found) => records.extend(found.into_iter().filter(|r| r.restore.is_none())),
            Err(e) => return failed(e),
        }
    }
    records.sort_by_key(|r| std::cmp::Reverse(r.blocked_at));
    Html(html::blocked(&user, &c.auth.csrf_token(&user), &records)).into_response()
}

async fn restore(
    State(c): Shared,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (user, form) = match c.change(&headers, peer, &body) {
        Ok(ok) => ok,
        Err(refused) => return *refused,
    };
    let csrf = c.auth.csrf_token(&user);
    if user.role != Role::Admin {
        let page = html::message(
            "Not allowed",
            &user,
            &csrf,
            "error",
            "Only an admin may restore.",
        );
        return (StatusCode::FORBIDDEN, Html(page)).into_response();
    }
    let reason = form.one("reason").trim();
    if reason.is_empty() {
        let page = html::message(
            "A reason is required",
            &user,
            &csrf,
            "error",
            "A restore needs a reason.",
        );
        return (StatusCode::BAD_REQUEST, Html(page)).into_response();
    }
    let records =
        match blocks::blocks_of_key(&c.pipeline.s3, form.one("bucket"), form.one("key")).await {
            Ok(records) => records,
            Err(e) => return failed(e),
        };
    let Some(record) = records
        .into_iter()
        .find(|r| r.trace_id == form.one("trace_id"))
    else {
        return (StatusCode::NOT_FOUND, "No such block.").into_response();
    };
    let key = record.key.clone();
    let request = RestoreRequest {
        by: user.name.clone(),
        reason: reason.to_owned(),
        mark_normal: false,
    };
    match c.pipeline.restore(record, &request).await {
        Ok(Restored::Done { .. }) | Ok(Restored::Already { .. }) => Html(html::message(
            "Restored",
            &user,
            &csrf,
            "flash",
            &format!("Restored {key}."),
        ))
        .into_response(),
        Err(e) => (
            StatusCode::CONFLICT,
            Html(html::message(
                "Not restored",
                &user,
                &csrf,
                "error",
                &e.to_string(),
            )),
        )
            .into_response(),
    }
}

/// The upload's audio: a redirect to a short-lived presigned URL of wherever the bytes are now
/// (the object, or its backup when moved).
async fn audio(
    State(c): Shared,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(to_login) = c.user(&headers, peer, &Method::GET, "/") {
        return *to_login;
    }
    let (item, _) = match c.pipeline.review_item(&id).await {
        Ok(found) => found,
        Err(ReviewError::NotFound { .. }) => {
            return (StatusCode::NOT_FOUND, "No such item.").into_response();
        }
        Err(e) => return failed(e),
    };
    let s3 = &c.pipeline.s3;
    let here = s3
        .head_object()
        .bucket(&item.bucket)
        .key(&item.key)
        .send()
        .await
        .is_ok_and(|h| h.e_tag().map(|e| e.trim_matches('"')) == Some(item.etag.as_str()));
    let (key, version) = if here {
        (item.key.clone(), item.version_id.as_deref())
    } else {
        (crate::layout::backup_key(&item.key), None)
    };
    match crate::storage::presigned_get(
        s3,
        &item.bucket,
        &key,
        version,
        Duration::from_secs(AUDIO_URL_SECS),
    )
    .await
    {
        Ok(url) => {
            let mut response = Redirect::temporary(&url).into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(e) => failed(e),
    }
}

/// A library recording, proxied (with byte ranges, so the player can seek).
async fn reference(
    State(c): Shared,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(to_login) = c.user(&headers, peer, &Method::GET, "/") {
        return *to_login;
    }
    for library in &c.libraries {
        match library.recording(&id).await {
            Ok(Some(bytes)) => return ranged(&headers, bytes),
            Ok(None) => {}
            Err(e) => return failed(e),
        }
    }
    (
        StatusCode::NOT_FOUND,
        "The library keeps no recording of this reference.",
    )
        .into_response()
}

/// `bytes`, or the one range the request asks for.
fn ranged(headers: &HeaderMap, bytes: Vec<u8>) -> Response {
    let len = bytes.len();
    let range = headers
        .get(header::RANGE)
        .and_then(|r| r.to_str().ok())
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.split_once('-'))
        .and_then(|(start, end)| {
            let start: usize = start.parse().ok()?;
            let end: usize = if end.is_empty() {
                len.checked_sub(1)?
            } else {
                end.parse::<usize>().ok()?.min(len.checked_sub(1)?)
            };
            (start <= end).then_some((start, end))
        });
    let common = [
        (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
        (header::ACCEPT_RANGES, "bytes".to_owned()),
        (header::CACHE_CONTROL, "private, no-store".to_owned()),
    ];
    match range {
        Some((start, end)) => (
            StatusCode::PARTIAL_CONTENT,
            common,
            [(header::CONTENT_RANGE, format!("bytes {start}-{end}/{len}"))],
            bytes[start..=end].to_vec(),
        )
            .into_response(),
        None => (StatusCode::OK, common, bytes).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(same_origin(&headers));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8090"),
        );
        assert!(same_origin(&headers));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(!same_origin(&headers));
    }
}
