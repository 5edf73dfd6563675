//! Gates: may the next stage of a migration start?
//!
//! [`evaluate`] runs every check a stage's gate requires — the DNS checks of each plan domain,
//! the migration-aware checks, the mailbox-provider policies, the backup snapshot — applies the
//! plan's overrides, and decides: `open` (every requirement passed), `closed` (one failed) or
//! `inconclusive` (none failed, but one could not be decided, e.g. DNS timed out). Which stages
//! have opened is kept in a small state file next to the plan, so `mailshift gate PLAN` without
//! `--stage` evaluates the next stage not yet passed.

use crate::catalog::policies::check_matches;
use crate::catalog::policies::Applies;
use crate::catalog::{Catalog, VerifiedBy};
use crate::checks;
use crate::dns::{DnsStats, Resolver};
use crate::domain::DomainName;
use crate::engine::{check_domain_records, CheckOptions};
use crate::fetch::fetch_domain;
use crate::finding::{Finding, Severity};
use crate::history::{History, HistoryError, Opening};
use crate::migration::{fetch_migration, Context, KeptTerm, SendingIp, Side};
use crate::plan::{OverrideAction, Plan, Requirement, Stage};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// The gate's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Open,
    Closed,
    Inconclusive,
}

/// One requirement's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RequirementStatus {
    Passed,
    /// Not decided by DNS (e.g. a policy rule proven by seed tests); does not block.
    Deferred,
    Inconclusive,
    Failed,
}

/// A finding with the domain it is about, and the override that changed it, if any.
#[derive(Debug, Clone, Serialize)]
pub struct GateFinding {
    pub domain: String,
    /// The plan domain whose mail the finding concerns, when that is not `domain` (a return
    /// path's SPF is evidence for the From domain that uses it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub for_domain: Option<String>,
    #[serde(flatten)]
    pub finding: Finding,
    /// The override that applied, as `action: reason`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overridden: Option<String>,
}

/// A policy rule's result, under the `policies` / `policy:<id>` requirements.
#[derive(Debug, Clone, Serialize)]
pub struct RuleResult {
    pub policy: String,
    pub rule: String,
    pub title: String,
    pub status: RequirementStatus,
    /// One line: the outcome per domain.
    pub detail: String,
    /// The rule's outcome for each domain it was judged for: a rule holds only when it holds
    /// for every domain.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub domains: Vec<RuleDomain>,
}

/// A policy rule's outcome for one domain.
#[derive(Debug, Clone, Serialize)]
pub struct RuleDomain {
    pub domain: String,
    pub status: RequirementStatus,
    /// Which findings decided it.
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RequirementResult {
    pub requirement: String,
    pub status: RequirementStatus,
    /// One line: why it passed or failed.
    pub summary: String,
    /// The findings behind the result: every one, info and passes included (info never
    /// counts against the gate; formats other than JSON leave passes out).
    pub findings: Vec<GateFinding>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<RuleResult>,
}

/// The whole evaluation of one stage's gate.
#[derive(Debug, Clone, Serialize)]
pub struct GateReport {
    pub plan: String,
    pub plan_file: String,
    pub stage: String,
    /// 1-based position of the stage in the plan.
    pub stage_number: usize,
    pub stages: usize,
    /// Both platforms are expected to send (the stage is before the cutover).
    pub before_cutover: bool,
    pub decision: Decision,
    /// The plan's domains, in plan order.
    pub domains: Vec<String>,
    pub requirements: Vec<RequirementResult>,
    /// How many distinct DNS answers the checks read, and their SHA-256 digest: what an opening
    /// is based on (kept in the state file, so an audit can tell whether records changed since).
    pub records_seen: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub records_digest: Option<String>,
    /// When this stage's gate had opened before: when, on which records, and whether they
    /// have changed since.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opened_before: Option<OpenedBefore>,
    /// Why the stage order was overridden (`--force REASON`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forced: Option<String>,
    /// What changed in the records since the plan's previous gate run (any stage). Drift
    /// findings never decide the gate: the requirements judge today's records.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drift: Option<DriftReport>,
    /// What this run read, for the next run's drift (kept by the caller in the history).
    #[serde(skip)]
    pub observed: Option<crate::drift::Observed>,
    pub queries: u64,
    pub elapsed_ms: u64,
}

/// The records that changed since the previous run.
#[derive(Debug, Clone, Serialize)]
pub struct DriftReport {
    /// When the previous run read them.
    pub since: String,
    pub findings: Vec<GateFinding>,
}

/// Drift between the previous run's observation and this one's, each change under the plan
/// domain it belongs to (the longest plan domain the name is at or below).
fn drift_report(
    plan: &Plan,
    before: &(String, crate::drift::Observed),
    now: &crate::drift::Observed,
) -> DriftReport {
    let (since, before) = before;
    let findings = crate::drift::compare(before, now, since)
        .into_iter()
        .map(|d| {
            let name = d.name.to_ascii_lowercase();
            let domain = plan
                .domains
                .iter()
                .map(|p| p.name.as_str())
                .filter(|p| name == *p || name.ends_with(&format!(".{p}")))
                .max_by_key(|p| p.len())
                .map_or_else(|| d.name.clone(), str::to_string);
            GateFinding {
                domain,
                for_domain: None,
                finding: d.finding,
                overridden: None,
            }
        })
        .collect();
    DriftReport {
        since: since.clone(),
        findings,
    }
}

/// Which stages have opened: the openings of the plan's history.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GateState {
    pub passed: Vec<Opening>,
}

/// An earlier opening of the stage being evaluated again.
#[derive(Debug, Clone, Serialize)]
pub struct OpenedBefore {
    pub opened_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub records_digest: Option<String>,
    /// The answers read now differ from those the opening was based on (`None` when the
    /// opening recorded no digest or no checks ran now).
    pub records_changed: Option<bool>,
}

/// Where a state file of an earlier mailshift was kept (`<plan>.state.json`); its openings are
/// adopted into the history once.
pub fn legacy_state_path(plan_path: &Path) -> PathBuf {
    let mut name = plan_path
        .file_stem()
        .map(|s| s.to_os_string())
        .unwrap_or_default();
    name.push(".state.json");
    plan_path.with_file_name(name)
}

impl GateFinding {
    /// The plan domain whose mail this finding is evidence about.
    pub fn subject(&self) -> &str {
        self.for_domain.as_deref().unwrap_or(&self.domain)
    }
}

impl GateState {
    /// The openings recorded in `history`.
    pub fn load(history: &History) -> Result<GateState, HistoryError> {
        Ok(GateState {
            passed: history.openings()?,
        })
    }

    /// The openings of the plan whose state directory is `dir`, without creating anything:
    /// from its history, else from a state file of an earlier mailshift beside the plan, else
    /// none.
    pub fn read(dir: &Path, plan_path: &Path) -> Result<GateState, HistoryError> {
        if let Some(history) = History::open_existing(dir)? {
            return GateState::load(&history);
        }
        #[derive(serde::Deserialize)]
        struct Legacy {
            #[serde(default)]
            passed: Vec<Opening>,
        }
        let legacy = legacy_state_path(plan_path);
        match crate::files::read_text(&legacy, crate::files::FileKind::State) {
            Ok(text) => {
                let parsed: Legacy =
                    serde_json::from_str(&text).map_err(|e| HistoryError::Sql {
                        path: legacy.clone(),
                        message: format!("not a mailshift state file ({e})"),
                    })?;
                Ok(GateState {
                    passed: parsed.passed,
                })
            }
            Err(e) if e.is_not_found() => Ok(GateState::default()),
            Err(e) => Err(e.into()),
        }
    }

    pub fn has_passed(&self, stage: &str) -> bool {
        self.passed.iter().any(|p| p.stage == stage)
    }

