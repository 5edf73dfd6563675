//! What a migration needs fetched for one sending domain, beyond a plain check.
//!
//! During a staged migration both platforms send. For each From domain of a plan this gathers, on
//! top of the domain's own records (with the old and new platforms' DKIM selectors, at the
//! domain each platform signs as): the SPF trees of both platforms' includes and of the senders
//! the plan keeps (to price the merged record), the return-path and tracking hosts, the whole
//! DMARC tree walk of the domain, its return paths and signing domains (for the organisational
//! domain, RFC 9989 §4.10.2), the reverse and forward DNS of the new platform's dedicated IPs,
//! and the RFC 7208 `check_host()` verdict for each of its sending IPs. The analysis is
//! `checks::coexist`.

use crate::catalog::ProviderProfile;
use crate::dns::{Answer, QueryType, Resolver};
use crate::domain::DomainName;
use crate::evaluate::spf::{check_host, SpfQuery, SpfVerdict};
use crate::fetch::{fetch_dmarc_walk_all, fetch_domain, fetch_spf_tree, DomainRecords, Selector};
use crate::plan::{KeptSender, KeptSource, PlatformSetup, SendingDomain};
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
    /// The selectors to check: the plan's (an explicit empty list means none), or the
    /// platform's defaults.
    pub fn selectors(&self) -> Vec<String> {
        if let Some(named) = &self.setup.selectors {
            return named.clone();
        }
        self.profile
            .dkim
            .as_ref()
            .map(|d| d.selectors.clone())
            .unwrap_or_default()
    }

    /// The domain the platform signs as (DKIM `d=`): the plan's `signing_domain`, or the From
    /// domain.
    pub fn signing_domain<'d>(&'d self, from: &'d DomainName) -> &'d DomainName {
        self.setup.signing_domain.as_ref().unwrap_or(from)
    }

    /// Where receivers evaluate SPF for this platform's mail: its envelope (MAIL FROM) domain.
    /// A platform without a return path of its own in the plan or profile is taken to use the
    /// From domain, the conservative reading.
    pub fn envelope(&self) -> Envelope<'_> {
        use crate::catalog::providers::{ReturnPathKind, SpfPlacement};
        if let Some(rp) = &self.setup.return_path {
            return Envelope::ReturnPath(rp);
        }
        let profile_rp = self.profile.return_path.as_ref();
        match profile_rp.map(|r| r.kind) {
            Some(ReturnPathKind::FromDomain) => return Envelope::FromDomain,
            Some(ReturnPathKind::PlatformOwned) => {
                return Envelope::Platform(profile_rp.and_then(|r| r.default_domain.as_deref()))
            }
            _ => {}
        }
        if let Some(default) = profile_rp.and_then(|r| r.default_domain.as_deref()) {
            return Envelope::Platform(Some(default));
        }
        match self.profile.spf.as_ref().map(|s| s.placement) {
            Some(SpfPlacement::ReturnPath | SpfPlacement::NotNeeded) => Envelope::Platform(None),
            Some(SpfPlacement::FromDomain) | None => Envelope::FromDomain,
        }
    }
}

/// The envelope (MAIL FROM) domain of a platform's mail, where SPF is evaluated for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Envelope<'a> {
    /// The From domain itself.
    FromDomain,
    /// A return-path host of the plan's (`em1234.example.com`).
    ReturnPath(&'a DomainName),
    /// The platform's own bounce domain (named when the profile knows it).
    Platform(Option<&'a str>),
}

impl std::fmt::Display for Envelope<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Envelope::FromDomain => f.write_str("the From domain"),
            Envelope::ReturnPath(rp) => write!(f, "{rp}"),
            Envelope::Platform(Some(d)) => write!(f, "{d}"),
            Envelope::Platform(None) => f.write_str("the platform's own bounce domain"),
        }
    }
}

