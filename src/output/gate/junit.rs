//! `--format junit`: JUnit XML with one test case per requirement and domain — and, under the
//! policy requirements, per rule and domain — so a CI report shows exactly what failed where. A
//! failed case is a `failure`; an inconclusive one an `error` (the verdict could not be
//! reached); a rule left to seed tests, metrics or a person is `skipped`. The findings behind a
//! case are its description; informational ones (never counted against the gate) are its
//! output.

use super::{headline, status_word, GateFormatter};
use crate::finding::Severity;
use crate::gate::{GateFinding, GateReport, RequirementResult, RequirementStatus};
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

pub struct JunitFormatter;

fn line(f: &GateFinding) -> String {
    let mut line = format!(
        "[{}] {} {}: {}",
        f.finding.severity, f.domain, f.finding.id, f.finding.message
    );
    if let Some(fix) = &f.finding.fix {
        line.push_str(&format!(" Fix: {fix}"));
    }
    if let Some(o) = &f.overridden {
        line.push_str(&format!(" (override {o})"));
    }
    line
}

/// A test case with `status`; `message` and `description` explain a non-success.
fn case(
    name: String,
    classname: &str,
    status: RequirementStatus,
    message: &str,
    description: &str,
    output: &str,
) -> TestCase {
    let status = match status {
        RequirementStatus::Passed => TestCaseStatus::success(),
        RequirementStatus::Deferred => {
            let mut s = TestCaseStatus::skipped();
            s.set_message(message);
            s
        }
        RequirementStatus::Failed | RequirementStatus::Inconclusive => {
            let failed = status == RequirementStatus::Failed;
            let mut s = TestCaseStatus::non_success(if failed {
                NonSuccessKind::Failure
            } else {
                NonSuccessKind::Error
            });
            s.set_message(message);
            s.set_type(if failed { "closed" } else { "inconclusive" });
            s.set_description(description);
            s
        }
    };
    let mut case = TestCase::new(name, status);
    case.set_classname(classname);
    if !output.is_empty() {
        case.set_system_out(output);
    }
    case
}

/// The cases of a requirement judged from findings: one per domain with findings (every plan
/// domain for `dns`, so a clean domain shows as a passing case).
fn finding_cases(report: &GateReport, r: &RequirementResult, classname: &str) -> Vec<TestCase> {
    let mut domains: Vec<String> = if r.requirement == "dns" {
        report.domains.clone()
    } else {
        Vec::new()
    };
    for f in &r.findings {
        if !domains.iter().any(|d| d == f.subject()) {
            domains.push(f.subject().to_string());
        }
    }
    if domains.is_empty() {
        return vec![case(
            r.requirement.clone(),
            classname,
            r.status,
            &r.summary,
            "",
            &r.summary,
        )];
    }
    domains
        .iter()
        .map(|domain| {
            let mine: Vec<&GateFinding> = r
                .findings
                .iter()
                .filter(|f| f.subject() == domain)
                .collect();
            let worst = mine.iter().map(|f| f.finding.severity).max();
            let status = match worst {
                Some(Severity::Fail) => RequirementStatus::Failed,
                Some(Severity::Inconclusive) => RequirementStatus::Inconclusive,
                _ => RequirementStatus::Passed,
            };
            let bad: Vec<String> = mine
                .iter()
                .filter(|f| f.finding.severity >= Severity::Warn || f.overridden.is_some())
                .map(|f| line(f))
                .collect();
            let info: Vec<String> = mine
                .iter()
                .filter(|f| f.finding.severity == Severity::Info)
                .map(|f| line(f))
                .collect();
            let failing: Vec<&str> = mine
                .iter()
                .filter(|f| f.finding.severity >= Severity::Inconclusive)
                .map(|f| f.finding.id.as_str())
                .collect();
            case(
                format!("{}: {domain}", r.requirement),
                classname,
                status,
                &format!("{domain}: {}", failing.join(", ")),
                &bad.join("\n"),
                &info.join("\n"),
            )
        })
        .collect()
}

/// The cases of a policy requirement: one per rule and domain it was judged for; one per rule
/// when it was not judged per domain (deferred, unknown).
fn rule_cases(r: &RequirementResult, classname: &str) -> Vec<TestCase> {
    let mut cases = Vec::new();
    for rule in &r.rules {
        let id = format!("{}/{}", rule.policy, rule.rule);
        if rule.domains.is_empty() {
            cases.push(case(
                format!("{id}: {}", rule.title),
                classname,
                rule.status,
                &rule.detail,
                &rule.detail,
                "",
            ));
            continue;
        }
        for d in &rule.domains {
            let behind: Vec<String> = r
                .findings
                .iter()
                .filter(|f| f.subject() == d.domain)
                .map(line)
                .collect();
            cases.push(case(
                format!("{id}: {}", d.domain),
                classname,
                d.status,
                &format!("{} {}: {}", d.domain, status_word(d.status), d.detail),
                &behind.join("\n"),
                &d.detail,
            ));
        }
    }
    cases
}

impl GateFormatter for JunitFormatter {
    fn format(&self, report: &GateReport) -> String {
        let mut junit = Report::new(format!("mailshift gate: {}", report.plan));
        let mut suite = TestSuite::new(format!("stage {}", report.stage));
        suite.add_property((
            "decision",
            format!("{:?}", report.decision).to_lowercase().as_str(),
        ));
        suite.add_property(("plan_file", report.plan_file.as_str()));
        for r in &report.requirements {
            let classname = format!("mailshift.gate.{}.{}", report.stage, r.requirement);
            let cases = if !r.rules.is_empty() {
                rule_cases(r, &classname)
            } else if matches!(r.requirement.as_str(), "dns" | "coexistence") {
                finding_cases(report, r, &classname)
            } else {
                let description: Vec<String> = r.findings.iter().map(line).collect();
                vec![case(
                    r.requirement.clone(),
                    &classname,
                    r.status,
                    &r.summary,
                    &description.join("\n"),
                    &r.summary,
                )]
            };
            for c in cases {
                suite.add_test_case(c);
            }
        }
        suite.set_system_out(headline(report));
        junit.add_test_suite(suite);
        junit
            .to_string()
            .unwrap_or_else(|e| format!("<!-- cannot write JUnit XML: {e} -->\n"))
    }
}