    /// The opening to record for an open gate: when, on which records, forced or not.
    pub fn opening(report: &GateReport) -> Opening {
        Opening {
            stage: report.stage.clone(),
            opened_at: crate::history::now(),
            records_digest: report.records_digest.clone(),
            records_seen: report.records_seen,
            forced: report.forced.clone(),
            mailshift: Some(env!("CARGO_PKG_VERSION").to_string()),
        }
    }

    /// The stages before `stage` (0-based) whose gates have not opened.
    pub fn unopened_before<'p>(&self, plan: &'p Plan, stage: usize) -> Vec<&'p str> {
        plan.stages
            .iter()
            .take(stage)
            .filter(|s| !self.has_passed(&s.name))
            .map(|s| s.name.as_str())
            .collect()
    }

    /// Applies the stage order to a report: a stage may open only after every stage before it
    /// has, unless forced with a reason (recorded with the opening). Also notes an earlier
    /// opening of this stage and whether the records changed since.
    pub fn judge_order(&self, plan: &Plan, report: &mut GateReport, force: Option<&str>) {
        if let Some(p) = self.passed.iter().find(|p| p.stage == report.stage) {
            report.opened_before = Some(OpenedBefore {
                opened_at: p.opened_at.clone(),
                records_digest: p.records_digest.clone(),
                records_changed: match (&p.records_digest, &report.records_digest) {
                    (Some(then), Some(now)) => Some(then != now),
                    _ => None,
                },
            });
        }
        let missing = self.unopened_before(plan, report.stage_number.saturating_sub(1));
        if missing.is_empty() {
            return;
        }
        let list = missing
            .iter()
            .map(|m| format!("`{m}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let (were, have) = if missing.len() == 1 {
            ("stage", "has")
        } else {
            ("stages", "have")
        };
        if let Some(reason) = force {
            // Forcing skips the order check; the reason travels with the report and the opening.
            report.forced = Some(format!(
                "{reason} (the earlier {were} {list} {have} not opened)"
            ));
            return;
        }
        let result = RequirementResult {
            requirement: "order".into(),
            status: RequirementStatus::Failed,
            summary: format!(
                "the earlier {were} {list} {have} not opened yet: open {} first, or pass `--force REASON` to go ahead (the reason is recorded)",
                if missing.len() == 1 { "it" } else { "them" }
            ),
            findings: Vec::new(),
            rules: Vec::new(),
        };
        report.requirements.insert(0, result);
        report.decision = decide(&report.requirements);
    }

    /// The first stage of `plan` whose gate has not opened yet.
    pub fn next_stage<'p>(&self, plan: &'p Plan) -> Option<(usize, &'p Stage)> {
        plan.stages
            .iter()
            .enumerate()
            .find(|(_, s)| !self.has_passed(&s.name))
    }
}

/// Applies the plan's overrides to one domain's findings.
pub fn apply_overrides(
    plan: &Plan,
    domain: &DomainName,
    findings: Vec<Finding>,
) -> Vec<GateFinding> {
    findings
        .into_iter()
        .map(|mut finding| {
            let rule = plan.overrides.iter().find(|o| {
                check_matches(&o.check, &finding.id)
                    && o.domain.as_ref().is_none_or(|d| domain.is_within(d))
            });
            let overridden = rule.map(|o| {
                let (label, severity) = match o.action {
                    OverrideAction::Ignore => ("ignored", Severity::Info),
                    OverrideAction::Downgrade => (
                        "downgraded",
                        match finding.severity {
                            Severity::Fail => Severity::Warn,
                            Severity::Warn => Severity::Info,
                            other => other,
                        },
                    ),
                };
                if finding.severity > Severity::Info || o.action == OverrideAction::Downgrade {
                    finding.severity = severity.min(finding.severity);
                }
                format!("{label}: {}", o.reason)
            });
            GateFinding {
                domain: domain.to_string(),
                for_domain: None,
                finding,
                overridden,
            }
        })
        .collect()
}

/// Status of a set of findings: failed on a fail (or a warn, with `warn_fails`), inconclusive on
/// an inconclusive, else passed.
fn status_of<'a>(
    findings: impl Iterator<Item = &'a GateFinding>,
    warn_fails: bool,
) -> RequirementStatus {
    let worst = findings.map(|f| f.finding.severity).max();
    match worst {
        Some(Severity::Fail) => RequirementStatus::Failed,
        Some(Severity::Warn) if warn_fails => RequirementStatus::Failed,
        Some(Severity::Inconclusive) => RequirementStatus::Inconclusive,
        _ => RequirementStatus::Passed,
    }
}

fn counts(findings: &[GateFinding]) -> String {
    let n = |s: Severity| findings.iter().filter(|f| f.finding.severity == s).count();
    format!(
        "{} fail, {} warn, {} inconclusive, {} pass, {} info",
        n(Severity::Fail),
        n(Severity::Warn),
        n(Severity::Inconclusive),
        n(Severity::Pass),
        n(Severity::Info)
    )
}

/// Everything the checks found for a plan at one stage, after overrides.
pub(crate) struct Evidence {
    pub(crate) dns: Vec<GateFinding>,
    pub(crate) coexist: Vec<GateFinding>,
    /// Whether the old platform is gone (`old-removed`).
    pub(crate) retired: Vec<GateFinding>,
    /// The new platforms' IPs and the domains on DNS blocklists (`blocklists`; empty unless
    /// the stage requires it).
    pub(crate) blocklists: Vec<GateFinding>,
    /// Each authoritative server's copy of the mail records (`propagation`; empty unless the
    /// stage requires it).
    pub(crate) propagation: Vec<GateFinding>,
    /// DNSSEC and DANE (`dnssec`), and the MX hosts' STARTTLS (`smtp`); empty unless required.
    pub(crate) dnssec: Vec<GateFinding>,
    pub(crate) smtp: Vec<GateFinding>,
    pub(crate) dns_stats: DnsStats,
    /// How many distinct answers the checks read, and their digest.
    pub(crate) records_seen: usize,
    pub(crate) records_digest: String,
    /// What the checks read, for drift.
    pub(crate) observed: crate::drift::Observed,
}

/// One answer in a canonical form for the digest: name, type and the records, sorted (servers
/// may return them in any order), or what happened instead.
fn seen_lines(records: &crate::fetch::DomainRecords) -> Vec<String> {
    records
        .answers()
        .map(|a| {
            let mut line = format!("{} {}", a.name, a.qtype);
            for hop in &a.cname_chain {
                line.push_str(&format!(" CNAME {hop}"));
            }
            match &a.outcome {
                crate::dns::Outcome::Records(rs) => {
                    let mut data: Vec<String> = rs.iter().map(|r| r.data.presentation()).collect();
                    data.sort();
                    line.push_str(&format!(" = {}", data.join(" | ")));
                }
                other => line.push_str(&format!(" : {other:?}")),
            }
            line
        })
        .collect()
}

/// The answers of `records` as an [`crate::drift::Observed`] set.
fn observed_of(records: &[&crate::fetch::DomainRecords]) -> crate::drift::Observed {
    let mut observed = crate::drift::Observed::default();
    for r in records {
        observed.add(r);
    }
    observed
}

