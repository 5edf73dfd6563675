//! `--format github`: GitHub Actions workflow commands. Each failing finding becomes an error
//! annotation, each warning and inconclusive one a warning, the decision a notice; the Markdown
//! report is appended to the job's step summary when `$GITHUB_STEP_SUMMARY` is set (by
//! `mailshift gate`, not by this formatter, which stays pure).

use super::{headline, GateFormatter};
use crate::finding::Severity;
use crate::gate::{Decision, GateReport, RequirementStatus};

pub struct GithubFormatter;

/// Escapes a workflow-command message (GitHub's rules: `%`, CR, LF).
fn data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a workflow-command property (also `:` and `,`).
fn property(text: &str) -> String {
    data(text).replace(':', "%3A").replace(',', "%2C")
}

impl GateFormatter for GithubFormatter {
    fn format(&self, report: &GateReport) -> String {
        let mut out = String::new();
        let mut seen: Vec<(String, String, String)> = Vec::new();
        for r in &report.requirements {
            for f in &r.findings {
                let level = match f.finding.severity {
                    Severity::Fail => "error",
                    Severity::Warn | Severity::Inconclusive => "warning",
                    // Never counted against the gate, but advice worth seeing (the cutover's
                    // "remove the old include").
                    Severity::Info => "notice",
                    Severity::Pass => continue,
                };
                let key = (
                    f.domain.clone(),
                    f.finding.id.clone(),
                    f.finding.message.clone(),
                );
                if seen.contains(&key) {
                    continue;
                }
                seen.push(key);
                let mut message = f.finding.message.clone();
                if let Some(fix) = &f.finding.fix {
                    message.push_str(&format!("\nFix: {}", crate::output::fix_text(fix)));
                }
                out.push_str(&format!(
                    "::{level} file={},title={}::{}\n",
                    property(&report.plan_file),
                    property(&format!(
                        "{} {} ({})",
                        f.finding.id, f.domain, r.requirement
                    )),
                    data(&message)
                ));
            }
            if matches!(
                r.status,
                RequirementStatus::Failed | RequirementStatus::Inconclusive
            ) && r.findings.is_empty()
            {
                let level = if r.status == RequirementStatus::Failed {
                    "error"
                } else {
                    "warning"
                };
                out.push_str(&format!(
                    "::{level} file={},title={}::{}\n",
                    property(&report.plan_file),
                    property(&format!("gate requirement {}", r.requirement)),
                    data(&r.summary)
                ));
            }
        }
        // Drift never decides the gate; a weakening is worth a warning in the checks view.
        for f in report.drift.iter().flat_map(|d| d.findings.iter()) {
            let level = match f.finding.severity {
                Severity::Fail | Severity::Warn => "warning",
                _ => "notice",
            };
            out.push_str(&format!(
                "::{level} file={},title={}::{}\n",
                property(&report.plan_file),
                property(&format!(
                    "{} {} (since the previous run)",
                    f.finding.id, f.domain
                )),
                data(&f.finding.message)
            ));
        }
        let level = match report.decision {
            Decision::Open => "notice",
            Decision::Closed => "error",
            Decision::Inconclusive => "warning",
        };
        out.push_str(&format!(
            "::{level} title=mailshift gate::{}\n",
            data(&headline(report))
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn escaping_follows_githubs_rules() {
        assert_eq!(super::data("50% done\nnext"), "50%25 done%0Anext");
        assert_eq!(super::property("a:b,c"), "a%3Ab%2Cc");
    }
}
