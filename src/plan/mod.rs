//! Migration plans: the TOML file that says what moves where, in which stages, behind which gates.
//!
//! A plan names the old and new platform (provider profiles), the sending domains with what each
//! platform needs there (DKIM selectors, return-path and tracking hosts), the new platform's
//! dedicated sending IPs, the mailbox-provider policies to meet, the stages in order with the
//! requirements of each stage's gate, and overrides (check ids to ignore or downgrade, each with a
//! reason). [`Plan::load`] reads and validates one; every problem is reported with file, line,
//! column and field (`plan.toml:14:12: stage[2].requires[1]: unknown requirement `dnss``), and all
//! of them are reported at once.

use crate::catalog::policies::is_check_pattern;
use crate::catalog::Catalog;
use crate::domain::{parse_selector, DomainName};
use fields::{List, Typed};
use serde::Deserialize;
use std::fmt;
use std::net::IpAddr;
use std::ops::{Range, RangeInclusive};
use std::path::{Path, PathBuf};
use toml::Spanned;

mod fields;
mod warmup;

/// One problem in a plan file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanProblem {
    pub line: usize,
    pub column: usize,
    /// The field, as a path (`stage[2].requires[1]`); empty for syntax errors.
    pub field: String,
    pub message: String,
}

/// A plan that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Read(#[from] crate::files::FileError),
    #[error("{}", render_problems(.path, .problems))]
    Invalid {
        path: PathBuf,
        problems: Vec<PlanProblem>,
    },
}

fn render_problems(path: &Path, problems: &[PlanProblem]) -> String {
    problems
        .iter()
        .map(|p| {
            let field = if p.field.is_empty() {
                String::new()
            } else {
                format!("{}: ", p.field)
            };
            format!(
                "{}:{}:{}: {field}{}",
                path.display(),
                p.line,
                p.column,
                p.message
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

// ---- the file as written ------------------------------------------------------------------
//
// Every leaf is a `Typed` and every array a `List`, and required fields are `Option`s: nothing in
// a plan stops the parse, so every problem is reported at once (see `fields`). Unknown keys are
// collected apart.

type Text = Typed<String>;

#[derive(Debug, Deserialize)]
struct RawPlan {
    migration: Option<Spanned<RawMigration>>,
    #[serde(default, rename = "domain")]
    domains: List<Spanned<RawDomain>>,
    #[serde(default, rename = "stage")]
    stages: List<Spanned<RawStage>>,
    #[serde(default, rename = "override")]
    overrides: List<Spanned<RawOverride>>,
    #[serde(default)]
    seed: Option<Spanned<RawSeed>>,
    #[serde(default)]
    keep: List<Spanned<RawKeep>>,
    #[serde(default, rename = "pool")]
    pools: List<Spanned<RawPool>>,
    #[serde(default)]
    warmup: Option<Spanned<warmup::RawWarmup>>,
    #[serde(default, rename = "cohort")]
    cohorts: List<Spanned<warmup::RawCohort>>,
    #[serde(default)]
    dmarc: Option<Spanned<RawDmarc>>,
}

/// `[dmarc]`: what `dmarc-enforced` asks of the receivers' reports.
#[derive(Debug, Deserialize)]
struct RawDmarc {
    enforce_after_days: Option<Typed<u64>>,
    min_pass_rate: Option<Typed<f64>>,
    max_ptr: Option<Typed<u64>>,
    #[serde(default)]
    reports: List<Text>,
}

#[derive(Debug, Deserialize)]
struct RawKeep {
    name: Option<Text>,
    provider: Option<Text>,
    spf: Option<Text>,
    #[serde(default)]
    domains: List<Text>,
    envelope: Option<Text>,
}

#[derive(Debug, Deserialize)]
struct RawPool {
    name: Option<Text>,
    platform: Option<Text>,
    dedicated: Option<Typed<bool>>,
    #[serde(default)]
    ips: List<Text>,
    #[serde(default)]
    domains: List<Text>,
}

#[derive(Debug, Deserialize)]
struct RawSeed {
    from: Option<Text>,
    #[serde(default)]
    recipients: List<Text>,
    relay: Option<Text>,
    tls: Option<Text>,
    username: Option<Text>,
    username_env: Option<Text>,
    password_env: Option<Text>,
    password_file: Option<Text>,
    /// Accepted only to say where secrets belong.
    password: Option<Text>,
    within_minutes: Option<Typed<u64>>,
    store: Option<Text>,
}

#[derive(Debug, Deserialize)]
struct RawMigration {
    name: Option<Text>,
    from: Option<Text>,
    to: Option<Text>,
    #[serde(default)]
    policies: List<Text>,
    #[serde(default)]
    new_sending_ips: List<Text>,
    snapshot: Option<Text>,
}

#[derive(Debug, Deserialize, Default)]
struct RawPlatform {
    platform: Option<Text>,
    /// Absent: the profile's selectors; `[]`: none.
    selectors: Option<List<Text>>,
    return_path: Option<Text>,
    #[serde(default)]
    tracking: List<Text>,
    signing_domain: Option<Text>,
}

#[derive(Debug, Deserialize)]
struct RawDomain {
    name: Option<Text>,
    sending: Option<Typed<bool>>,
    old: Option<Spanned<RawPlatform>>,
    new: Option<Spanned<RawPlatform>>,
}

#[derive(Debug, Deserialize)]
struct RawStage {
    name: Option<Text>,
    #[serde(default)]
    requires: List<Text>,
    /// The stage at which the old platform is retired (default: the stage named `cutover`).
    cutover: Option<Typed<bool>>,
    description: Option<Text>,
}

#[derive(Debug, Deserialize)]
struct RawOverride {
    check: Option<Text>,
    action: Option<Text>,
    reason: Option<Text>,
    domain: Option<Text>,
}

// ---- the validated plan ------------------------------------------------------------------

/// What one platform needs at one sending domain.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PlatformSetup {
    /// The platform's provider id (`[migration] from`/`to` unless the domain names its own).
    pub platform: String,
    /// The DKIM selectors the plan names: `None` when it names none (the profile's defaults
    /// apply), `Some([])` when it says there are none.
    pub selectors: Option<Vec<String>>,
    pub return_path: Option<DomainName>,
    pub tracking: Vec<DomainName>,
    /// The DKIM `d=` domain when the platform does not sign as the From domain (a subdomain or
    /// a parent); alignment is judged on it.
    pub signing_domain: Option<DomainName>,
}

/// A domain of the migration.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SendingDomain {
    pub name: DomainName,
    /// False for parked and defensive domains: they send nothing, and are judged on what
    /// protects them (null MX, `v=spf1 -all`, DMARC reject).
    pub sending: bool,
    /// The platform being left here; `None` for a domain new on the new platform.
    pub old: Option<PlatformSetup>,
    /// The platform moved to; `None` for a domain being retired with the old platform.
    pub new: Option<PlatformSetup>,
}

/// A sender that must stay authorised throughout the migration (staff mail, a help desk, a
/// CRM): it is part of the merged SPF record's budget, and no advice ever suggests dropping it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KeptSender {
    /// What the plan calls it (`Staff mail`), or the provider's name.
    pub name: String,
    pub source: KeptSource,
    /// The plan domains it sends for (exactly those: a subdomain is a domain of its own);
    /// empty means every sending domain of the plan.
    pub domains: Vec<DomainName>,
    /// Its mail uses the From domain as envelope sender (MAIL FROM), so receivers evaluate SPF
    /// at the From domain for it: the From domain's SPF record must keep authorising it.
    pub envelope_from_domain: bool,
}

/// How a kept sender is known.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeptSource {
    /// A provider profile (its SPF include).
    Provider(String),
    /// One SPF term (`include:_spf.helpdesk.example`, `ip4:192.0.2.0/24`).
    SpfTerm(String),
}