/// SHA-256 of the canonical answers, hex.
fn digest(lines: &std::collections::BTreeSet<String>) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for line in lines {
        hasher.update(line.as_bytes());
        hasher.update(b"\n");
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What the opt-in requirements need from the command line: the DNSSEC trust anchor
/// (`dnssec`), and the SMTP prober with its trust and limits (`smtp`).
#[derive(Debug, Clone, Default)]
pub struct GateOptions {
    pub dnssec: Option<Arc<crate::fetch::DnssecRequest>>,
    pub smtp: Option<Arc<crate::smtp_probe::SmtpProber>>,
}

pub(crate) async fn gather(
    resolver: &Resolver,
    plan: &Plan,
    catalog: &Catalog,
    stage: usize,
    options: &GateOptions,
) -> Result<Evidence, String> {
    let profile = |id: &str| {
        catalog
            .provider(id)
            .ok_or_else(|| format!("unknown provider `{id}`"))
    };
    // Every platform the plan names must be known before anything is fetched.
    for d in &plan.domains {
        for side in d.old.iter().chain(&d.new) {
            profile(&side.platform)?;
        }
    }
    let before_cutover = plan.before_cutover(stage);
    let blocklists = plan.stage_requires(stage, &Requirement::Blocklists);
    let propagation = plan.stage_requires(stage, &Requirement::Propagation);
    let secure = plan.stage_requires(stage, &Requirement::Dnssec).then(|| {
        options.dnssec.clone().unwrap_or_else(|| {
            Arc::new(crate::fetch::DnssecRequest {
                anchors: crate::dnssec::anchor::Anchors::root(),
            })
        })
    });
    let probe = if plan.stage_requires(stage, &Requirement::Smtp) {
        options.smtp.clone()
    } else {
        None
    };
    let transport = (&secure, &probe);
    // The records before the migration, for the rules that say what must survive it.
    let backup = plan
        .snapshot
        .as_ref()
        .and_then(|path| crate::dns::ZoneOverlay::load(std::slice::from_ref(path)).ok());
    let backup_name = plan
        .snapshot
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let options = CheckOptions::default();
    let mut dns = Vec::new();
    let mut coexist = Vec::new();
    let per_domain = futures::future::join_all(plan.domains.iter().map(|d| {
        let options = &options;
        let (backup, backup_name) = (&backup, &backup_name);
        async move {
            if !d.sending {
                // A parked or defensive domain: judged on what protects it.
                let records =
                    fetch_domain(resolver, &d.name, crate::checks::parked::selectors()).await;
                let findings = crate::checks::parked::analyse(&records);
                let listed = if blocklists {
                    blocklist_findings(resolver, plan, catalog, &d.name, Vec::new()).await
                } else {
                    Vec::new()
                };
                let copies = if propagation {
                    propagation_findings(resolver, plan, &records).await
                } else {
                    Vec::new()
                };
                let (secured, probed) = transport_findings(resolver, plan, &records, transport).await;
                return (
                    apply_overrides(plan, &d.name, findings),
                    Vec::new(),
                    Vec::new(),
                    listed,
                    copies,
                    secured,
                    probed,
                    seen_lines(&records),
                    observed_of(&[&records]),
                );
            }
            let (old, new) = (side(catalog, &d.old), side(catalog, &d.new));
            let new_ips: Vec<SendingIp> = new
                .map(|n| {
                    plan.pools_for(&n.setup.platform, &d.name)
                        .flat_map(|p| {
                            p.ips.iter().map(|ip| SendingIp {
                                ip: *ip,
                                dedicated: p.dedicated,
                                pool: p.name.clone(),
                            })
                        })
                        .collect()
                })
                .unwrap_or_default();
            let kept = KeptTerm::for_domain(plan.kept_for(&d.name), catalog);
            let ctx = Context {
                domain: d,
                old,
                new,
                before_cutover,
                new_ips: &new_ips,
                kept: &kept,
            };
            // DKIM is checked where each platform signs: the domain's own check looks at the
            // selectors of the platforms that sign as it; the others at their signing domain.
            let mut selectors: Vec<String> = Vec::new();
            let mut elsewhere: Vec<(DomainName, Vec<crate::fetch::Selector>)> = Vec::new();
            for s in crate::migration::sides(&ctx) {
                let signer = s.signing_domain(&d.name);
                for name in s.selectors() {
                    if signer == &d.name {
                        if !selectors.contains(&name) {
                            selectors.push(name);
                        }
                        continue;
                    }
                    let selector = crate::fetch::Selector {
                        name,
                        used_by: Some(s.profile.name.clone()),
                        explicit: true,
                    };
                    match elsewhere.iter_mut().find(|(n, _)| n == signer) {
                        Some((_, list)) => list.push(selector),
                        None => elsewhere.push((signer.clone(), vec![selector])),
                    }
                }
            }
            let own_findings = async {
                if selectors.is_empty() && !elsewhere.is_empty() {
                    // No platform signs as this domain: nothing to probe for here.
                    let records = fetch_domain(resolver, &d.name, Vec::new()).await;
                    let (mut f, exists) = checks::domain::analyse(&records);
                    if exists {
                        f.extend(checks::spf::analyse(&records));
                        f.extend(checks::dmarc::analyse(&records));
                        f.extend(checks::mx::analyse(&records));
                    }
                    (f, records)
                } else {
                    let request = crate::domain::DomainRequest {
                        domain: d.name.clone(),
                        selectors,
                    };
                    let (report, records) =
                        check_domain_records(resolver, &request, options).await;
                    (report.findings, records)
                }
            };
            let ((mut own, own_records), migration) =
                futures::join!(own_findings, fetch_migration(resolver, &ctx));
            let mut seen = seen_lines(&own_records);
            seen.extend(seen_lines(&migration.records));
            let mut observed = observed_of(&[&own_records, &migration.records]);
            checks::coexist::spf_where_evaluated(&mut own, &ctx);
            let mut dns_findings = apply_overrides(plan, &d.name, own);
            for (signer, selectors) in elsewhere {
                let records = crate::fetch::fetch_dkim_only(resolver, &signer, selectors).await;
                seen.extend(seen_lines(&records));
                observed.add(&records);
                dns_findings.extend(apply_overrides(
                    plan,
                    &d.name,
                    checks::dkim::analyse(&records),
                ));
            }
            // Return paths carry SPF (and MX for bounces) but not DKIM or DMARC of their own.
            let return_paths: Vec<&DomainName> = crate::migration::sides(&ctx)
                .filter_map(|s| s.setup.return_path.as_ref())
                .collect();
            for rp in return_paths {
                let records = fetch_domain(resolver, rp, Vec::new()).await;
                seen.extend(seen_lines(&records));
                observed.add(&records);
                let (mut f, exists) = checks::domain::analyse(&records);
                if exists {
                    f.extend(checks::spf::analyse(&records));
                    f.extend(checks::mx::analyse(&records));
                }
                dns_findings.extend(apply_overrides(plan, rp, f).into_iter().map(|mut f| {
                    f.for_domain = Some(d.name.to_string());
                    f
                }));
            }
            let mut coexist_raw = checks::coexist::analyse(&migration, &ctx);
            let bimi_before = backup.as_ref().and_then(|overlay| {
                match overlay.lookup(
                    crate::fetch::bimi_name(&d.name).as_str(),
                    crate::dns::QueryType::Txt,
                ) {
                    crate::dns::zone::ZoneAnswer::Records(records) => records
                        .iter()
                        .filter_map(|r| r.data.txt_joined())
                        .find(|t| crate::records::bimi::is_bimi_record(t)),
                    _ => None,
                }
            });
            coexist_raw.extend(checks::bimi::lost_in_migration(
                &own_records,
                bimi_before.as_deref(),
                backup_name,
            ));
            if let Some(new) = &ctx.new {
                coexist_raw.extend(checks::inbound::mta_sts_covers_new_mx(
                    &own_records,
                    new.profile,
                ));
            }
            let coexist_findings = apply_overrides(plan, &d.name, coexist_raw);
            let retired_findings = apply_overrides(
                plan,
                &d.name,
                checks::retired::analyse(&migration.records, &ctx),
            );
            // The plain budget finding does not know the plan: its advice defers to the
            // migration check, which keeps the plan's senders and proposes the exact record.
            let budget_records = coexist_findings
                .iter()
                .find(|f| f.finding.id == "coexist.spf-budget" && f.finding.fix.is_some())
                .map(|f| {
                    f.finding
                        .fix
                        .as_ref()
                        .map(|x| x.records.clone())
                        .unwrap_or_default()
                });
            if let Some(records) = budget_records {
                for f in dns_findings.iter_mut().filter(|f| {
                    f.domain == d.name.as_str()
                        && matches!(f.finding.id.as_str(), "spf.lookup-budget" | "spf.lookup-limit")
                }) {
                    f.finding.fix = Some(crate::finding::Fix {
                        text: "See coexist.spf-budget: it proposes the exact record that fits, keeping every sender the plan keeps.".into(),
                        records: records.clone(),
                    });
                }
            }
            let listed = if blocklists {
                let ips = new_ips
                    .iter()
                    .map(|s| crate::fetch::SendingAddress {
                        ip: s.ip,
                        from: format!("pool `{}`", s.pool),
                    })
                    .collect();
                blocklist_findings(resolver, plan, catalog, &d.name, ips).await
            } else {
                Vec::new()
            };
            let copies = if propagation {
                propagation_findings(resolver, plan, &own_records).await
            } else {
                Vec::new()
            };
            let (secured, probed) =
                transport_findings(resolver, plan, &own_records, transport).await;
            (
                dns_findings,
                coexist_findings,
                retired_findings,
                listed,
                copies,
                secured,
                probed,
                seen,
                observed,
            )
        }
    }))
    .await;
    let mut seen = std::collections::BTreeSet::new();
    let mut retired = Vec::new();
    let mut listed = Vec::new();
    let mut copies = Vec::new();
    let (mut secured, mut probed) = (Vec::new(), Vec::new());
    let mut observed = crate::drift::Observed::default();
    for (d, c, r, b, p, s, t, lines, o) in per_domain {
        copies.extend(p);
        secured.extend(s);
        probed.extend(t);
        observed.0.extend(o.0);
        dns.extend(d);
        coexist.extend(c);
        retired.extend(r);
        listed.extend(b);
        seen.extend(lines);
    }
    Ok(Evidence {
        records_seen: seen.len(),
        records_digest: digest(&seen),
        observed,
        dns,
        coexist,
        retired,
        blocklists: listed,
        propagation: copies,
        dnssec: secured,
        smtp: probed,
        dns_stats: resolver.stats(),
    })
}

/// `domain` and the IPs its new platform sends it from, looked up in the catalog's blocklists.
/// Each IP is reported under every domain it sends for: a listing hurts each of them.
async fn blocklist_findings(
    resolver: &Resolver,
    plan: &Plan,
    catalog: &Catalog,
    domain: &DomainName,
    ips: Vec<crate::fetch::SendingAddress>,
) -> Vec<GateFinding> {
    let request = Arc::new(crate::fetch::BlocklistRequest {
        lists: catalog.blocklists.clone(),
        ips,
    });
    let mut records = crate::fetch::DomainRecords::new(domain.clone());
    crate::fetch::fetch_blocklists(resolver, request, &mut records).await;
    apply_overrides(plan, domain, checks::blocklist::analyse(&records))
}

/// Each authoritative server's copy of the records `records` read, compared.
async fn propagation_findings(
    resolver: &Resolver,
    plan: &Plan,
    records: &crate::fetch::DomainRecords,
) -> Vec<GateFinding> {
    let mut records = records.clone();
    crate::fetch::fetch_propagation(resolver, &mut records).await;
    apply_overrides(
        plan,
        &records.domain,
        checks::propagation::analyse(&records),
    )
}

/// DNSSEC and DANE (`dnssec`), then the MX hosts' STARTTLS (`smtp`, which meets DANE when
/// both are required), for the records `records` read: each family's findings, or none when
/// the stage does not require it.
async fn transport_findings(
    resolver: &Resolver,
    plan: &Plan,
    records: &crate::fetch::DomainRecords,
    (secure, probe): (
        &Option<Arc<crate::fetch::DnssecRequest>>,
        &Option<Arc<crate::smtp_probe::SmtpProber>>,
    ),
) -> (Vec<GateFinding>, Vec<GateFinding>) {
    if secure.is_none() && probe.is_none() {
        return (Vec::new(), Vec::new());
    }
    let mut records = records.clone();
    let mut secured = Vec::new();
    if let Some(request) = secure {
        crate::fetch::fetch_dnssec(resolver, request, &mut records).await;
        let mut found = checks::dnssec::analyse(&records);
        found.extend(checks::dane::analyse(&records));
        secured = apply_overrides(plan, &records.domain, found);
    }
    let mut probed = Vec::new();
    if let Some(prober) = probe {
        crate::smtp_probe::probe_smtp(prober, resolver, &mut records).await;
        probed = apply_overrides(plan, &records.domain, checks::smtp::analyse(&records));
    }
    (secured, probed)
}

/// `propagation`: the findings decide, except that records the resolver does not see yet
/// (`propagation.pending`, a warning in `check`) keep the gate closed until they are visible
/// everywhere.
fn propagation_result(requirement: &Requirement, findings: &[GateFinding]) -> RequirementResult {
    let mut result = requirement_from_findings(
        requirement,
        findings,
        "the mail records on every authoritative server and at the resolver",
    );
    let pending: Vec<&GateFinding> = findings
        .iter()
        .filter(|f| f.finding.id == "propagation.pending")
        .collect();
    if result.status == RequirementStatus::Passed && !pending.is_empty() {
        result.status = RequirementStatus::Failed;
        let by = pending
            .iter()
            .filter_map(|f| f.finding.data.as_ref())
            .filter_map(|d| d["visible_everywhere_by"].as_str())
            .max();
        result.summary.push_str(&match by {
            Some(by) => format!("; not visible everywhere yet: wait until {by}"),
            None => "; not visible everywhere yet".to_string(),
        });
    }
    result
}

/// One side of a domain with its platform's profile.
fn side<'a>(
    catalog: &'a Catalog,
    setup: &'a Option<crate::plan::PlatformSetup>,
) -> Option<Side<'a>> {
    let setup = setup.as_ref()?;
    Some(Side {
        profile: catalog.provider(&setup.platform)?,
        setup,
    })
}

