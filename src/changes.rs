//! The DNS changes a stage needs (`mailshift plan records`): every exact record the stage's
//! checks propose, merged per record, with the findings that ask for each — ready for review or
//! for a DNS-as-code tool — and the fixes mailshift can only put in words.
//!
//! The checks are the gate's own (the DNS checks of every plan domain and the migration checks,
//! with the plan's overrides applied), so the changes are exactly what stands between the stage
//! and an open gate, plus the advice the gate shows as information (the cutover's "remove the
//! old include"). A finding the plan ignores asks for nothing.

use crate::catalog::Catalog;
use crate::dns::Resolver;
use crate::finding::{RecordAction, RecordChange, Severity};
use crate::fixes::{merge, zone_fragment, Conflict};
use crate::gate::{gather, GateFinding};
use crate::plan::Plan;
use crate::plan::Requirement;
use serde::Serialize;

/// Why a change is asked for: one finding.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Reason {
    pub domain: String,
    pub id: String,
    pub severity: Severity,
}

/// One change to publish, with the findings that ask for it.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedChange {
    #[serde(flatten)]
    pub change: RecordChange,
    pub because: Vec<Reason>,
}

/// A fix mailshift can only give in words (a value from the platform's console, a choice).
#[derive(Debug, Clone, Serialize)]
pub struct WordsOnly {
    pub domain: String,
    pub id: String,
    pub severity: Severity,
    pub fix: String,
}

/// Two findings want different values for one record.
#[derive(Debug, Clone, Serialize)]
pub struct ConflictingChange {
    pub name: String,
    #[serde(rename = "type")]
    pub rtype: String,
    pub values: Vec<String>,
}

impl From<Conflict> for ConflictingChange {
    fn from(c: Conflict) -> Self {
        ConflictingChange {
            name: c.name,
            rtype: c.rtype,
            values: c.values,
        }
    }
}

/// Everything one stage needs changed in DNS.
#[derive(Debug, Clone, Serialize)]
pub struct StageChanges {
    pub plan: String,
    pub stage: String,
    pub changes: Vec<PlannedChange>,
    pub conflicts: Vec<ConflictingChange>,
    pub words_only: Vec<WordsOnly>,
    /// Checks that could not be completed (DNS errors): their changes, if any, are unknown.
    pub inconclusive: Vec<Reason>,
}

impl StageChanges {
    /// True when nothing needs to change and nothing was left undecided.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.words_only.is_empty() && self.conflicts.is_empty()
    }
}

fn asks(f: &GateFinding) -> bool {
    let ignored = f
        .overridden
        .as_deref()
        .is_some_and(|o| o.starts_with("ignored"));
    !ignored && f.finding.severity != Severity::Pass && f.finding.fix.is_some()
}

/// Collects the changes of findings (pure: the findings are already gathered).
pub fn collect(plan: &str, stage: &str, findings: &[GateFinding]) -> StageChanges {
    let mut raw: Vec<(RecordChange, Reason)> = Vec::new();
    let mut words_only = Vec::new();
    let mut inconclusive = Vec::new();
    for f in findings {
        let reason = Reason {
            domain: f.domain.clone(),
            id: f.finding.id.clone(),
            severity: f.finding.severity,
        };
        if f.finding.severity == Severity::Inconclusive {
            if !inconclusive.contains(&reason) {
                inconclusive.push(reason);
            }
            continue;
        }
        if !asks(f) {
            continue;
        }
        let Some(fix) = &f.finding.fix else {
            continue;
        };
        if fix.records.is_empty() {
            if !words_only.iter().any(|w: &WordsOnly| {
                w.domain == f.domain && w.id == f.finding.id && w.fix == fix.text
            }) {
                words_only.push(WordsOnly {
                    domain: f.domain.clone(),
                    id: f.finding.id.clone(),
                    severity: f.finding.severity,
                    fix: fix.text.clone(),
                });
            }
            continue;
        }
        for change in &fix.records {
            raw.push((change.clone(), reason.clone()));
        }
    }
    let (merged, conflicts) = merge(raw.iter().map(|(c, _)| c.clone()));
    let changes = merged
        .into_iter()
        .map(|change| {
            let mut because: Vec<Reason> = Vec::new();
            for (c, r) in &raw {
                let same_record = c.action == change.action
                    && c.name.eq_ignore_ascii_case(&change.name)
                    && c.rtype.eq_ignore_ascii_case(&change.rtype)
                    && match change.action {
                        RecordAction::Replace => c.old == change.old,
                        _ => c.value == change.value,
                    };
                if same_record && !because.contains(r) {
                    because.push(r.clone());
                }
            }
            PlannedChange { change, because }
        })
        .collect();
    StageChanges {
        plan: plan.to_string(),
        stage: stage.to_string(),
        changes,
        conflicts: conflicts.into_iter().map(ConflictingChange::from).collect(),
        words_only,
        inconclusive,
    }
}