impl KeptSender {
    /// True when it sends for `domain`.
    pub fn applies_to(&self, domain: &DomainName) -> bool {
        self.domains.is_empty() || self.domains.contains(domain)
    }
}

/// Sending IPs of one platform: dedicated (the company's own, so reverse DNS and warmup are
/// its business) or shared (the platform's pool).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct IpPool {
    pub name: String,
    /// Provider id.
    pub platform: String,
    pub dedicated: bool,
    pub ips: Vec<IpAddr>,
    /// The plan domains that send from it (exactly those); empty means every domain on that
    /// platform.
    pub domains: Vec<DomainName>,
}

impl IpPool {
    /// True when `platform` sends `domain`'s mail from this pool.
    pub fn serves(&self, platform: &str, domain: &DomainName) -> bool {
        self.platform == platform && (self.domains.is_empty() || self.domains.contains(domain))
    }
}

/// A requirement of a stage's gate. New kinds are added here (and to [`Requirement::parse`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "id")]
pub enum Requirement {
    /// A backup of the records, taken before any change (`[migration] snapshot`).
    Snapshot,
    /// The DNS checks of every plan domain pass (after overrides).
    Dns,
    /// The migration-aware checks pass: both platforms authorised, budgets, alignment, rDNS.
    Coexistence,
    /// Every policy named in `[migration] policies`.
    Policies,
    /// One policy (`policy:gmail-2024`).
    Policy(String),
    /// Seed messages arrived authenticated (filled in by seed tests).
    Seed,
    /// The warmup finished clean: every cohort (`warmup`), or one (`warmup:<cohort>`), sent its
    /// full volume for the plan's `clean_days` in a row within its thresholds.
    Warmup(Option<String>),
    /// After the cutover: the old platform's includes, selectors and hosts are gone.
    OldRemoved,
    /// A step no DNS query can prove, confirmed with `mailshift attest` (`attested:<step>`).
    Attested(String),
    /// DMARC enforces (`p=quarantine` or `reject`), and the receivers' aggregate reports show
    /// it is safe: the new platform passing for days in a row, no unlisted sender failing.
    DmarcEnforced,
    /// The new platforms' pool IPs and the plan's domains are on no DNS blocklist.
    Blocklists,
    /// Every authoritative server serves the same mail records, and the resolver sees them:
    /// the new records are visible everywhere.
    Propagation,
    /// The plan's domains' answers validate (DNSSEC), and their MX hosts' TLSA records are
    /// sound.
    Dnssec,
    /// Every MX host of the plan's domains offers STARTTLS with a certificate senders accept
    /// (and matches its TLSA records, under DANE).
    Smtp,
}

impl Requirement {
    pub const KNOWN: &'static str = "snapshot, dns, coexistence, policies, policy:<id>, seed, warmup, warmup:<cohort>, old-removed, attested:<step>, dmarc-enforced, blocklists, propagation, dnssec, smtp";

    pub fn parse(text: &str) -> Option<Requirement> {
        Some(match text.trim() {
            "snapshot" => Requirement::Snapshot,
            "dns" => Requirement::Dns,
            "coexistence" => Requirement::Coexistence,
            "policies" => Requirement::Policies,
            "seed" => Requirement::Seed,
            "warmup" => Requirement::Warmup(None),
            "old-removed" => Requirement::OldRemoved,
            "dmarc-enforced" => Requirement::DmarcEnforced,
            "blocklists" => Requirement::Blocklists,
            "propagation" => Requirement::Propagation,
            "dnssec" => Requirement::Dnssec,
            "smtp" => Requirement::Smtp,
            other => {
                let named = |prefix: &str| {
                    other
                        .strip_prefix(prefix)
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                };
                if let Some(cohort) = named("warmup:") {
                    Requirement::Warmup(Some(cohort))
                } else if let Some(step) = named("attested:") {
                    Requirement::Attested(step)
                } else {
                    Requirement::Policy(named("policy:")?)
                }
            }
        })
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Requirement::Snapshot => f.write_str("snapshot"),
            Requirement::Dns => f.write_str("dns"),
            Requirement::Coexistence => f.write_str("coexistence"),
            Requirement::Policies => f.write_str("policies"),
            Requirement::Policy(id) => write!(f, "policy:{id}"),
            Requirement::Seed => f.write_str("seed"),
            Requirement::Warmup(None) => f.write_str("warmup"),
            Requirement::Warmup(Some(c)) => write!(f, "warmup:{c}"),
            Requirement::OldRemoved => f.write_str("old-removed"),
            Requirement::Attested(step) => write!(f, "attested:{step}"),
            Requirement::DmarcEnforced => f.write_str("dmarc-enforced"),
            Requirement::Blocklists => f.write_str("blocklists"),
            Requirement::Propagation => f.write_str("propagation"),
            Requirement::Dnssec => f.write_str("dnssec"),
            Requirement::Smtp => f.write_str("smtp"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Stage {
    pub name: String,
    pub description: Option<String>,
    pub requires: Vec<Requirement>,
    /// The old platform is retired from this stage on.
    pub cutover: bool,
}

/// What an override does to matching findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OverrideAction {
    /// The finding no longer counts (it is still listed, marked as overridden).
    Ignore,
    /// One step less severe: fail becomes warn, warn becomes info.
    Downgrade,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Override {
    /// A check id or pattern (`dmarc.policy-none`, `spf.*`).
    pub check: String,
    pub action: OverrideAction,
    pub reason: String,
    /// Only for this domain (and names below it), when given.
    pub domain: Option<DomainName>,
}

/// How seed messages are sent to the new platform's relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SeedTls {
    /// Plain connection upgraded with STARTTLS, which is required (port 587 by default).
    Starttls,
    /// TLS from the first byte (port 465 by default).
    Implicit,
    /// No encryption: only with `seed send --allow-plaintext` (port 25 by default).
    None,
}

/// Where a secret comes from. The secret itself is never in the plan, in output or in logs.
#[derive(Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretSource {
    Env(String),
    File(PathBuf),
}

impl fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::Env(name) => write!(f, "env:{name}"),
            SecretSource::File(path) => write!(f, "file:{}", path.display()),
        }
    }
}

/// The plan's seed tests: who sends, to which seed addresses, through which relay.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SeedSetup {
    /// The From address (its domain is one of the plan's domains).
    pub from: String,
    pub from_domain: DomainName,
    /// The seed addresses; the inbox accepts mail for these only.
    pub recipients: Vec<String>,
    pub relay_host: String,
    pub relay_port: u16,
    pub tls: SeedTls,
    pub username: Option<String>,
    pub username_env: Option<String>,
    pub password: Option<SecretSource>,
    /// A seed that has not arrived this long after it was sent has failed.
    pub within_minutes: u64,
    /// The seed store (sent tokens, arrivals), resolved relative to the plan.
    #[serde(serialize_with = "crate::output::lossy_path")]
    pub store: PathBuf,
}

