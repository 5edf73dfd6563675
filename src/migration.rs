//! What a migration needs fetched for one sending domain, beyond a plain check.
//!
//! During a staged migration both platforms send. For each From domain of a plan this gathers, on
//! top of the domain's own records (with the old and new platforms' DKIM selectors): the SPF
//! trees of both platforms' includes (to price the merged record), the return-path and tracking
//! hosts, the whole DMARC tree walk of the domain and its return paths (for the organisational
//! domain, RFC 9989 §4.10.2), the reverse and forward DNS of the new platform's sending IPs, and
//! the RFC 7208 `check_host()` verdict for each of those IPs. The analysis is
//! `checks::coexist`.

use crate::catalog::ProviderProfile;
use crate::dns::{Answer, QueryType, Resolver};
use crate::domain::DomainName;
use crate::evaluate::spf::{check_host, SpfQuery, SpfVerdict};
use crate::fetch::{fetch_dmarc_walk_all, fetch_domain, fetch_spf_tree, DomainRecords, Selector};
use crate::plan::{PlatformSetup, SendingDomain};
use futures::future::join_all;
use std::net::IpAddr;
use std::sync::Arc;

/// One side of the migration at one domain: the platform and what the plan says it uses there.
#[derive(Debug, Clone, Copy)]
pub struct Side<'a> {
    pub profile: &'a ProviderProfile,
    pub setup: &'a PlatformSetup,
}

impl Side<'_> {
    /// The selectors to check: the plan's, or the platform's defaults.
    pub fn selectors(&self) -> Vec<String> {
        if !self.setup.selectors.is_empty() {
            return self.setup.selectors.clone();
        }
        self.profile
            .dkim
            .as_ref()
            .map(|d| d.selectors.clone())
            .unwrap_or_default()
    }
}

/// The plan's view of one From domain during one stage.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub domain: &'a SendingDomain,
    /// The platform being left; `None` when checking a domain against one platform
    /// (`check --provider`).
    pub old: Option<Side<'a>>,
    pub new: Side<'a>,
    /// Both platforms send (the stage is before the cutover).
    pub before_cutover: bool,
    /// The new platform's dedicated sending IPs, from the plan.
    pub new_ips: &'a [IpAddr],
}

/// Where an evaluated sending IP came from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum IpSource {
    /// `[migration] new_sending_ips`.
    Plan,
    /// The first address of a range the platform publishes.
    PublishedRange(String),
}

/// The `check_host()` verdict for one sending IP of the new platform.
#[derive(Debug, Clone)]
pub struct IpCheck {
    pub ip: IpAddr,
    pub source: IpSource,
    /// The domain SPF is evaluated for: the return path, or the From domain.
    pub spf_domain: DomainName,
    pub verdict: SpfVerdict,
}

/// Everything fetched for one From domain of a plan.
#[derive(Debug, Clone)]
pub struct MigrationRecords {
    pub records: DomainRecords,
    pub ip_checks: Vec<IpCheck>,
}

/// The reverse-DNS name of an address (`4.3.2.1.in-addr.arpa`, nibbles for IPv6).
pub fn reverse_name(ip: IpAddr) -> DomainName {
    DomainName::from_ascii_unchecked(crate::evaluate::spf::macros::reverse_name(ip))
}

/// The IPs to evaluate SPF for: the plan's, or one address of each published range.
pub fn sending_ips(ctx: &Context<'_>) -> Vec<(IpAddr, IpSource)> {
    if !ctx.new_ips.is_empty() {
        return ctx.new_ips.iter().map(|ip| (*ip, IpSource::Plan)).collect();
    }
    ctx.new
        .profile
        .sending_ranges
        .iter()
        .filter_map(|range| {
            let (addr, prefix) = crate::catalog::providers::parse_cidr(range).ok()?;
            // The first host of the range (not the network address, when the range has hosts).
            let ip = match addr {
                IpAddr::V4(v4) if prefix < 31 => {
                    IpAddr::V4((u32::from(v4).saturating_add(1)).into())
                }
                IpAddr::V6(v6) if prefix < 127 => {
                    IpAddr::V6((u128::from(v6).saturating_add(1)).into())
                }
                other => other,
            };
            Some((ip, IpSource::PublishedRange(range.clone())))
        })
        .collect()
}

/// The domain SPF is evaluated for when the new platform sends: its return path, if the plan
/// sets one, else the From domain.
pub fn new_spf_domain(ctx: &Context<'_>) -> DomainName {
    ctx.new
        .setup
        .return_path
        .clone()
        .unwrap_or_else(|| ctx.domain.name.clone())
}

