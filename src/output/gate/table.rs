//! `--format table`: the decision, a row per requirement, then what is behind each one that
//! did not pass.

use super::{decision_word, headline, status_word, GateFormatter};
use crate::finding::Severity;
use crate::gate::{Decision, GateReport, RequirementStatus};
use crate::output::{escape, wrap, Style};
use comfy_table::{Cell, Color, Table};

pub struct TableFormatter {
    pub style: Style,
}

impl TableFormatter {
    fn paint(&self, text: &str, color: Color) -> Cell {
        let cell = Cell::new(text);
        if self.style.color {
            cell.fg(color)
        } else {
            cell
        }
    }

    fn table(&self) -> Table {
        crate::output::new_table(self.style.color, self.style.width)
    }

    /// A line outside the tables, wrapped like them.
    fn line(&self, text: &str) -> String {
        wrap(text, self.style.width, "  ")
    }
}

fn status_color(s: RequirementStatus) -> Color {
    match s {
        RequirementStatus::Passed => Color::Green,
        RequirementStatus::Deferred => Color::Blue,
        RequirementStatus::Inconclusive => Color::Magenta,
        RequirementStatus::Failed => Color::Red,
    }
}

impl GateFormatter for TableFormatter {
    fn format(&self, report: &GateReport) -> String {
        let mut out = String::new();
        let word = decision_word(report.decision);
        let head = headline(report).replace(word, "");
        let code = match report.decision {
            Decision::Open => "32",
            Decision::Closed => "31",
            Decision::Inconclusive => "35",
        };
        if self.style.color {
            out.push_str(&self.line(&format!("{head}\x1b[1;{code}m{word}\x1b[0m")));
        } else {
            out.push_str(&self.line(&format!("{head}{word}")));
        }
        out.push('\n');
        out.push_str(&self.line(super::stage_sentence(report)));
        out.push('\n');
        for note in super::history_notes(report) {
            out.push_str(&self.line(&note));
            out.push('\n');
        }
        let mut table = self.table();
        table.set_header(vec!["", "Requirement", "Result"]);
        for r in &report.requirements {
            table.add_row(vec![
                self.paint(status_word(r.status), status_color(r.status)),
                crate::output::cell(&r.requirement),
                crate::output::cell(&r.summary),
            ]);
        }
        out.push_str(&table.to_string());
        out.push('\n');
        for r in &report.requirements {
            if !r.rules.is_empty() {
                let mut rules = self.table();
                rules.set_header(vec!["", "Rule", "Detail"]);
                for rule in &r.rules {
                    rules.add_row(vec![
                        self.paint(status_word(rule.status), status_color(rule.status)),
                        crate::output::cell(format!(
                            "{}/{}: {}",
                            rule.policy, rule.rule, rule.title
                        )),
                        crate::output::cell(&rule.detail),
                    ]);
                }
                let title = self.line(&format!("{}:", escape::text(&r.requirement)));
                out.push_str(&format!("\n{title}\n{rules}\n"));
            }
            let behind: Vec<_> = r
                .findings
                .iter()
                .filter(|f| f.finding.severity >= Severity::Info || f.overridden.is_some())
                .collect();
            if behind.is_empty() {
                continue;
            }
            let mut details = self.table();
            details.set_header(vec!["", "Domain", "Check", "Finding"]);
            for f in behind {
                let mut text = f.finding.message.clone();
                if let Some(fix) = &f.finding.fix {
                    text.push_str(&format!("\nFix: {}", crate::output::fix_text(fix)));
                }
                if let Some(o) = &f.overridden {
                    text.push_str(&format!("\nOverride: {o}"));
                }
                let color = match f.finding.severity {
                    Severity::Fail => Color::Red,
                    Severity::Inconclusive => Color::Magenta,
                    Severity::Warn => Color::Yellow,
                    _ => Color::Blue,
                };
                details.add_row(vec![
                    self.paint(f.finding.severity.as_str(), color),
                    crate::output::cell(&f.domain),
                    crate::output::cell(&f.finding.id),
                    crate::output::cell(text),
                ]);
            }
            let title = self.line(&format!("Behind `{}`:", escape::text(&r.requirement)));
            out.push_str(&format!("\n{title}\n{details}\n"));
        }
        out.push('\n');
        out.push_str(&self.line(&format!(
            "{} DNS queries · {:.2} s",
            report.queries,
            report.elapsed_ms as f64 / 1000.0
        )));
        out.push('\n');
        out
    }
}