/// A validated plan.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Plan {
    #[serde(serialize_with = "crate::output::lossy_path")]
    pub path: PathBuf,
    pub name: String,
    /// Provider id of the old platform.
    pub from: String,
    /// Provider id of the new platform.
    pub to: String,
    pub policies: Vec<String>,
    /// The backup zone file, resolved relative to the plan.
    #[serde(serialize_with = "crate::output::lossy_optional_path")]
    pub snapshot: Option<PathBuf>,
    pub domains: Vec<SendingDomain>,
    pub stages: Vec<Stage>,
    pub overrides: Vec<Override>,
    pub seed: Option<SeedSetup>,
    /// Senders that stay authorised throughout.
    pub keep: Vec<KeptSender>,
    /// Sending IPs by platform (`[migration] new_sending_ips` is a dedicated pool of the new
    /// platform).
    pub pools: Vec<IpPool>,
    /// The warmup: cohorts, schedules, thresholds (`[warmup]`, `[[cohort]]`).
    pub warmup: Option<crate::warmup::WarmupPlan>,
    /// What `dmarc-enforced` asks of the reports (`[dmarc]`).
    pub enforcement: crate::reports::summary::EnforcementRule,
    /// Report files and folders (a Maildir) imported before every command that reads the
    /// reports (`[dmarc] reports`), relative to the plan.
    pub report_paths: Vec<PathBuf>,
    /// Reverse DNS lookups at most for the report sources nothing else places, the biggest
    /// first (`[dmarc] max_ptr`; 0: none).
    pub max_ptr: usize,
}

/// The store of a plan's seed tests: `[seed] store`, or `<plan>.seed.db` beside the plan.
pub fn default_seed_store(plan_path: &Path) -> PathBuf {
    let mut name = plan_path
        .file_stem()
        .map(|s| s.to_os_string())
        .unwrap_or_default();
    name.push(".seed.db");
    plan_path.with_file_name(name)
}

/// A plain `local@domain` address (what seed From and recipients must be).
fn parse_address(text: &str) -> Result<(String, DomainName), String> {
    let text = text.trim();
    let (local, domain) = text
        .rsplit_once('@')
        .ok_or_else(|| format!("`{text}` is not an email address"))?;
    if local.is_empty()
        || local.len() > 64
        || !local.chars().all(|c| {
            c.is_ascii_graphic()
                && !matches!(
                    c,
                    '<' | '>' | '(' | ')' | ',' | ';' | ':' | '[' | ']' | '"' | '\\'
                )
        })
    {
        return Err(format!(
            "`{text}` does not have a plain mailbox before the `@`"
        ));
    }
    let domain = DomainName::parse(domain).map_err(|e| e.reason)?;
    Ok((format!("{local}@{domain}"), domain))
}

/// The keys the plan format knows in the table at `parents` (for "did you mean").
fn known_keys(parents: &[String]) -> &'static [&'static str] {
    let path: Vec<&str> = parents
        .iter()
        .filter(|s| s.parse::<usize>().is_err())
        .map(String::as_str)
        .collect();
    match path.as_slice() {
        [] => &[
            "migration",
            "domain",
            "stage",
            "override",
            "seed",
            "keep",
            "pool",
            "warmup",
            "cohort",
            "dmarc",
        ],
        ["dmarc"] => &["enforce_after_days", "min_pass_rate", "max_ptr", "reports"],
        ["migration"] => &[
            "name",
            "from",
            "to",
            "policies",
            "new_sending_ips",
            "snapshot",
        ],
        ["domain"] => &["name", "sending", "old", "new"],
        ["domain", "old" | "new"] => &[
            "platform",
            "selectors",
            "return_path",
            "tracking",
            "signing_domain",
        ],
        ["keep"] => &["name", "provider", "spf", "domains", "envelope"],
        ["pool"] => &["name", "platform", "dedicated", "ips", "domains"],
        ["stage"] => &["name", "requires", "cutover", "description"],
        ["override"] => &["check", "action", "reason", "domain"],
        ["seed"] => &[
            "from",
            "recipients",
            "relay",
            "tls",
            "username",
            "username_env",
            "password_env",
            "password_file",
            "within_minutes",
            "store",
        ],
        other => warmup::known_keys(other).unwrap_or(&[]),
    }
}

/// The known key closest to a misspelt one (at most two edits away).
fn closest(name: &str, known: &[&'static str]) -> Option<&'static str> {
    known
        .iter()
        .map(|k| (edit_distance(name, k), *k))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let current = row[j + 1];
            row[j + 1] = (previous + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(current + 1);
            previous = current;
        }
    }
    row[b.len()]
}

/// `["domain", "0", "new"]` → `domain[0].new` (the form problems name fields in).
fn field_path(segments: &[String]) -> String {
    let mut out = String::new();
    for segment in segments {
        if segment.parse::<usize>().is_ok() {
            out.push_str(&format!("[{segment}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(segment);
        }
    }
    out
}

/// Line and column (1-based) of a byte offset.
fn position(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset.min(text.len())).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map_or(before.len(), |nl| before.len() - nl - 1)
        + 1;
    (line, column)
}

struct Problems<'a> {
    text: &'a str,
    list: Vec<PlanProblem>,
}

impl Problems<'_> {
    fn at(&mut self, span: Range<usize>, field: impl Into<String>, message: impl Into<String>) {
        let (line, column) = position(self.text, span.start);
        self.list.push(PlanProblem {
            line,
            column,
            field: field.into(),
            message: message.into(),
        });
    }

    /// A leaf's value, or `None` after reporting its wrong type.
    fn value<'t, T>(&mut self, typed: &'t Typed<T>, field: &str) -> Option<&'t T> {
        match &typed.value {
            Ok(v) => Some(v),
            Err(e) => {
                self.at(typed.span.clone(), field, e.clone());
                None
            }
        }
    }

    /// An optional leaf: `None` when absent or of the wrong type (reported).
    fn optional<'t, T>(&mut self, typed: &'t Option<Typed<T>>, field: &str) -> Option<&'t T> {
        typed.as_ref().and_then(|t| self.value(t, field))
    }

    /// An optional whole number within `range`: `None` when absent, of the wrong type or
    /// outside the range (reported, with `message`, at the value).
    fn optional_within(
        &mut self,
        typed: &Option<Typed<u64>>,
        field: &str,
        range: RangeInclusive<u64>,
        message: &str,
    ) -> Option<u64> {
        let value = *self.optional(typed, field)?;
        if range.contains(&value) {
            return Some(value);
        }
        if let Some(t) = typed {
            self.at(t.span.clone(), field, message);
        }
        None
    }

    /// A required leaf: reported at `table` when missing.
    fn required<'t, T>(
        &mut self,
        typed: &'t Option<Typed<T>>,
        table: &Range<usize>,
        field: &str,
    ) -> Option<&'t T> {
        match typed {
            Some(t) => self.value(t, field),
            None => {
                let key = field.rsplit('.').next().unwrap_or(field);
                self.at(table.clone(), field, format!("missing `{key}`"));
                None
            }
        }
    }

    /// The strings of an array field, each with its field path (`field[2]`) and span; elements
    /// of the wrong type, or a value that is not an array, are reported and left out.
    fn strings<'t>(
        &mut self,
        list: &'t List<Text>,
        field: &str,
    ) -> Vec<(String, Range<usize>, &'t str)> {
        let mut out = Vec::new();
        for (i, item) in self.list(list, field).iter().enumerate() {
            let path = format!("{field}[{i}]");
            if let Some(text) = self.value(item, &path) {
                out.push((path, item.span.clone(), text.as_str()));
            }
        }
        out
    }

    /// An array's elements (none after reporting a value that is not an array).
    fn list<'t, E>(&mut self, list: &'t List<E>, field: &str) -> &'t [E] {
        match &list.items {
            Ok(items) => items,
            Err(e) => {
                self.at(list.span.clone(), field, e.clone());
                &[]
            }
        }
    }
}

