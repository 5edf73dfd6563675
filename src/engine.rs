//! Checking many domains: bounded concurrency over one shared resolver.
//!
//! [`check_domains`] runs fetch → analyse for each requested domain, at most `concurrency` at a
//! time, and hands each [`DomainReport`] to a callback as soon as it is done (for ndjson output
//! and the progress bar) before returning them all in input order. Every domain shares the one
//! [`Resolver`], so records common to many domains are fetched once.
//!
//! [`check_domains_streaming`] is the bulk path: inputs are pulled from an iterator as slots
//! free up (a million-line domains file is never held whole), each report is handed on and
//! dropped, and each domain's own answers leave the resolver's cache once it is reported, so
//! memory stays flat however many domains stream through.

use crate::checks;
use crate::dns::Resolver;
use crate::domain::{DomainRequest, InputError};
use crate::fetch::{fetch_domain_skipping, probe_selectors, DomainRecords, Selector};
use crate::finding::{Finding, Status};
use futures::StreamExt;
use serde::Serialize;
use std::sync::Arc;
use std::time::Instant;

/// The verdict for one domain (or one invalid input line, with `--keep-going`).
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct DomainReport {
    pub domain: String,
    /// The Unicode form of an internationalised name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unicode: Option<String>,
    pub status: Status,
    pub findings: Vec<Finding>,
    /// Why the input could not be checked (invalid name), with where it came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl DomainReport {
    pub fn invalid(error: &InputError) -> DomainReport {
        DomainReport {
            domain: error.text.clone(),
            unicode: None,
            status: Status::Error,
            findings: Vec::new(),
            error: Some(error.to_string()),
        }
    }
}

/// Totals for a run.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct Summary {
    pub domains: usize,
    pub pass: usize,
    pub warn: usize,
    pub fail: usize,
    pub inconclusive: usize,
    /// Inputs that were not valid domain names (only with `--keep-going`).
    pub invalid: usize,
    /// DNS questions sent to the network.
    pub queries: u64,
    /// Questions answered from `--zone` files.
    pub zone_answers: u64,
    pub elapsed_ms: u64,
    /// The part of a sharded run this summary covers (`--shard K/N`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub shard: Option<Shard>,
    /// For a merged report (`check merge`): what was joined.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub merged: Option<crate::merge::MergeInfo>,
    /// The record families the run left out (`check --skip`): their absence from the
    /// findings says nothing about the domains.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub skipped: Vec<crate::fetch::Family>,
}

/// One part of a sharded run: domains whose stable hash falls in part `index` of `of`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Shard {
    /// 1-based.
    pub index: u32,
    pub of: u32,
}

impl Shard {
    /// `K/N` with 1 ≤ K ≤ N.
    pub fn parse(text: &str) -> Result<Shard, String> {
        let (k, n) = text
            .split_once('/')
            .ok_or_else(|| format!("`{text}` is not K/N (e.g. 2/8: the second of eight parts)"))?;
        let index: u32 = k
            .trim()
            .parse()
            .map_err(|_| format!("`{k}` is not a shard number"))?;
        let of: u32 = n
            .trim()
            .parse()
            .map_err(|_| format!("`{n}` is not a number of shards"))?;
        if of == 0 || index == 0 || index > of {
            return Err(format!(
                "shard {index}/{of}: K must be between 1 and N (shards are numbered from 1)"
            ));
        }
        Ok(Shard { index, of })
    }

    /// True when `key` (a domain's A-label, or an invalid line's text) belongs to this shard.
    /// The partition is FNV-1a over the lower-cased bytes: stable across runs, machines and
    /// versions, so a domain always lands in the same shard.
    pub fn contains(&self, key: &str) -> bool {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for b in key.bytes() {
            hash ^= u64::from(b.to_ascii_lowercase());
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        hash % u64::from(self.of) == u64::from(self.index - 1)
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.of)
    }
}

impl Summary {
    /// Counts one more domain with this status.
    pub fn add(&mut self, status: Status) {
        self.domains += 1;
        match status {
            Status::Pass => self.pass += 1,
            Status::Warn => self.warn += 1,
            Status::Fail => self.fail += 1,
            Status::Inconclusive => self.inconclusive += 1,
            Status::Error => self.invalid += 1,
        }
    }
}

/// A whole run: every report in input order, and the totals.
#[derive(Debug, Clone, Serialize)]
pub struct CheckRun {
    pub domains: Vec<DomainReport>,
    pub summary: Summary,
}

