//! The fetch stage: every DNS answer one domain's checks need, gathered once.
//!
//! [`fetch_domain`] asks the resolver for the domain's TXT, MX and DMARC records, its DKIM
//! selectors, the whole SPF include tree with the address lookups its terms make, the addresses
//! of its MX hosts and the report destinations of its DMARC record. What comes back is a
//! [`DomainRecords`] snapshot; the analysers in `checks/` read only that, never the network.
//! Fetching follows the records (an include names the next record to fetch), so this module
//! parses SPF and DMARC just enough to know what to ask next; judging them is left to `checks/`.

use crate::catalog::blocklists::{listable, Code};
use crate::catalog::Blocklist;
use crate::dns::{Answer, QueryType, Resolver};
use crate::domain::DomainName;
use crate::records::dmarc::{is_dmarc_candidate, DmarcRecord};
use crate::records::spf::{is_spf, DomainSpec, Mechanism, SpfRecord};
use crate::web::WebFetch;
use futures::future::join_all;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

pub mod dnssec;
pub use dnssec::{fetch_dnssec, DnssecRequest};

/// SPF include/redirect targets fetched per domain at most. Receivers stop at 10 lookups, so
/// anything past this only shows how far over the limit a record is.
pub const MAX_SPF_RECORDS: usize = 40;
/// Nesting depth of includes fetched at most (a hostile chain can be 50 deep).
pub const MAX_SPF_DEPTH: usize = 12;
/// RFC 7208 §4.6.4: at most 10 MX hosts are looked up per `mx` term.
pub const MAX_MX_HOSTS: usize = 10;

/// A DKIM selector that was looked up, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    pub name: String,
    /// Who publishes it by default, for probed selectors (`SendGrid`).
    pub used_by: Option<String>,
    /// Named by the user (`--selector`, domains file), not probed.
    pub explicit: bool,
}

/// Everything fetched for one domain: the answers by question, and the order of the DMARC walk.
#[derive(Debug, Clone)]
pub struct DomainRecords {
    pub domain: DomainName,
    answers: HashMap<(DomainName, QueryType), Arc<Answer>>,
    /// The `_dmarc` names asked, in tree-walk order (RFC 9989 §4.10), up to the first record.
    pub dmarc_walk: Vec<DomainName>,
    pub selectors: Vec<Selector>,
    /// The SPF include tree was larger than mailshift fetches.
    pub spf_truncated: bool,
    /// The MTA-STS policy file, fetched when an `_mta-sts` record announces one.
    pub mta_sts_policy: Option<WebFetch>,
    /// What was looked up in the DNS blocklists, when the run asked for them.
    pub blocklists: Option<Arc<BlocklistRequest>>,
    /// Each authoritative server's copy of the mail records, when the run asked for them.
    pub propagation: Option<ZoneCopies>,
    /// What each MX host said on port 25, when the run asked for it (`--probe-smtp`).
    pub smtp: Option<crate::smtp_probe::SmtpProbes>,
    /// Where the BIMI record was found, and the logo and certificate it names, fetched.
    pub bimi: Option<BimiFetch>,
    /// Whether the answers validate (DNSSEC), and the MX hosts' TLSA records, when the run
    /// asked for them (`--dnssec`).
    pub dnssec: Option<dnssec::DnssecRecords>,
}

/// The most of a BIMI logo read (SVG Tiny P/S logos are a few KiB; 32 KiB is recommended).
pub const MAX_LOGO_BYTES: usize = crate::records::svg_tiny_ps::MAX_SVG_BYTES;

/// What BIMI discovery found beyond the TXT answers (which are in the records).
#[derive(Debug, Clone)]
pub struct BimiFetch {
    /// The domain whose `default._bimi` holds the record: the domain itself, or its DMARC
    /// policy domain when the domain has none (draft §7.2).
    pub found_at: Option<DomainName>,
    /// The logo `l=` names, when the record is usable.
    pub logo: Option<WebFetch>,
    /// The mark certificate `a=` names.
    pub authority: Option<WebFetch>,
    /// The mark certificate roots trusted for this run (embedded and `--bimi-ca`).
    pub roots: Arc<Vec<rustls_pki_types::CertificateDer<'static>>>,
    /// When it was fetched (the certificate's validity is judged at this time).
    pub fetched_at: chrono::DateTime<chrono::Utc>,
}

/// The `default._bimi` name of a domain.
pub fn bimi_name(domain: &DomainName) -> DomainName {
    crate::records::bimi::assertion_name(crate::records::bimi::DEFAULT_SELECTOR, domain)
}