impl Plan {
    /// Reads and validates a plan against the catalog (provider and policy ids).
    pub fn load(path: &Path, catalog: &Catalog) -> Result<Plan, PlanError> {
        let text = crate::files::read_text(path, crate::files::FileKind::Plan)?;
        Plan::parse(&text, path, catalog)
    }

    /// Validates plan text; `path` names it in errors and anchors relative paths.
    pub fn parse(text: &str, path: &Path, catalog: &Catalog) -> Result<Plan, PlanError> {
        let invalid = |problems| PlanError::Invalid {
            path: path.to_path_buf(),
            problems,
        };
        let (raw, unknown): (RawPlan, _) =
            fields::from_str_collecting_unknown(text).map_err(|e| {
                let (line, column) = e.span().map_or((1, 1), |s| position(text, s.start));
                invalid(vec![PlanProblem {
                    line,
                    column,
                    field: String::new(),
                    message: e.message().trim().to_string(),
                }])
            })?;
        let mut problems = Problems {
            text,
            list: Vec::new(),
        };
        for key in unknown {
            let span = fields::key_span(text, &key).unwrap_or(0..0);
            let (name, parents) = key
                .split_last()
                .map_or(("", &[][..]), |(n, p)| (n.as_str(), p));
            let known = known_keys(parents);
            let in_platform = known_keys(&["domain".into(), "new".into()]);
            let hint = match closest(name, known) {
                Some(k) => format!(" (did you mean `{k}`?)"),
                None if known.is_empty() => String::new(),
                // A platform's key written on the domain itself.
                None if known.contains(&"old") && closest(name, in_platform).is_some() => format!(
                    " (`{}` belongs in [domain.new] or [domain.old])",
                    closest(name, in_platform).unwrap_or_default()
                ),
                None => format!(" (known: {})", known.join(", ")),
            };
            problems.at(
                span,
                field_path(parents),
                format!("unknown field `{name}`{hint}"),
            );
        }
        let plan = build(raw, path, catalog, &mut problems);
        if problems.list.is_empty() {
            Ok(plan)
        } else {
            problems.list.sort_by_key(|p| (p.line, p.column));
            Err(invalid(problems.list))
        }
    }

    /// The stage named `name`.
    pub fn stage(&self, name: &str) -> Option<(usize, &Stage)> {
        self.stages.iter().enumerate().find(|(_, s)| s.name == name)
    }

    /// Index of the cutover stage (the old platform is retired from there on).
    pub fn cutover_index(&self) -> Option<usize> {
        self.stages.iter().position(|s| s.cutover)
    }

    /// True when stage `stage` requires `requirement`.
    pub fn stage_requires(&self, stage: usize, requirement: &Requirement) -> bool {
        self.stages
            .get(stage)
            .is_some_and(|s| s.requires.contains(requirement))
    }

    /// Before the cutover stage both platforms send, so both must be authorised.
    pub fn before_cutover(&self, stage: usize) -> bool {
        self.cutover_index().is_none_or(|c| stage < c)
    }

    /// The pools `platform` sends `domain`'s mail from.
    pub fn pools_for<'a>(
        &'a self,
        platform: &'a str,
        domain: &'a DomainName,
    ) -> impl Iterator<Item = &'a IpPool> + 'a {
        self.pools
            .iter()
            .filter(move |p| p.serves(platform, domain))
    }

    /// The senders kept for `domain`.
    pub fn kept_for<'a>(
        &'a self,
        domain: &'a DomainName,
    ) -> impl Iterator<Item = &'a KeptSender> + 'a {
        self.keep.iter().filter(move |k| k.applies_to(domain))
    }
}

