//! The item page: the upload's player at the matched segment beside the matched reference, the
//! scores per scene and engine, the segments on a timeline, and the decision.

use std::fmt::Write as _;

use super::{esc, page};
use crate::clock;
use crate::console::auth::User;
use crate::state::review::{ReviewDecision, ReviewItem};

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
