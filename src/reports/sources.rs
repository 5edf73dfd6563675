//! The DNS half of attributing report sources: the networks behind the platforms' SPF includes,
//! and the forward-confirmed reverse DNS of the sources those networks do not place.
//!
//! Reverse lookups are what made a parsedmarc run over a 900,000-row report take a day, so they
//! are asked only for sources no pool or network places, at most `max_ptr` of them (the ones
//! with the most messages first), in bounded batches through the run's shared, cached resolver,
//! and not at all with `max_ptr = 0`.

use super::summary::Row;
use crate::attribution::{
    confirmed_ptr, includes_to_resolve, spf_networks, Attributor, SpfNetworks,
};
use crate::catalog::Catalog;
use crate::dns::Resolver;
use crate::domain::DomainName;
use crate::fetch::DomainRecords;
use crate::plan::Plan;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

/// Reverse lookups asked at most per run, unless the plan's `[dmarc] max_ptr` (or `reports
/// PLAN --max-ptr`) says otherwise.
pub const MAX_PTR: usize = 1000;

/// The most a plan may ask for: each is a question and its forward check.
pub const MAX_PTR_LIMIT: usize = 100_000;

/// How many reverse lookups run at once.
const PTR_BATCH: usize = 128;

/// What the attribution of a plan's report sources was based on.
pub struct Sources {
    pub attributor: Attributor,
    /// Forward-confirmed reverse DNS names of the sources that needed one.
    pub ptr: HashMap<IpAddr, String>,
    /// Includes whose networks could not be (fully) resolved, with why: sources in them may
    /// show as unknown.
    pub unresolved: Vec<String>,
    /// Sources that needed a reverse lookup but were over `max_ptr`.
    pub ptr_skipped: usize,
    /// True when an SPF include's lookup failed (not merely found nothing): the attribution
    /// of whole networks is incomplete.
    pub lookup_failed: bool,
    /// Reverse lookups that failed: those sources stay unknown (the cautious answer).
    pub ptr_failed: usize,
    /// The cap the reverse lookups were asked under.
    pub max_ptr: usize,
}

impl Sources {
    /// The platform that sent from `ip`, its confirmed reverse DNS name taken into account.
    pub fn attribute(&self, ip: IpAddr) -> crate::attribution::Attribution {
        self.attributor
            .attribute(ip, self.ptr.get(&ip).map(String::as_str))
    }

    /// What the attribution could not settle, for the summary's notes: the includes not (fully)
    /// resolved, the reverse lookups that failed and the sources over the cap.
    pub fn notes(&self) -> Vec<String> {
        let mut notes = self.unresolved.clone();
        if self.ptr_failed > 0 {
            notes.push(format!(
                "{} failed: those sources stay unknown",
                crate::words::count(self.ptr_failed, "reverse DNS lookup", "reverse DNS lookups")
            ));
        }
        if self.ptr_skipped > 0 {
            notes.push(format!(
                "{} not looked up in reverse DNS (over the cap of {}: `[dmarc] max_ptr` in the plan, or --max-ptr): they stay unknown unless a pool or an SPF network places them",
                crate::words::count(
                    self.ptr_skipped,
                    "unplaced source was",
                    "unplaced sources were"
                ),
                self.max_ptr
            ));
        }
        notes
    }
}

/// Resolves what attributing `rows` needs and builds the attributor.
pub async fn resolve(
    resolver: &Resolver,
    plan: &Plan,
    catalog: &Catalog,
    rows: &[Row],
    max_ptr: usize,
) -> Sources {
    let mut resolved: BTreeMap<DomainName, SpfNetworks> = BTreeMap::new();
    let mut unresolved = Vec::new();
    let mut lookup_failed = false;
    for include in includes_to_resolve(plan, catalog) {
        let (answers, truncated) = crate::fetch::fetch_spf_tree(resolver, &include).await;
        lookup_failed |= answers.iter().any(|a| a.failed().is_some());
        let mut records = DomainRecords::new(include.clone());
        for a in answers {
            records.insert(a);
        }
        let networks = spf_networks(&records, &include);
        for why in &networks.unresolved {
            unresolved.push(format!("include:{include}: {why}"));
        }
        if truncated {
            unresolved.push(format!(
                "include:{include}: its tree is larger than mailshift follows"
            ));
        }
        resolved.insert(include, networks);
    }
    let attributor = Attributor::new(plan, catalog, &resolved);

    // Reverse DNS only for what nothing else places, the biggest senders first.
    let mut volume: HashMap<IpAddr, u64> = HashMap::new();
    for r in rows {
        if attributor.needs_ptr(r.source_ip) {
            *volume.entry(r.source_ip).or_default() += r.count;
        }
    }
    let mut wanted: Vec<(IpAddr, u64)> = volume.into_iter().collect();
    wanted.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let ptr_skipped = wanted.len().saturating_sub(max_ptr);
    wanted.truncate(max_ptr);
    let mut ptr = HashMap::new();
    let mut ptr_failed = 0;
    for batch in wanted.chunks(PTR_BATCH) {
        let ips: Vec<IpAddr> = batch.iter().map(|(ip, _)| *ip).collect();
        let answers = crate::migration::fetch_reverse(resolver, ips.clone()).await;
        ptr_failed += answers
            .iter()
            .filter(|a| a.qtype == crate::dns::QueryType::Ptr && a.failed().is_some())
            .count();
        let mut records = DomainRecords::new(DomainName::from_ascii_unchecked("in-addr.arpa"));
        for a in answers {
            records.insert(a);
        }
        for ip in ips {
            if let Some(name) = confirmed_ptr(&records, ip) {
                ptr.insert(ip, name);
            }
        }
    }
    Sources {
        attributor,
        ptr,
        unresolved,
        ptr_skipped,
        lookup_failed,
        ptr_failed,
        max_ptr,
    }
}

/// `dmarc-enforced`'s evidence: the enforcement judgement per policy domain of `rows`, their
/// sources attributed as [`resolve`] does.
pub async fn enforcement(
    resolver: &Resolver,
    plan: &Plan,
    catalog: &Catalog,
    rows: &[Row],
    rule: super::summary::EnforcementRule,
) -> BTreeMap<String, super::summary::Enforcement> {
    let sources = resolve(resolver, plan, catalog, rows, plan.max_ptr).await;
    super::summary::view(&plan.name, 0, rows, |ip| sources.attribute(ip), rule).enforcement
}
