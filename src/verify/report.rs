//! A `mailshift verify` run and its two renderings: a table (one row per message, then the
//! findings of every message that did not pass) and JSON
//! (`{"messages":[{"source":…,"verdict":{…}}],"summary":{…}}`).

use super::MessageVerdict;
use crate::dns::DnsStats;
use crate::finding::{Severity, Status};
use crate::output::{wrap, Style};
use comfy_table::{Attribute, Cell, Color};
use serde::Serialize;

/// One verified message.
#[derive(Debug, Clone, Serialize)]
pub struct VerifiedMessage {
    /// The file, or `file#N` for the N-th message of an mbox.
    pub source: String,
    pub verdict: MessageVerdict,
}

/// The totals of a run.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct VerifySummary {
    pub messages: usize,
    pub pass: usize,
    pub warn: usize,
    pub fail: usize,
    pub inconclusive: usize,
    /// Inputs that are not messages.
    pub error: usize,
    /// DNS questions sent to the network.
    pub queries: u64,
    /// Questions answered from `--zone` files.
    pub zone_answers: u64,
    pub elapsed_ms: u64,
}

impl VerifySummary {
    pub fn add(&mut self, status: Status) {
        self.messages += 1;
        match status {
            Status::Pass => self.pass += 1,
            Status::Warn => self.warn += 1,
            Status::Fail => self.fail += 1,
            Status::Inconclusive => self.inconclusive += 1,
            Status::Error => self.error += 1,
        }
    }

    pub fn with_dns(mut self, stats: DnsStats) -> Self {
        self.queries = stats.queries;
        self.zone_answers = stats.zone_answers;
        self
    }

    /// The same totals in `check`'s terms, for the exit status.
    pub fn as_check_summary(&self) -> crate::engine::Summary {
        crate::engine::Summary {
            domains: self.messages,
            pass: self.pass,
            warn: self.warn,
            fail: self.fail,
            inconclusive: self.inconclusive,
            invalid: self.error,
            queries: self.queries,
            zone_answers: self.zone_answers,
            elapsed_ms: self.elapsed_ms,
            shard: None,
            merged: None,
            skipped: Vec::new(),
        }
    }
}

/// A whole run.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyRun {
    pub messages: Vec<VerifiedMessage>,
    pub summary: VerifySummary,
}

/// The run as pretty JSON.
pub fn json(run: &VerifyRun) -> String {
    crate::output::pretty_json(run)
}

/// The indent of a finding's evidence and fix under its message.
const DETAIL: &str = "       ";

fn paint(text: &str, color: Option<Color>, on: bool) -> Cell {
    let cell = crate::output::cell(text);
    match (on, color) {
        (true, Some(c)) => cell.fg(c).add_attribute(Attribute::Bold),
        _ => cell,
    }
}

fn result_color(result: &str) -> Option<Color> {
    match result {
        "pass" => Some(Color::Green),
        "fail" | "permerror" => Some(Color::Red),
        "softfail" | "neutral" => Some(Color::Yellow),
        "temperror" => Some(Color::Magenta),
        _ => None,
    }
}

fn status_cell(status: Status, on: bool) -> Cell {
    let (text, color) = match status {
        Status::Pass => ("PASS", Color::Green),
        Status::Warn => ("WARN", Color::Yellow),
        Status::Inconclusive => ("INCONCLUSIVE", Color::Magenta),
        Status::Fail => ("FAIL", Color::Red),
        Status::Error => ("NOT A MESSAGE", Color::Red),
    };
    paint(text, Some(color), on)
}

fn severity_text(severity: Severity) -> &'static str {
    match severity {
        Severity::Pass => "PASS",
        Severity::Info => "INFO",
        Severity::Warn => "WARN",
        Severity::Inconclusive => "????",
        Severity::Fail => "FAIL",
    }
}