/// Authoritative servers asked directly, at most, per zone (a zone has 2 to 8 in practice;
/// a hostile NS set must not turn into thousands of questions).
pub const MAX_AUTHORITATIVE_ADDRESSES: usize = 16;
/// Mail questions compared between servers, at most.
pub const MAX_PROPAGATION_QUESTIONS: usize = 16;

/// The copies of one zone its authoritative servers serve, as asked directly.
#[derive(Debug, Clone)]
pub struct ZoneCopies {
    /// The zone holding the domain (where its NS set is), or `None` when none was found.
    pub zone: Option<DomainName>,
    /// The NS answer of the zone, or of the last name asked when none was found.
    pub ns: Option<Arc<Answer>>,
    /// The questions compared: the SOA, then the mail records the checks read in the zone.
    pub questions: Vec<(DomainName, QueryType)>,
    pub servers: Vec<ServerCopy>,
    /// Addresses of the NS set beyond [`MAX_AUTHORITATIVE_ADDRESSES`], not asked.
    pub not_asked: usize,
    /// The zone's answers come from `--zone` files: no server was asked.
    pub from_zone_file: bool,
    /// When the servers were asked (seconds since the Unix epoch), for "visible by".
    pub asked_at: i64,
}

/// One authoritative server's answers, in the order of [`ZoneCopies::questions`].
#[derive(Debug, Clone)]
pub struct ServerCopy {
    pub host: DomainName,
    pub address: IpAddr,
    pub answers: Vec<crate::dns::DirectAnswer>,
}

/// The blocklist lookups a run asks for: the lists, and the sending IPs with where each came
/// from. The domain itself is looked up in the lists of domains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlocklistRequest {
    pub lists: Vec<Blocklist>,
    pub ips: Vec<SendingAddress>,
}

/// A sending IP and where the run learnt it (`--ip`, a plan pool).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendingAddress {
    pub ip: IpAddr,
    pub from: String,
}

impl DomainRecords {
    pub fn new(domain: DomainName) -> Self {
        DomainRecords {
            domain,
            answers: HashMap::new(),
            dmarc_walk: Vec::new(),
            selectors: Vec::new(),
            spf_truncated: false,
            mta_sts_policy: None,
            blocklists: None,
            propagation: None,
            smtp: None,
            bimi: None,
            dnssec: None,
        }
    }

    /// The answer to a question, if it was fetched.
    pub fn get(&self, name: &DomainName, qtype: QueryType) -> Option<&Answer> {
        self.answers.get(&(name.clone(), qtype)).map(|a| a.as_ref())
    }

    pub fn insert(&mut self, answer: Arc<Answer>) {
        self.answers
            .insert((answer.name.clone(), answer.qtype), answer);
    }

    pub fn answers(&self) -> impl Iterator<Item = &Answer> {
        self.answers.values().map(|a| a.as_ref())
    }

    /// Builds a snapshot from literal answers (for tests of the analysers).
    pub fn with_answers(domain: DomainName, answers: Vec<Answer>) -> Self {
        let mut rec = DomainRecords::new(domain);
        for a in answers {
            rec.insert(Arc::new(a));
        }
        rec
    }
}

/// A selector list for probing: built-in common selectors.
pub fn probe_selectors(catalog: &[(String, String)]) -> Vec<Selector> {
    catalog
        .iter()
        .map(|(name, used_by)| Selector {
            name: name.clone(),
            used_by: Some(used_by.clone()),
            explicit: false,
        })
        .collect()
}

/// A family of records a `check` may leave out (`check --skip`, and by default with a domains
/// file unless `check --with` asks for it): each costs a question per domain, and an HTTPS
/// fetch where it is published, which a run over many domains that only wants SPF, DKIM and
/// DMARC need not pay. Gates and snapshots never skip: their verdicts need every record.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    /// `_mta-sts` and its policy (RFC 8461).
    MtaSts,
    /// `_smtp._tls` (RFC 8460).
    TlsRpt,
    /// `default._bimi`, its logo and mark certificate.
    Bimi,
}

impl Family {
    /// Every family, in the order reports list them.
    pub const ALL: [Family; 3] = [Family::MtaSts, Family::TlsRpt, Family::Bimi];

    /// The name `--skip` and `--with` take, and the family's finding-id prefix.
    pub fn id(self) -> &'static str {
        match self {
            Family::MtaSts => "mta-sts",
            Family::TlsRpt => "tls-rpt",
            Family::Bimi => "bimi",
        }
    }
}

