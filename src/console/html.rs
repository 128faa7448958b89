//! The console's pages: server-rendered HTML with a little inline script for the keyboard and the
//! audio, no build step. Every value from outside is escaped by [`esc`].

use std::fmt::Write as _;

use super::auth::User;
use crate::clock;
use crate::state::review::{ResultRow, ReviewDecision, ReviewItem};

/// Escapes text for HTML content and attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes a query parameter value.
pub fn q(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#222}\
header{background:#1d2b3a;color:#fff;padding:8px 16px;display:flex;gap:16px;align-items:center}\
header a{color:#cde}header form{margin-left:auto}main{padding:16px}\
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:4px 6px;text-align:left}\
tr.current{background:#fff3c4}.muted{color:#777}.flash{padding:8px;background:#e7f5e7;border:1px solid #9c9}\
.error{padding:8px;background:#fde8e8;border:1px solid #d99}.timeline{position:relative;height:22px;background:#eee;margin:6px 0}\
.timeline div{position:absolute;top:0;height:22px;background:#d9534f;opacity:.7;cursor:pointer}\
.players{display:flex;gap:24px;flex-wrap:wrap}.players section{flex:1;min-width:300px}\
kbd{border:1px solid #aaa;border-radius:3px;padding:0 4px;background:#f7f7f7}";

/// A whole page around `body`.
pub fn page(title: &str, user: Option<(&User, &str)>, body: &str) -> String {
    let nav = match user {
        Some((user, csrf)) => format!(
            "<a href=\"/\">Queue</a><a href=\"/history\">History</a><a href=\"/blocked\">Blocked</a>\
             <form method=\"post\" action=\"/logout\"><span>{} ({:?})</span> \
             <input type=\"hidden\" name=\"csrf\" value=\"{}\"><button>Log out</button></form>",
            esc(&user.name),
            user.role,
            esc(csrf)
        ),
        None => String::new(),
    };
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{} · earshot</title>\
         <style>{STYLE}</style></head><body><header><strong>earshot</strong>{nav}</header>\
         <main>{body}</main></body></html>",
        esc(title)
    )
}

pub fn login(next: &str, error: Option<&str>) -> String {
    let error = error
        .map(|e| format!("<p class=\"error\" id=\"error\">{}</p>", esc(e)))
        .unwrap_or_default();
    let body = format!(
        "<h1>Log in</h1>{error}<form method=\"post\" action=\"/login\">\
         <input type=\"hidden\" name=\"next\" value=\"{}\">\
         <p><label>User <input name=\"user\" id=\"user\" autocomplete=\"username\" required autofocus></label></p>\
         <p><label>Password <input type=\"password\" name=\"password\" id=\"password\" autocomplete=\"current-password\" required></label></p>\
         <p><button id=\"login\">Log in</button></p></form>",
        esc(next)
    );
    page("Log in", None, &body)
}

/// A short message page (a refusal, a conflict, a batch's result).
pub fn message(title: &str, user: &User, csrf: &str, class: &str, text: &str) -> String {
    let body = format!(
        "<h1>{}</h1><p class=\"{class}\" id=\"message\">{}</p><p><a href=\"/\" id=\"back\">Back to the queue</a></p>",
        esc(title),
        esc(text)
    );
    page(title, Some((user, csrf)), &body)
}

/// The queue's filters, as given.
#[derive(Debug, Default, Clone)]
pub struct QueueFilter {
    pub rule: String,
    pub scene: String,
    pub min: Option<u8>,
    pub max: Option<u8>,
}

impl QueueFilter {
    pub fn keeps(&self, item: &ReviewItem) -> bool {
        (self.rule.is_empty() || item.rule == self.rule)
            && (self.scene.is_empty() || item.scene.as_str() == self.scene)
            && self.min.is_none_or(|m| item.score >= m)
            && self.max.is_none_or(|m| item.score <= m)
    }
}

pub fn queue(
    user: &User,
    csrf: &str,
    items: &[ReviewItem],
    filter: &QueueFilter,
    rules: &[String],
    flash: Option<&str>,
) -> String {
    let mut body = String::from("<h1>Review queue</h1>");
    if let Some(flash) = flash {
        let _ = write!(body, "<p class=\"flash\" id=\"flash\">{}</p>", esc(flash));
    }
    let option = |value: &str, selected: &str| {
        format!(
            "<option value=\"{0}\"{1}>{0}</option>",
            esc(value),
            if value == selected { " selected" } else { "" }
        )
    };
    let rule_options: String = rules.iter().map(|r| option(r, &filter.rule)).collect();
    let scene_options: String = ["porn", "ads", "illegal", "abuse"]
        .iter()
        .map(|s| option(s, &filter.scene))
        .collect();
    let _ = write!(
        body,
        "<form method=\"get\" action=\"/\" id=\"filters\">Rule <select name=\"rule\"><option value=\"\">all</option>{rule_options}</select> \
         Scene <select name=\"scene\"><option value=\"\">all</option>{scene_options}</select> \
         Score <input name=\"min\" size=\"3\" value=\"{}\">–<input name=\"max\" size=\"3\" value=\"{}\"> <button>Filter</button></form>",
        filter.min.map(|m| m.to_string()).unwrap_or_default(),
        filter.max.map(|m| m.to_string()).unwrap_or_default(),
    );
    let _ = write!(
        body,
        "<p class=\"muted\">{} waiting, oldest first. Keys: <kbd>j</kbd>/<kbd>k</kbd> next/previous, \
         <kbd>x</kbd> select, <kbd>Enter</kbd> open, <kbd>b</kbd> block, <kbd>p</kbd> pass \
         (the selected items, or the current one).</p>\
         <form method=\"post\" action=\"/decide\" id=\"batch\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <p><label>Reason <input name=\"reason\" id=\"reason\" size=\"50\" required></label> \
         <button name=\"verdict\" value=\"block\" id=\"batch-block\">Block <span class=\"count\">0</span> selected</button> \
         <button name=\"verdict\" value=\"pass\" id=\"batch-pass\">Pass <span class=\"count\">0</span> selected</button></p>\
         <table id=\"queue\"><thead><tr><th></th><th>Waiting since</th><th>Rule</th><th>Scene</th><th>Score</th><th>Object</th><th>While waiting</th><th>Decided by timeout at</th></tr></thead><tbody>",
        items.len(),
        esc(csrf)
    );
    for item in items {
        let _ = write!(
            body,
            "<tr data-id=\"{id}\"><td><input type=\"checkbox\" name=\"id\" value=\"{id}\"></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td><a href=\"/item/{id}\">s3://{}/{}</a></td><td>{}</td><td>{} ({})</td></tr>",
            clock::display(item.created_at),
            esc(&item.rule),
            item.scene.as_str(),
            item.score,
            esc(&item.bucket),
            esc(&item.key),
            if item.held { "held" } else { "published" },
            clock::display(item.due_at),
            item.on_timeout.as_str(),
            id = esc(&item.trace_id),
        );
    }
    body.push_str("</tbody></table></form>");
    body.push_str(QUEUE_SCRIPT);
    page("Review queue", Some((user, csrf)), &body)
}

const QUEUE_SCRIPT: &str = r#"<script>
(function () {
  const rows = Array.from(document.querySelectorAll('#queue tbody tr'));
  const form = document.getElementById('batch');
  const reason = document.getElementById('reason');
  let current = rows.length ? 0 : -1;
  function show() { rows.forEach((r, i) => r.classList.toggle('current', i === current)); }
  function count() {
    const n = rows.filter(r => r.querySelector('input').checked).length;
    document.querySelectorAll('#batch .count').forEach(c => c.textContent = n);
    return n;
  }
  function decide(verdict) {
    if (current < 0) return;
    if (count() === 0) { rows[current].querySelector('input').checked = true; count(); }
    if (!reason.value.trim()) { reason.focus(); reason.reportValidity(); return; }
    form.requestSubmit(document.getElementById('batch-' + verdict));
  }
  rows.forEach(r => r.querySelector('input').addEventListener('change', count));
  document.addEventListener('keydown', e => {
    if (e.target.tagName === 'INPUT' || e.target.tagName === 'SELECT' || e.ctrlKey || e.metaKey || e.altKey) {
      if (e.key === 'Escape') e.target.blur();
      return;
    }
    if ((e.key === 'j' || e.key === 'ArrowDown') && current < rows.length - 1) { current++; show(); }
    else if ((e.key === 'k' || e.key === 'ArrowUp') && current > 0) { current--; show(); }
    else if (e.key === 'x' && current >= 0) { const c = rows[current].querySelector('input'); c.checked = !c.checked; count(); }
    else if ((e.key === 'Enter' || e.key === 'o') && current >= 0) { location.href = '/item/' + rows[current].dataset.id; }
    else if (e.key === 'b') { decide('block'); }
    else if (e.key === 'p') { decide('pass'); }
    else return;
    e.preventDefault();
  });
  show(); count();
})();
</script>"#;

/// Where the upload's player starts, and the reference it matched.
pub struct Matched {
    pub offset_secs: f64,
    pub reference: Option<(String, f64, String)>,
}

pub fn item(
    user: &User,
    csrf: &str,
    item: &ReviewItem,
    decision: Option<&ReviewDecision>,
    matched: &Matched,
    neighbours: (Option<&str>, Option<&str>),
) -> String {
    let id = esc(&item.trace_id);
    let mut body = format!(
        "<h1>s3://{}/{}</h1><p class=\"muted\">Rule {} · {} · waiting since {} · {} while waiting · \
         <kbd>b</kbd> block, <kbd>p</kbd> pass, <kbd>j</kbd>/<kbd>k</kbd> next/previous, <kbd>Esc</kbd> leave a field</p>",
        esc(&item.bucket),
        esc(&item.key),
        esc(&item.rule),
        esc(&item.trace_id),
        clock::display(item.created_at),
        if item.held { "held" } else { "published" },
    );
    let _ = write!(
        body,
        "<div class=\"players\"><section><h2>Upload</h2>\
         <audio id=\"upload\" controls preload=\"auto\" src=\"/audio/{id}\" data-start=\"{:.3}\"></audio>\
         <p>Starts at the matched segment, {:.1} s.</p><div class=\"timeline\" id=\"timeline\"></div></section>",
        matched.offset_secs, matched.offset_secs
    );
    match &matched.reference {
        Some((reference, offset, label)) => {
            let _ = write!(
                body,
                "<section><h2>Library reference</h2>\
                 <audio id=\"reference\" controls preload=\"auto\" src=\"/reference/{}\" data-start=\"{offset:.3}\"></audio>\
                 <p>{} · at {offset:.1} s · <code>{}</code></p></section>",
                esc(reference),
                esc(label),
                esc(&reference[..reference.len().min(16)])
            );
        }
        None => body.push_str("<section><h2>Library reference</h2><p class=\"muted\">No library reference matched: the score is an engine's.</p></section>"),
    }
    body.push_str("</div><h2>Scores by scene</h2><table id=\"scenes\"><tr><th>Scene</th><th>Score</th><th>Label</th><th>Segments (offset s, length s, score, label)</th></tr>");
    let mut segments_json = Vec::new();
    for (scene, score) in &item.scenes {
        let segments: Vec<String> = score
            .segments
            .iter()
            .map(|s| {
                segments_json.push(serde_json::json!({
                    "offset": s.offset_secs, "duration": s.duration_secs,
                    "label": format!("{} {} {}", scene.as_str(), s.score, s.label),
                }));
                format!(
                    "{:.1}, {:.1}, {}, {}",
                    s.offset_secs,
                    s.duration_secs,
                    s.score,
                    esc(&s.label)
                )
            })
            .collect();
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            scene.as_str(),
            score.score,
            esc(&score.label),
            segments.join("<br>")
        );
    }
    body.push_str("</table><h2>Scores by engine</h2><table id=\"engines\"><tr><th>Engine</th><th>Scores</th><th>Keywords</th></tr>");
    for outcome in &item.engines {
        let (scores, keywords) = match &outcome.verdict {
            Some(verdict) => {
                let scores: Vec<String> = verdict
                    .scenes
                    .iter()
                    .map(|(scene, s)| format!("{} {}", scene.as_str(), s.score))
                    .collect();
                let mut words: Vec<String> = verdict
                    .scenes
                    .values()
                    .flat_map(|s| {
                        std::iter::once(s.label.clone())
                            .chain(s.segments.iter().map(|g| g.label.clone()))
                    })
                    .filter(|l| !l.is_empty())
                    .collect();
                words.sort();
                words.dedup();
                (scores.join(", "), words.join(", "))
            }
            None => (
                format!("failed: {}", outcome.error.as_deref().unwrap_or("")),
                String::new(),
            ),
        };
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&outcome.engine),
            esc(&scores),
            esc(&keywords)
        );
    }
    body.push_str("</table>");
    match decision {
        Some(d) => {
            let _ = write!(
                body,
                "<h2>Decision</h2><p class=\"flash\" id=\"decided\">{} by {} at {}: {}</p>",
                d.verdict.as_str(),
                esc(&d.by),
                clock::display(d.at),
                esc(&d.reason)
            );
        }
        None => {
            let _ = write!(
                body,
                "<h2>Decision</h2><form method=\"post\" action=\"/item/{id}/decide\" id=\"decide\">\
                 <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
                 <p><label>Reason <input name=\"reason\" id=\"reason\" size=\"60\" required></label></p>\
                 <p><button name=\"verdict\" value=\"block\" id=\"block\">Block (b)</button> \
                 <button name=\"verdict\" value=\"pass\" id=\"pass\">Pass (p)</button></p></form>\
                 <p class=\"muted\">Nobody deciding by {} lets the rule decide: {}.</p>",
                esc(csrf),
                clock::display(item.due_at),
                item.on_timeout.as_str()
            );
        }
    }
    let link = |id: Option<&str>| {
        id.map(|i| format!("'/item/{}'", esc(i)))
            .unwrap_or_else(|| "null".to_owned())
    };
    let script = ITEM_SCRIPT
        .replace(
            "__SEGMENTS__",
            &serde_json::Value::from(segments_json)
                .to_string()
                .replace("</", "<\\/"),
        )
        .replace("__PREV__", &link(neighbours.0))
        .replace("__NEXT__", &link(neighbours.1));
    body.push_str(&script);
    page(&item.key, Some((user, csrf)), &body)
}

const ITEM_SCRIPT: &str = r#"<script>
(function () {
  const segments = __SEGMENTS__;
  const prev = __PREV__, next = __NEXT__;
  // Each player starts at its matched offset; nothing plays until the reviewer presses play.
  document.querySelectorAll('audio[data-start]').forEach(a => {
    const start = parseFloat(a.dataset.start) || 0;
    const seek = () => { if (a.currentTime < 0.01 && start > 0) a.currentTime = start; };
    if (a.readyState >= 1) seek(); else a.addEventListener('loadedmetadata', seek, { once: true });
  });
  const upload = document.getElementById('upload');
  const timeline = document.getElementById('timeline');
  function draw() {
    const total = upload.duration;
    if (!isFinite(total) || total <= 0) return;
    timeline.innerHTML = '';
    segments.forEach(s => {
      const d = document.createElement('div');
      d.style.left = (100 * s.offset / total) + '%';
      d.style.width = Math.max(0.5, 100 * s.duration / total) + '%';
      d.title = s.label + ' at ' + s.offset.toFixed(1) + ' s';
      d.addEventListener('click', () => { upload.currentTime = s.offset; });
      timeline.appendChild(d);
    });
  }
  if (upload.readyState >= 1) draw(); else upload.addEventListener('loadedmetadata', draw);
  const form = document.getElementById('decide');
  document.addEventListener('keydown', e => {
    if (e.target.tagName === 'INPUT' || e.target.tagName === 'TEXTAREA' || e.ctrlKey || e.metaKey || e.altKey) {
      if (e.key === 'Escape') e.target.blur();
      return;
    }
    if ((e.key === 'b' || e.key === 'p') && form) {
      const reason = document.getElementById('reason');
      if (!reason.value.trim()) { reason.focus(); reason.reportValidity(); }
      else form.requestSubmit(document.getElementById(e.key === 'b' ? 'block' : 'pass'));
    } else if (e.key === 'j' && next) { location.href = next; }
    else if (e.key === 'k' && prev) { location.href = prev; }
    else if (e.key === 'u') { location.href = '/'; }
    else return;
    e.preventDefault();
  });
})();
</script>"#;

/// History filters (the COS "Moderation Details" ones).
#[derive(Debug, Default, Clone)]
pub struct HistoryFilter {
    pub from: String,
    pub to: String,
    pub result: String,
    pub scene: String,
    pub label: String,
    pub min: Option<u8>,
    pub max: Option<u8>,
    pub name: String,
}

impl HistoryFilter {
    pub fn keeps(&self, row: &ResultRow) -> bool {
        let score = if self.scene.is_empty() {
            Some(row.top_score())
        } else {
            row.scenes
                .iter()
                .find(|s| s.0.as_str() == self.scene)
                .map(|s| s.1)
        };
        let Some(score) = score else { return false };
        (self.result.is_empty() || self.result == row.result.to_string())
            && (self.label.is_empty()
                || row.scenes.iter().any(|s| {
                    s.2.to_lowercase().contains(&self.label.to_lowercase())
                        && (self.scene.is_empty() || s.0.as_str() == self.scene)
                }))
            && self.min.is_none_or(|m| score >= m)
            && self.max.is_none_or(|m| score <= m)
            && (self.name.is_empty() || row.key.contains(&self.name))
    }

    pub fn query(&self) -> String {
        format!(
            "from={}&to={}&result={}&scene={}&label={}&min={}&max={}&name={}",
            q(&self.from),
            q(&self.to),
            q(&self.result),
            q(&self.scene),
            q(&self.label),
            self.min.map(|m| m.to_string()).unwrap_or_default(),
            self.max.map(|m| m.to_string()).unwrap_or_default(),
            q(&self.name)
        )
    }
}

pub fn history(
    user: &User,
    csrf: &str,
    filter: &HistoryFilter,
    days: &[(String, Vec<ResultRow>)],
) -> String {
    let selected = |a: &str, b: &str| if a == b { " selected" } else { "" };
    let mut body = format!(
        "<h1>History</h1><form method=\"get\" action=\"/history\" id=\"history-filters\">\
         From <input type=\"date\" name=\"from\" value=\"{}\"> to <input type=\"date\" name=\"to\" value=\"{}\"> \
         Result <select name=\"result\"><option value=\"\">all</option><option value=\"0\"{}>normal</option>\
         <option value=\"1\"{}>sensitive</option><option value=\"2\"{}>suspicious</option></select> \
         Scene <select name=\"scene\"><option value=\"\">all</option><option{}>porn</option><option{}>ads</option><option{}>illegal</option><option{}>abuse</option></select> \
         Label <input name=\"label\" size=\"10\" value=\"{}\"> Score <input name=\"min\" size=\"3\" value=\"{}\">–<input name=\"max\" size=\"3\" value=\"{}\"> \
         Object <input name=\"name\" size=\"16\" value=\"{}\"> <button>Show</button> \
         <a id=\"csv\" href=\"/history.csv?{}\">Export CSV</a></form>",
        esc(&filter.from),
        esc(&filter.to),
        selected(&filter.result, "0"),
        selected(&filter.result, "1"),
        selected(&filter.result, "2"),
        selected(&filter.scene, "porn"),
        selected(&filter.scene, "ads"),
        selected(&filter.scene, "illegal"),
        selected(&filter.scene, "abuse"),
        esc(&filter.label),
        filter.min.map(|m| m.to_string()).unwrap_or_default(),
        filter.max.map(|m| m.to_string()).unwrap_or_default(),
        esc(&filter.name),
        filter.query()
    );
    for (day, rows) in days.iter().rev() {
        let _ = write!(
            body,
            "<h2>{} <span class=\"muted\">({} results)</span></h2><table class=\"day\"><tr><th>Time</th><th>Object</th><th>Rule</th><th>Result</th><th>Blocked</th><th>Scores</th><th>Review</th><th>Source</th></tr>",
            esc(day),
            rows.len()
        );
        for row in rows {
            let scores: Vec<String> = row
                .scenes
                .iter()
                .map(|(scene, score, label)| {
                    if label.is_empty() {
                        format!("{} {score}", scene.as_str())
                    } else {
                        format!("{} {score} ({})", scene.as_str(), esc(label))
                    }
                })
                .collect();
            let _ = write!(
                body,
                "<tr><td>{}</td><td>s3://{}/{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                clock::display(row.judged_at),
                esc(&row.bucket),
                esc(&row.key),
                esc(&row.rule),
                result_name(row.result, row.code),
                row.forbidden_status,
                scores.join(", "),
                esc(row.review.as_deref().unwrap_or("")),
                esc(&row.source)
            );
        }
        body.push_str("</table>");
    }
    if days.is_empty() {
        body.push_str("<p class=\"muted\">No results in this range.</p>");
    }
    page("History", Some((user, csrf)), &body)
}

pub fn result_name(result: u8, code: i32) -> &'static str {
    match (code, result) {
        (c, _) if c != 0 => "not judged",
        (_, 0) => "normal",
        (_, 1) => "sensitive",
        _ => "suspicious",
    }
}

/// The CSV of history rows (RFC 4180 quoting; every field quoted).
pub fn csv(rows: &[ResultRow]) -> String {
    // Keys are the uploaders' to name: a cell a spreadsheet would run as a formula is defused.
    let field = |s: &str| {
        let defuse = s.starts_with(['=', '+', '-', '@', '\t', '\r']);
        format!(
            "\"{}{}\"",
            if defuse { "'" } else { "" },
            s.replace('"', "\"\"")
        )
    };
    let mut out = String::from(
        "time,bucket,key,rule,source,code,result,forbidden_status,porn_score,ads_score,illegal_score,abuse_score,labels,review,trace_id\r\n",
    );
    for row in rows {
        let score = |name: &str| {
            row.scenes
                .iter()
                .find(|s| s.0.as_str() == name)
                .map(|s| s.1.to_string())
                .unwrap_or_default()
        };
        let labels: Vec<&str> = row
            .scenes
            .iter()
            .map(|s| s.2.as_str())
            .filter(|l| !l.is_empty())
            .collect();
        let cells = [
            field(&clock::display(row.judged_at)),
            field(&row.bucket),
            field(&row.key),
            field(&row.rule),
            field(&row.source),
            row.code.to_string(),
            row.result.to_string(),
            row.forbidden_status.to_string(),
            score("porn"),
            score("ads"),
            score("illegal"),
            score("abuse"),
            field(&labels.join("; ")),
            field(row.review.as_deref().unwrap_or("")),
            field(&row.trace_id),
        ];
        out.push_str(&cells.join(","));
        out.push_str("\r\n");
    }
    out
}

pub fn blocked(user: &User, csrf: &str, records: &[crate::state::blocks::BlockRecord]) -> String {
    let mut body = format!(
        "<h1>Blocked objects</h1><p class=\"muted\">{} blocked and not restored. A restore puts the object back \
         exactly as it was (admins only).</p><table id=\"blocked\"><tr><th>Blocked at</th><th>Object</th><th>Rule</th><th>Mode</th><th>Restore</th></tr>",
        records.len()
    );
    for r in records {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>s3://{}/{}</td><td>{}</td><td>{:?}</td><td><form method=\"post\" action=\"/restore\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{}\"><input type=\"hidden\" name=\"bucket\" value=\"{}\">\
             <input type=\"hidden\" name=\"trace_id\" value=\"{}\"><input type=\"hidden\" name=\"key\" value=\"{}\">\
             <input name=\"reason\" placeholder=\"reason\" required> <button>Restore</button></form></td></tr>",
            clock::display(r.blocked_at),
            esc(&r.bucket),
            esc(&r.key),
            esc(&r.rule),
            r.mode,
            esc(csrf),
            esc(&r.bucket),
            esc(&r.trace_id),
            esc(&r.key)
        );
    }
    body.push_str("</table>");
    page("Blocked", Some((user, csrf)), &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            esc("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(q("a b&c"), "a+b%26c");
    }

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        let row = ResultRow {
            judged_at: 0,
            trace_id: "t".into(),
            bucket: "b".into(),
            key: "=HYPERLINK(\"x\")".into(),
            rule: "r".into(),
            source: "upload".into(),
            code: 0,
            message: String::new(),
            result: 0,
            forbidden_status: 0,
            scenes: vec![(crate::model::Scene::Porn, 12, "a \"b\"".into())],
            review: None,
        };
        let text = csv(&[row]);
        let line = text.lines().nth(1).expect("a row");
        assert!(line.contains("\"'=HYPERLINK(\"\"x\"\")\""), "{line}");
        assert!(line.contains(",12,,,,\"a \"\"b\"\"\","), "{line}");
    }
}