/// One sending IP of the new platform for a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendingIp {
    pub ip: IpAddr,
    /// The company's own IP (reverse DNS and warmup are its business), or the platform's
    /// shared pool.
    pub dedicated: bool,
    /// The plan's pool it is in.
    pub pool: String,
}

/// The plan's view of one From domain during one stage.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub domain: &'a SendingDomain,
    /// The platform being left; `None` for a domain new on the new platform, and when checking
    /// a domain against one platform (`check --provider`).
    pub old: Option<Side<'a>>,
    /// The platform moved to; `None` for a domain being retired with the old platform.
    pub new: Option<Side<'a>>,
    /// Both platforms send (the stage is before the cutover).
    pub before_cutover: bool,
    /// The new platform's sending IPs for this domain, from the plan's pools.
    pub new_ips: &'a [SendingIp],
    /// The SPF terms of the senders the plan keeps authorised for this domain.
    pub kept: &'a [KeptTerm],
}

/// One SPF term a kept sender needs: it must stay in the record, counts in the budget, and is
/// never suggested for removal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptTerm {
    /// The sender's name (`Google Workspace`, `Help desk`).
    pub sender: String,
    /// `include:_spf.google.com`, `ip4:192.0.2.0/24`.
    pub term: String,
    /// Its mail uses the From domain as envelope sender, so the From domain's own record must
    /// carry the term.
    pub from_domain: bool,
}

impl KeptTerm {
    /// The terms of the senders the plan keeps for `domain` (a provider stands for its
    /// profile's SPF includes).
    pub fn for_domain(
        kept: impl Iterator<Item = impl std::ops::Deref<Target = KeptSender>>,
        catalog: &crate::catalog::Catalog,
    ) -> Vec<KeptTerm> {
        let mut out = Vec::new();
        for k in kept {
            let terms: Vec<String> = match &k.source {
                KeptSource::SpfTerm(term) => vec![term.clone()],
                KeptSource::Provider(id) => catalog
                    .provider(id)
                    .and_then(|p| p.spf.as_ref())
                    .map(|s| s.includes.iter().map(|i| format!("include:{i}")).collect())
                    .unwrap_or_default(),
            };
            out.extend(terms.into_iter().map(|term| KeptTerm {
                sender: k.name.clone(),
                term,
                from_domain: k.envelope_from_domain,
            }));
        }
        out
    }

    /// The include target, for terms that are includes.
    pub fn include_target(&self) -> Option<&str> {
        self.term
            .trim_start_matches(['+', '-', '~', '?'])
            .strip_prefix("include:")
    }
}

/// Where an evaluated sending IP came from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum IpSource {
    /// One of the plan's pools (`[[pool]]`, or `[migration] new_sending_ips`).
    Pool(String),
    /// The first address of a range the platform publishes.
    PublishedRange(String),
}

/// The `check_host()` verdict for one sending IP of the new platform.
#[derive(Debug, Clone)]
pub struct IpCheck {
    pub ip: IpAddr,
    pub source: IpSource,
    pub dedicated: bool,
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

/// The IPs to evaluate SPF for: the plan's pools for the new platform and this domain, or one
/// address of each range the platform publishes; with whether each is dedicated.
pub fn sending_ips(ctx: &Context<'_>) -> Vec<(IpAddr, IpSource, bool)> {
    if !ctx.new_ips.is_empty() {
        return ctx
            .new_ips
            .iter()
            .map(|s| (s.ip, IpSource::Pool(s.pool.clone()), s.dedicated))
            .collect();
    }
    let Some(new) = ctx.new else {
        return Vec::new();
    };
    new.profile
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
            // Published ranges are the platform's shared pools.
            Some((ip, IpSource::PublishedRange(range.clone()), false))
        })
        .collect()
}

