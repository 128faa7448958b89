//! The history of results with COS's filters, its CSV, and the blocked objects.

use std::fmt::Write as _;

use super::{esc, page, q};
use crate::clock;
use crate::console::auth::User;
use crate::state::review::ResultRow;

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
            let mut scores = scores.join(", ");
            if !row.terms.is_empty() {
                let _ = write!(
                    scores,
                    " · heard <b class=\"term\">{}</b>",
                    esc(&row.terms.join(", "))
                );
            }
            let _ = write!(
                body,
                "<tr><td>{}</td><td>s3://{}/{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                clock::display(row.judged_at),
                esc(&row.bucket),
                esc(&row.key),
                esc(&row.rule),
                result_name(row.result, row.code),
                row.forbidden_status,
                scores,
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
        "time,bucket,key,rule,source,code,result,forbidden_status,porn_score,ads_score,illegal_score,abuse_score,labels,terms,review,trace_id\r\n",
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
            field(&row.terms.join("; ")),
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
            terms: vec!["casino".into()],
        };
        let text = csv(&[row]);
        let line = text.lines().nth(1).expect("a row");
        assert!(line.contains("\"'=HYPERLINK(\"\"x\"\")\""), "{line}");
        assert!(
            line.contains(",12,,,,\"a \"\"b\"\"\",\"casino\","),
            "{line}"
        );
    }
}
