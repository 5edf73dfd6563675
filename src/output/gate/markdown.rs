//! `--format markdown`: the decision, a table of requirements, and what is behind each one
//! that did not pass — for merge-request comments, wikis and the GitHub step summary.

use super::{decision_word, status_word, GateFormatter};
use crate::finding::Severity;
use crate::gate::{Decision, GateReport};

pub struct MarkdownFormatter;

/// Escapes table-breaking characters.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', "<br>")
}

impl GateFormatter for MarkdownFormatter {
    fn format(&self, report: &GateReport) -> String {
        let icon = match report.decision {
            Decision::Open => "✅",
            Decision::Closed => "❌",
            Decision::Inconclusive => "❔",
        };
        let mut out = format!(
            "## {icon} Gate `{}` ({} of {}): {}\n\nPlan: **{}** (`{}`). {}\n\n",
            report.stage,
            report.stage_number,
            report.stages,
            decision_word(report.decision),
            report.plan,
            report.plan_file,
            super::stage_sentence(report)
        );
        for note in super::history_notes(report) {
            out.push_str(&format!("{note}\n\n"));
        }
        out.push_str("| | Requirement | Result |\n|---|---|---|\n");
        for r in &report.requirements {
            out.push_str(&format!(
                "| {} | `{}` | {} |\n",
                status_word(r.status),
                r.requirement,
                cell(&r.summary)
            ));
        }
        for r in &report.requirements {
            let behind: Vec<_> = r
                .findings
                .iter()
                .filter(|f| f.finding.severity >= Severity::Info || f.overridden.is_some())
                .collect();
            let failing_rules: Vec<_> = r
                .rules
                .iter()
                .filter(|x| x.status != crate::gate::RequirementStatus::Passed)
                .collect();
            if behind.is_empty() && failing_rules.is_empty() {
                continue;
            }
            out.push_str(&format!("\n### `{}`\n\n", r.requirement));
            for rule in failing_rules {
                out.push_str(&format!(
                    "- rule **{}/{}** ({}): {} — {}\n",
                    rule.policy,
                    rule.rule,
                    status_word(rule.status),
                    cell(&rule.title),
                    cell(&rule.detail)
                ));
            }
            for f in behind {
                out.push_str(&format!(
                    "- **{}** `{}` {}: {}",
                    f.finding.severity, f.finding.id, f.domain, f.finding.message
                ));
                if let Some(fix) = &f.finding.fix {
                    out.push_str(&format!(
                        "  \n  Fix: {}",
                        crate::output::fix_text(fix).replace('\n', "  \n  ")
                    ));
                }
                if let Some(o) = &f.overridden {
                    out.push_str(&format!("  \n  Override: {o}"));
                }
                out.push('\n');
            }
        }
        out.push_str(&format!(
            "\n<sub>mailshift · {} DNS queries · {} ms</sub>\n",
            report.queries, report.elapsed_ms
        ));
        out
    }
}