fn requirement_from_findings(
    requirement: &Requirement,
    findings: &[GateFinding],
    what: &str,
) -> RequirementResult {
    let status = status_of(findings.iter(), false);
    RequirementResult {
        requirement: requirement.to_string(),
        status,
        summary: format!("{what}: {}", counts(findings)),
        findings: findings.to_vec(),
        rules: Vec::new(),
    }
}

fn policy_result(
    requirement: &Requirement,
    policy_ids: &[String],
    catalog: &Catalog,
    evidence: &Evidence,
    dns_domains: &[String],
    seed: Option<&Result<SeedEvidence, (RequirementStatus, String)>>,
) -> RequirementResult {
    let dns_findings: Vec<&GateFinding> = evidence.dns.iter().chain(&evidence.coexist).collect();
    let seed_findings: Option<Vec<&GateFinding>> = match seed {
        Some(Ok(e)) if e.arrived > 0 => Some(e.findings.iter().collect()),
        _ => None,
    };
    let mut seed_domains: Vec<String> = Vec::new();
    for f in seed_findings.iter().flatten() {
        if !seed_domains.iter().any(|d| d == f.subject()) {
            seed_domains.push(f.subject().to_string());
        }
    }
    let deferred = |detail: String| (RequirementStatus::Deferred, detail, Vec::new());
    let mut rules = Vec::new();
    let mut behind: Vec<GateFinding> = Vec::new();
    for id in policy_ids {
        let Some(policy) = catalog.policy(id) else {
            rules.push(RuleResult {
                policy: id.clone(),
                rule: String::new(),
                title: "unknown policy".into(),
                status: RequirementStatus::Failed,
                detail: format!("no policy `{id}` in the catalog"),
                domains: Vec::new(),
            });
            continue;
        };
        for rule in &policy.rules {
            let measured = !rule.checks.is_empty() || !rule.any_of.is_empty();
            let (status, detail, domains) = match rule.verified_by {
                VerifiedBy::Seed if !measured => deferred(
                    "not measured by mailshift's seed tests: confirm it by hand".to_string(),
                ),
                VerifiedBy::Seed => match (&seed_findings, seed) {
                    (Some(findings), _) => judge_rule(rule, findings, &seed_domains, &mut behind),
                    (None, Some(Ok(e))) => deferred(format!(
                        "proven by seed tests: none of the {} seeds sent for this stage has arrived yet",
                        e.sent
                    )),
                    (None, Some(Err((_, why)))) => {
                        deferred(format!("proven by seed tests: {why}"))
                    }
                    (None, None) => deferred("proven by seed tests, not by DNS".to_string()),
                },
                VerifiedBy::Metrics => deferred(
                    "proven by sending metrics during warmup, not by DNS".to_string(),
                ),
                VerifiedBy::Dns => judge_rule(rule, &dns_findings, dns_domains, &mut behind),
            };
            let scope = match rule.applies_to {
                Applies::All => "",
                Applies::Bulk => " [bulk senders]",
            };
            rules.push(RuleResult {
                policy: policy.id.clone(),
                rule: rule.id.clone(),
                title: format!("{}{scope}", rule.title),
                status,
                detail,
                domains,
            });
        }
    }
    let status = rules
        .iter()
        .map(|r| r.status)
        .filter(|s| *s != RequirementStatus::Deferred)
        .max()
        .unwrap_or(RequirementStatus::Passed);
    let n = |s: RequirementStatus| rules.iter().filter(|r| r.status == s).count();
    RequirementResult {
        requirement: requirement.to_string(),
        status,
        summary: format!(
            "{}: {} passed, {} failed, {} inconclusive, {} left to seed tests, metrics or you",
            crate::words::count(rules.len(), "rule", "rules"),
            n(RequirementStatus::Passed),
            n(RequirementStatus::Failed),
            n(RequirementStatus::Inconclusive),
            n(RequirementStatus::Deferred)
        ),
        findings: behind,
        rules,
    }
}