/// The domain SPF is evaluated for when the new platform sends: its return path, or the From
/// domain when that is its envelope; `None` when its envelope is the platform's own domain (SPF
/// there is the platform's record, not the company's).
pub fn new_spf_domain(ctx: &Context<'_>) -> Option<DomainName> {
    match ctx.new?.envelope() {
        Envelope::ReturnPath(rp) => Some(rp.clone()),
        Envelope::FromDomain => Some(ctx.domain.name.clone()),
        Envelope::Platform(_) => None,
    }
}

/// The sides whose records matter at this stage: the new one, and the old one until the
/// cutover.
pub fn sides<'a>(ctx: &Context<'a>) -> impl Iterator<Item = Side<'a>> {
    ctx.new
        .into_iter()
        .chain(ctx.old.filter(|_| ctx.before_cutover))
}

/// Fetches everything `checks::coexist` needs for one From domain.
pub async fn fetch_migration(resolver: &Resolver, ctx: &Context<'_>) -> MigrationRecords {
    let domain = &ctx.domain.name;
    let all_sides: Vec<Side<'_>> = ctx.old.into_iter().chain(ctx.new).collect();
    // Selectors at the From domain go with the domain's own records; those of platforms that
    // sign as another domain are fetched there.
    let mut selectors: Vec<Selector> = Vec::new();
    let mut elsewhere: Vec<DomainName> = Vec::new();
    for side in &all_sides {
        let signer = side.signing_domain(domain);
        for name in side.selectors() {
            if signer != domain {
                elsewhere.push(signer.child(&format!("{name}._domainkey")));
            } else if !selectors.iter().any(|s| s.name == name) {
                selectors.push(Selector {
                    name,
                    used_by: Some(side.profile.name.clone()),
                    explicit: true,
                });
            }
        }
    }
    let mut spf_roots: Vec<DomainName> = ctx
        .kept
        .iter()
        .filter_map(|k| DomainName::parse(k.include_target()?).ok())
        .collect();
    let mut hosts: Vec<DomainName> = Vec::new();
    let mut walks: Vec<DomainName> = vec![domain.clone()];
    for side in &all_sides {
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
        walks.extend(side.setup.return_path.iter().cloned());
        walks.extend(side.setup.signing_domain.iter().cloned());
    }
    let ips = sending_ips(ctx);
    let dedicated: Vec<IpAddr> = ips
        .iter()
        .filter(|(_, _, dedicated)| *dedicated)
        .map(|(ip, _, _)| *ip)
        .collect();
    let spf_domain = new_spf_domain(ctx);
    let evaluated: Vec<&(IpAddr, IpSource, bool)> = match &spf_domain {
        Some(_) => ips.iter().collect(),
        None => Vec::new(),
    };
    let spf_domain = spf_domain.unwrap_or_else(|| ctx.domain.name.clone());

    let (records, trees, host_answers, walk_answers, key_answers, ptr_answers, ip_checks) = futures::join!(
        fetch_domain(resolver, domain, selectors),
        join_all(spf_roots.iter().map(|r| fetch_spf_tree(resolver, r))),
        join_all(hosts.iter().flat_map(|h| {
            [
                resolver.lookup(h, QueryType::Cname),
                resolver.lookup(h, QueryType::Mx),
            ]
        })),
        join_all(walks.iter().map(|w| fetch_dmarc_walk_all(resolver, w))),
        join_all(elsewhere.iter().map(|k| resolver.lookup(k, QueryType::Txt))),
        fetch_reverse(resolver, dedicated),
        join_all(evaluated.into_iter().map(|(ip, source, dedicated)| {
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
                    dedicated: *dedicated,
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
        .chain(key_answers)
        .chain(ptr_answers)
        .collect();
    for answer in extra {
        records.insert(answer);
    }
    MigrationRecords { records, ip_checks }
}

/// PTR of each IP, then the addresses of each PTR name (forward confirmation).
pub async fn fetch_reverse(resolver: &Resolver, ips: Vec<IpAddr>) -> Vec<Arc<Answer>> {
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
