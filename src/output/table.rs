//! `--format table`: per domain, its status and a table of findings, worst first; then totals.

use super::{RunFormatter, Style};
use crate::engine::{CheckRun, DomainReport};
use crate::finding::{Severity, Status};
use comfy_table::{Attribute, Cell, Color};

pub struct TableFormatter {
    pub style: Style,
}

fn severity_cell(severity: Severity, color: bool) -> Cell {
    let (text, fg) = match severity {
        Severity::Pass => ("PASS", Color::Green),
        Severity::Info => ("INFO", Color::Blue),
        Severity::Warn => ("WARN", Color::Yellow),
        Severity::Inconclusive => ("????", Color::Magenta),
        Severity::Fail => ("FAIL", Color::Red),
    };
    let cell = Cell::new(text);
    if color {
        cell.fg(fg).add_attribute(Attribute::Bold)
    } else {
        cell
    }
}

fn status_text(status: Status, color: bool) -> String {
    let (text, code) = match status {
        Status::Pass => ("PASS", "32"),
        Status::Warn => ("WARN", "33"),
        Status::Inconclusive => ("INCONCLUSIVE", "35"),
        Status::Fail => ("FAIL", "31"),
        Status::Error => ("INVALID INPUT", "31"),
    };
    if color {
        format!("\x1b[1;{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

impl TableFormatter {
    fn domain(&self, report: &DomainReport, out: &mut String) {
        let name = match &report.unicode {
            Some(u) => format!("{} ({u})", report.domain),
            None => report.domain.clone(),
        };
        let bold = |s: &str| {
            if self.style.color {
                format!("\x1b[1m{s}\x1b[0m")
            } else {
                s.to_string()
            }
        };
        let width = self.style.width;
        let head = format!(
            "{}  {}",
            bold(&super::escape::text(&name)),
            status_text(report.status, self.style.color)
        );
        out.push_str(&super::wrap(&head, width, "  "));
        out.push('\n');
        if let Some(error) = &report.error {
            let error = format!("  {}", super::escape::text(error));
            out.push_str(&super::wrap(&error, width, "  "));
            out.push_str("\n\n");
            return;
        }
        let mut table = super::new_table(self.style.color, width);
        table.set_header(vec!["", "Check", "Finding"]);
        let mut findings: Vec<_> = report.findings.iter().collect();
        findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
        for f in findings {
            let mut text = f.message.clone();
            if let Some(fix) = &f.fix {
                text.push_str(&format!("\nFix: {}", super::fix_text(fix)));
            }
            let show_evidence =
                !f.evidence.is_empty() && (self.style.verbose || f.severity >= Severity::Warn);
            if show_evidence {
                text.push_str(&format!("\nEvidence:\n{}", f.evidence));
            }
            table.add_row(vec![
                severity_cell(f.severity, self.style.color),
                crate::output::cell(&f.id),
                crate::output::cell(text),
            ]);
        }
        out.push_str(&table.to_string());
        out.push_str("\n\n");
    }
}

impl RunFormatter for TableFormatter {
    fn format(&self, run: &CheckRun) -> String {
        let mut out = String::new();
        for report in &run.domains {
            self.domain(report, &mut out);
        }
        let s = &run.summary;
        let line = super::SummaryLine {
            count: s.domains,
            noun: "domain",
            statuses: [s.pass, s.warn, s.fail, s.inconclusive],
            unusable: (s.invalid, "invalid"),
            queries: s.queries,
            zone_answers: s.zone_answers,
            elapsed_ms: s.elapsed_ms,
        };
        out.push_str(&super::wrap(&line.to_string(), self.style.width, ""));
        out.push('\n');
        if !s.skipped.is_empty() {
            let ids: Vec<&str> = s.skipped.iter().map(|f| f.id()).collect();
            let note = format!(
                "Not checked: {} (left out with --skip, or by a domains file without --with). \
                 No finding about them says nothing of the domains.",
                ids.join(", ")
            );
            out.push_str(&super::wrap(&note, self.style.width, ""));
            out.push('\n');
        }
        out
    }
}