/// Fetches everything the checks of `domain` need.
pub async fn fetch_domain(
    resolver: &Resolver,
    domain: &DomainName,
    selectors: Vec<Selector>,
) -> DomainRecords {
    fetch_domain_skipping(resolver, domain, selectors, &[]).await
}

/// [`fetch_domain`], without the families in `skip`: none of their questions is asked, so
/// their analysers find nothing to judge and say nothing.
pub async fn fetch_domain_skipping(
    resolver: &Resolver,
    domain: &DomainName,
    selectors: Vec<Selector>,
    skip: &[Family],
) -> DomainRecords {
    let wants = |family| !skip.contains(&family);
    let (spf, mx, dmarc, dkim, (transport, policy), bimi) = futures::join!(
        fetch_spf_tree(resolver, domain),
        fetch_mx(resolver, domain),
        fetch_dmarc(resolver, domain),
        fetch_dkim(resolver, domain, &selectors),
        fetch_transport_security(
            resolver,
            domain,
            wants(Family::MtaSts),
            wants(Family::TlsRpt)
        ),
        txt_if(resolver, wants(Family::Bimi), bimi_name(domain)),
    );
    let mut records = DomainRecords::new(domain.clone());
    records.selectors = selectors;
    records.mta_sts_policy = policy;
    let (spf_answers, truncated) = spf;
    records.spf_truncated = truncated;
    let (dmarc_answers, walk) = dmarc;
    records.dmarc_walk = walk;
    for answer in spf_answers
        .into_iter()
        .chain(mx)
        .chain(dmarc_answers)
        .chain(dkim)
        .chain(transport)
    {
        records.insert(answer);
    }
    if let Some(bimi) = bimi {
        fetch_bimi(resolver, &mut records, bimi).await;
    }
    records
}

/// The TXT records at `name` when `wanted` (a family not left out with `check --skip`);
/// `None`, with no question asked, otherwise.
async fn txt_if(resolver: &Resolver, wanted: bool, name: DomainName) -> Option<Arc<Answer>> {
    if wanted {
        Some(resolver.lookup(&name, QueryType::Txt).await)
    } else {
        None
    }
}

/// BIMI discovery (draft §7.2) from the answer at the domain's own `default._bimi`: without a
/// record there, the DMARC policy domain's; then the logo and the certificate the record names.
/// A domain without BIMI costs one TXT question.
async fn fetch_bimi(resolver: &Resolver, records: &mut DomainRecords, here: Arc<Answer>) {
    use crate::records::bimi::{discover, parse_record, BimiRecord, Discovery};
    // `None` without a BIMI record at the name; `Some(None)` with several (receivers use none);
    // `Some(Some(record))` with exactly one.
    let pick = |answer: &Answer| -> Option<Option<BimiRecord>> {
        match discover(&answer.txt_strings()) {
            Discovery::None => None,
            Discovery::One(text) => Some(Some(parse_record(text))),
            Discovery::Several(_) => Some(None),
        }
    };
    let mut found = None;
    let mut picked = pick(&here);
    if picked.is_some() {
        found = Some(records.domain.clone());
    }
    let failed_here = here.failed().is_some();
    records.insert(here);
    if picked.is_none() && !failed_here {
        // The policy domain: where the DMARC walk found its record.
        let policy_domain = records
            .dmarc_walk
            .last()
            .filter(|name| {
                records
                    .get(name, QueryType::Txt)
                    .is_some_and(|a| a.txt_strings().iter().any(|t| is_dmarc_candidate(t)))
            })
            .and_then(DomainName::parent)
            .filter(|p| p != &records.domain);
        if let Some(policy_domain) = policy_domain {
            let there = resolver
                .lookup(&bimi_name(&policy_domain), QueryType::Txt)
                .await;
            picked = pick(&there);
            if picked.is_some() {
                found = Some(policy_domain);
            }
            records.insert(there);
        }
    }
    let mut fetch = BimiFetch {
        found_at: found,
        logo: None,
        authority: None,
        roots: Arc::new(Vec::new()),
        fetched_at: chrono::Utc::now(),
    };
    let record = picked.flatten();
    if let Some(record) = record.filter(|r| !r.declined) {
        let web = resolver.web();
        let (logo, authority) = futures::join!(
            async {
                match &record.logo {
                    Some(url) => Some(web.get_url(resolver, url, MAX_LOGO_BYTES).await),
                    None => None,
                }
            },
            async {
                match &record.authority {
                    Some(url) => Some(
                        web.get_url(resolver, url, crate::records::vmc::MAX_PEM_BYTES)
                            .await,
                    ),
                    None => None,
                }
            }
        );
        fetch.logo = logo;
        fetch.authority = authority;
        if fetch.authority.is_some() {
            fetch.roots = web.mark_roots();
        }
    }
    records.bimi = Some(fetch);
}