/// Decides one rule for each domain (a rule holds only when it holds for every domain) from
/// the findings it names; the failing ones are added to `behind`.
fn judge_rule(
    rule: &crate::catalog::policies::Rule,
    all: &[&GateFinding],
    domains: &[String],
    behind: &mut Vec<GateFinding>,
) -> (RequirementStatus, String, Vec<RuleDomain>) {
    let mut outcomes = Vec::new();
    for domain in domains {
        let mine: Vec<&GateFinding> = all
            .iter()
            .copied()
            .filter(|f| f.subject() == domain)
            .collect();
        let (status, detail, bad) = judge_domain(rule, &mine);
        for f in bad {
            if !behind.iter().any(|b| {
                b.domain == f.domain
                    && b.finding.id == f.finding.id
                    && b.finding.message == f.finding.message
            }) {
                behind.push(f.clone());
            }
        }
        outcomes.push(RuleDomain {
            domain: domain.clone(),
            status,
            detail,
        });
    }
    let status = outcomes
        .iter()
        .map(|o| o.status)
        .max()
        .unwrap_or(RequirementStatus::Passed);
    let (held, other): (Vec<&RuleDomain>, Vec<&RuleDomain>) = outcomes
        .iter()
        .partition(|o| o.status == RequirementStatus::Passed);
    let mut parts: Vec<String> = other
        .iter()
        .map(|o| format!("{} {}: {}", o.domain, status_word(o.status), o.detail))
        .collect();
    if !held.is_empty() {
        let names: Vec<String> = held
            .iter()
            .map(|o| format!("{} ({})", o.domain, o.detail))
            .collect();
        parts.push(format!("holds for {}", names.join(", ")));
    }
    let detail = if parts.is_empty() {
        "no domain to judge".to_string()
    } else {
        parts.join("; ")
    };
    (status, detail, outcomes)
}

fn status_word(status: RequirementStatus) -> &'static str {
    match status {
        RequirementStatus::Passed => "passed",
        RequirementStatus::Deferred => "deferred",
        RequirementStatus::Inconclusive => "inconclusive",
        RequirementStatus::Failed => "failed",
    }
}

/// A group of check patterns in words: `["spf.*"]` is "SPF".
fn group_label(patterns: &[String]) -> String {
    patterns
        .iter()
        .map(|p| p.trim_end_matches(".*").to_ascii_uppercase())
        .collect::<Vec<_>>()
        .join(" and ")
}

/// Decides one rule for one domain's findings: its status, which findings decided it, and the
/// failing (or undecided) ones.
fn judge_domain<'a>(
    rule: &crate::catalog::policies::Rule,
    mine: &[&'a GateFinding],
) -> (RequirementStatus, String, Vec<&'a GateFinding>) {
    let matching_of = |patterns: &[String]| -> Vec<&'a GateFinding> {
        mine.iter()
            .copied()
            .filter(|f| patterns.iter().any(|p| check_matches(p, &f.finding.id)))
            .collect()
    };
    let is_bad = |f: &&GateFinding| {
        f.finding.severity == Severity::Fail
            || f.finding.severity == Severity::Inconclusive
            || (rule.warn_fails && f.finding.severity == Severity::Warn)
    };
    let matching = matching_of(&rule.checks);
    let mut status = status_of(matching.iter().copied(), rule.warn_fails);
    let mut bad: Vec<&GateFinding> = matching.iter().copied().filter(is_bad).collect();
    // "SPF or DKIM": the best group decides, and a group without a single finding for this
    // domain is no evidence of it.
    let groups: Vec<(RequirementStatus, Vec<&GateFinding>, String)> = rule
        .any_of
        .iter()
        .map(|g| {
            let m = matching_of(g);
            let st = if m.is_empty() {
                RequirementStatus::Failed
            } else {
                status_of(m.iter().copied(), rule.warn_fails)
            };
            (st, m, group_label(g))
        })
        .collect();
    let best = groups.iter().min_by_key(|(st, _, _)| *st);
    if let Some((best_status, _, _)) = best {
        status = status.max(*best_status);
        if *best_status != RequirementStatus::Passed {
            bad.extend(
                groups
                    .iter()
                    .flat_map(|(_, m, _)| m.iter().copied().filter(is_bad)),
            );
        }
    }
    let through: Vec<&str> = groups
        .iter()
        .filter(|(st, _, _)| *st == RequirementStatus::Passed)
        .map(|(_, _, label)| label.as_str())
        .collect();
    let detail = if status == RequirementStatus::Passed {
        match through.as_slice() {
            [one] => format!("{one} passes"),
            [_, ..] => format!("{} pass", through.join(" and ")),
            [] if matching.is_empty() => "none of its checks found a problem".to_string(),
            [] => format!(
                "{} matching finding{}, none failing",
                matching.len(),
                if matching.len() == 1 { "" } else { "s" }
            ),
        }
    } else {
        let mut words: Vec<String> = bad
            .iter()
            .map(|f| format!("{} ({})", f.finding.id, f.finding.severity))
            .collect();
        let empty: Vec<&str> = groups
            .iter()
            .filter(|(_, m, _)| m.is_empty())
            .map(|(_, _, label)| label.as_str())
            .collect();
        if !empty.is_empty() && best.is_some_and(|(st, _, _)| *st != RequirementStatus::Passed) {
            words.push(format!("no {} finding", empty.join(" or ")));
        }
        words.join(", ")
    };
    (status, detail, bad)
}

