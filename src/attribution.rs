//! Which platform sent from an IP address: the source attribution behind DMARC report
//! summaries (issue 10), with no manual mapping.
//!
//! A report row names only the source IP (and, where looked up, its reverse DNS name). An
//! [`Attributor`] is built once per plan from what is known of each platform of the migration —
//! the old and new platforms of every domain, and the senders kept throughout — and then answers
//! per IP. The evidence, strongest first: the plan's own IP pools (`[[pool]]`,
//! `new_sending_ips`); the networks the platform's SPF include authorises, resolved from DNS
//! ([`spf_networks`], the most specific network winning when platforms overlap, as Mandrill and
//! Mailchimp do); the ranges a profile publishes; the reverse DNS patterns of a profile
//! (`ptr`). Anything else is *unknown*: failing DMARC, that is the spoofing and forgotten-sender
//! signal. The DNS answers are fetched before (`fetch::fetch_spf_tree`); everything here is pure.

use crate::catalog::providers::{full_match_regex, parse_cidr};
use crate::catalog::Catalog;
use crate::dns::{QueryType, RecordData};
use crate::domain::DomainName;
use crate::fetch::{mx_hosts, single_spf, DomainRecords};
use crate::plan::{KeptSource, Plan};
use crate::records::spf::{DomainSpec, Mechanism, Qualifier, TermKind};
use regex::Regex;
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::net::IpAddr;

/// How deep includes are followed (RFC 7208 allows 10 lookups; a deeper tree is broken anyway).
const MAX_DEPTH: usize = 12;