/// The `_mta-sts` name of a domain (RFC 8461 §3.1).
pub fn mta_sts_name(domain: &DomainName) -> DomainName {
    domain.child("_mta-sts")
}

/// The host that serves a domain's MTA-STS policy (RFC 8461 §3.3).
pub fn mta_sts_host(domain: &DomainName) -> DomainName {
    domain.child("mta-sts")
}

/// The `_smtp._tls` name of a domain (RFC 8460 §3).
pub fn tls_rpt_name(domain: &DomainName) -> DomainName {
    domain.child("_smtp._tls")
}

/// The SHA-256 of the MTA-STS policy fetched (`sha256:<hex>`), when one was served: what
/// drift and snapshots keep of the file, to tell a policy changed under an unchanged id.
pub fn mta_sts_policy_digest(records: &DomainRecords) -> Option<String> {
    use sha2::Digest;
    let response = records.mta_sts_policy.as_ref()?.result.as_ref().ok()?;
    (response.status == 200).then(|| {
        let hex: String = sha2::Sha256::digest(&response.body)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("sha256:{hex}")
    })
}

/// Where the MTA-STS policy is served, under [`mta_sts_host`].
pub const MTA_STS_PATH: &str = "/.well-known/mta-sts.txt";

/// The MTA-STS and TLS-RPT records (those wanted), and the MTA-STS policy with its host's
/// addresses when a record announces one. A domain without them costs two TXT questions and
/// no HTTPS.
async fn fetch_transport_security(
    resolver: &Resolver,
    domain: &DomainName,
    mta_sts: bool,
    tls_rpt: bool,
) -> (Vec<Arc<Answer>>, Option<WebFetch>) {
    let (sts, rpt) = futures::join!(
        txt_if(resolver, mta_sts, mta_sts_name(domain)),
        txt_if(resolver, tls_rpt, tls_rpt_name(domain))
    );
    let announced = sts.as_ref().is_some_and(|sts| {
        sts.txt_strings()
            .iter()
            .any(|t| crate::records::mta_sts::is_sts_record(t))
    });
    let mut answers: Vec<Arc<Answer>> = sts.into_iter().chain(rpt).collect();
    if !announced {
        return (answers, None);
    }
    let host = mta_sts_host(domain);
    let policy = resolver
        .web()
        .get(
            resolver,
            &host,
            MTA_STS_PATH,
            crate::records::mta_sts::MAX_POLICY_BYTES,
        )
        .await;
    // The fetch looked these up already: they come from the cache, as evidence.
    let (a, aaaa) = futures::join!(
        resolver.lookup(&host, QueryType::A),
        resolver.lookup(&host, QueryType::Aaaa)
    );
    answers.extend([a, aaaa]);
    (answers, Some(policy))
}

/// Looks the domain and the request's IPs up in its blocklists, with each list's two RFC 5782
/// test entries (asked once per run: the cache shares them between domains), and the TXT
/// record of every listing, which says why. Private addresses are not asked about: no public
/// list holds them.
pub async fn fetch_blocklists(
    resolver: &Resolver,
    request: Arc<BlocklistRequest>,
    records: &mut DomainRecords,
) {
    let mut names = Vec::new();
    for list in &request.lists {
        let (listed, clean) = list.probes();
        names.extend(listed.into_iter().chain(clean));
        names.extend(list.domain_query(&records.domain));
        for address in request.ips.iter().filter(|a| listable(a.ip)) {
            names.extend(list.ip_query(address.ip));
        }
    }
    let answers = join_all(names.iter().map(|n| resolver.lookup(n, QueryType::A))).await;
    let listed: Vec<&Answer> = answers
        .iter()
        .map(|a| a.as_ref())
        .filter(|a| {
            let Some(list) = request.lists.iter().find(|l| is_under(&a.name, &l.zone)) else {
                return false;
            };
            a.records().iter().any(|r| match r.data {
                crate::dns::RecordData::A(ip) => {
                    matches!(list.code(ip), Code::Listed(_) | Code::Unknown)
                }
                _ => false,
            })
        })
        .collect();
    let reasons = join_all(
        listed
            .iter()
            .map(|a| resolver.lookup(&a.name, QueryType::Txt)),
    )
    .await;
    for answer in answers.into_iter().chain(reasons) {
        records.insert(answer);
    }
    records.blocklists = Some(request);
}

