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
    #[serde(default)]
    pub fix: Option<Fix>,
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
        let records = self.fix.take().map(|f| f.records).unwrap_or_default();
        self.fix = Some(Fix {
            text: fix.into(),
            records,
        });
        self
    }

    /// The exact DNS changes that carry out the fix (set after [`Finding::fix`]).
    pub fn records(mut self, records: Vec<RecordChange>) -> Self {
        if records.is_empty() {
            return self;
        }
        match &mut self.fix {
            Some(fix) => fix.records = records,
            None => {
                self.fix = Some(Fix {
                    text: records
                        .iter()
                        .map(RecordChange::to_string)
                        .collect::<Vec<_>>()
                        .join("; "),
                    records,
                })
            }
        }
        self
    }

    /// The fix in words, if any.
    pub fn fix_text(&self) -> Option<&str> {
        self.fix.as_ref().map(|f| f.text.as_str())
    }

    pub fn data(mut self, data: serde_json::Value) -> Self {
        self.data = Some(data);
        self
    }
}

/// What to change: in words, and where mailshift can know it exactly, as DNS changes a
/// DNS-as-code tool can apply (`fix.records` in JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "FixWire")]
pub struct Fix {
    pub text: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub records: Vec<RecordChange>,
}

/// Reports written before fixes carried records had the fix as a bare string; both are read.
#[derive(Deserialize)]
#[serde(untagged)]
enum FixWire {
    Text(String),
    Full {
        text: String,
        #[serde(default)]
        records: Vec<RecordChange>,
    },
}

impl From<FixWire> for Fix {
    fn from(wire: FixWire) -> Fix {
        match wire {
            FixWire::Text(text) => Fix {
                text,
                records: Vec::new(),
            },
            FixWire::Full { text, records } => Fix { text, records },
        }
    }
}

impl From<String> for Fix {
    fn from(text: String) -> Fix {
        Fix {
            text,
            records: Vec::new(),
        }
    }
}

impl From<&str> for Fix {
    fn from(text: &str) -> Fix {
        Fix::from(text.to_string())
    }
}

impl fmt::Display for Fix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// One DNS change: add a record, replace one (the `old` value by `value`), or remove one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RecordChange {
    pub action: RecordAction,
    /// The owner name, fully qualified, without the trailing dot.
    pub name: String,
    /// `TXT`, `CNAME`, `MX`, ….
    #[serde(rename = "type")]
    pub rtype: String,
    /// The record data in zone-file presentation, unquoted (`v=spf1 -all`, `0 .`); for
    /// `remove`, the value removed.
    pub value: String,
    /// For `replace`, the value replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordAction {
    Add,
    Replace,
    Remove,
}

impl RecordChange {
    pub fn add(name: impl fmt::Display, rtype: &str, value: impl Into<String>) -> Self {
        RecordChange {
            action: RecordAction::Add,
            name: name.to_string(),
            rtype: rtype.to_string(),
            value: value.into(),
            old: None,
        }
    }

    pub fn replace(
        name: impl fmt::Display,
        rtype: &str,
        old: impl Into<String>,
        value: impl Into<String>,
    ) -> Self {
        RecordChange {
            action: RecordAction::Replace,
            name: name.to_string(),
            rtype: rtype.to_string(),
            value: value.into(),
            old: Some(old.into()),
        }
    }

    pub fn remove(name: impl fmt::Display, rtype: &str, value: impl Into<String>) -> Self {
        RecordChange {
            action: RecordAction::Remove,
            name: name.to_string(),
            rtype: rtype.to_string(),
            value: value.into(),
            old: None,
        }
    }
}

impl fmt::Display for RecordChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.action, &self.old) {
            (RecordAction::Replace, Some(old)) => write!(
                f,
                "replace the {} record of {} (`{old}`) by `{}`",
                self.rtype, self.name, self.value
            ),
            (RecordAction::Remove, _) => write!(
                f,
                "remove the {} record `{}` of {}",
                self.rtype, self.value, self.name
            ),
            _ => write!(f, "publish {} {} `{}`", self.name, self.rtype, self.value),
        }
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
    fn a_fix_serialises_with_its_records_and_reads_the_older_bare_string() {
        let f = Finding::new("spf.missing", Severity::Fail, "m")
            .fix("Publish it.")
            .records(vec![RecordChange::add("example.com", "TXT", "v=spf1 -all")]);
        let json = serde_json::to_value(&f).unwrap();
        assert_eq!(json["fix"]["text"], "Publish it.");
        assert_eq!(json["fix"]["records"][0]["action"], "add");
        assert_eq!(json["fix"]["records"][0]["type"], "TXT");
        assert_eq!(json["fix"]["records"][0]["value"], "v=spf1 -all");
        assert_eq!(serde_json::from_value::<Finding>(json).unwrap(), f);
        let old = serde_json::json!({"id": "a.b", "severity": "warn", "message": "m", "evidence": "", "fix": "Do it."});
        let read: Finding = serde_json::from_value(old).unwrap();
        assert_eq!(read.fix_text(), Some("Do it."));
        let none = serde_json::json!({"id": "a.b", "severity": "pass", "message": "m", "evidence": "", "fix": null});
        assert_eq!(serde_json::from_value::<Finding>(none).unwrap().fix, None);
    }

    #[test]
    fn severity_serialises_lowercase() {
        let json = serde_json::to_string(&f(Severity::Inconclusive)).unwrap();
        assert!(json.contains(r#""severity":"inconclusive""#), "{json}");
        assert!(!json.contains("data"), "empty data must be omitted: {json}");
    }
}
