//! `--format junit`: JUnit XML with one test case per requirement, so CI systems show the gate
//! as a test report. A failed requirement is a `failure`; an inconclusive one an `error` (the
//! verdict could not be reached); the findings behind it are the failure's description.

use super::{headline, GateFormatter};
use crate::finding::Severity;
use crate::gate::{GateReport, RequirementStatus};
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

pub struct JunitFormatter;

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
            let mut description: Vec<String> = r
                .findings
                .iter()
                .filter(|f| f.finding.severity >= Severity::Warn || f.overridden.is_some())
                .map(|f| {
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
                })
                .collect();
            description.extend(
                r.rules
                    .iter()
                    .filter(|rule| {
                        matches!(
                            rule.status,
                            RequirementStatus::Failed | RequirementStatus::Inconclusive
                        )
                    })
                    .map(|rule| {
                        format!(
                            "rule {}/{} {:?}: {}",
                            rule.policy, rule.rule, rule.status, rule.detail
                        )
                    }),
            );
            let status = match r.status {
                RequirementStatus::Passed | RequirementStatus::Deferred => {
                    TestCaseStatus::success()
                }
                RequirementStatus::Failed | RequirementStatus::Inconclusive => {
                    let kind = if r.status == RequirementStatus::Failed {
                        NonSuccessKind::Failure
                    } else {
                        NonSuccessKind::Error
                    };
                    let mut s = TestCaseStatus::non_success(kind);
                    s.set_message(r.summary.as_str());
                    s.set_type(if r.status == RequirementStatus::Failed {
                        "closed"
                    } else {
                        "inconclusive"
                    });
                    s.set_description(description.join("\n"));
                    s
                }
            };
            let mut case = TestCase::new(r.requirement.as_str(), status);
            case.set_classname(format!("mailshift.gate.{}", report.stage));
            case.set_system_out(r.summary.as_str());
            suite.add_test_case(case);
        }
        suite.set_system_out(headline(report));
        junit.add_test_suite(suite);
        junit
            .to_string()
            .unwrap_or_else(|e| format!("<!-- cannot write JUnit XML: {e} -->\n"))
    }
}
