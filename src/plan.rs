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
use serde::Deserialize;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use toml::Spanned;

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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlan {
    migration: Spanned<RawMigration>,
    #[serde(default, rename = "domain")]
    domains: Vec<Spanned<RawDomain>>,
    #[serde(default, rename = "stage")]
    stages: Vec<Spanned<RawStage>>,
    #[serde(default, rename = "override")]
    overrides: Vec<Spanned<RawOverride>>,
    #[serde(default)]
    seed: Option<Spanned<RawSeed>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSeed {
    from: Spanned<String>,
    recipients: Vec<Spanned<String>>,
    relay: Spanned<String>,
    #[serde(default)]
    tls: Option<Spanned<String>>,
    #[serde(default)]
    username: Option<Spanned<String>>,
    #[serde(default)]
    username_env: Option<Spanned<String>>,
    #[serde(default)]
    password_env: Option<Spanned<String>>,
    #[serde(default)]
    password_file: Option<Spanned<String>>,
    /// Accepted only to say where secrets belong.
    #[serde(default)]
    password: Option<Spanned<String>>,
    #[serde(default)]
    within_minutes: Option<Spanned<u64>>,
    #[serde(default)]
    store: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMigration {
    name: Spanned<String>,
    from: Spanned<String>,
    to: Spanned<String>,
    #[serde(default)]
    policies: Vec<Spanned<String>>,
    #[serde(default)]
    new_sending_ips: Vec<Spanned<String>>,
    #[serde(default)]
    snapshot: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPlatform {
    #[serde(default)]
    selectors: Vec<Spanned<String>>,
    #[serde(default)]
    return_path: Option<Spanned<String>>,
    #[serde(default)]
    tracking: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDomain {
    name: Spanned<String>,
    #[serde(default)]
    old: Option<Spanned<RawPlatform>>,
    #[serde(default)]
    new: Option<Spanned<RawPlatform>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStage {
    name: Spanned<String>,
    #[serde(default)]
    requires: Vec<Spanned<String>>,
    /// The stage at which the old platform is retired (default: the stage named `cutover`).
    #[serde(default)]
    cutover: Option<Spanned<bool>>,
    #[serde(default)]
    description: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOverride {
    check: Spanned<String>,
    action: Spanned<String>,
    #[serde(default)]
    reason: Option<Spanned<String>>,
    #[serde(default)]
    domain: Option<Spanned<String>>,
}

// ---- the validated plan ------------------------------------------------------------------

/// What one platform needs at one sending domain.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PlatformSetup {
    pub selectors: Vec<String>,
    pub return_path: Option<DomainName>,
    pub tracking: Vec<DomainName>,
}

/// A From domain of the migration.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SendingDomain {
    pub name: DomainName,
    pub old: PlatformSetup,
    pub new: PlatformSetup,
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
    /// Warmup metrics of the previous cohort are within bounds (filled in by warmup monitoring).
    Warmup,
}

impl Requirement {
    pub const KNOWN: &'static str =
        "snapshot, dns, coexistence, policies, policy:<id>, seed, warmup";

    pub fn parse(text: &str) -> Option<Requirement> {
        Some(match text.trim() {
            "snapshot" => Requirement::Snapshot,
            "dns" => Requirement::Dns,
            "coexistence" => Requirement::Coexistence,
            "policies" => Requirement::Policies,
            "seed" => Requirement::Seed,
            "warmup" => Requirement::Warmup,
            other => Requirement::Policy(other.strip_prefix("policy:")?.trim().to_string()),
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
            Requirement::Warmup => f.write_str("warmup"),
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
    pub store: PathBuf,
}

/// A validated plan.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Plan {
    pub path: PathBuf,
    pub name: String,
    /// Provider id of the old platform.
    pub from: String,
    /// Provider id of the new platform.
    pub to: String,
    pub policies: Vec<String>,
    pub new_sending_ips: Vec<IpAddr>,
    /// The backup zone file, resolved relative to the plan.
    pub snapshot: Option<PathBuf>,
    pub domains: Vec<SendingDomain>,
    pub stages: Vec<Stage>,
    pub overrides: Vec<Override>,
    pub seed: Option<SeedSetup>,
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
    fn at(
        &mut self,
        span: std::ops::Range<usize>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) {
        let (line, column) = position(self.text, span.start);
        self.list.push(PlanProblem {
            line,
            column,
            field: field.into(),
            message: message.into(),
        });
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
        let raw: RawPlan = toml::from_str(text).map_err(|e| {
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

    /// Before the cutover stage both platforms send, so both must be authorised.
    pub fn before_cutover(&self, stage: usize) -> bool {
        self.cutover_index().is_none_or(|c| stage < c)
    }
}

fn build(raw: RawPlan, path: &Path, catalog: &Catalog, problems: &mut Problems<'_>) -> Plan {
    let migration_span = raw.migration.span();
    let migration = raw.migration.into_inner();
    let mut provider = |field: &str, value: &Spanned<String>| {
        if catalog.provider(value.get_ref()).is_none() {
            let known: Vec<&str> = catalog.providers.iter().map(|p| p.id.as_str()).collect();
            problems.at(
                value.span(),
                format!("migration.{field}"),
                format!(
                    "unknown provider `{}` (known: {}; add your own with --checks-dir)",
                    value.get_ref(),
                    known.join(", ")
                ),
            );
        }
        value.get_ref().to_ascii_lowercase()
    };
    let from = provider("from", &migration.from);
    let to = provider("to", &migration.to);
    if from == to {
        problems.at(
            migration.to.span(),
            "migration.to",
            "the new platform is the same as the old one",
        );
    }
    if migration.name.get_ref().trim().is_empty() {
        problems.at(
            migration.name.span(),
            "migration.name",
            "the migration needs a name",
        );
    }
    let mut policies = Vec::new();
    for (i, p) in migration.policies.iter().enumerate() {
        if catalog.policy(p.get_ref()).is_none() {
            let known: Vec<&str> = catalog.policies.iter().map(|p| p.id.as_str()).collect();
            problems.at(
                p.span(),
                format!("migration.policies[{i}]"),
                format!(
                    "unknown policy `{}` (known: {})",
                    p.get_ref(),
                    known.join(", ")
                ),
            );
        }
        policies.push(p.get_ref().to_ascii_lowercase());
    }
    let mut new_sending_ips = Vec::new();
    for (i, ip) in migration.new_sending_ips.iter().enumerate() {
        match ip.get_ref().trim().parse::<IpAddr>() {
            Ok(addr) => new_sending_ips.push(addr),
            Err(_) => problems.at(
                ip.span(),
                format!("migration.new_sending_ips[{i}]"),
                format!("`{}` is not an IP address", ip.get_ref()),
            ),
        }
    }
    let snapshot = migration.snapshot.as_ref().map(|s| {
        let p = PathBuf::from(s.get_ref());
        let p = if p.is_absolute() {
            p
        } else {
            path.parent().unwrap_or(Path::new(".")).join(p)
        };
        // The backup may not exist yet (it is taken at the first stage); if it does, it must
        // be a file mailshift can read.
        if let Err(e) = crate::files::check_regular_or_absent(&p, crate::files::FileKind::Zone) {
            problems.at(s.span(), "migration.snapshot", e.to_string());
        }
        p
    });

    if raw.domains.is_empty() {
        problems.at(
            migration_span.clone(),
            "domain",
            "the plan names no sending domain: add a [[domain]] with its name",
        );
    }
    let mut domains: Vec<SendingDomain> = Vec::new();
    for (i, d) in raw.domains.iter().enumerate() {
        let d = d.get_ref();
        let field = format!("domain[{i}]");
        let name = match DomainName::parse(d.name.get_ref()) {
            Ok(n) => n,
            Err(e) => {
                problems.at(d.name.span(), format!("{field}.name"), e.to_string());
                continue;
            }
        };
        if domains.iter().any(|x| x.name == name) {
            problems.at(
                d.name.span(),
                format!("{field}.name"),
                format!("{name} is listed twice"),
            );
        }
        let old = platform(d.old.as_ref(), &format!("{field}.old"), problems);
        let new = platform(d.new.as_ref(), &format!("{field}.new"), problems);
        domains.push(SendingDomain { name, old, new });
    }

    if raw.stages.is_empty() {
        problems.at(migration_span, "stage", "the plan has no stages: add [[stage]] entries in order (setup, seed, warmup-1, …, cutover)");
    }
    let mut stages: Vec<Stage> = Vec::new();
    for (i, s) in raw.stages.iter().enumerate() {
        let s = s.get_ref();
        let field = format!("stage[{i}]");
        let name = s.name.get_ref().trim().to_string();
        let valid_name = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !valid_name {
            problems.at(
                s.name.span(),
                format!("{field}.name"),
                format!("`{name}` is not a stage name (letters, digits, `-`, `_`, `.`)"),
            );
        }
        if stages.iter().any(|x| x.name == name) {
            problems.at(
                s.name.span(),
                format!("{field}.name"),
                format!("stage `{name}` is defined twice"),
            );
        }
        let mut requires = Vec::new();
        for (j, r) in s.requires.iter().enumerate() {
            let rfield = format!("{field}.requires[{j}]");
            match Requirement::parse(r.get_ref()) {
                None => problems.at(
                    r.span(),
                    rfield,
                    format!(
                        "unknown requirement `{}` (known: {})",
                        r.get_ref(),
                        Requirement::KNOWN
                    ),
                ),
                Some(Requirement::Policy(id)) if catalog.policy(&id).is_none() => {
                    problems.at(r.span(), rfield, format!("unknown policy `{id}`"))
                }
                Some(Requirement::Snapshot) if snapshot.is_none() => problems.at(
                    r.span(),
                    rfield,
                    "requires a snapshot, but [migration] names no `snapshot` file",
                ),
                Some(Requirement::Policies) if policies.is_empty() => problems.at(
                    r.span(),
                    rfield,
                    "requires the policies, but [migration] lists none in `policies`",
                ),
                Some(req) => {
                    if requires.contains(&req) {
                        problems.at(r.span(), rfield, format!("`{req}` is listed twice"));
                    } else {
                        requires.push(req);
                    }
                }
            }
        }
        let cutover = s
            .cutover
            .as_ref()
            .map_or(name == "cutover", |c| *c.get_ref());
        stages.push(Stage {
            name,
            description: s.description.clone(),
            requires,
            cutover,
        });
    }
    let cutovers: Vec<usize> = stages
        .iter()
        .enumerate()
        .filter(|(_, s)| s.cutover)
        .map(|(i, _)| i)
        .collect();
    if cutovers.len() > 1 {
        if let Some(s) = raw.stages.get(cutovers[1]) {
            problems.at(
                s.span(),
                format!("stage[{}]", cutovers[1]),
                "more than one stage is marked as the cutover",
            );
        }
    }

    let mut overrides = Vec::new();
    for (i, o) in raw.overrides.iter().enumerate() {
        let o = o.get_ref();
        let field = format!("override[{i}]");
        let check = o.check.get_ref().trim().to_string();
        if !is_check_pattern(&check) {
            problems.at(
                o.check.span(),
                format!("{field}.check"),
                format!("`{check}` is not a check id or pattern (`dmarc.policy-none`, `spf.*`)"),
            );
        }
        let action = match o.action.get_ref().trim() {
            "ignore" => OverrideAction::Ignore,
            "downgrade" => OverrideAction::Downgrade,
            other => {
                problems.at(
                    o.action.span(),
                    format!("{field}.action"),
                    format!("`{other}` is not an action: use `ignore` or `downgrade`"),
                );
                OverrideAction::Ignore
            }
        };
        let reason = match &o.reason {
            Some(r) if !r.get_ref().trim().is_empty() => r.get_ref().trim().to_string(),
            Some(r) => {
                problems.at(
                    r.span(),
                    format!("{field}.reason"),
                    "the reason is empty: say why this check may be overridden",
                );
                String::new()
            }
            None => {
                problems.at(
                    o.check.span(),
                    format!("{field}.reason"),
                    "an override needs a `reason` (why it is safe, and until when)",
                );
                String::new()
            }
        };
        let domain = o
            .domain
            .as_ref()
            .and_then(|d| match DomainName::parse(d.get_ref()) {
                Ok(name) => Some(name),
                Err(e) => {
                    problems.at(d.span(), format!("{field}.domain"), e.to_string());
                    None
                }
            });
        overrides.push(Override {
            check,
            action,
            reason,
            domain,
        });
    }

    let seed = raw
        .seed
        .as_ref()
        .and_then(|s| seed_setup(s.get_ref(), path, &domains, problems));
    let needs_seed = stages
        .iter()
        .any(|s| s.requires.contains(&Requirement::Seed));
    if needs_seed && raw.seed.is_none() {
        if let Some(s) = raw.stages.iter().find(|s| {
            s.get_ref()
                .requires
                .iter()
                .any(|r| r.get_ref().trim() == "seed")
        }) {
            problems.at(s.span(), "seed", "a stage requires seed tests, but the plan has no [seed] section (from, recipients, relay)");
        }
    }

    Plan {
        path: path.to_path_buf(),
        name: migration.name.get_ref().trim().to_string(),
        from,
        to,
        policies,
        new_sending_ips,
        snapshot,
        domains,
        stages,
        overrides,
        seed,
    }
}

fn seed_setup(
    raw: &RawSeed,
    path: &Path,
    domains: &[SendingDomain],
    problems: &mut Problems<'_>,
) -> Option<SeedSetup> {
    let before = problems.list.len();
    let from = match parse_address(raw.from.get_ref()) {
        Ok((address, domain)) => {
            if !domains.iter().any(|d| domain.is_within(&d.name)) {
                problems.at(raw.from.span(), "seed.from", format!("{domain} is not one of the plan's domains (or below one): seeds must test a domain that moves"));
            }
            Some((address, domain))
        }
        Err(e) => {
            problems.at(raw.from.span(), "seed.from", e);
            None
        }
    };
    let mut recipients = Vec::new();
    if raw.recipients.is_empty() {
        problems.at(
            raw.from.span(),
            "seed.recipients",
            "no seed addresses: list the addresses the seed inbox receives for",
        );
    }
    for (i, r) in raw.recipients.iter().enumerate() {
        match parse_address(r.get_ref()) {
            Ok((address, _)) => recipients.push(address),
            Err(e) => problems.at(r.span(), format!("seed.recipients[{i}]"), e),
        }
    }
    let tls = match raw
        .tls
        .as_ref()
        .map(|t| t.get_ref().trim().to_ascii_lowercase())
    {
        None => SeedTls::Starttls,
        Some(t) if t == "starttls" => SeedTls::Starttls,
        Some(t) if t == "implicit" => SeedTls::Implicit,
        Some(t) if t == "none" => SeedTls::None,
        Some(other) => {
            if let Some(t) = &raw.tls {
                problems.at(
                    t.span(),
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
    let relay_text = raw.relay.get_ref().trim();
    let (host, port) = match relay_text.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') || h.starts_with('[') => match p.parse::<u16>() {
            Ok(port) if port > 0 => (
                h.trim_start_matches('[').trim_end_matches(']').to_string(),
                port,
            ),
            _ => {
                problems.at(
                    raw.relay.span(),
                    "seed.relay",
                    format!("`{p}` is not a port number"),
                );
                (h.to_string(), default_port)
            }
        },
        _ => (relay_text.to_string(), default_port),
    };
    if host.is_empty() {
        problems.at(
            raw.relay.span(),
            "seed.relay",
            "the relay needs a host name (smtp.example.com:587)",
        );
    }
    if let Some(p) = &raw.password {
        problems.at(
            p.span(),
            "seed.password",
            "never put a secret in the plan: name the environment variable that holds it (password_env = \"SENDGRID_API_KEY\") or a file (password_file)",
        );
    }
    let env_name = |v: &Spanned<String>, field: &str, problems: &mut Problems<'_>| {
        let name = v.get_ref().trim().to_string();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            problems.at(
                v.span(),
                format!("seed.{field}"),
                format!("`{name}` is not an environment variable name"),
            );
        }
        name
    };
    let password = match (&raw.password_env, &raw.password_file) {
        (Some(_), Some(f)) => {
            problems.at(
                f.span(),
                "seed.password_file",
                "give either password_env or password_file, not both",
            );
            None
        }
        (Some(e), None) => Some(SecretSource::Env(env_name(e, "password_env", problems))),
        (None, Some(f)) => {
            let p = PathBuf::from(f.get_ref());
            let p = if p.is_absolute() {
                p
            } else {
                path.parent().unwrap_or(Path::new(".")).join(p)
            };
            if let Err(e) =
                crate::files::check_regular_or_absent(&p, crate::files::FileKind::Secret)
            {
                problems.at(f.span(), "seed.password_file", e.to_string());
            }
            Some(SecretSource::File(p))
        }
        (None, None) => None,
    };
    let username_env = raw
        .username_env
        .as_ref()
        .map(|u| env_name(u, "username_env", problems));
    let within_minutes = match &raw.within_minutes {
        Some(w) if *w.get_ref() == 0 || *w.get_ref() > 7 * 24 * 60 => {
            problems.at(
                w.span(),
                "seed.within_minutes",
                "must be between 1 minute and a week",
            );
            30
        }
        Some(w) => *w.get_ref(),
        None => 30,
    };
    let store = match &raw.store {
        Some(s) => {
            let p = PathBuf::from(s.get_ref());
            let p = if p.is_absolute() {
                p
            } else {
                path.parent().unwrap_or(Path::new(".")).join(p)
            };
            if let Err(e) = crate::files::check_regular_or_absent(&p, crate::files::FileKind::Store)
            {
                problems.at(s.span(), "seed.store", e.to_string());
            }
            p
        }
        None => default_seed_store(path),
    };
    let (from, from_domain) = from?;
    (problems.list.len() == before).then_some(SeedSetup {
        from,
        from_domain,
        recipients,
        relay_host: host,
        relay_port: port,
        tls,
        username: raw
            .username
            .as_ref()
            .map(|u| u.get_ref().trim().to_string()),
        username_env,
        password,
        within_minutes,
        store,
    })
}

fn platform(
    raw: Option<&Spanned<RawPlatform>>,
    field: &str,
    problems: &mut Problems<'_>,
) -> PlatformSetup {
    let Some(raw) = raw else {
        return PlatformSetup::default();
    };
    let raw = raw.get_ref();
    let mut setup = PlatformSetup::default();
    for (i, s) in raw.selectors.iter().enumerate() {
        match parse_selector(s.get_ref()) {
            Ok(sel) => setup.selectors.push(sel),
            Err(e) => problems.at(s.span(), format!("{field}.selectors[{i}]"), e),
        }
    }
    if let Some(rp) = &raw.return_path {
        match DomainName::parse(rp.get_ref()) {
            Ok(n) => setup.return_path = Some(n),
            Err(e) => problems.at(rp.span(), format!("{field}.return_path"), e.to_string()),
        }
    }
    for (i, t) in raw.tracking.iter().enumerate() {
        match DomainName::parse(t.get_ref()) {
            Ok(n) => setup.tracking.push(n),
            Err(e) => problems.at(t.span(), format!("{field}.tracking[{i}]"), e.to_string()),
        }
    }
    setup
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
}