/// Runs the stage's checks and collects the changes they ask for.
pub async fn for_stage(
    resolver: &Resolver,
    plan: &Plan,
    catalog: &Catalog,
    stage: usize,
    ledger: &crate::gate::Ledger,
) -> Result<StageChanges, String> {
    let name = plan
        .stages
        .get(stage)
        .map(|s| s.name.clone())
        .ok_or_else(|| format!("the plan has no stage {}", stage + 1))?;
    let evidence = gather(
        resolver,
        plan,
        catalog,
        stage,
        &crate::gate::GateOptions::default(),
    )
    .await?;
    // Removing the old platform is asked for only by a stage that requires it.
    let cleanup = plan.stage_requires(stage, &Requirement::OldRemoved);
    // Enforcing DMARC is asked for only by a stage that requires it, once the reports allow.
    let enforce: Vec<GateFinding> = if plan.stage_requires(stage, &Requirement::DmarcEnforced) {
        crate::gate::dmarc_enforced_result(&Requirement::DmarcEnforced, plan, &evidence, ledger)
            .findings
    } else {
        Vec::new()
    };
    let all: Vec<GateFinding> = evidence
        .dns
        .into_iter()
        .chain(evidence.coexist)
        .chain(evidence.retired.into_iter().filter(|_| cleanup))
        .chain(enforce)
        .collect();
    Ok(collect(&plan.name, &name, &all))
}

/// The changes as a zone-file fragment with the reasons as comments.
pub fn zone_text(changes: &StageChanges, ttl: u32) -> String {
    let mut out = format!(
        "; mailshift plan records: \"{}\", stage `{}`\n; {} change{}; review before applying. Replacements show the record replaced in a comment.\n",
        changes.plan,
        changes.stage,
        changes.changes.len(),
        if changes.changes.len() == 1 { "" } else { "s" }
    );
    for c in &changes.changes {
        let why: Vec<String> = c
            .because
            .iter()
            .map(|r| format!("{} ({}, {})", r.id, r.domain, r.severity))
            .collect();
        out.push_str(&format!("\n; for {}\n", why.join("; ")));
        out.push_str(&zone_fragment(std::slice::from_ref(&c.change), ttl));
    }
    if !changes.conflicts.is_empty() {
        out.push_str("\n; Conflicting changes (findings want different values; decide which):\n");
        for c in &changes.conflicts {
            out.push_str(&format!(
                ";   {} {}: {}\n",
                c.name,
                c.rtype,
                c.values.join(" | ")
            ));
        }
    }
    if !changes.words_only.is_empty() {
        out.push_str("\n; Needs values only you or your platform's console can give:\n");
        for w in &changes.words_only {
            out.push_str(&format!(
                ";   {} {} ({}): {}\n",
                w.domain,
                w.id,
                w.severity,
                w.fix.replace('\n', " ")
            ));
        }
    }
    if !changes.inconclusive.is_empty() {
        out.push_str("\n; Not decided (DNS lookups failed), so changes may be missing:\n");
        for r in &changes.inconclusive {
            out.push_str(&format!(";   {} {}\n", r.domain, r.id));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::Finding;

    fn gf(domain: &str, finding: Finding, overridden: Option<&str>) -> GateFinding {
        GateFinding {
            domain: domain.into(),
            for_domain: None,
            finding,
            overridden: overridden.map(str::to_string),
        }
    }

    #[test]
    fn changes_merge_per_record_and_keep_every_reason() {
        let old = "v=DMARC1; p=quarantine; pct=25; t=y";
        let findings = [
            gf(
                "example.de",
                Finding::new("dmarc.testing", Severity::Warn, "m")
                    .fix("f")
                    .records(vec![RecordChange::replace(
                        "_dmarc.example.de",
                        "TXT",
                        old,
                        "v=DMARC1; p=quarantine; pct=25",
                    )]),
                None,
            ),
            gf(
                "example.de",
                Finding::new("dmarc.pct-partial", Severity::Warn, "m")
                    .fix("f")
                    .records(vec![RecordChange::replace(
                        "_dmarc.example.de",
                        "TXT",
                        old,
                        "v=DMARC1; p=quarantine; t=y",
                    )]),
                None,
            ),
            // Ignored by the plan: asks for nothing.
            gf(
                "example.de",
                Finding::new("spf.from-domain-unused", Severity::Info, "m")
                    .fix("f")
                    .records(vec![RecordChange::add("example.de", "TXT", "v=spf1 -all")]),
                Some("ignored: handled by the DNS team"),
            ),
            gf(
                "example.de",
                Finding::new("coexist.dkim-new-missing", Severity::Fail, "m")
                    .fix("Publish the record SendGrid shows."),
                None,
            ),
            gf(
                "example.de",
                Finding::new("coexist.inconclusive", Severity::Inconclusive, "m"),
                None,
            ),
        ];
        let c = collect("p", "seed", &findings);
        assert_eq!(c.changes.len(), 1);
        assert_eq!(c.changes[0].change.value, "v=DMARC1; p=quarantine");
        assert_eq!(c.changes[0].because.len(), 2);
        assert_eq!(c.words_only.len(), 1);
        assert_eq!(c.inconclusive.len(), 1);
        let zone = zone_text(&c, 300);
        assert!(zone.contains("; for dmarc.testing (example.de, warn); dmarc.pct-partial (example.de, warn)\n; replace: _dmarc.example.de. 300 IN TXT \"v=DMARC1; p=quarantine; pct=25; t=y\"\n_dmarc.example.de. 300 IN TXT \"v=DMARC1; p=quarantine\"\n"), "{zone}");
        assert!(!zone.contains("v=spf1 -all"));
    }
}