/// An IP network: an address and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Network {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Network {
    pub fn new(addr: IpAddr, prefix: u8) -> Network {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        Network {
            addr,
            prefix: prefix.min(max),
        }
    }

    /// One address.
    pub fn host(addr: IpAddr) -> Network {
        Network::new(addr, if addr.is_ipv4() { 32 } else { 128 })
    }

    /// `192.0.2.0/24`, `2001:db8::/32`.
    pub fn parse(text: &str) -> Result<Network, String> {
        parse_cidr(text).map(|(addr, prefix)| Network::new(addr, prefix))
    }

    /// True when `ip` is in this network. An IPv4-mapped IPv6 address is its IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(ip) & mask == u32::from(net) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(ip) & mask == u128::from(net) & mask
            }
            _ => false,
        }
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl Serialize for Network {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The networks an SPF record authorises (its `+` mechanisms, includes and redirects followed,
/// `a` and `mx` resolved), and what cannot be turned into networks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpfNetworks {
    pub networks: Vec<Network>,
    /// Terms that authorise senders no network describes (`exists`, `ptr`, macros), and
    /// records that were missing or could not be fetched: an IP may belong to the platform
    /// without being in `networks`.
    pub unresolved: Vec<String>,
}

/// The networks `domain`'s SPF record authorises, from fetched answers.
pub fn spf_networks(records: &DomainRecords, domain: &DomainName) -> SpfNetworks {
    let mut out = SpfNetworks::default();
    let mut seen = HashSet::new();
    collect(records, domain, 0, &mut seen, &mut out);
    out.networks.sort();
    out.networks.dedup();
    out
}

fn collect(
    records: &DomainRecords,
    domain: &DomainName,
    depth: usize,
    seen: &mut HashSet<DomainName>,
    out: &mut SpfNetworks,
) {
    if depth > MAX_DEPTH || !seen.insert(domain.clone()) {
        return;
    }
    let Some(answer) = records.get(domain, QueryType::Txt) else {
        out.unresolved.push(format!("{domain}: not fetched"));
        return;
    };
    if let Some(e) = answer.failed() {
        out.unresolved.push(format!("{domain}: {e}"));
        return;
    }
    let Some(record) = single_spf(answer) else {
        out.unresolved
            .push(format!("{domain}: no single SPF record"));
        return;
    };
    let literal = |spec: &Option<DomainSpec>| match spec {
        None => Some(domain.clone()),
        Some(DomainSpec::Literal(name)) => DomainName::parse(name).ok(),
        Some(DomainSpec::Macro(_)) => None,
    };
    for term in &record.terms {
        match &term.kind {
            TermKind::Directive {
                qualifier: Qualifier::Pass,
                mechanism,
            } => match mechanism {
                Mechanism::Ip4 { addr, prefix } => {
                    out.networks.push(Network::new(IpAddr::V4(*addr), *prefix))
                }
                Mechanism::Ip6 { addr, prefix } => {
                    out.networks.push(Network::new(IpAddr::V6(*addr), *prefix))
                }
                Mechanism::Include(DomainSpec::Literal(name)) => match DomainName::parse(name) {
                    Ok(target) => collect(records, &target, depth + 1, seen, out),
                    Err(_) => out.unresolved.push(term.raw.clone()),
                },
                Mechanism::A {
                    domain: spec,
                    cidr4,
                    cidr6,
                } => match literal(spec) {
                    Some(name) => addresses(records, &name, *cidr4, *cidr6, out),
                    None => out.unresolved.push(term.raw.clone()),
                },
                Mechanism::Mx {
                    domain: spec,
                    cidr4,
                    cidr6,
                } => match literal(spec).and_then(|n| records.get(&n, QueryType::Mx)) {
                    Some(mx) => {
                        for host in mx_hosts(mx) {
                            addresses(records, &host, *cidr4, *cidr6, out);
                        }
                    }
                    None => out.unresolved.push(term.raw.clone()),
                },
                Mechanism::All => {}
                _ => out.unresolved.push(term.raw.clone()),
            },
            TermKind::Redirect(DomainSpec::Literal(name)) => {
                if let Ok(target) = DomainName::parse(name) {
                    collect(records, &target, depth + 1, seen, out);
                }
            }
            _ => {}
        }
    }
}

fn addresses(
    records: &DomainRecords,
    name: &DomainName,
    cidr4: Option<u8>,
    cidr6: Option<u8>,
    out: &mut SpfNetworks,
) {
    let mut any = false;
    for qtype in [QueryType::A, QueryType::Aaaa] {
        let Some(answer) = records.get(name, qtype) else {
            continue;
        };
        for r in answer.records() {
            match &r.data {
                RecordData::A(a) => {
                    any = true;
                    out.networks
                        .push(Network::new(IpAddr::V4(*a), cidr4.unwrap_or(32)));
                }
                RecordData::Aaaa(a) => {
                    any = true;
                    out.networks
                        .push(Network::new(IpAddr::V6(*a), cidr6.unwrap_or(128)));
                }
                _ => {}
            }
        }
    }
    if !any {
        out.unresolved.push(format!("{name}: no addresses fetched"));
    }
}

/// Where a platform stands in the migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// The platform being moved to.
    New,
    /// The platform being left.
    Old,
    /// A sender the plan keeps throughout (staff mail, a help desk).
    Kept,
    /// Nothing the plan knows.
    Unknown,
}

impl Side {
    pub fn word(self) -> &'static str {
        match self {
            Side::New => "new",
            Side::Old => "old",
            Side::Kept => "kept",
            Side::Unknown => "unknown",
        }
    }
}

/// Why an IP was attributed to a platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Basis {
    /// One of the plan's own IPs (`[[pool]]` or `new_sending_ips`).
    Pool { pool: String },
    /// In a network the platform's SPF include authorises.
    Spf { include: String, network: Network },
    /// In a range the platform's profile publishes.
    PublishedRange { network: Network },
    /// Its reverse DNS name matches the platform's pattern.
    ReverseDns { name: String, pattern: String },
}