fn build(raw: RawPlan, path: &Path, catalog: &Catalog, problems: &mut Problems<'_>) -> Plan {
    let Some(migration) = raw.migration else {
        problems.at(
            0..0,
            "migration",
            "the plan has no [migration] section (name, from, to)",
        );
        return Plan {
            path: path.to_path_buf(),
            name: String::new(),
            from: String::new(),
            to: String::new(),
            policies: Vec::new(),
            snapshot: None,
            domains: Vec::new(),
            stages: Vec::new(),
            overrides: Vec::new(),
            seed: None,
            keep: Vec::new(),
            pools: Vec::new(),
            warmup: None,
            enforcement: Default::default(),
            report_paths: Vec::new(),
            max_ptr: crate::reports::sources::MAX_PTR,
        };
    };
    let migration_span = migration.span();
    let migration = migration.into_inner();
    let provider = |field: &str, value: &Option<Text>, problems: &mut Problems<'_>| {
        let id = problems.required(value, &migration_span, &format!("migration.{field}"))?;
        if catalog.provider(id).is_none() {
            let known: Vec<&str> = catalog.providers.iter().map(|p| p.id.as_str()).collect();
            if let Some(v) = value {
                problems.at(
                    v.span.clone(),
                    format!("migration.{field}"),
                    format!(
                        "unknown provider `{id}` (known: {}; add your own with --checks-dir)",
                        known.join(", ")
                    ),
                );
            }
        }
        Some(id.to_ascii_lowercase())
    };
    let from = provider("from", &migration.from, problems).unwrap_or_default();
    let to = provider("to", &migration.to, problems).unwrap_or_default();
    if !from.is_empty() && from == to {
        if let Some(t) = &migration.to {
            problems.at(
                t.span.clone(),
                "migration.to",
                "the new platform is the same as the old one",
            );
        }
    }
    let name = problems
        .required(&migration.name, &migration_span, "migration.name")
        .map(|n| n.trim().to_string());
    if let (Some(n), Some(raw)) = (&name, &migration.name) {
        if n.is_empty() {
            problems.at(
                raw.span.clone(),
                "migration.name",
                "the migration needs a name",
            );
        }
    }
    let mut policies = Vec::new();
    for (field, span, id) in problems.strings(&migration.policies, "migration.policies") {
        if catalog.policy(id).is_none() {
            let known: Vec<&str> = catalog.policies.iter().map(|p| p.id.as_str()).collect();
            problems.at(
                span,
                field,
                format!("unknown policy `{id}` (known: {})", known.join(", ")),
            );
        }
        policies.push(id.to_ascii_lowercase());
    }
    let mut new_sending_ips = Vec::new();
    for (field, span, text) in
        problems.strings(&migration.new_sending_ips, "migration.new_sending_ips")
    {
        match text.trim().parse::<IpAddr>() {
            Ok(addr) => new_sending_ips.push(addr),
            Err(_) => problems.at(span, field, format!("`{text}` is not an IP address")),
        }
    }
    let snapshot = migration.snapshot.as_ref().and_then(|s| {
        let text = problems.value(s, "migration.snapshot")?;
        let p = relative_to(path, text);
        // The backup may not exist yet (it is taken at the first stage); if it does, it must
        // be a file mailshift can read.
        if let Err(e) = crate::files::check_regular_or_absent(&p, crate::files::FileKind::Zone) {
            problems.at(s.span.clone(), "migration.snapshot", e.to_string());
        }
        Some(p)
    });

    let raw_domains = problems.list(&raw.domains, "domain");
    if raw_domains.is_empty() {
        problems.at(
            migration_span.clone(),
            "domain",
            "the plan names no sending domain: add a [[domain]] with its name",
        );
    }
    let mut domains: Vec<SendingDomain> = Vec::new();
    for (i, d) in raw_domains.iter().enumerate() {
        let span = d.span();
        let d = d.get_ref();
        let field = format!("domain[{i}]");
        let sending = problems
            .optional(&d.sending, &format!("{field}.sending"))
            .copied()
            .unwrap_or(true);
        let sides = Sides {
            catalog,
            sending,
            field: &field,
        };
        let old = sides.side(d.old.as_ref(), "old", &from, problems);
        let new = sides.side(d.new.as_ref(), "new", &to, problems);
        if sending && old.is_none() && new.is_none() && d.old.is_some() && d.new.is_some() {
            problems.at(
                span.clone(),
                field.clone(),
                "a sending domain needs an old or a new platform (both are \"none\")",
            );
        }
        let Some(text) = problems.required(&d.name, &span, &format!("{field}.name")) else {
            continue;
        };
        let at = d.name.as_ref().map_or(span.clone(), |n| n.span.clone());
        let name = match DomainName::parse(text) {
            Ok(n) => n,
            Err(e) => {
                problems.at(at, format!("{field}.name"), e.to_string());
                continue;
            }
        };
        if domains.iter().any(|x| x.name == name) {
            problems.at(
                at,
                format!("{field}.name"),
                format!("{name} is listed twice"),
            );
        }
        domains.push(SendingDomain {
            name,
            sending,
            old,
            new,
        });
    }
    let keep = kept_senders(&raw.keep, catalog, &domains, problems);
    let mut pools = pools(&raw.pools, catalog, &domains, problems);
    if !new_sending_ips.is_empty() && !to.is_empty() {
        // The first form of a pool: the new platform's dedicated IPs, for every domain.
        pools.push(IpPool {
            name: "new_sending_ips".into(),
            platform: to.clone(),
            dedicated: true,
            ips: new_sending_ips,
            domains: Vec::new(),
        });
    }

    let raw_stages = problems.list(&raw.stages, "stage");
    if raw_stages.is_empty() {
        problems.at(migration_span, "stage", "the plan has no stages: add [[stage]] entries in order (setup, seed, warmup-1, …, cutover)");
    }
    let mut stages: Vec<Stage> = Vec::new();
    // The span of each kept stage, for problems found across stages.
    let mut stage_spans: Vec<Range<usize>> = Vec::new();
    for (i, s) in raw_stages.iter().enumerate() {
        let span = s.span();
        let s = s.get_ref();
        let field = format!("stage[{i}]");
        let name = problems
            .required(&s.name, &span, &format!("{field}.name"))
            .map(|n| n.trim().to_string());
        let name_span = s.name.as_ref().map_or(span.clone(), |n| n.span.clone());
        if let Some(name) = &name {
            let valid_name = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            if !valid_name {
                problems.at(
                    name_span.clone(),
                    format!("{field}.name"),
                    format!("`{name}` is not a stage name (letters, digits, `-`, `_`, `.`)"),
                );
            }
            if stages.iter().any(|x| &x.name == name) {
                problems.at(
                    name_span.clone(),
                    format!("{field}.name"),
                    format!("stage `{name}` is defined twice"),
                );
            }
        }
        let mut requires = Vec::new();
        for (rfield, at, text) in problems.strings(&s.requires, &format!("{field}.requires")) {
            match Requirement::parse(text) {
                None => problems.at(
                    at,
                    rfield,
                    format!(
                        "unknown requirement `{text}` (known: {})",
                        Requirement::KNOWN
                    ),
                ),
                Some(Requirement::Policy(id)) if catalog.policy(&id).is_none() => {
                    problems.at(at, rfield, format!("unknown policy `{id}`"))
                }
                Some(Requirement::Snapshot) if migration.snapshot.is_none() => problems.at(
                    at,
                    rfield,
                    "requires a snapshot, but [migration] names no `snapshot` file",
                ),
                Some(Requirement::Policies) if migration.policies.is_empty() => problems.at(
                    at,
                    rfield,
                    "requires the policies, but [migration] lists none in `policies`",
                ),
                Some(req) => {
                    if requires.contains(&req) {
                        problems.at(at, rfield, format!("`{req}` is listed twice"));
                    } else {
                        requires.push(req);
                    }
                }
            }
        }
        let cutover_flag = problems
            .optional(&s.cutover, &format!("{field}.cutover"))
            .copied();
        let description = problems
            .optional(&s.description, &format!("{field}.description"))
            .cloned();
        let name = name.unwrap_or_default();
        let cutover = cutover_flag.unwrap_or(name == "cutover");
        stages.push(Stage {
            name,
            description,
            requires,
            cutover,
        });
        stage_spans.push(span);
    }
    let cutovers: Vec<usize> = stages
        .iter()
        .enumerate()
        .filter(|(_, s)| s.cutover)
        .map(|(i, _)| i)
        .collect();
    if let Some(&second) = cutovers.get(1) {
        if let Some(span) = stage_spans.get(second) {
            problems.at(
                span.clone(),
                format!("stage[{second}]"),
                "more than one stage is marked as the cutover",
            );
        }
    }

    let mut overrides = Vec::new();
    for (i, o) in problems.list(&raw.overrides, "override").iter().enumerate() {
        let span = o.span();
        let o = o.get_ref();
        let field = format!("override[{i}]");
        let check = problems
            .required(&o.check, &span, &format!("{field}.check"))
            .map(|c| c.trim().to_string());
        let check_span = o.check.as_ref().map_or(span.clone(), |c| c.span.clone());
        if let Some(check) = &check {
            if !is_check_pattern(check) {
                problems.at(
                    check_span.clone(),
                    format!("{field}.check"),
                    format!(
                        "`{check}` is not a check id or pattern (`dmarc.policy-none`, `spf.*`)"
                    ),
                );
            }
        }
        let action = match problems
            .required(&o.action, &span, &format!("{field}.action"))
            .map(|a| a.trim())
        {
            Some("ignore") => OverrideAction::Ignore,
            Some("downgrade") => OverrideAction::Downgrade,
            Some(other) => {
                if let Some(a) = &o.action {
                    problems.at(
                        a.span.clone(),
                        format!("{field}.action"),
                        format!("`{other}` is not an action: use `ignore` or `downgrade`"),
                    );
                }
                OverrideAction::Ignore
            }
            None => OverrideAction::Ignore,
        };
        let reason = match (
            &o.reason,
            problems.optional(&o.reason, &format!("{field}.reason")),
        ) {
            (_, Some(r)) if !r.trim().is_empty() => r.trim().to_string(),
            (Some(r), Some(_)) => {
                problems.at(
                    r.span.clone(),
                    format!("{field}.reason"),
                    "the reason is empty: say why this check may be overridden",
                );
                String::new()
            }
            (Some(_), None) => String::new(),
            (None, _) => {
                problems.at(
                    check_span,
                    format!("{field}.reason"),
                    "an override needs a `reason` (why it is safe, and until when)",
                );
                String::new()
            }
        };
        let domain = o.domain.as_ref().and_then(|d| {
            let text = problems.value(d, &format!("{field}.domain"))?;
            match DomainName::parse(text) {
                Ok(name) => Some(name),
                Err(e) => {
                    problems.at(d.span.clone(), format!("{field}.domain"), e.to_string());
                    None
                }
            }
        });
        overrides.push(Override {
            check: check.unwrap_or_default(),
            action,
            reason,
            domain,
        });
    }

    let seed = raw
        .seed
        .as_ref()
        .and_then(|s| seed_setup(s.get_ref(), s.span(), path, &domains, problems));
    if raw.seed.is_none() {
        if let Some(i) = stages
            .iter()
            .position(|s| s.requires.contains(&Requirement::Seed))
        {
            if let Some(span) = stage_spans.get(i) {
                problems.at(span.clone(), "seed", "a stage requires seed tests, but the plan has no [seed] section (from, recipients, relay)");
            }
        }
    }

    let warmup_declared = raw.warmup.is_some();
    let warmup = warmup::warmup(
        raw.warmup.as_ref(),
        &raw.cohorts,
        path,
        &to,
        &pools,
        catalog,
        problems,
    );
    for (i, stage) in stages.iter().enumerate() {
        for r in &stage.requires {
            let span = stage_spans.get(i).cloned().unwrap_or(0..0);
            match (r, &warmup) {
                (Requirement::Warmup(_), None) if !warmup_declared => problems.at(
                    span,
                    format!("stage[{i}].requires"),
                    "a stage requires warmup, but the plan has no [warmup] section with cohorts",
                ),
                (Requirement::Warmup(Some(cohort)), Some(w)) if w.cohort(cohort).is_none() => {
                    let known: Vec<&str> = w.cohorts.iter().map(|c| c.name.as_str()).collect();
                    problems.at(
                        span,
                        format!("stage[{i}].requires"),
                        format!("no cohort `{cohort}` (cohorts: {})", known.join(", ")),
                    )
                }
                _ => {}
            }
        }
    }
    let mut enforcement = crate::reports::summary::EnforcementRule::default();
    let mut report_paths = Vec::new();
    let mut max_ptr = crate::reports::sources::MAX_PTR;
    if let Some(d) = &raw.dmarc {
        let d = d.get_ref();
        report_paths = problems
            .strings(&d.reports, "dmarc.reports")
            .into_iter()
            .map(|(_, _, text)| relative_to(path, text))
            .collect();
        if let Some(days) = problems.optional_within(
            &d.enforce_after_days,
            "dmarc.enforce_after_days",
            1..=90,
            "enforce_after_days is a number of days from 1 to 90",
        ) {
            enforcement.days = days as usize;
        }
        if let Some(rate) = problems.optional(&d.min_pass_rate, "dmarc.min_pass_rate") {
            if rate.is_finite() && *rate > 0.0 && *rate <= 1.0 {
                enforcement.min_pass_rate = *rate;
            } else if let Some(t) = &d.min_pass_rate {
                problems.at(
                    t.span.clone(),
                    "dmarc.min_pass_rate",
                    "min_pass_rate is a fraction above 0 and at most 1 (0.98 for 98%)",
                );
            }
        }
        let limit = crate::reports::sources::MAX_PTR_LIMIT;
        if let Some(n) = problems.optional_within(
            &d.max_ptr,
            "dmarc.max_ptr",
            0..=limit as u64,
            &format!("max_ptr is a number of reverse DNS lookups from 0 (none) to {limit}"),
        ) {
            max_ptr = n as usize;
        }
    }
    Plan {
        path: path.to_path_buf(),
        name: name.unwrap_or_default(),
        from,
        to,
        policies,
        snapshot,
        domains,
        stages,
        overrides,
        seed,
        keep,
        pools,
        warmup,
        enforcement,
        report_paths,
        max_ptr,
    }
}