/// The DKIM column: `pass example.com` per signature (`none` without).
fn dkim_cell(v: &MessageVerdict) -> (String, Option<Color>) {
    if v.dkim.is_empty() {
        return ("none".into(), Some(Color::Red));
    }
    let text = v
        .dkim
        .iter()
        .map(|d| {
            format!(
                "{} {}{}",
                d.result,
                d.domain.as_deref().unwrap_or("?"),
                if d.result == "pass" && d.aligned == Some(true) {
                    " ✓"
                } else {
                    ""
                }
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    let color = if v.dkim.iter().any(|d| d.result == "pass") {
        Some(Color::Green)
    } else {
        v.dkim.first().and_then(|d| result_color(&d.result))
    };
    (text, color)
}

/// The run as a table; `style.verbose` shows the findings of passing messages too.
pub fn table(run: &VerifyRun, style: Style) -> String {
    let on = style.color;
    let mut out = String::new();
    let mut table = crate::output::new_table(style.color, style.width);
    table.set_header(vec![
        "Message",
        "From",
        "SPF",
        "DKIM",
        "DMARC",
        "ARC",
        "One-click",
        "Receivers said",
        "Status",
    ]);
    for m in &run.messages {
        let v = &m.verdict;
        if v.status == Status::Error {
            table.add_row(vec![
                crate::output::cell(&m.source),
                crate::output::cell(v.error.as_deref().unwrap_or("not a message")),
                crate::output::cell(""),
                crate::output::cell(""),
                crate::output::cell(""),
                crate::output::cell(""),
                crate::output::cell(""),
                crate::output::cell(""),
                status_cell(v.status, on),
            ]);
            continue;
        }
        let spf = match (&v.spf.domain, v.spf.result.as_str()) {
            (None, "none") => "not evaluated".to_string(),
            (Some(d), r) => format!(
                "{r} {d}{}",
                if r == "pass" && v.spf.aligned == Some(true) {
                    " ✓"
                } else {
                    ""
                }
            ),
            (None, r) => r.to_string(),
        };
        let (dkim, dkim_color) = dkim_cell(v);
        let dmarc = match &v.dmarc_policy {
            Some(p) if v.dmarc.result != "pass" => format!("{} (p={p})", v.dmarc.result),
            _ => v.dmarc.result.clone(),
        };
        let receivers = v
            .receivers
            .iter()
            .map(|r| r.summary())
            .collect::<Vec<_>>()
            .join("\n");
        let one_click = if v.one_click_unsubscribe { "yes" } else { "no" };
        table.add_row(vec![
            crate::output::cell(&m.source),
            crate::output::cell(v.from.as_deref().unwrap_or("")),
            paint(&spf, result_color(&v.spf.result), on),
            paint(&dkim, dkim_color, on),
            paint(&dmarc, result_color(&v.dmarc.result), on),
            paint(&v.arc.result, result_color(&v.arc.result), on),
            paint(
                one_click,
                Some(if v.one_click_unsubscribe {
                    Color::Green
                } else {
                    Color::Yellow
                }),
                on,
            ),
            crate::output::cell(if receivers.is_empty() {
                "—"
            } else {
                &receivers
            }),
            status_cell(v.status, on),
        ]);
    }
    out.push_str(&table.to_string());
    out.push('\n');

    // Details: every message that did not pass (all with --verbose).
    for m in &run.messages {
        let v = &m.verdict;
        if v.status == Status::Pass && !style.verbose {
            continue;
        }
        out.push('\n');
        // Everything below quotes the message or the DNS: escaped, it cannot drive the terminal.
        let safe = crate::output::escape::text;
        // Each line wrapped to the tables' width, its continuation under its text.
        let mut line = |text: String, indent: &str| {
            out.push_str(&wrap(&text, style.width, indent));
            out.push('\n');
        };
        line(
            format!(
                "{}  {}",
                safe(&m.source),
                status_cell(v.status, false).content()
            ),
            "  ",
        );
        if let Some(subject) = &v.subject {
            line(format!("  Subject: {}", safe(subject)), "    ");
        }
        let mut findings: Vec<_> = v
            .findings
            .iter()
            .filter(|f| style.verbose || f.severity >= Severity::Warn)
            .collect();
        let spf_shown = findings.iter().any(|f| f.id == "msg.spf");
        findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
        for f in findings {
            line(
                format!(
                    "  {} {}: {}",
                    severity_text(f.severity),
                    f.id,
                    safe(&f.message)
                ),
                DETAIL,
            );
            for evidence in f.evidence.lines() {
                line(format!("{DETAIL}{}", safe(evidence)), DETAIL);
            }
            if let Some(fix) = &f.fix {
                line(format!("{DETAIL}Fix: {}", safe(&fix.text)), DETAIL);
            }
        }
        // Where the SPF inputs came from, when the SPF finding (whose evidence says so) is not
        // shown.
        if !spf_shown && v.status != Status::Error {
            line(format!("  SPF: {}", safe(&v.spf.detail)), DETAIL);
        }
    }

    let s = &run.summary;
    let line = crate::output::SummaryLine {
        count: s.messages,
        noun: "message",
        statuses: [s.pass, s.warn, s.fail, s.inconclusive],
        unusable: (s.error, "not messages"),
        queries: s.queries,
        zone_answers: s.zone_answers,
        elapsed_ms: s.elapsed_ms,
    };
    out.push('\n');
    out.push_str(&wrap(&line.to_string(), style.width, ""));
    out.push('\n');
    out
}