/// Asks every authoritative server of the domain's zone, directly, for the zone's SOA and the
/// mail records the checks read (those already in `records` that lie in the zone: SPF and
/// other TXT, MX, DMARC, MTA-STS, TLS-RPT, BIMI, the DKIM selectors found), so the analyser can say
/// whether every server serves the same copy, and whether the run's resolver still holds an
/// older one.
pub async fn fetch_propagation(resolver: &Resolver, records: &mut DomainRecords) {
    let asked_at = chrono::Utc::now().timestamp();
    let mut copies = ZoneCopies {
        zone: None,
        ns: None,
        questions: Vec::new(),
        servers: Vec::new(),
        not_asked: 0,
        from_zone_file: false,
        asked_at,
    };
    // The zone is where the NS set is: the domain or its nearest ancestor that has one.
    let mut name = Some(records.domain.clone());
    while let Some(current) = name {
        if !current.as_str().contains('.') {
            break;
        }
        let ns = resolver.lookup(&current, QueryType::Ns).await;
        let found = ns.cname_chain.is_empty() && !ns.records().is_empty();
        let failed = ns.failed().is_some();
        copies.ns = Some(ns.clone());
        records.insert(ns.clone());
        if found {
            copies.from_zone_file = matches!(ns.source, crate::dns::Source::Zone(_));
            copies.zone = Some(current);
            break;
        }
        if failed {
            break;
        }
        name = current.parent();
    }
    let (Some(zone), Some(ns)) = (copies.zone.clone(), copies.ns.clone()) else {
        records.propagation = Some(copies);
        return;
    };
    copies.questions.push((zone.clone(), QueryType::Soa));
    let mut mail: Vec<(DomainName, QueryType)> = records
        .answers()
        .filter(|a| is_under(&a.name, &zone) && a.failed().is_none())
        .filter(|a| {
            let own = a.name == records.domain;
            match a.qtype {
                QueryType::Mx => own,
                QueryType::Txt => {
                    own || a.name.as_str().starts_with("_dmarc.")
                        || a.name.as_str().starts_with("_mta-sts.")
                        || a.name.as_str().starts_with("_smtp._tls.")
                        || a.name.as_str().starts_with("default._bimi.")
                        || (a.name.as_str().contains("._domainkey.") && !a.records().is_empty())
                }
                _ => false,
            }
        })
        .map(|a| (a.name.clone(), a.qtype))
        .collect();
    mail.sort_by(|a, b| (a.0.as_str(), a.1.as_str()).cmp(&(b.0.as_str(), b.1.as_str())));
    mail.truncate(MAX_PROPAGATION_QUESTIONS);
    copies.questions.extend(mail);
    if copies.from_zone_file {
        records.propagation = Some(copies);
        return;
    }
    let hosts: Vec<DomainName> = ns
        .records()
        .iter()
        .filter_map(|r| match &r.data {
            crate::dns::RecordData::Ns(host) => DomainName::parse(host).ok(),
            _ => None,
        })
        .collect();
    let lookups = join_all(hosts.iter().map(|h| async move {
        let (a, aaaa) = futures::join!(
            resolver.lookup(h, QueryType::A),
            resolver.lookup(h, QueryType::Aaaa)
        );
        (h.clone(), a, aaaa)
    }))
    .await;
    let mut servers: Vec<(DomainName, IpAddr)> = Vec::new();
    for (host, a, aaaa) in lookups {
        for answer in [&a, &aaaa] {
            for record in answer.records() {
                let ip = match record.data {
                    crate::dns::RecordData::A(v4) => IpAddr::V4(v4),
                    crate::dns::RecordData::Aaaa(v6) => IpAddr::V6(v6),
                    _ => continue,
                };
                if !servers.iter().any(|(_, known)| *known == ip) {
                    servers.push((host.clone(), ip));
                }
            }
        }
        records.insert(a);
        records.insert(aaaa);
    }
    copies.not_asked = servers.len().saturating_sub(MAX_AUTHORITATIVE_ADDRESSES);
    servers.truncate(MAX_AUTHORITATIVE_ADDRESSES);
    let questions = &copies.questions;
    copies.servers = join_all(servers.into_iter().map(|(host, address)| async move {
        let answers = join_all(
            questions
                .iter()
                .map(|(name, qtype)| resolver.ask_server(address, name, *qtype)),
        )
        .await;
        ServerCopy {
            host,
            address,
            answers,
        }
    }))
    .await;
    records.propagation = Some(copies);
}