/// A path written in the plan, relative to the plan's directory unless absolute.
fn relative_to(plan: &Path, text: &str) -> PathBuf {
    let p = PathBuf::from(text);
    if p.is_absolute() {
        p
    } else {
        plan.parent().unwrap_or(Path::new(".")).join(p)
    }
}

/// `HOST`, `HOST:PORT` or `[IPv6]:PORT` → the relay's host and port. The host must be a domain
/// name or an IP address: a URL, spaces or an email address are refused here rather than at
/// `seed send` time.
/// A host name as SMTP relays have them: letters, digits and hyphens in dot-separated labels
/// (one label, such as `localhost` or an intranet relay, is fine), internationalised names
/// accepted.
fn check_host_name(host: &str) -> Result<(), String> {
    let ascii = idna::domain_to_ascii(host.trim_end_matches('.'))
        .map_err(|_| "is not a host name".to_string())?;
    if ascii.is_empty() || ascii.len() > 253 {
        return Err("is not a host name".into());
    }
    for label in ascii.split('.') {
        let ldh = label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if label.is_empty()
            || label.len() > 63
            || !ldh
            || label.starts_with('-')
            || label.ends_with('-')
        {
            return Err(format!(
                "is not a host name (`{label}`: letters, digits and inner hyphens only)"
            ));
        }
    }
    Ok(())
}

pub fn parse_relay(text: &str, default_port: u16) -> Result<(String, u16), String> {
    let text = text.trim();
    if text.contains("://") || text.contains('/') {
        return Err(format!(
            "`{text}` looks like a URL: give the relay as HOST:PORT (smtp.example.com:587)"
        ));
    }
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (ip, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("`{text}`: an IPv6 address needs its closing `]`"))?;
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| format!("`{text}`: expected `:PORT` after `]`"))?,
            ),
        };
        ip.parse::<std::net::Ipv6Addr>()
            .map_err(|_| format!("`{ip}` is not an IPv6 address"))?;
        (ip.to_string(), port)
    } else if text.matches(':').count() > 1 {
        return Err(format!("`{text}`: write an IPv6 relay as [ADDRESS]:PORT"));
    } else {
        match text.split_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (text.to_string(), None),
        }
    };
    if host.is_empty() {
        return Err("the relay needs a host name (smtp.example.com:587)".into());
    }
    if host.parse::<IpAddr>().is_err() {
        check_host_name(&host).map_err(|why| format!("relay host: `{host}` {why}"))?;
    }
    let port = match port {
        None => default_port,
        Some(p) => match p.parse::<u16>() {
            Ok(port) if port > 0 => port,
            _ => return Err(format!("`{p}` is not a port number (1-65535)")),
        },
    };
    Ok((host, port))
}