/// Fetches everything `checks::coexist` needs for one From domain.
pub async fn fetch_migration(resolver: &Resolver, ctx: &Context<'_>) -> MigrationRecords {
    let domain = &ctx.domain.name;
    let mut selectors: Vec<Selector> = Vec::new();
    for side in ctx.old.iter().chain([&ctx.new]) {
        for name in side.selectors() {
            if !selectors.iter().any(|s| s.name == name) {
                selectors.push(Selector {
                    name,
                    used_by: Some(side.profile.name.clone()),
                    explicit: true,
                });
            }
        }
    }
    let mut spf_roots: Vec<DomainName> = Vec::new();
    let mut hosts: Vec<DomainName> = Vec::new();
    for side in ctx.old.iter().chain([&ctx.new]) {
        if let Some(spf) = &side.profile.spf {
            spf_roots.extend(
                spf.includes
                    .iter()
                    .filter_map(|i| DomainName::parse(i).ok()),
            );
        }
        spf_roots.extend(side.setup.return_path.iter().cloned());
        hosts.extend(side.setup.return_path.iter().cloned());
        hosts.extend(side.setup.tracking.iter().cloned());
    }
    let mut walks: Vec<DomainName> = vec![domain.clone()];
    walks.extend(ctx.new.setup.return_path.iter().cloned());
    walks.extend(
        ctx.old
            .iter()
            .flat_map(|o| o.setup.return_path.iter().cloned()),
    );
    let ips = sending_ips(ctx);
    let spf_domain = new_spf_domain(ctx);

    let (records, trees, host_answers, walk_answers, ptr_answers, ip_checks) = futures::join!(
        fetch_domain(resolver, domain, selectors),
        join_all(spf_roots.iter().map(|r| fetch_spf_tree(resolver, r))),
        join_all(hosts.iter().flat_map(|h| {
            [
                resolver.lookup(h, QueryType::Cname),
                resolver.lookup(h, QueryType::Mx),
            ]
        })),
        join_all(walks.iter().map(|w| fetch_dmarc_walk_all(resolver, w))),
        fetch_reverse(resolver, ips.iter().map(|(ip, _)| *ip).collect()),
        join_all(ips.iter().map(|(ip, source)| {
            let query = SpfQuery {
                ip: *ip,
                domain: spf_domain.to_string(),
                sender: Some(format!("bounce@{spf_domain}")),
                helo: None,
            };
            let spf_domain = spf_domain.clone();
            async move {
                IpCheck {
                    ip: *ip,
                    source: source.clone(),
                    spf_domain,
                    verdict: check_host(resolver, &query).await,
                }
            }
        })),
    );
    let mut records = records;
    let extra: Vec<Arc<Answer>> = trees
        .into_iter()
        .flat_map(|(answers, _)| answers)
        .chain(host_answers)
        .chain(walk_answers.into_iter().flatten())
        .chain(ptr_answers)
        .collect();
    for answer in extra {
        records.insert(answer);
    }
    MigrationRecords { records, ip_checks }
}

/// PTR of each IP, then the addresses of each PTR name (forward confirmation).
async fn fetch_reverse(resolver: &Resolver, ips: Vec<IpAddr>) -> Vec<Arc<Answer>> {
    let reverse: Vec<DomainName> = ips.iter().map(|ip| reverse_name(*ip)).collect();
    let ptrs = join_all(
        reverse
            .iter()
            .map(|name| resolver.lookup(name, QueryType::Ptr)),
    )
    .await;
    let mut names: Vec<DomainName> = Vec::new();
    for answer in &ptrs {
        for record in answer.records() {
            if let crate::dns::RecordData::Ptr(target) = &record.data {
                if let Ok(name) = DomainName::parse(target) {
                    if !names.contains(&name) {
                        names.push(name);
                    }
                }
            }
        }
    }
    let forward = join_all(names.iter().flat_map(|n| {
        [
            resolver.lookup(n, QueryType::A),
            resolver.lookup(n, QueryType::Aaaa),
        ]
    }))
    .await;
    ptrs.into_iter().chain(forward).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverse_names() {
        assert_eq!(
            reverse_name("192.0.2.7".parse().unwrap()).as_str(),
            "7.2.0.192.in-addr.arpa"
        );
        assert_eq!(
            reverse_name("2001:db8::1".parse().unwrap()).as_str(),
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"
        );
    }
}
