//! Findings: the unit of every verdict mailshift gives.
//!
//! An analyser turns fetched records into [`Finding`]s. Each has a stable `id` that CI
//! configurations name (`spf.lookup-limit`), a [`Severity`], a plain-words message, the evidence
//! behind it (the record or query) and, where something should change, the fix. A domain's
//! [`Status`] is derived from its findings, never stored separately, so the two cannot disagree.

use serde::{Deserialize, Serialize};
use std::fmt;

/// How bad a finding is. Ordered from harmless to worst, so `max()` gives the verdict.
///
/// `Inconclusive` sits between `Warn` and `Fail`: a lookup the check needed could not be
/// answered, so it says nothing about the user's records, but a definite failure elsewhere still
/// outranks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The check passed; the finding reports what was found.
    Pass,
    /// Worth knowing, nothing to fix (an optional record is absent, a policy is inherited).
    Info,
    /// Works today but is fragile or unmonitored.
    Warn,
    /// The check could not be completed because a DNS lookup failed (timeout, SERVFAIL).
    Inconclusive,
    /// Mail will fail authentication or be refused under the bulk-sender rules.
    Fail,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Pass => "pass",
            Severity::Info => "info",
            Severity::Warn => "warn",
            Severity::Inconclusive => "inconclusive",
            Severity::Fail => "fail",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The verdict for one domain: the worst severity among its findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Warn,
    Inconclusive,
    Fail,
    /// The input itself was invalid (kept in the report with `--keep-going`).
    Error,
}

impl Status {
    /// The status of a set of findings. `Info` findings never lower a pass.
    pub fn of(findings: &[Finding]) -> Status {
        match findings.iter().map(|f| f.severity).max() {
            Some(Severity::Fail) => Status::Fail,
            Some(Severity::Inconclusive) => Status::Inconclusive,
            Some(Severity::Warn) => Status::Warn,
            _ => Status::Pass,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Inconclusive => "inconclusive",
            Status::Fail => "fail",
            Status::Error => "error",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One result of one check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable identifier, `family.name` (see the catalog in README).
    pub id: String,
    pub severity: Severity,
    /// What is wrong (or right), in plain words.
    pub message: String,
    /// The record, query or lookup tree behind the finding.
    pub evidence: String,
    /// What to publish or change; `None` when nothing needs to change.
    pub fix: Option<String>,
    /// Structured detail for machines (for SPF, the lookup tree). Omitted when empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
}

impl Finding {
    pub fn new(id: &str, severity: Severity, message: impl Into<String>) -> Self {
        Finding {
            id: id.to_string(),
            severity,
            message: message.into(),
            evidence: String::new(),
            fix: None,
            data: None,
        }
    }

    pub fn evidence(mut self, evidence: impl Into<String>) -> Self {
        self.evidence = evidence.into();
        self
    }

    pub fn fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }

    pub fn data(mut self, data: serde_json::Value) -> Self {
        self.data = Some(data);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(sev: Severity) -> Finding {
        Finding::new("x.y", sev, "m")
    }

    #[test]
    fn status_is_worst_severity_and_fail_outranks_inconclusive() {
        assert_eq!(Status::of(&[]), Status::Pass);
        assert_eq!(
            Status::of(&[f(Severity::Pass), f(Severity::Info)]),
            Status::Pass
        );
        assert_eq!(
            Status::of(&[f(Severity::Info), f(Severity::Warn)]),
            Status::Warn
        );
        assert_eq!(
            Status::of(&[f(Severity::Warn), f(Severity::Inconclusive)]),
            Status::Inconclusive
        );
        assert_eq!(
            Status::of(&[f(Severity::Inconclusive), f(Severity::Fail)]),
            Status::Fail
        );
    }

    #[test]
    fn severity_serialises_lowercase() {
        let json = serde_json::to_string(&f(Severity::Inconclusive)).unwrap();
        assert!(json.contains(r#""severity":"inconclusive""#), "{json}");
        assert!(!json.contains("data"), "empty data must be omitted: {json}");
    }
}