fn seed_setup(
    raw: &RawSeed,
    span: Range<usize>,
    path: &Path,
    domains: &[SendingDomain],
    problems: &mut Problems<'_>,
) -> Option<SeedSetup> {
    let before = problems.list.len();
    let from = problems
        .required(&raw.from, &span, "seed.from")
        .and_then(|text| {
            let at = raw.from.as_ref().map_or(span.clone(), |f| f.span.clone());
            match parse_address(text) {
                Ok((address, domain)) => {
                    if !domains.iter().any(|d| domain.is_within(&d.name)) {
                        problems.at(at, "seed.from", format!("{domain} is not one of the plan's domains (or below one): seeds must test a domain that moves"));
                    }
                    Some((address, domain))
                }
                Err(e) => {
                    problems.at(at, "seed.from", e);
                    None
                }
            }
        });
    let mut recipients = Vec::new();
    if matches!(&raw.recipients.items, Ok(items) if items.is_empty()) {
        problems.at(
            span.clone(),
            "seed.recipients",
            "no seed addresses: list the addresses the seed inbox receives for",
        );
    }
    for (field, at, text) in problems.strings(&raw.recipients, "seed.recipients") {
        match parse_address(text) {
            Ok((address, _)) => recipients.push(address),
            Err(e) => problems.at(at, field, e),
        }
    }
    let tls = match problems
        .optional(&raw.tls, "seed.tls")
        .map(|t| t.trim().to_ascii_lowercase())
    {
        None => SeedTls::Starttls,
        Some(t) if t == "starttls" => SeedTls::Starttls,
        Some(t) if t == "implicit" => SeedTls::Implicit,
        Some(t) if t == "none" => SeedTls::None,
        Some(other) => {
            if let Some(t) = &raw.tls {
                problems.at(
                    t.span.clone(),
                    "seed.tls",
                    format!("`{other}` is not a TLS mode: use starttls, implicit or none"),
                );
            }
            SeedTls::Starttls
        }
    };
    let default_port = match tls {
        SeedTls::Starttls => 587,
        SeedTls::Implicit => 465,
        SeedTls::None => 25,
    };
    let relay =
        problems
            .required(&raw.relay, &span, "seed.relay")
            .and_then(|text| match parse_relay(text, default_port) {
                Ok(relay) => Some(relay),
                Err(e) => {
                    let at = raw.relay.as_ref().map_or(span.clone(), |r| r.span.clone());
                    problems.at(at, "seed.relay", e);
                    None
                }
            });
    if let Some(p) = &raw.password {
        problems.at(
            p.span.clone(),
            "seed.password",
            "never put a secret in the plan: name the environment variable that holds it (password_env = \"SENDGRID_API_KEY\") or a file (password_file)",
        );
    }
    let env_name = |v: &Typed<String>, field: &str, problems: &mut Problems<'_>| {
        let name = problems
            .value(v, &format!("seed.{field}"))?
            .trim()
            .to_string();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            problems.at(
                v.span.clone(),
                format!("seed.{field}"),
                format!("`{name}` is not an environment variable name"),
            );
        }
        Some(name)
    };
    let password = match (&raw.password_env, &raw.password_file) {
        (Some(_), Some(f)) => {
            problems.at(
                f.span.clone(),
                "seed.password_file",
                "give either password_env or password_file, not both",
            );
            None
        }
        (Some(e), None) => env_name(e, "password_env", problems).map(SecretSource::Env),
        (None, Some(f)) => problems.value(f, "seed.password_file").map(|text| {
            let p = relative_to(path, text);
            if let Err(e) =
                crate::files::check_regular_or_absent(&p, crate::files::FileKind::Secret)
            {
                problems.at(f.span.clone(), "seed.password_file", e.to_string());
            }
            SecretSource::File(p)
        }),
        (None, None) => None,
    };
    let username_env = raw
        .username_env
        .as_ref()
        .and_then(|u| env_name(u, "username_env", problems));
    let username = problems
        .optional(&raw.username, "seed.username")
        .map(|u| u.trim().to_string());
    let within_minutes = match (
        &raw.within_minutes,
        problems.optional(&raw.within_minutes, "seed.within_minutes"),
    ) {
        (Some(w), Some(&m)) if m == 0 || m > 7 * 24 * 60 => {
            problems.at(
                w.span.clone(),
                "seed.within_minutes",
                "must be between 1 minute and a week",
            );
            30
        }
        (_, Some(&m)) => m,
        _ => 30,
    };
    let store = match &raw.store {
        Some(s) => match problems.value(s, "seed.store") {
            Some(text) => {
                let p = relative_to(path, text);
                if let Err(e) =
                    crate::files::check_regular_or_absent(&p, crate::files::FileKind::Store)
                {
                    problems.at(s.span.clone(), "seed.store", e.to_string());
                }
                p
            }
            None => default_seed_store(path),
        },
        None => default_seed_store(path),
    };
    let (from, from_domain) = from?;
    let (relay_host, relay_port) = relay?;
    (problems.list.len() == before).then_some(SeedSetup {
        from,
        from_domain,
        recipients,
        relay_host,
        relay_port,
        tls,
        username,
        username_env,
        password,
        within_minutes,
        store,
    })
}

/// Reads the `[domain.old]` and `[domain.new]` tables of one domain.
struct Sides<'a> {
    catalog: &'a Catalog,
    sending: bool,
    field: &'a str,
}

impl Sides<'_> {
    /// One side: the default platform (`[migration] from`/`to`) unless the table names its
    /// own; `None` for `platform = "none"` and for domains that send nothing.
    fn side(
        &self,
        raw: Option<&Spanned<RawPlatform>>,
        which: &str,
        default_platform: &str,
        problems: &mut Problems<'_>,
    ) -> Option<PlatformSetup> {
        let field = format!("{}.{which}", self.field);
        let Some(raw) = raw else {
            return (self.sending && !default_platform.is_empty()).then(|| PlatformSetup {
                platform: default_platform.to_string(),
                ..PlatformSetup::default()
            });
        };
        if !self.sending {
            problems.at(
                raw.span(),
                field,
                "a domain with `sending = false` has no platforms: remove this table",
            );
            return None;
        }
        let raw = raw.get_ref();
        let platform = match problems.optional(&raw.platform, &format!("{field}.platform")) {
            None => default_platform.to_string(),
            Some(id) if id.trim().eq_ignore_ascii_case("none") => return None,
            Some(id) => {
                if self.catalog.provider(id).is_none() {
                    if let Some(p) = &raw.platform {
                        problems.at(
                            p.span.clone(),
                            format!("{field}.platform"),
                            unknown_provider(id, self.catalog),
                        );
                    }
                }
                id.trim().to_ascii_lowercase()
            }
        };
        let mut setup = PlatformSetup {
            platform,
            ..PlatformSetup::default()
        };
        if let Some(list) = &raw.selectors {
            let mut selectors = Vec::new();
            for (sfield, at, text) in problems.strings(list, &format!("{field}.selectors")) {
                match parse_selector(text) {
                    Ok(sel) => selectors.push(sel),
                    Err(e) => problems.at(at, sfield, e),
                }
            }
            setup.selectors = Some(selectors);
        }
        setup.return_path = host(&raw.return_path, &format!("{field}.return_path"), problems);
        setup.signing_domain = host(
            &raw.signing_domain,
            &format!("{field}.signing_domain"),
            problems,
        );
        for (tfield, at, text) in problems.strings(&raw.tracking, &format!("{field}.tracking")) {
            match DomainName::parse(text) {
                Ok(n) => setup.tracking.push(n),
                Err(e) => problems.at(at, tfield, e.to_string()),
            }
        }
        Some(setup)
    }
}

/// An optional domain-name field.
fn host(raw: &Option<Text>, field: &str, problems: &mut Problems<'_>) -> Option<DomainName> {
    let typed = raw.as_ref()?;
    let text = problems.value(typed, field)?;
    match DomainName::parse(text) {
        Ok(n) => Some(n),
        Err(e) => {
            problems.at(typed.span.clone(), field, e.to_string());
            None
        }
    }
}

fn unknown_provider(id: &str, catalog: &Catalog) -> String {
    let known: Vec<&str> = catalog.providers.iter().map(|p| p.id.as_str()).collect();
    format!(
        "unknown provider `{id}` (known: {}; add your own with --checks-dir)",
        known.join(", ")
    )
}

/// The `domains = [...]` of a `[[keep]]` or `[[pool]]`: each must be one of the plan's.
fn plan_domains(
    list: &List<Text>,
    field: &str,
    domains: &[SendingDomain],
    problems: &mut Problems<'_>,
) -> Vec<DomainName> {
    let mut out = Vec::new();
    for (dfield, at, text) in problems.strings(list, &format!("{field}.domains")) {
        match DomainName::parse(text) {
            Ok(n) if domains.iter().any(|d| d.name == n) => out.push(n),
            Ok(n) => problems.at(
                at,
                dfield,
                format!("{n} is not one of the plan's [[domain]] names"),
            ),
            Err(e) => problems.at(at, dfield, e.to_string()),
        }
    }
    out
}