fn snapshot_result(plan: &Plan) -> RequirementResult {
    let requirement = Requirement::Snapshot.to_string();
    let Some(path) = &plan.snapshot else {
        return RequirementResult {
            requirement,
            status: RequirementStatus::Failed,
            summary: "the plan names no snapshot file".into(),
            findings: Vec::new(),
            rules: Vec::new(),
        };
    };
    let fail = |summary: String| RequirementResult {
        requirement: Requirement::Snapshot.to_string(),
        status: RequirementStatus::Failed,
        summary,
        findings: Vec::new(),
        rules: Vec::new(),
    };
    if !path.exists() {
        let domains: Vec<String> = plan.domains.iter().map(|d| d.name.to_string()).collect();
        return fail(format!(
            "no backup at {}: take one before changing anything, with `mailshift snapshot {} --plan {} --output {}`",
            path.display(),
            domains.join(" "),
            plan.path.display(),
            path.display()
        ));
    }
    match crate::dns::ZoneOverlay::load(std::slice::from_ref(path)) {
        Err(e) => fail(format!("the snapshot cannot be read: {e}")),
        Ok(overlay) => {
            let missing: Vec<String> = plan
                .domains
                .iter()
                .filter(|d| overlay.covering_file(d.name.as_str()).is_none())
                .map(|d| d.name.to_string())
                .collect();
            if missing.is_empty() {
                let taken =
                    crate::snapshot::taken_at(path).unwrap_or_else(|| "at an unknown time".into());
                RequirementResult {
                    requirement: Requirement::Snapshot.to_string(),
                    status: RequirementStatus::Passed,
                    summary: format!(
                        "backup {} covers every plan domain (taken {taken})",
                        path.display()
                    ),
                    findings: Vec::new(),
                    rules: Vec::new(),
                }
            } else {
                fail(format!(
                    "the snapshot {} does not cover {}",
                    path.display(),
                    missing.join(", ")
                ))
            }
        }
    }
}

/// Evaluates the gate of stage `stage` (0-based index into `plan.stages`).
pub async fn evaluate(
    resolver: &Resolver,
    plan: &Plan,
    catalog: &Catalog,
    stage: usize,
    ledger: &Ledger,
    options: &GateOptions,
) -> Result<GateReport, String> {
    let started = Instant::now();
    let stage_def = plan
        .stages
        .get(stage)
        .ok_or_else(|| format!("the plan has no stage {}", stage + 1))?;
    let needs_checks = stage_def.requires.iter().any(|r| {
        !matches!(
            r,
            Requirement::Snapshot
                | Requirement::Seed
                | Requirement::Warmup(_)
                | Requirement::Attested(_)
        )
    });
    let evidence = if needs_checks {
        Some(gather(resolver, plan, catalog, stage, options).await?)
    } else {
        None
    };
    let seed = stage_def
        .requires
        .iter()
        .any(|r| {
            matches!(
                r,
                Requirement::Seed | Requirement::Policies | Requirement::Policy(_)
            )
        })
        .then(|| seed_evidence(plan, &stage_def.name));
    // Policy rules apply to the domains that send; parked ones are judged on what protects them.
    let sending: Vec<String> = plan
        .domains
        .iter()
        .filter(|d| d.sending)
        .map(|d| d.name.to_string())
        .collect();
    let mut requirements = Vec::new();
    for requirement in &stage_def.requires {
        let result = match (requirement, &evidence) {
            (Requirement::Snapshot, _) => snapshot_result(plan),
            (Requirement::Dns, Some(e)) => {
                requirement_from_findings(requirement, &e.dns, "DNS checks of the plan's domains")
            }
            (Requirement::Coexistence, Some(e)) => requirement_from_findings(
                requirement,
                &e.coexist,
                if plan.before_cutover(stage) {
                    "migration checks (old and new platforms side by side, SPF budget, alignment, rDNS)"
                } else {
                    "migration checks (the new platforms alone, SPF budget, alignment, rDNS)"
                },
            ),
            (Requirement::Policies, Some(e)) => policy_result(
                requirement,
                &plan.policies,
                catalog,
                e,
                &sending,
                seed.as_ref(),
            ),
            (Requirement::Policy(id), Some(e)) => policy_result(
                requirement,
                std::slice::from_ref(id),
                catalog,
                e,
                &sending,
                seed.as_ref(),
            ),
            (Requirement::Seed, _) => match &seed {
                Some(evidence) => seed_result(&stage_def.name, evidence),
                None => unreachable_requirement(requirement),
            },
            (Requirement::Warmup(cohort), _) => {
                warmup_result(requirement, cohort.as_deref(), ledger)
            }
            (Requirement::Attested(step), _) => attested_result(requirement, step, ledger),
            (Requirement::OldRemoved, Some(e)) => requirement_from_findings(
                requirement,
                &e.retired,
                "the old platforms' records removed",
            ),
            (Requirement::Propagation, Some(e)) => propagation_result(requirement, &e.propagation),
            (Requirement::Dnssec, Some(e)) => requirement_from_findings(
                requirement,
                &e.dnssec,
                "DNSSEC validation of the domains' answers, and their MX hosts' TLSA records",
            ),
            (Requirement::Smtp, Some(_)) if options.smtp.is_none() => {
                unreachable_requirement(requirement)
            }
            (Requirement::Smtp, Some(e)) => requirement_from_findings(
                requirement,
                &e.smtp,
                "STARTTLS and certificates of the domains' MX hosts",
            ),
            (Requirement::Blocklists, Some(e)) => requirement_from_findings(
                requirement,
                &e.blocklists,
                "the new platforms' sending IPs and the domains on DNS blocklists",
            ),
            (Requirement::DmarcEnforced, Some(e)) => {
                dmarc_enforced_result(requirement, plan, e, ledger)
            }
            (_, None) => unreachable_requirement(requirement),
        };
        requirements.push(result);
    }
    let decision = decide(&requirements);
    let queries = evidence.as_ref().map_or(0, |e| e.dns_stats.queries);
    Ok(GateReport {
        plan: plan.name.clone(),
        plan_file: plan.path.display().to_string(),
        stage: stage_def.name.clone(),
        stage_number: stage + 1,
        stages: plan.stages.len(),
        before_cutover: plan.before_cutover(stage),
        decision,
        domains: plan.domains.iter().map(|d| d.name.to_string()).collect(),
        requirements,
        records_seen: evidence.as_ref().map_or(0, |e| e.records_seen),
        records_digest: evidence.as_ref().map(|e| e.records_digest.clone()),
        opened_before: None,
        forced: None,
        drift: match (&ledger.observed_before, &evidence) {
            (Some(before), Some(e)) => Some(drift_report(plan, before, &e.observed)),
            _ => None,
        },
        observed: evidence.as_ref().map(|e| e.observed.clone()),
        queries,
        elapsed_ms: started.elapsed().as_millis() as u64,
    })
}

/// What the plan's history says, for the requirements DNS cannot decide.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    pub attestations: Vec<crate::history::Attestation>,
    /// The warmup judged as of today, when the plan has one.
    pub warmup: Option<crate::warmup::decide::WarmupStatus>,
    /// What the previous gate run of the plan read, and when: the basis for drift.
    pub observed_before: Option<(String, crate::drift::Observed)>,
    /// What the imported DMARC aggregate reports say per policy domain (`dmarc-enforced`);
    /// `None` when none were imported.
    pub reports: Option<std::collections::BTreeMap<String, crate::reports::summary::Enforcement>>,
}

