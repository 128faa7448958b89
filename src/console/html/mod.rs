//! The console's pages: server-rendered HTML with a little inline script for the keyboard and the
//! audio, no build step. Every value from outside is escaped by [`esc`].

mod history;
mod item;

pub use history::{HistoryFilter, blocked, csv, history};
pub use item::{Matched, item};

use std::fmt::Write as _;

use super::auth::User;
use crate::clock;
use crate::state::review::ReviewItem;

/// Encodes text for a URL's query (every byte but letters and digits), safe in an attribute.
fn url_escape(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

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
.error{padding:8px;background:#fde8e8;border:1px solid #d99}.waveform{display:block;width:100%;height:136px;margin:6px 0;border:1px solid #dee2e6}.timeline{position:relative;height:22px;background:#eee;margin:6px 0}\
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

#[allow(clippy::too_many_arguments)]
pub fn queue(
    user: &User,
    csrf: &str,
    shown: &crate::pipeline::ReviewPage,
    later_page: bool,
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
        "<p class=\"muted\"><span id=\"waiting\">{}</span> waiting, oldest first. Keys: <kbd>j</kbd>/<kbd>k</kbd> next/previous, \
         <kbd>x</kbd> select, <kbd>Enter</kbd> open, <kbd>b</kbd> block, <kbd>p</kbd> pass \
         (the selected items, or the current one).</p>\
         <form method=\"post\" action=\"/decide\" id=\"batch\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <p><label>Reason <input name=\"reason\" id=\"reason\" size=\"50\" required></label> \
         <button name=\"verdict\" value=\"block\" id=\"batch-block\">Block <span class=\"count\">0</span> selected</button> \
         <button name=\"verdict\" value=\"pass\" id=\"batch-pass\">Pass <span class=\"count\">0</span> selected</button></p>\
         <table id=\"queue\"><thead><tr><th></th><th>Waiting since</th><th>Rule</th><th>Scene</th><th>Score</th><th>Object</th><th>While waiting</th><th>Decided by timeout at</th></tr></thead><tbody>",
        shown.total,
        esc(csrf)
    );
    for item in &shown.items {
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
    // Paging keeps the filter; a page starts after the last marker of the one before.
    let filter_query = format!(
        "rule={}&amp;scene={}&amp;min={}&amp;max={}",
        url_escape(&filter.rule),
        url_escape(&filter.scene),
        filter.min.map(|m| m.to_string()).unwrap_or_default(),
        filter.max.map(|m| m.to_string()).unwrap_or_default(),
    );
    body.push_str("<p id=\"paging\">");
    if later_page {
        let _ = write!(
            body,
            "<a id=\"first-page\" href=\"/?{filter_query}\">First page</a> "
        );
    }
    if let Some(next) = &shown.next {
        let _ = write!(
            body,
            "<a id=\"next-page\" href=\"/?{filter_query}&amp;after={}\">Next page</a>",
            url_escape(next)
        );
    }
    body.push_str("</p>");
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
}