fn kept_senders(
    raw: &List<Spanned<RawKeep>>,
    catalog: &Catalog,
    domains: &[SendingDomain],
    problems: &mut Problems<'_>,
) -> Vec<KeptSender> {
    let mut out = Vec::new();
    for (i, k) in problems.list(raw, "keep").iter().enumerate() {
        let span = k.span();
        let k = k.get_ref();
        let field = format!("keep[{i}]");
        let provider = problems.optional(&k.provider, &format!("{field}.provider"));
        let spf = problems.optional(&k.spf, &format!("{field}.spf"));
        let (source, label, from_domain_default) = match (provider, spf) {
            (Some(_), Some(_)) | (None, None) => {
                problems.at(
                    span,
                    field,
                    "a kept sender is a `provider` (its profile's SPF include) or an `spf` term, one of the two",
                );
                continue;
            }
            (Some(id), None) => {
                let id = id.trim().to_ascii_lowercase();
                let Some(profile) = catalog.provider(&id) else {
                    if let Some(p) = &k.provider {
                        problems.at(
                            p.span.clone(),
                            format!("{field}.provider"),
                            unknown_provider(&id, catalog),
                        );
                    }
                    continue;
                };
                let from_domain = profile.return_path.as_ref().is_none_or(|r| {
                    r.kind == crate::catalog::providers::ReturnPathKind::FromDomain
                });
                (KeptSource::Provider(id), profile.name.clone(), from_domain)
            }
            (None, Some(term)) => {
                let term = term.trim();
                let record = crate::records::spf::SpfRecord::parse(&format!("v=spf1 {term}"));
                let problem = match (record.terms.len(), record.errors.first()) {
                    (_, Some(e)) => Some(e.reason.clone()),
                    (1, None) => None,
                    _ => Some("give one SPF term (`include:…`, `ip4:…`, `a:…`)".to_string()),
                };
                if let (Some(why), Some(t)) = (problem, &k.spf) {
                    problems.at(
                        t.span.clone(),
                        format!("{field}.spf"),
                        format!("`{term}` is not one SPF term: {why}"),
                    );
                    continue;
                }
                (
                    KeptSource::SpfTerm(term.to_string()),
                    term.to_string(),
                    true,
                )
            }
        };
        let name = problems
            .optional(&k.name, &format!("{field}.name"))
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty())
            .unwrap_or(label);
        let envelope_from_domain = match problems
            .optional(&k.envelope, &format!("{field}.envelope"))
            .map(|e| e.trim().to_ascii_lowercase())
        {
            None => from_domain_default,
            Some(e) if e == "from-domain" => true,
            Some(e) if e == "own" => false,
            Some(other) => {
                if let Some(e) = &k.envelope {
                    problems.at(
                        e.span.clone(),
                        format!("{field}.envelope"),
                        format!("`{other}` is not an envelope: use `from-domain` (its MAIL FROM is the From domain) or `own`"),
                    );
                }
                from_domain_default
            }
        };
        let domains = plan_domains(&k.domains, &field, domains, problems);
        out.push(KeptSender {
            name,
            source,
            domains,
            envelope_from_domain,
        });
    }
    out
}

fn pools(
    raw: &List<Spanned<RawPool>>,
    catalog: &Catalog,
    domains: &[SendingDomain],
    problems: &mut Problems<'_>,
) -> Vec<IpPool> {
    let mut out: Vec<IpPool> = Vec::new();
    for (i, p) in problems.list(raw, "pool").iter().enumerate() {
        let span = p.span();
        let p = p.get_ref();
        let field = format!("pool[{i}]");
        let Some(platform) = problems
            .required(&p.platform, &span, &format!("{field}.platform"))
            .map(|id| id.trim().to_ascii_lowercase())
        else {
            continue;
        };
        if catalog.provider(&platform).is_none() {
            if let Some(t) = &p.platform {
                problems.at(
                    t.span.clone(),
                    format!("{field}.platform"),
                    unknown_provider(&platform, catalog),
                );
            }
        }
        let name = problems
            .optional(&p.name, &format!("{field}.name"))
            .map(|n| n.trim().to_string())
            .unwrap_or_else(|| format!("{platform} pool {}", i + 1));
        let dedicated = problems
            .optional(&p.dedicated, &format!("{field}.dedicated"))
            .copied()
            .unwrap_or(true);
        let mut ips = Vec::new();
        for (ifield, at, text) in problems.strings(&p.ips, &format!("{field}.ips")) {
            match text.trim().parse::<IpAddr>() {
                Ok(ip) => {
                    if let Some(other) = out.iter().find(|o| o.ips.contains(&ip)) {
                        problems.at(
                            at,
                            ifield,
                            format!("{ip} is already in pool `{}`", other.name),
                        );
                    } else {
                        ips.push(ip);
                    }
                }
                Err(_) => problems.at(at, ifield, format!("`{text}` is not an IP address")),
            }
        }
        if p.ips.items.is_ok() && ips.is_empty() && p.ips.is_empty() {
            problems.at(
                span.clone(),
                format!("{field}.ips"),
                "the pool lists no IPs",
            );
        }
        let pool_domains = plan_domains(&p.domains, &field, domains, problems);
        out.push(IpPool {
            name,
            platform,
            dedicated,
            ips,
            domains: pool_domains,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        Catalog::embedded().unwrap()
    }

    const GOOD: &str = r#"
[migration]
name = "Northwind"
from = "sendgrid"
to = "sendgrid-eu"
"#;

    #[test]
    fn positions_are_one_based() {
        assert_eq!(position("ab\ncd", 0), (1, 1));
        assert_eq!(position("ab\ncd", 4), (2, 2));
    }

    #[test]
    fn syntax_errors_name_line_and_column() {
        let err =
            Plan::parse("[migration\nname = 1\n", Path::new("p.toml"), &catalog()).unwrap_err();
        assert!(err.to_string().starts_with("p.toml:1:"), "{err}");
        let err = Plan::parse(
            &format!("{GOOD}bogus = 1\n"),
            Path::new("p.toml"),
            &catalog(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("unknown field `bogus`"), "{err}");
    }

    #[test]
    fn requirements_parse() {
        assert_eq!(Requirement::parse("dns"), Some(Requirement::Dns));
        assert_eq!(
            Requirement::parse("policy:gmail-2024"),
            Some(Requirement::Policy("gmail-2024".into()))
        );
        assert_eq!(Requirement::parse("dnss"), None);
    }

    #[test]
    fn every_documented_key_is_known() {
        let text = r#"
[migration]
name = "n"
from = "mailchimp"
to = "sendgrid"
policies = []
new_sending_ips = []
snapshot = "s.zone"
[[domain]]
name = "example.com"
[domain.old]
selectors = []
return_path = "bounce.example.com"
tracking = []
[domain.new]
selectors = []
[[stage]]
name = "x"
requires = []
cutover = false
description = "d"
[[override]]
check = "spf.*"
action = "ignore"
reason = "r"
domain = "example.com"
[seed]
from = "a@example.com"
recipients = ["s@seeds.example.net"]
relay = "smtp.example.net"
tls = "starttls"
username = "u"
username_env = "U"
password_file = "p"
within_minutes = 5
store = "x.db"
"#;
        let result = Plan::parse(text, Path::new("p.toml"), &catalog());
        if let Err(e) = result {
            assert!(!e.to_string().contains("unknown field"), "{e}");
        }
        assert_eq!(
            closest("polices", known_keys(&["migration".into()])),
            Some("policies")
        );
        assert_eq!(closest("zzz", known_keys(&[])), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn relays_are_host_and_port() {
        assert_eq!(
            parse_relay("smtp.example.net", 587).unwrap(),
            ("smtp.example.net".into(), 587)
        );
        assert_eq!(
            parse_relay("[2001:db8::1]:25", 587).unwrap(),
            ("2001:db8::1".into(), 25)
        );
        assert_eq!(
            parse_relay("192.0.2.1:2525", 587).unwrap(),
            ("192.0.2.1".into(), 2525)
        );
        for bad in [
            "http://evil/:25",
            "a b:25",
            "x:0",
            "",
            "[::1",
            "[::1]x",
            "::1:25",
        ] {
            assert!(parse_relay(bad, 587).is_err(), "{bad}");
        }
    }
}