/// True when `name` is `zone` or below it.
pub fn is_under(name: &DomainName, zone: &DomainName) -> bool {
    let (name, zone) = (name.as_str(), zone.as_str());
    name == zone
        || name
            .strip_suffix(zone)
            .is_some_and(|head| head.ends_with('.'))
}

/// The SPF records among a TXT answer's records (each with its strings joined).
pub fn spf_strings(answer: &Answer) -> Vec<String> {
    answer
        .txt_strings()
        .into_iter()
        .filter(|t| is_spf(t))
        .collect()
}

/// The single SPF record of a TXT answer, if there is exactly one.
pub fn single_spf(answer: &Answer) -> Option<Arc<SpfRecord>> {
    match spf_strings(answer).as_slice() {
        [only] => Some(crate::records::spf::parse_shared(only)),
        _ => None,
    }
}

/// The names an SPF record sends the evaluator to, split by what is asked of them.
#[derive(Default)]
struct SpfTargets {
    records: Vec<DomainName>,
    addresses: Vec<DomainName>,
    mx: Vec<DomainName>,
    exists: Vec<DomainName>,
}

/// The DNS-querying terms of a record that an evaluator would reach: those before `all`, and
/// `redirect=` only when there is no `all`.
pub fn evaluated_terms(
    record: &SpfRecord,
) -> Vec<(&crate::records::spf::Term, Option<&Mechanism>)> {
    let all_pos = record.all().map(|(t, _)| t.position);
    let mut out = Vec::new();
    for term in &record.terms {
        if all_pos.is_some_and(|p| term.position > p) {
            continue;
        }
        match &term.kind {
            crate::records::spf::TermKind::Directive { mechanism, .. } => {
                out.push((term, Some(mechanism)))
            }
            crate::records::spf::TermKind::Redirect(_) if all_pos.is_none() => {
                out.push((term, None))
            }
            _ => {}
        }
    }
    out
}

fn literal(spec: &DomainSpec) -> Option<DomainName> {
    match spec {
        DomainSpec::Literal(s) => DomainName::parse(s).ok(),
        DomainSpec::Macro(_) => None,
    }
}

fn spf_targets(record: &SpfRecord, current: &DomainName) -> SpfTargets {
    let mut t = SpfTargets::default();
    let target = |d: &Option<DomainSpec>| match d {
        None => Some(current.clone()),
        Some(spec) => literal(spec),
    };
    for (term, mechanism) in evaluated_terms(record) {
        match mechanism {
            Some(Mechanism::Include(spec)) => t.records.extend(literal(spec)),
            Some(Mechanism::A { domain, .. }) => t.addresses.extend(target(domain)),
            Some(Mechanism::Mx { domain, .. }) => t.mx.extend(target(domain)),
            Some(Mechanism::Exists(spec)) => t.exists.extend(literal(spec)),
            Some(_) => {}
            None => {
                if let crate::records::spf::TermKind::Redirect(spec) = &term.kind {
                    t.records.extend(literal(spec));
                }
            }
        }
    }
    t
}

/// The SPF record at `domain` and everything its evaluation looks up (includes, redirects, the
/// addresses of `a`/`mx`/`exists` terms), breadth first and bounded. The flag is set when the
/// tree was larger than mailshift fetches.
pub async fn fetch_spf_tree(resolver: &Resolver, domain: &DomainName) -> (Vec<Arc<Answer>>, bool) {
    let mut answers = Vec::new();
    let mut seen: HashSet<DomainName> = HashSet::from([domain.clone()]);
    let mut frontier = vec![domain.clone()];
    let mut truncated = false;
    let mut depth = 0;
    while !frontier.is_empty() {
        if depth > MAX_SPF_DEPTH {
            truncated = true;
            break;
        }
        depth += 1;
        let txts = join_all(frontier.iter().map(|n| resolver.lookup(n, QueryType::Txt))).await;
        let mut next = Vec::new();
        let mut lookups: Vec<(DomainName, QueryType)> = Vec::new();
        let mut mx_names: Vec<DomainName> = Vec::new();
        for (name, txt) in frontier.iter().zip(&txts) {
            if let Some(record) = single_spf(txt) {
                let targets = spf_targets(&record, name);
                for r in targets.records {
                    if seen.len() >= MAX_SPF_RECORDS {
                        truncated = true;
                        break;
                    }
                    if seen.insert(r.clone()) {
                        next.push(r);
                    }
                }
                for a in targets.addresses {
                    lookups.push((a.clone(), QueryType::A));
                    lookups.push((a, QueryType::Aaaa));
                }
                for e in targets.exists {
                    lookups.push((e, QueryType::A));
                }
                mx_names.extend(targets.mx);
            }
        }
        answers.extend(txts);
        let (addr, mx) = futures::join!(
            join_all(lookups.iter().map(|(n, t)| resolver.lookup(n, *t))),
            fetch_mx_hosts(resolver, &mx_names),
        );
        answers.extend(addr);
        answers.extend(mx);
        frontier = next;
    }
    (answers, truncated)
}

