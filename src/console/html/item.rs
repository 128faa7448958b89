//! The item page: the upload's player at the matched segment beside the matched reference, the
//! scores per scene and engine, the segments on a timeline, and the decision.

use std::fmt::Write as _;

use super::{esc, page};
use crate::clock;
use crate::console::auth::User;
use crate::model::{Scene, SceneScore};
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
         <p>Starts at the matched segment, {:.1} s.</p>\
         <img id=\"waveform\" class=\"waveform\" src=\"/waveform/{id}\" alt=\"The upload's waveform, with the segments the engines found marked on it\">\
         <div class=\"timeline\" id=\"timeline\"></div></section>",
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
    body.push_str("</table>");
    body.push_str(&heard(&item.scenes));
    body.push_str("<h2>Scores by engine</h2><table id=\"engines\"><tr><th>Engine</th><th>Scores</th><th>Keywords</th></tr>");
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
                            .chain(s.segments.iter().filter_map(|g| g.term.clone()))
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

/// "What was heard": each speech finding as the transcript around it, the matched words marked,
/// with the term, the dictionary, the scene and the score (a sentence the abuse classifier judged:
/// the sentence, marked whole, and its score; words that say a dictionary's example in other
/// words: marked in their sentence, the example and their similarity); a click on a line plays
/// from there.
fn heard(scenes: &std::collections::BTreeMap<Scene, SceneScore>) -> String {
    let mut lines: Vec<(f64, String)> = Vec::new();
    for (scene, score) in scenes {
        for s in &score.segments {
            let Some(text) = &s.text else {
                continue;
            };
            if let Some(example) = &s.example {
                lines.push((
                    s.offset_secs,
                    format!(
                        "<li class=\"heard judged\" data-offset=\"{:.3}\" title=\"Play from here\"><span class=\"time\">{:.1} s</span> \
                         <q>{}</q> <span class=\"muted\">· means <q class=\"example\">{}</q> (similarity {:.2}) · dictionary <code class=\"dictionary\">{}</code> · {} {}</span></li>",
                        s.offset_secs,
                        s.offset_secs,
                        mark(s.context.as_deref().unwrap_or(text), text),
                        esc(example),
                        s.similarity.unwrap_or_default(),
                        esc(&s.label),
                        scene.as_str(),
                        s.score
                    ),
                ));
                continue;
            }
            let Some(term) = &s.term else {
                // A sentence judged as a whole (the abuse classifier): the sentence, who judged
                // it and its score.
                lines.push((
                    s.offset_secs,
                    format!(
                        "<li class=\"heard judged\" data-offset=\"{:.3}\" title=\"Play from here\"><span class=\"time\">{:.1} s</span> \
                         <q><mark>{}</mark></q> <span class=\"muted\">· judged by <b class=\"judge\">{}</b> · {} {}</span></li>",
                        s.offset_secs,
                        s.offset_secs,
                        esc(text),
                        esc(&s.label),
                        scene.as_str(),
                        s.score
                    ),
                ));
                continue;
            };
            let context = s.context.as_deref().unwrap_or(text);
            lines.push((
                s.offset_secs,
                format!(
                    "<li class=\"heard\" data-offset=\"{:.3}\" title=\"Play from here\"><span class=\"time\">{:.1} s</span> \
                     <q>{}</q> <span class=\"muted\">· term <b class=\"term\">{}</b> · dictionary <code class=\"dictionary\">{}</code> · {} {}</span></li>",
                    s.offset_secs,
                    s.offset_secs,
                    mark(context, text),
                    esc(term),
                    esc(&s.label),
                    scene.as_str(),
                    s.score
                ),
            ));
        }
    }
    if lines.is_empty() {
        return String::new();
    }
    lines.sort_by(|a, b| a.0.total_cmp(&b.0));
    let items: Vec<String> = lines.into_iter().map(|(_, line)| line).collect();
    format!(
        "<h2>What was heard</h2><ol id=\"transcript\">{}</ol>",
        items.join("")
    )
}

/// `context`, escaped, with the first occurrence of `words` (case-insensitive) in `<mark>`.
fn mark(context: &str, words: &str) -> String {
    let lower = context.to_lowercase();
    match lower.find(&words.to_lowercase()) {
        Some(at) if !words.is_empty() && lower.len() == context.len() => format!(
            "{}<mark>{}</mark>{}",
            esc(&context[..at]),
            esc(&context[at..at + words.len()]),
            esc(&context[at + words.len()..])
        ),
        _ if context == words => format!("<mark>{}</mark>", esc(context)),
        _ => format!("{} (<mark>{}</mark>)", esc(context), esc(words)),
    }
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
  document.querySelectorAll('#transcript li[data-offset]').forEach(li => {
    li.addEventListener('click', () => {
      upload.currentTime = parseFloat(li.dataset.offset) || 0;
      upload.play().catch(() => {});
    });
  });
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Segment;

    #[test]
    fn what_was_heard_shows_terms_in_context_and_judged_sentences_whole() {
        let segment = |text: &str, term: Option<&str>, label: &str, at: f64| Segment {
            offset_secs: at,
            duration_secs: 1.0,
            score: 95,
            label: label.to_owned(),
            text: Some(text.to_owned()),
            term: term.map(str::to_owned),
            context: Some(format!("so {text} now")),
            ..Segment::default()
        };
        let scenes = [
            (
                Scene::Ads,
                SceneScore {
                    score: 95,
                    label: "held_ads".to_owned(),
                    segments: vec![segment("casino", Some("casino"), "held_ads", 4.0)],
                },
            ),
            (
                Scene::Illegal,
                SceneScore {
                    score: 75,
                    label: "scams".to_owned(),
                    segments: vec![Segment {
                        example: Some("send your bank details to claim your prize".to_owned()),
                        similarity: Some(0.712),
                        ..segment("tell us your card number & win", None, "scams", 7.0)
                    }],
                },
            ),
            (
                Scene::Abuse,
                SceneScore {
                    score: 95,
                    label: "abuse classifier".to_owned(),
                    segments: vec![segment(
                        "Shut up you <moron>",
                        None,
                        "abuse classifier",
                        1.5,
                    )],
                },
            ),
        ]
        .into_iter()
        .collect();
        let html = heard(&scenes);
        let judged = html.find("judged by").expect("the classifier's line");
        let term = html.find("term <b").expect("the term's line");
        assert!(judged < term, "in time order: {html}");
        assert!(
            html.contains("<q><mark>Shut up you &lt;moron&gt;</mark></q>"),
            "{html}"
        );
        assert!(
            html.contains("<b class=\"judge\">abuse classifier</b> · abuse 95"),
            "{html}"
        );
        assert!(html.contains("so <mark>casino</mark> now"), "{html}");
        let means = html.find("· means").expect("the example's line");
        assert!(term < means, "in time order: {html}");
        assert!(
            html.contains(
                "<q>so <mark>tell us your card number &amp; win</mark> now</q> <span class=\"muted\">· means \
                 <q class=\"example\">send your bank details to claim your prize</q> (similarity 0.71) \
                 · dictionary <code class=\"dictionary\">scams</code> · illegal 95"
            ),
            "{html}"
        );
    }
}