/// `warmup` (every cohort) or `warmup:<cohort>`: finished clean, per the imported evidence.
fn warmup_result(
    requirement: &Requirement,
    cohort: Option<&str>,
    ledger: &Ledger,
) -> RequirementResult {
    use crate::warmup::decide::CohortState;
    let result = |status, summary| RequirementResult {
        requirement: requirement.to_string(),
        status,
        summary,
        findings: Vec::new(),
        rules: Vec::new(),
    };
    let Some(status) = &ledger.warmup else {
        return result(
            RequirementStatus::Failed,
            "the plan has no warmup to judge".into(),
        );
    };
    let cohorts: Vec<&crate::warmup::decide::CohortStatus> = status
        .cohorts
        .iter()
        .filter(|c| cohort.is_none_or(|name| c.name == name))
        .collect();
    if cohorts.is_empty() {
        return result(
            RequirementStatus::Failed,
            format!("no cohort `{}` in the plan", cohort.unwrap_or_default()),
        );
    }
    let unfinished: Vec<String> = cohorts
        .iter()
        .filter(|c| c.state != CohortState::Finished)
        .map(|c| {
            format!(
                "{} {} ({} of {} clean days): {}",
                c.name,
                match c.state {
                    CohortState::Waiting => "waiting",
                    CohortState::Warming => "warming",
                    CohortState::Finished => "finished",
                },
                c.clean_streak,
                status.clean_days,
                c.summary
            )
        })
        .collect();
    if unfinished.is_empty() {
        let finished: Vec<String> = cohorts
            .iter()
            .map(|c| {
                format!(
                    "{} on {}",
                    c.name,
                    c.finished.map(|d| d.to_string()).unwrap_or_default()
                )
            })
            .collect();
        result(
            RequirementStatus::Passed,
            format!(
                "finished clean ({} clean days at full volume): {}",
                status.clean_days,
                finished.join(", ")
            ),
        )
    } else {
        result(RequirementStatus::Failed, unfinished.join("; "))
    }
}

/// `attested:<step>`: someone confirmed the step with `mailshift attest`.
fn attested_result(requirement: &Requirement, step: &str, ledger: &Ledger) -> RequirementResult {
    let confirmations: Vec<&crate::history::Attestation> = ledger
        .attestations
        .iter()
        .filter(|a| a.step == step)
        .collect();
    let (status, summary) = match confirmations.last() {
        Some(a) => (
            RequirementStatus::Passed,
            format!("confirmed by {} on {}: {}", a.by, a.at, a.note),
        ),
        None => (
            RequirementStatus::Failed,
            format!("not confirmed yet: once it is done, run `mailshift attest PLAN {step} --by NAME --note TEXT`"),
        ),
    };
    RequirementResult {
        requirement: requirement.to_string(),
        status,
        summary,
        findings: Vec::new(),
        rules: Vec::new(),
    }
}

/// The DMARC record that applies to `domain` in what the checks read, found along the same
/// RFC 9989 tree walk the checks fetched (`fetch::dmarc_walk_names`): its own, else the closest
/// parent's (whose `sp` then applies); with the name it was found at.
fn applied_dmarc(
    observed: &crate::drift::Observed,
    domain: &DomainName,
) -> Option<(String, String)> {
    crate::fetch::dmarc_walk_names(domain)
        .into_iter()
        .find_map(|name| {
            observed
                .0
                .get(&format!("{name} TXT"))
                .and_then(|seen| crate::drift::txt_with(seen, "v=dmarc1"))
                .map(|text| (name.to_string(), text))
        })
}

/// `dmarc-enforced`: per sending domain, the published policy enforces and the reports show it
/// is safe; while it does not, the fix is the exact record once the reports allow it.
pub(crate) fn dmarc_enforced_result(
    requirement: &Requirement,
    plan: &Plan,
    evidence: &Evidence,
    ledger: &Ledger,
) -> RequirementResult {
    use crate::records::dmarc::{DmarcRecord, Policy};
    let Some(reports) = &ledger.reports else {
        return RequirementResult {
            requirement: requirement.to_string(),
            status: RequirementStatus::Failed,
            summary: "no DMARC aggregate reports imported: run `mailshift reports import PLAN FILES` with the receivers' reports".into(),
            findings: Vec::new(),
            rules: Vec::new(),
        };
    };
    let mut findings = Vec::new();
    for d in plan.domains.iter().filter(|d| d.sending) {
        let domain = d.name.to_string();
        let finding = match applied_dmarc(&evidence.observed, &d.name) {
            None => Finding::new(
                "dmarc-enforced.no-record",
                Severity::Fail,
                format!("{domain} has no DMARC record to enforce: publish one with p=none and reports first (see the dns requirement)."),
            ),
            Some((at, text)) => {
                let shown = format!("{at} TXT \"{text}\"");
                let record = DmarcRecord::parse(&text);
                let own = at == format!("_dmarc.{domain}");
                let policy = if own { record.p } else { record.sp.or(record.p) };
                let full = record.pct.unwrap_or(100) >= 100;
                let enforcing = matches!(policy, Some(Policy::Quarantine | Policy::Reject)) && full;
                let judged = reports.get(&domain).or_else(|| {
                    // Reports are per policy domain: a subdomain's mail may be reported under
                    // its organisational domain's record.
                    at.strip_prefix("_dmarc.").and_then(|p| reports.get(p))
                });
                match judged {
                    None => Finding::new(
                        "dmarc-enforced.no-reports",
                        Severity::Fail,
                        format!("No imported aggregate report covers {domain}: nothing shows the new platform passing DMARC there yet."),
                    )
                    .evidence(shown.clone()),
                    Some(e) if !e.safe => Finding::new(
                        "dmarc-enforced.not-yet",
                        Severity::Fail,
                        format!(
                            "Enforcing DMARC on {domain} is not safe yet: {}.",
                            e.reasons.join("; ")
                        ),
                    )
                    .evidence(shown.clone()),
                    Some(e) if enforcing => Finding::new(
                        "dmarc-enforced.enforced",
                        Severity::Pass,
                        format!(
                            "{domain} enforces DMARC (p={}), and the reports agree: {}.",
                            policy.map_or("none", |p| p.as_str()),
                            e.reasons.join("; ")
                        ),
                    )
                    .evidence(shown.clone()),
                    Some(e) => {
                        let next = if own {
                            crate::reports::summary::enforcing_record(&text)
                        } else {
                            // Inherited: the parent's record, enforcing for its subdomains (its
                            // p, which an absent sp follows, and an sp that weakens it).
                            let mut value = match record.p {
                                Some(Policy::Quarantine | Policy::Reject) => text.clone(),
                                _ => crate::reports::summary::enforcing_record(&text)
                                    .unwrap_or_else(|| text.clone()),
                            };
                            if matches!(record.sp, Some(Policy::None)) {
                                value =
                                    crate::fixes::tag_list_with(&value, "sp", Some("quarantine"));
                            }
                            (value != text).then_some(value)
                        };
                        let mut f = Finding::new(
                            "dmarc-enforced.safe-to-enforce",
                            Severity::Fail,
                            format!(
                                "The reports show enforcing DMARC on {domain} is safe ({}), but its policy does not enforce yet.",
                                e.reasons.join("; ")
                            ),
                        )
                        .evidence(shown.clone());
                        f = match next {
                            Some(value) => f
                                .fix(format!("Publish `{value}` at {at}."))
                                .records(vec![crate::finding::RecordChange::replace(
                                    &at,
                                    "TXT",
                                    text.clone(),
                                    value,
                                )]),
                            None => f.fix(format!(
                                "Publish an `sp=quarantine` (or a record of {domain}'s own) at {at}: its subdomains inherit the policy there."
                            )),
                        };
                        f
                    }
                }
            }
        };
        findings.push(GateFinding {
            domain,
            for_domain: None,
            finding,
            overridden: None,
        });
    }
    let failed = findings
        .iter()
        .filter(|f| f.finding.severity == Severity::Fail)
        .count();
    RequirementResult {
        requirement: requirement.to_string(),
        status: if failed == 0 {
            RequirementStatus::Passed
        } else {
            RequirementStatus::Failed
        },
        summary: if failed == 0 {
            "DMARC enforces on every sending domain, and the reports show it is safe".into()
        } else {
            format!(
                "{} of {} sending domains not yet enforced safely",
                failed,
                findings.len()
            )
        },
        findings,
        rules: Vec::new(),
    }
}

/// The verdict of a set of requirement results.
fn decide(requirements: &[RequirementResult]) -> Decision {
    match requirements.iter().map(|r| r.status).max() {
        Some(RequirementStatus::Failed) => Decision::Closed,
        Some(RequirementStatus::Inconclusive) => Decision::Inconclusive,
        _ => Decision::Open,
    }
}