/// MX lookups for `names` and A/AAAA of (up to 10 of) each one's hosts.
pub async fn fetch_mx_hosts(resolver: &Resolver, names: &[DomainName]) -> Vec<Arc<Answer>> {
    let mxs = join_all(names.iter().map(|n| resolver.lookup(n, QueryType::Mx))).await;
    let mut hosts: Vec<DomainName> = Vec::new();
    for mx in &mxs {
        for host in mx_hosts(mx).into_iter().take(MAX_MX_HOSTS) {
            if !hosts.contains(&host) {
                hosts.push(host);
            }
        }
    }
    let addrs = join_all(hosts.iter().flat_map(|h| {
        [
            resolver.lookup(h, QueryType::A),
            resolver.lookup(h, QueryType::Aaaa),
        ]
    }))
    .await;
    mxs.into_iter().chain(addrs).collect()
}

/// The exchange hosts of an MX answer that can be looked up (not null MX, not IP literals),
/// in preference order.
pub fn mx_hosts(answer: &Answer) -> Vec<DomainName> {
    let mut mx: Vec<(u16, &str)> = answer
        .records()
        .iter()
        .filter_map(|r| match &r.data {
            crate::dns::RecordData::Mx {
                preference,
                exchange,
            } => Some((*preference, exchange.as_str())),
            _ => None,
        })
        .collect();
    mx.sort();
    mx.into_iter()
        .filter(|(_, host)| !host.is_empty() && host.parse::<IpAddr>().is_err())
        .filter_map(|(_, host)| DomainName::parse(host).ok())
        .collect()
}

async fn fetch_mx(resolver: &Resolver, domain: &DomainName) -> Vec<Arc<Answer>> {
    fetch_mx_hosts(resolver, std::slice::from_ref(domain)).await
}

/// The `_dmarc` names of the RFC 9989 §4.10 tree walk: the domain itself, then (for names of
/// more than 8 labels) straight to 7 labels, then one label fewer at a time down to the TLD.
pub fn dmarc_walk_names(domain: &DomainName) -> Vec<DomainName> {
    let labels: Vec<&str> = domain.as_str().split('.').collect();
    let n = labels.len();
    let mut out = vec![domain.child("_dmarc")];
    let start = if n > 8 { 7 } else { n.saturating_sub(1) };
    for count in (1..=start).rev() {
        let suffix = labels[n - count..].join(".");
        out.push(DomainName::from_ascii_unchecked(format!("_dmarc.{suffix}")));
    }
    out
}

async fn fetch_dmarc(
    resolver: &Resolver,
    domain: &DomainName,
) -> (Vec<Arc<Answer>>, Vec<DomainName>) {
    let mut answers = Vec::new();
    let mut walk = Vec::new();
    let mut found: Option<(DomainName, DmarcRecord)> = None;
    for name in dmarc_walk_names(domain) {
        let answer = resolver.lookup(&name, QueryType::Txt).await;
        walk.push(name.clone());
        let candidates: Vec<String> = answer
            .txt_strings()
            .into_iter()
            .filter(|t| is_dmarc_candidate(t))
            .collect();
        let stop = !candidates.is_empty()
            || matches!(answer.outcome, crate::dns::Outcome::CnameLoop)
            // A failure below the TLD stops the walk (inconclusive); at the TLD it does not
            // change what the domain owner must publish.
            || (answer.failed().is_some() && name.label_count() > 2);
        answers.push(answer);
        if candidates.len() == 1 {
            let policy_domain = name.parent().unwrap_or_else(|| name.clone());
            found = Some((policy_domain, DmarcRecord::parse(&candidates[0])));
        }
        if stop {
            break;
        }
    }
    if let Some((policy_domain, record)) = found {
        answers.extend(fetch_report_destinations(resolver, &policy_domain, &record).await);
    }
    (answers, walk)
}

/// True when reports to `dest` leave the policy domain's organisation, so the destination must
/// authorise them. Without a public-suffix list, names in one tree (one within the other) count
/// as one organisation.
pub fn is_external_destination(policy_domain: &DomainName, dest: &DomainName) -> bool {
    !(dest.is_within(policy_domain) || policy_domain.is_within(dest))
}