/// How to check.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// Domains checked at once.
    pub concurrency: usize,
    /// Selectors for domains that name none themselves (`--selector`); empty means probe.
    pub selectors: Vec<String>,
    /// The probe list (`checks/dkim-selectors.toml`).
    pub probe: Vec<(String, String)>,
    /// Also check each domain against one platform's profile (`check --provider`).
    pub provider: Option<ProviderCheck>,
    /// Keep each domain's records and report what changed since the last check
    /// (`check --state DIR`).
    pub drift: Option<Arc<crate::history::DriftStore>>,
    /// Look the domains and these sending IPs up in DNS blocklists (`--blocklists`, `--ip`).
    pub blocklists: Option<Arc<crate::fetch::BlocklistRequest>>,
    /// Ask every authoritative server of each domain's zone for its copy of the mail records
    /// (`--propagation`).
    pub propagation: bool,
    /// Validate the answers the checks rely on (DNSSEC) from these trust anchors, and look up
    /// the MX hosts' TLSA records (`--dnssec`, `--trust-anchor`).
    pub dnssec: Option<Arc<crate::fetch::DnssecRequest>>,
    /// Connect to each MX host on port 25: banner, EHLO, STARTTLS, the certificate
    /// (`--probe-smtp`).
    pub probe_smtp: Option<Arc<crate::smtp_probe::SmtpProber>>,
    /// Record families left out (`--skip`): not asked about, so not judged.
    pub skip: Vec<crate::fetch::Family>,
}

/// What `check --provider` adds: the platform, and where it sends from.
#[derive(Debug, Clone)]
pub struct ProviderCheck {
    pub profile: crate::catalog::ProviderProfile,
    /// The platform's return-path host for the checked domain, if set up.
    pub return_path: Option<crate::domain::DomainName>,
    /// The platform's dedicated sending IPs.
    pub sending_ips: Vec<std::net::IpAddr>,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            concurrency: 64,
            selectors: Vec::new(),
            probe: crate::catalog::common_dkim_selectors(),
            provider: None,
            drift: None,
            blocklists: None,
            propagation: false,
            dnssec: None,
            probe_smtp: None,
            skip: Vec::new(),
        }
    }
}

/// Fetches and analyses one domain.
pub async fn check_domain(
    resolver: &Resolver,
    request: &DomainRequest,
    options: &CheckOptions,
) -> DomainReport {
    check_domain_records(resolver, request, options).await.0
}

/// Fetches and analyses one domain, and hands back the records the verdict was based on.
pub async fn check_domain_records(
    resolver: &Resolver,
    request: &DomainRequest,
    options: &CheckOptions,
) -> (DomainReport, DomainRecords) {
    let provider_selectors: Vec<String> = options
        .provider
        .as_ref()
        .and_then(|p| p.profile.dkim.as_ref())
        .map(|d| d.selectors.clone())
        .unwrap_or_default();
    let named = if !request.selectors.is_empty() {
        &request.selectors
    } else if !options.selectors.is_empty() {
        &options.selectors
    } else {
        &provider_selectors
    };
    let selectors = if named.is_empty() {
        probe_selectors(&options.probe)
    } else {
        named
            .iter()
            .map(|s| Selector {
                name: s.clone(),
                used_by: None,
                explicit: true,
            })
            .collect()
    };
    let mut records =
        fetch_domain_skipping(resolver, &request.domain, selectors, &options.skip).await;
    if let Some(blocklists) = &options.blocklists {
        crate::fetch::fetch_blocklists(resolver, blocklists.clone(), &mut records).await;
    }
    if options.propagation {
        crate::fetch::fetch_propagation(resolver, &mut records).await;
    }
    if let Some(request) = &options.dnssec {
        crate::fetch::fetch_dnssec(resolver, request, &mut records).await;
    }
    if let Some(prober) = &options.probe_smtp {
        crate::smtp_probe::probe_smtp(prober, resolver, &mut records).await;
    }
    let mut findings = checks::analyse(&records);
    if let Some(provider) = &options.provider {
        let domain = crate::plan::SendingDomain {
            name: request.domain.clone(),
            sending: true,
            old: None,
            new: Some(crate::plan::PlatformSetup {
                platform: provider.profile.id.clone(),
                selectors: (!named.is_empty()).then(|| named.clone()),
                return_path: provider.return_path.clone(),
                tracking: Vec::new(),
                signing_domain: None,
            }),
        };
        let ips: Vec<crate::migration::SendingIp> = provider
            .sending_ips
            .iter()
            .map(|ip| crate::migration::SendingIp {
                ip: *ip,
                dedicated: true,
                pool: "--sending-ip".into(),
            })
            .collect();
        let ctx = crate::migration::Context {
            domain: &domain,
            old: None,
            new: domain.new.as_ref().map(|setup| crate::migration::Side {
                profile: &provider.profile,
                setup,
            }),
            before_cutover: false,
            new_ips: &ips,
            kept: &[],
        };
        let migration = crate::migration::fetch_migration(resolver, &ctx).await;
        findings.extend(checks::coexist::analyse(&migration, &ctx));
        findings.extend(checks::inbound::mta_sts_covers_new_mx(
            &records,
            &provider.profile,
        ));
        checks::coexist::spf_where_evaluated(&mut findings, &ctx);
    }
    if let Some(store) = &options.drift {
        let mut observed = crate::drift::Observed::default();
        observed.add(&records);
        match store.exchange(request.domain.as_str(), observed) {
            Ok(drift) => findings.extend(drift.into_iter().map(|d| d.finding)),
            Err(e) => findings.push(crate::finding::Finding::new(
                "drift.unrecorded",
                crate::finding::Severity::Info,
                format!("What changed since the last check is unknown: the history could not be used ({e})."),
            )),
        }
    }
    let report = DomainReport {
        domain: request.domain.to_string(),
        unicode: request.domain.unicode(),
        status: Status::of(&findings),
        findings,
        error: None,
    };
    (report, records)
}