impl fmt::Display for Basis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Basis::Pool { pool } => write!(f, "pool {pool}"),
            Basis::Spf { include, network } => write!(f, "{network} in include:{include}"),
            Basis::PublishedRange { network } => write!(f, "published range {network}"),
            Basis::ReverseDns { name, .. } => write!(f, "reverse DNS {name}"),
        }
    }
}

/// What an IP was attributed to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attribution {
    pub side: Side,
    /// The provider id (or, for a kept SPF term, the plan's name for the sender).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub basis: Option<Basis>,
}

impl Attribution {
    pub const UNKNOWN: Attribution = Attribution {
        side: Side::Unknown,
        platform: None,
        basis: None,
    };
}

/// One platform the attributor knows, and what identifies it.
#[derive(Debug, Clone)]
struct Claimant {
    side: Side,
    platform: String,
}

/// Attributes IPs to the platforms of one plan. Build once, ask per row.
#[derive(Debug, Clone, Default)]
pub struct Attributor {
    pools: Vec<(IpAddr, usize, String)>,
    /// (network, claimant, include or `None` for a published range), most specific first.
    networks: Vec<(Network, usize, Option<String>)>,
    ptr: Vec<(Regex, usize)>,
    claimants: Vec<Claimant>,
}

/// The SPF include names whose networks the attributor needs: every platform's and kept
/// provider's profile includes, and the kept senders' own `include:` terms. Fetch their trees
/// (`fetch::fetch_spf_tree`), resolve each with [`spf_networks`], then build.
pub fn includes_to_resolve(plan: &Plan, catalog: &Catalog) -> Vec<DomainName> {
    let profiles = platforms(plan)
        .into_iter()
        .map(|(_, id)| id)
        .chain(plan.keep.iter().filter_map(|k| match &k.source {
            KeptSource::Provider(id) => Some(id.clone()),
            KeptSource::SpfTerm(_) => None,
        }))
        .filter_map(|id| catalog.provider(&id))
        .filter_map(|p| p.spf.as_ref())
        .flat_map(|spf| spf.includes.clone());
    let terms = plan.keep.iter().filter_map(|k| match &k.source {
        KeptSource::SpfTerm(term) => term.strip_prefix("include:").map(str::to_string),
        KeptSource::Provider(_) => None,
    });
    let mut out: Vec<DomainName> = profiles
        .chain(terms)
        .filter_map(|name| DomainName::parse(&name).ok())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The (side, provider id) of every platform of the plan: new before old, so a platform on
/// both sides of different domains (a family migration) counts as new.
fn platforms(plan: &Plan) -> Vec<(Side, String)> {
    let mut out: Vec<(Side, String)> = vec![(Side::New, plan.to.clone())];
    for d in &plan.domains {
        if let Some(n) = &d.new {
            out.push((Side::New, n.platform.clone()));
        }
    }
    out.push((Side::Old, plan.from.clone()));
    for d in &plan.domains {
        if let Some(o) = &d.old {
            out.push((Side::Old, o.platform.clone()));
        }
    }
    for pool in &plan.pools {
        out.push((
            if out
                .iter()
                .any(|(s, p)| *s == Side::Old && *p == pool.platform)
                && !out
                    .iter()
                    .any(|(s, p)| *s == Side::New && *p == pool.platform)
            {
                Side::Old
            } else {
                Side::New
            },
            pool.platform.clone(),
        ));
    }
    let mut seen = HashSet::new();
    out.retain(|(_, id)| seen.insert(id.clone()));
    out
}

impl Attributor {
    /// From the plan, the catalog's profiles and the SPF networks of the includes
    /// [`includes_to_resolve`] named (missing entries just attribute less).
    pub fn new(
        plan: &Plan,
        catalog: &Catalog,
        resolved: &BTreeMap<DomainName, SpfNetworks>,
    ) -> Attributor {
        let mut a = Attributor::default();
        let claimant = |a: &mut Attributor, side: Side, platform: &str| -> usize {
            if let Some(i) = a
                .claimants
                .iter()
                .position(|c| c.side == side && c.platform == platform)
            {
                return i;
            }
            a.claimants.push(Claimant {
                side,
                platform: platform.to_string(),
            });
            a.claimants.len() - 1
        };
        let sides = platforms(plan);
        for pool in &plan.pools {
            let side = sides
                .iter()
                .find(|(_, p)| *p == pool.platform)
                .map_or(Side::New, |(s, _)| *s);
            let c = claimant(&mut a, side, &pool.platform);
            for ip in &pool.ips {
                a.pools.push((*ip, c, pool.name.clone()));
            }
        }
        let add_profile = |a: &mut Attributor, side: Side, id: &str| {
            let Some(profile) = catalog.provider(id) else {
                return;
            };
            let c = claimant(a, side, id);
            for include in profile.spf.iter().flat_map(|s| s.includes.iter()) {
                let Ok(name) = DomainName::parse(include) else {
                    continue;
                };
                for network in resolved.get(&name).map_or(&[][..], |n| &n.networks) {
                    a.networks.push((*network, c, Some(name.to_string())));
                }
            }
            for range in &profile.sending_ranges {
                if let Ok(network) = Network::parse(range) {
                    a.networks.push((network, c, None));
                }
            }
            for pattern in &profile.ptr {
                if let Ok(re) = full_match_regex(pattern) {
                    a.ptr.push((re, c));
                }
            }
        };
        for (side, id) in &sides {
            add_profile(&mut a, *side, id);
        }
        for kept in &plan.keep {
            match &kept.source {
                KeptSource::Provider(id) => add_profile(&mut a, Side::Kept, id),
                KeptSource::SpfTerm(term) => {
                    let c = claimant(&mut a, Side::Kept, &kept.name);
                    if let Some(include) = term.strip_prefix("include:") {
                        if let Ok(name) = DomainName::parse(include) {
                            for network in resolved.get(&name).map_or(&[][..], |n| &n.networks) {
                                a.networks.push((*network, c, Some(name.to_string())));
                            }
                        }
                    } else if let Some(range) = term
                        .strip_prefix("ip4:")
                        .or_else(|| term.strip_prefix("ip6:"))
                    {
                        let network = if range.contains('/') {
                            Network::parse(range)
                        } else {
                            range
                                .parse::<IpAddr>()
                                .map(Network::host)
                                .map_err(|e| e.to_string())
                        };
                        if let Ok(network) = network {
                            a.networks.push((network, c, None));
                        }
                    }
                }
            }
        }
        // Most specific first: a platform's narrower network beats a wider one it shares.
        a.networks
            .sort_by(|x, y| y.0.prefix.cmp(&x.0.prefix).then(x.1.cmp(&y.1)));
        a
    }

    /// The platform that sent from `ip`, given its reverse DNS name when it was looked up.
    pub fn attribute(&self, ip: IpAddr, ptr: Option<&str>) -> Attribution {
        let found = |c: usize, basis: Basis| {
            self.claimants
                .get(c)
                .map_or(Attribution::UNKNOWN, |cl| Attribution {
                    side: cl.side,
                    platform: Some(cl.platform.clone()),
                    basis: Some(basis),
                })
        };
        if let Some((_, c, pool)) = self.pools.iter().find(|(p, _, _)| *p == ip) {
            return found(*c, Basis::Pool { pool: pool.clone() });
        }
        if let Some((network, c, include)) = self.networks.iter().find(|(n, _, _)| n.contains(ip)) {
            return found(
                *c,
                match include {
                    Some(include) => Basis::Spf {
                        include: include.clone(),
                        network: *network,
                    },
                    None => Basis::PublishedRange { network: *network },
                },
            );
        }
        if let Some(name) = ptr {
            let name = name.trim_end_matches('.');
            if let Some((re, c)) = self.ptr.iter().find(|(re, _)| re.is_match(name)) {
                return found(
                    *c,
                    Basis::ReverseDns {
                        name: name.to_string(),
                        pattern: re.as_str().to_string(),
                    },
                );
            }
        }
        Attribution::UNKNOWN
    }
}

/// The forward-confirmed reverse DNS name of `ip` from fetched answers
/// (`migration::fetch_reverse`): a PTR name whose A or AAAA records include `ip`. Anyone can
/// set the PTR of their own address to `mail.sendgrid.net`; only the platform can make that
/// name resolve back to it.
pub fn confirmed_ptr(records: &DomainRecords, ip: IpAddr) -> Option<String> {
    let ptr = records.get(&crate::migration::reverse_name(ip), QueryType::Ptr)?;
    ptr.records().iter().find_map(|r| {
        let RecordData::Ptr(target) = &r.data else {
            return None;
        };
        let name = DomainName::parse(target).ok()?;
        let back = [QueryType::A, QueryType::Aaaa].iter().any(|t| {
            records.get(&name, *t).is_some_and(|a| {
                a.records().iter().any(|r| match r.data {
                    RecordData::A(v4) => IpAddr::V4(v4) == ip,
                    RecordData::Aaaa(v6) => IpAddr::V6(v6) == ip,
                    _ => false,
                })
            })
        });
        back.then(|| name.to_string())
    })
}

impl Attributor {
    /// True when only a reverse DNS name could still place `ip`: the pools and networks do
    /// not, and some profile has patterns. Report sources are looked up only then (a report
    /// of 900,000 rows must not cost 900,000 PTR lookups).
    pub fn needs_ptr(&self, ip: IpAddr) -> bool {
        !self.ptr.is_empty() && self.attribute(ip, None).side == Side::Unknown
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::{Answer, Outcome, Record, Source};
    use std::path::Path;

    fn answer(name: &str, qtype: QueryType, data: Vec<RecordData>) -> Answer {
        Answer {
            name: DomainName::from_ascii_unchecked(name),
            qtype,
            outcome: Outcome::Records(
                data.into_iter()
                    .map(|data| Record { ttl: 300, data })
                    .collect::<Vec<_>>()
                    .into(),
            ),
            cname_chain: vec![],
            cname_conflict: false,
            source: Source::Network,
        }
    }

    fn txt(name: &str, text: &str) -> Answer {
        answer(
            name,
            QueryType::Txt,
            vec![RecordData::Txt(vec![text.as_bytes().to_vec()])],
        )
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn records(answers: Vec<Answer>) -> DomainRecords {
        DomainRecords::with_answers(DomainName::from_ascii_unchecked("example.com"), answers)
    }

    fn name(text: &str) -> DomainName {
        DomainName::parse(text).unwrap()
    }

    #[test]
    fn networks_contain_their_addresses_only() {
        let n = Network::parse("198.51.100.0/24").unwrap();
        assert!(n.contains(ip("198.51.100.25")));
        assert!(!n.contains(ip("198.51.101.1")));
        // An IPv4-mapped IPv6 source (as some reports write it) is its IPv4 address.
        assert!(n.contains(ip("::ffff:198.51.100.7")));
        let v6 = Network::parse("2001:4860:4000::/36").unwrap();
        assert!(v6.contains(ip("2001:4860:4864:20::2f")));
        assert!(!v6.contains(ip("198.51.100.25")));
        assert!(Network::new(ip("192.0.2.1"), 0).contains(ip("203.0.113.9")));
        assert_eq!(Network::new(ip("192.0.2.1"), 99).prefix, 32);
    }

    #[test]
    fn spf_networks_follow_includes_redirects_a_and_mx_and_name_what_they_cannot_resolve() {
        let recs = records(vec![
            txt(
                "_spf.example.com",
                "v=spf1 ip4:192.0.2.0/25 include:_a.example.com -ip4:192.0.2.9 exists:%{i}._x.example.com ~all",
            ),
            txt("_a.example.com", "v=spf1 a:out.example.com/28 mx redirect=_r.example.com"),
            txt("_r.example.com", "v=spf1 ip6:2001:db8::/32 include:_missing.example.com -all"),
            answer("out.example.com", QueryType::A, vec![RecordData::A("203.0.113.5".parse().unwrap())]),
            answer(
                "_a.example.com",
                QueryType::Mx,
                vec![RecordData::Mx {
                    preference: 10,
                    exchange: "mx1.example.com".into(),
                }],
            ),
            answer("mx1.example.com", QueryType::A, vec![RecordData::A("198.51.100.77".parse().unwrap())]),
        ]);
        let got = spf_networks(&recs, &name("_spf.example.com"));
        let shown: Vec<String> = got.networks.iter().map(|n| n.to_string()).collect();
        assert_eq!(
            shown,
            [
                "192.0.2.0/25",
                "198.51.100.77/32",
                "203.0.113.5/28",
                "2001:db8::/32"
            ]
        );
        assert_eq!(
            got.unresolved,
            [
                "_missing.example.com: not fetched",
                "exists:%{i}._x.example.com"
            ]
        );
    }

    fn northwind() -> (Plan, Catalog) {
        let catalog = Catalog::embedded().unwrap();
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/plans/northwind.toml");
        (Plan::load(&path, &catalog).unwrap(), catalog)
    }

    #[test]
    fn sources_are_attributed_by_pool_spf_network_and_reverse_dns_strongest_first() {
        let (plan, catalog) = northwind();
        let includes = includes_to_resolve(&plan, &catalog);
        let shown: Vec<String> = includes.iter().map(|n| n.to_string()).collect();
        // SendGrid (new), Mailchimp (old) and the kept Google Workspace.
        assert!(shown.contains(&"sendgrid.net".to_string()), "{shown:?}");
        assert!(shown.contains(&"servers.mcsv.net".to_string()), "{shown:?}");
        let recs = records(vec![
            txt(
                "sendgrid.net",
                "v=spf1 ip4:198.51.100.0/24 ip4:167.89.0.0/17 ~all",
            ),
            txt(
                "servers.mcsv.net",
                "v=spf1 ip4:205.201.128.0/20 ip4:198.2.128.0/18 ~all",
            ),
        ]);
        let resolved: BTreeMap<DomainName, SpfNetworks> = includes
            .iter()
            .map(|n| (n.clone(), spf_networks(&recs, n)))
            .collect();
        let a = Attributor::new(&plan, &catalog, &resolved);

        // The plan's own dedicated IP: the pool, although SendGrid's include covers it too.
        let got = a.attribute(ip("198.51.100.25"), None);
        assert_eq!(
            (got.side, got.platform.as_deref()),
            (Side::New, Some("sendgrid"))
        );
        assert!(matches!(got.basis, Some(Basis::Pool { .. })), "{got:?}");
        // A shared SendGrid IP, by the include's network.
        let got = a.attribute(ip("167.89.12.4"), None);
        assert_eq!(
            (got.side, got.platform.as_deref()),
            (Side::New, Some("sendgrid"))
        );
        assert_eq!(
            got.basis.map(|b| b.to_string()).as_deref(),
            Some("167.89.0.0/17 in include:sendgrid.net")
        );
        // Mailchimp, the old platform.
        let got = a.attribute(ip("198.2.180.60"), None);
        assert_eq!(
            (got.side, got.platform.as_deref()),
            (Side::Old, Some("mailchimp"))
        );
        // Outside every network, a forward-confirmed reverse DNS name places it.
        let got = a.attribute(ip("203.0.113.44"), Some("mail180-12.suw21.mcdlv.net."));
        assert_eq!(
            (got.side, got.platform.as_deref()),
            (Side::Old, Some("mailchimp"))
        );
        assert!(matches!(got.basis, Some(Basis::ReverseDns { .. })));
        // Nothing the plan knows: unknown, whatever its name claims elsewhere.
        assert_eq!(
            a.attribute(ip("203.0.113.44"), Some("mail.spoofer.example")),
            Attribution::UNKNOWN
        );
        assert_eq!(a.attribute(ip("2001:db8::1"), None), Attribution::UNKNOWN);
    }

    #[test]
    fn kept_senders_are_attributed_as_kept() {
        let (mut plan, catalog) = northwind();
        plan.keep.push(crate::plan::KeptSender {
            name: "Help desk".into(),
            source: KeptSource::SpfTerm("ip4:192.0.2.0/28".into()),
            domains: vec![],
            envelope_from_domain: false,
        });
        let a = Attributor::new(&plan, &catalog, &BTreeMap::new());
        let got = a.attribute(ip("192.0.2.3"), None);
        assert_eq!(
            (got.side, got.platform.as_deref()),
            (Side::Kept, Some("Help desk"))
        );
        assert_eq!(a.attribute(ip("192.0.2.30"), None).side, Side::Unknown);
    }

    #[test]
    fn every_profile_ptr_pattern_compiles_and_matches_a_name_of_its_own_platform() {
        let catalog = Catalog::embedded().unwrap();
        let seen = [
            ("sendgrid", "wrqvtbkv.outbound-mail.sendgrid.net"),
            ("mailchimp", "mail135.atl221.rsgsv.net"),
            ("amazon-ses", "a27-1.smtp-out.eu-west-1.amazonses.com"),
            ("postmark", "mta-10-2.mtasv.net"),
            ("google-workspace", "mail-sor-f41.google.com"),
            (
                "microsoft-365",
                "mail-db8eur05on2041.outbound.protection.outlook.com",
            ),
        ];
        for (id, ptr) in seen {
            let profile = catalog.provider(id).unwrap();
            assert!(
                profile
                    .ptr
                    .iter()
                    .any(|p| full_match_regex(p).unwrap().is_match(ptr)),
                "{id}: {ptr}"
            );
        }
        // Whole-name matches: a look-alike suffix is not the platform.
        let sendgrid = catalog.provider("sendgrid").unwrap();
        assert!(!sendgrid.ptr.iter().any(|p| full_match_regex(p)
            .unwrap()
            .is_match("x.sendgrid.net.evil.example")));
    }

    #[test]
    fn only_a_forward_confirmed_reverse_name_counts() {
        let ip4: IpAddr = ip("203.0.113.44");
        let rname = crate::migration::reverse_name(ip4).to_string();
        let ptr =
            |target: &str| answer(&rname, QueryType::Ptr, vec![RecordData::Ptr(target.into())]);
        let back = |name: &str, addr: &str| {
            answer(
                name,
                QueryType::A,
                vec![RecordData::A(addr.parse().unwrap())],
            )
        };
        let confirmed = records(vec![
            ptr("mail180-12.suw21.mcdlv.net."),
            back("mail180-12.suw21.mcdlv.net", "203.0.113.44"),
        ]);
        assert_eq!(
            confirmed_ptr(&confirmed, ip4).as_deref(),
            Some("mail180-12.suw21.mcdlv.net")
        );
        // A spoofer's PTR claims Mailchimp, but the name does not resolve back to it.
        let claimed = records(vec![
            ptr("mail180-12.suw21.mcdlv.net."),
            back("mail180-12.suw21.mcdlv.net", "205.201.131.12"),
        ]);
        assert_eq!(confirmed_ptr(&claimed, ip4), None);
        assert_eq!(confirmed_ptr(&records(vec![]), ip4), None);

        let (plan, catalog) = northwind();
        let a = Attributor::new(&plan, &catalog, &BTreeMap::new());
        assert!(a.needs_ptr(ip4));
        assert!(
            !a.needs_ptr(ip("198.51.100.25")),
            "the plan's pool places it"
        );
    }
}