/// The authorisation record name for external reports: `<policy-domain>._report._dmarc.<dest>`.
pub fn report_authorization_name(policy_domain: &DomainName, dest: &DomainName) -> DomainName {
    DomainName::from_ascii_unchecked(format!("{policy_domain}._report._dmarc.{dest}"))
}

async fn fetch_report_destinations(
    resolver: &Resolver,
    policy_domain: &DomainName,
    record: &DmarcRecord,
) -> Vec<Arc<Answer>> {
    let mut dests: Vec<DomainName> = Vec::new();
    for uri in record.rua.iter().chain(&record.ruf) {
        if !dests.contains(&uri.domain) {
            dests.push(uri.domain.clone());
        }
    }
    let per_dest = join_all(dests.iter().map(|dest| async move {
        let mut out = Vec::new();
        if is_external_destination(policy_domain, dest) {
            let auth = report_authorization_name(policy_domain, dest);
            out.push(resolver.lookup(&auth, QueryType::Txt).await);
        }
        let mx = resolver.lookup(dest, QueryType::Mx).await;
        let no_mx = mx.is_void();
        out.push(mx);
        if no_mx {
            // RFC 5321 §5.1: without MX, mail goes to the address records (implicit MX).
            let (a, aaaa) = futures::join!(
                resolver.lookup(dest, QueryType::A),
                resolver.lookup(dest, QueryType::Aaaa)
            );
            out.push(a);
            out.push(aaaa);
        }
        out
    }))
    .await;
    per_dest.into_iter().flatten().collect()
}

/// The DKIM key records of `domain` at these selectors only (for a platform that signs as a
/// domain other than the one being checked).
pub async fn fetch_dkim_only(
    resolver: &Resolver,
    domain: &DomainName,
    selectors: Vec<Selector>,
) -> DomainRecords {
    let answers = fetch_dkim(resolver, domain, &selectors).await;
    let mut records = DomainRecords::new(domain.clone());
    records.selectors = selectors;
    for answer in answers {
        records.insert(answer);
    }
    records
}

async fn fetch_dkim(
    resolver: &Resolver,
    domain: &DomainName,
    selectors: &[Selector],
) -> Vec<Arc<Answer>> {
    join_all(selectors.iter().map(|s| {
        let name = domain.child(&format!("{}._domainkey", s.name));
        async move { resolver.lookup(&name, QueryType::Txt).await }
    }))
    .await
}

/// Every `_dmarc` name of the tree walk, without stopping at the first record: the
/// organisational domain (RFC 9989 §4.10.2) depends on all of them.
pub async fn fetch_dmarc_walk_all(resolver: &Resolver, domain: &DomainName) -> Vec<Arc<Answer>> {
    join_all(
        dmarc_walk_names(domain)
            .iter()
            .map(|name| resolver.lookup(name, QueryType::Txt)),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: Vec<DomainName>) -> Vec<String> {
        v.into_iter().map(|d| d.to_string()).collect()
    }

    #[test]
    fn dmarc_walk_follows_rfc9989_sequence() {
        let d = DomainName::parse("a.b.c.d.e.f.g.h.i.j.k.example.com").unwrap();
        assert_eq!(
            names(dmarc_walk_names(&d)),
            [
                "_dmarc.a.b.c.d.e.f.g.h.i.j.k.example.com",
                "_dmarc.g.h.i.j.k.example.com",
                "_dmarc.h.i.j.k.example.com",
                "_dmarc.i.j.k.example.com",
                "_dmarc.j.k.example.com",
                "_dmarc.k.example.com",
                "_dmarc.example.com",
                "_dmarc.com",
            ]
        );
        let d = DomainName::parse("mail.example.com").unwrap();
        assert_eq!(
            names(dmarc_walk_names(&d)),
            [
                "_dmarc.mail.example.com",
                "_dmarc.example.com",
                "_dmarc.com"
            ]
        );
    }

    #[test]
    fn external_destinations() {
        let p = DomainName::parse("example.com").unwrap();
        let inside = DomainName::parse("reports.example.com").unwrap();
        let outside = DomainName::parse("dmarc.example.net").unwrap();
        assert!(!is_external_destination(&p, &inside));
        assert!(is_external_destination(&p, &outside));
        assert_eq!(
            report_authorization_name(&p, &outside).as_str(),
            "example.com._report._dmarc.dmarc.example.net"
        );
    }
}