/// Checks every input, `options.concurrency` at a time, each domain on its own task so both
/// cores work. Inputs are pulled as slots free up; `on_done` receives each report (with its
/// input index) as it completes; nothing is kept, and each domain's own DNS answers are let go
/// once it is reported, so memory stays flat however many domains stream through. Returns the
/// totals.
pub async fn check_domains_streaming(
    resolver: &Resolver,
    inputs: impl IntoIterator<Item = Result<DomainRequest, InputError>>,
    options: &CheckOptions,
    mut on_done: impl FnMut(usize, DomainReport),
) -> Summary {
    let started = Instant::now();
    let shared = Arc::new(options.clone());
    let mut counts = Summary::default();
    let mut stream = futures::stream::iter(inputs.into_iter().enumerate().map(|(i, input)| {
        let resolver = resolver.clone();
        let options = shared.clone();
        async move {
            let name = match &input {
                Ok(request) => request.domain.to_string(),
                Err(error) => error.text.clone(),
            };
            let task = tokio::spawn(async move {
                match input {
                    Ok(request) => {
                        let scoped = resolver.scoped(&request.domain);
                        let report = check_domain(&scoped, &request, &options).await;
                        scoped.release();
                        report
                    }
                    Err(error) => DomainReport::invalid(&error),
                }
            });
            let report = task.await.unwrap_or_else(|e| DomainReport {
                domain: name,
                unicode: None,
                status: Status::Error,
                findings: Vec::new(),
                error: Some(format!("internal error while checking this domain: {e}")),
            });
            (i, report)
        }
    }))
    .buffer_unordered(options.concurrency.max(1));
    while let Some((i, report)) = stream.next().await {
        counts.add(report.status);
        on_done(i, report);
    }
    let dns = resolver.stats();
    counts.queries = dns.queries;
    counts.zone_answers = dns.zone_answers;
    counts.elapsed_ms = started.elapsed().as_millis() as u64;
    counts.skipped = options.skip.clone();
    counts
}

/// Checks every input and returns the reports in input order with the totals. `on_done` sees
/// each report as it completes (for progress).
pub async fn check_domains(
    resolver: &Resolver,
    inputs: impl IntoIterator<Item = Result<DomainRequest, InputError>>,
    options: &CheckOptions,
    mut on_done: impl FnMut(&DomainReport),
) -> CheckRun {
    let mut slots: Vec<Option<DomainReport>> = Vec::new();
    let summary = check_domains_streaming(resolver, inputs, options, |i, report| {
        on_done(&report);
        if slots.len() <= i {
            slots.resize(i + 1, None);
        }
        if let Some(slot) = slots.get_mut(i) {
            *slot = Some(report);
        }
    })
    .await;
    CheckRun {
        domains: slots.into_iter().flatten().collect(),
        summary,
    }
}