/// What the stage's seed tests showed: the findings of every seed sent for the stage (after
/// overrides), or why there are none to judge.
struct SeedEvidence {
    /// How many seeds were sent for the stage, and how many of them have arrived.
    sent: usize,
    arrived: usize,
    /// Arrived authenticated and aligned (with or without warnings).
    passed: usize,
    /// Of those, how many with warnings, and which.
    warned: usize,
    warnings: Vec<String>,
    findings: Vec<GateFinding>,
}

/// Reads the seed store for `stage`; `Err` carries the status and summary the `seed`
/// requirement reports when there is nothing to judge.
fn seed_evidence(plan: &Plan, stage: &str) -> Result<SeedEvidence, (RequirementStatus, String)> {
    let Some(seed) = &plan.seed else {
        return Err((
            RequirementStatus::Failed,
            "the plan has no [seed] section".into(),
        ));
    };
    let send_hint = format!(
        "send them with `mailshift seed send {} --stage {stage}`",
        plan.path.display()
    );
    let within = std::time::Duration::from_secs(seed.within_minutes * 60);
    let redactor = crate::seed::send::redactor(seed);
    let results = match crate::seed::results::load(&seed.store, Some(stage), within, &redactor) {
        Err(e) => return Err((RequirementStatus::Inconclusive, e.to_string())),
        Ok(None) => {
            return Err((
                RequirementStatus::Inconclusive,
                format!(
                    "no seeds were sent for stage `{stage}` yet (no store at {}): {send_hint}",
                    seed.store.display()
                ),
            ))
        }
        Ok(Some(r)) => r,
    };
    let outcomes = results.outcomes;
    if outcomes.is_empty() {
        return Err((
            RequirementStatus::Inconclusive,
            format!("no seeds were sent for stage `{stage}` yet: {send_hint}"),
        ));
    }
    Ok(SeedEvidence {
        sent: outcomes.len(),
        arrived: outcomes.iter().filter(|o| o.arrival.is_some()).count(),
        passed: outcomes
            .iter()
            .filter(|o| {
                o.arrival.is_some()
                    && matches!(
                        o.status,
                        crate::finding::Status::Pass | crate::finding::Status::Warn
                    )
            })
            .count(),
        warned: outcomes
            .iter()
            .filter(|o| o.arrival.is_some() && o.status == crate::finding::Status::Warn)
            .count(),
        warnings: {
            let mut ids: Vec<String> = Vec::new();
            for f in outcomes.iter().flat_map(|o| &o.findings) {
                if f.severity == Severity::Warn && !ids.contains(&f.id) {
                    ids.push(f.id.clone());
                }
            }
            ids
        },
        findings: outcomes
            .iter()
            .flat_map(|o| apply_overrides(plan, &seed.from_domain, o.findings.clone()))
            .collect(),
    })
}

/// The `seed` requirement: every seed sent for this stage arrived in time, authenticated and
/// aligned, with one-click unsubscribe.
fn seed_result(
    stage: &str,
    evidence: &Result<SeedEvidence, (RequirementStatus, String)>,
) -> RequirementResult {
    let (status, summary, findings) = match evidence {
        Err((status, summary)) => (*status, summary.clone(), Vec::new()),
        Ok(e) => (
            status_of(e.findings.iter(), false),
            format!(
                "{} of {} seed{} sent for `{stage}` arrived authenticated and aligned{}",
                e.passed,
                e.sent,
                if e.sent == 1 { "" } else { "s" },
                match e.warned {
                    0 => String::new(),
                    n => format!(
                        " ({n} with {}: {})",
                        if n == 1 { "a warning" } else { "warnings" },
                        e.warnings.join(", ")
                    ),
                }
            ),
            e.findings.clone(),
        ),
    };
    RequirementResult {
        requirement: Requirement::Seed.to_string(),
        status,
        summary,
        findings,
        rules: Vec::new(),
    }
}

/// The checks were not run because no requirement needed them; cannot happen for a
/// requirement that does, but is reported rather than panicking.
fn unreachable_requirement(requirement: &Requirement) -> RequirementResult {
    RequirementResult {
        requirement: requirement.to_string(),
        status: RequirementStatus::Inconclusive,
        summary: "the checks this requirement needs were not run".into(),
        findings: Vec::new(),
        rules: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::policies::Rule;

    fn rule(toml_text: &str) -> Rule {
        toml::from_str(toml_text).unwrap()
    }

    fn finding(domain: &str, id: &str, severity: Severity) -> GateFinding {
        GateFinding {
            domain: domain.into(),
            for_domain: None,
            finding: Finding::new(id, severity, "m"),
            overridden: None,
        }
    }

    const SPF_OR_DKIM: &str = r#"
        id = "spf-or-dkim"
        title = "SPF or DKIM"
        why = "w"
        verified_by = "dns"
        checks = ["domain.nxdomain"]
        any_of = [["spf.*"], ["dkim.*"]]
    "#;

    #[test]
    fn spf_or_dkim_holds_only_when_each_domain_has_one_of_them() {
        let rule = rule(SPF_OR_DKIM);
        let domains = vec![
            "shop.example.de".to_string(),
            "news.example.co.uk".to_string(),
        ];
        // Each domain has one of the two: the rule holds, though each group fails somewhere.
        let all = [
            finding("shop.example.de", "spf.missing", Severity::Fail),
            finding("shop.example.de", "dkim.ok", Severity::Pass),
            finding("news.example.co.uk", "spf.ok", Severity::Pass),
            finding("news.example.co.uk", "dkim.missing", Severity::Fail),
        ];
        let refs: Vec<&GateFinding> = all.iter().collect();
        let mut behind = Vec::new();
        let (status, detail, per) = judge_rule(&rule, &refs, &domains, &mut behind);
        assert_eq!(status, RequirementStatus::Passed, "{detail}");
        assert_eq!(per[0].detail, "DKIM passes");
        assert_eq!(per[1].detail, "SPF passes");
        assert!(behind.is_empty());
        // A domain with a failing SPF and no DKIM evidence at all fails, even though another
        // domain's DKIM passes.
        let all = [
            finding("shop.example.de", "spf.missing", Severity::Fail),
            finding("news.example.co.uk", "spf.ok", Severity::Pass),
            finding("news.example.co.uk", "dkim.ok", Severity::Pass),
        ];
        let refs: Vec<&GateFinding> = all.iter().collect();
        let (status, detail, per) = judge_rule(&rule, &refs, &domains, &mut behind);
        assert_eq!(status, RequirementStatus::Failed);
        assert_eq!(per[0].status, RequirementStatus::Failed);
        assert_eq!(per[0].detail, "spf.missing (fail), no DKIM finding");
        assert_eq!(per[1].detail, "SPF and DKIM pass");
        assert!(
            detail.starts_with("shop.example.de failed: spf.missing (fail)")
                && detail.ends_with("holds for news.example.co.uk (SPF and DKIM pass)"),
            "{detail}"
        );
        assert_eq!(behind.len(), 1);
        assert_eq!(behind[0].domain, "shop.example.de");
    }

    #[test]
    fn a_return_paths_findings_count_for_the_domain_whose_mail_uses_it() {
        let rule = rule(SPF_OR_DKIM);
        let mut rp = finding("em4821.shop.example.de", "spf.ok", Severity::Pass);
        rp.for_domain = Some("shop.example.de".into());
        let all = [
            finding("shop.example.de", "dkim.missing", Severity::Fail),
            rp,
        ];
        let refs: Vec<&GateFinding> = all.iter().collect();
        let (status, _, per) = judge_rule(
            &rule,
            &refs,
            &["shop.example.de".to_string()],
            &mut Vec::new(),
        );
        assert_eq!(status, RequirementStatus::Passed);
        assert_eq!(per[0].detail, "SPF passes");
    }
}
