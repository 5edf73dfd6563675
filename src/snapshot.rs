//! Snapshots: the backup a migration starts with, as an RFC 1035 zone file, and diffs in words.
//! [`take`] reads every live mail record of some domains — what `check` and `gate` read (SPF
//! and its in-domain include targets, DMARC wherever the tree walk found it, MX and in-domain MX
//! host addresses, every DKIM selector of the probe list or a plan that exists, the wildcard
//! `*._domainkey`), and what a rollback needs besides (every apex TXT record, so platform
//! verification records too, `_amazonses` and `zendeskverification`, MTA-STS, TLS-RPT, BIMI, a
//! plan's return-path, tracking and signing-domain names) — and [`render`] writes them with
//! their TTLs under a header saying when, from where, what was looked up and what, if anything,
//! was left out: a hostile zone cannot make a snapshot unbounded. Feeding the file back with
//! `check --zone FILE` reproduces that moment's verdict; it is also what an operator republishes
//! to roll back. [`diff`] compares two snapshots and says what changed in the terms people use
//! ("DKIM selector s2 removed", "SPF lost include:sendgrid.net", "MTA-STS policy id changed").

use crate::catalog::Catalog;
use crate::dns::answer::quote_character_string;
use crate::dns::{Answer, Outcome, QueryType, Record, RecordData, Resolver, ZoneOverlay};
use crate::domain::DomainName;
use crate::fetch::{fetch_domain, Selector};
use crate::migration::Side;
use crate::plan::Plan;
use crate::records::dmarc::is_dmarc_candidate;
use crate::records::spf::{is_spf, SpfRecord};
use futures::future::join_all;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

/// Names looked up at every snapshot domain besides what the checks read, with what they are.
/// None of them is judged by `check`, but each is a live mail record a rollback must republish.
pub const EXTRA_NAMES: &[(&str, QueryType, &str)] = &[
    ("_mta-sts", QueryType::Txt, "MTA-STS"),
    ("mta-sts", QueryType::Cname, "MTA-STS policy host"),
    ("mta-sts", QueryType::A, "MTA-STS policy host"),
    ("mta-sts", QueryType::Aaaa, "MTA-STS policy host"),
    ("_smtp._tls", QueryType::Txt, "TLS-RPT"),
    // Receivers look up `default` unless a message names another selector in its BIMI-Selector
    // header, which DNS cannot reveal.
    ("default._bimi", QueryType::Txt, "BIMI"),
    ("_amazonses", QueryType::Txt, "Amazon SES verification"),
    (
        "zendeskverification",
        QueryType::Txt,
        "Zendesk verification",
    ),
];

/// What is asked of a plan's return-path and tracking hosts: a return path carries SPF and MX
/// (asked through its own mail records), a tracking host is a CNAME or an address.
const HOST_TYPES: [QueryType; 3] = [QueryType::Cname, QueryType::A, QueryType::Aaaa];

/// The wildcard selector: a parked domain's revoked key, `*._domainkey IN TXT "v=DKIM1; p="`.
const WILDCARD_SELECTOR: &str = "*";

/// Records kept per name and type. Real apexes carry a few dozen TXT records; a hostile zone
/// can carry thousands, and the snapshot must stay a file a person can read and republish.
pub const MAX_RECORDS_PER_SET: usize = 100;
/// Records kept per snapshot domain (or plan host outside them).
pub const MAX_RECORDS_PER_ROOT: usize = 2_000;
/// Bytes of record data kept per snapshot domain (one TXT record can hold 64 KiB).
pub const MAX_BYTES_PER_ROOT: usize = 1 << 20;
/// Reference lines about the platforms' records kept.
pub const MAX_OUTSIDE: usize = 500;
/// Unanswered or odd names listed in the header.
const MAX_NOTES: usize = 50;

/// What a snapshot backs up.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// Domains backed up whole, each with the DKIM selectors named for it (a plan's,
    /// `--selector`); the probe list and the wildcard are looked up at every one besides.
    pub domains: Vec<(DomainName, Vec<Selector>)>,
    /// Names a plan sets up for a platform, with their role (`return path (Postmark)`).
    pub hosts: Vec<(DomainName, String)>,
    /// The common selectors probed at every domain (`checks/dkim-selectors.toml`).
    pub probe: Vec<Selector>,
}

impl Request {
    /// A request that probes these selectors at every domain.
    pub fn new(probe: Vec<Selector>) -> Request {
        Request {
            probe,
            ..Request::default()
        }
    }

    /// Adds a domain, or more selectors to one already added.
    pub fn add_domain(
        &mut self,
        domain: DomainName,
        selectors: impl IntoIterator<Item = Selector>,
    ) {
        let index = match self.domains.iter().position(|(d, _)| *d == domain) {
            Some(i) => i,
            None => {
                self.domains.push((domain, Vec::new()));
                self.domains.len() - 1
            }
        };
        if let Some((_, list)) = self.domains.get_mut(index) {
            for s in selectors {
                if !list.iter().any(|x| x.name == s.name) {
                    list.push(s);
                }
            }
        }
    }

    pub fn add_host(&mut self, host: DomainName, role: String) {
        if !self.hosts.iter().any(|(h, _)| *h == host) {
            self.hosts.push((host, role));
        }
    }

    /// Adds a plan's domains, each platform's selectors at the domain it signs as (its
    /// `signing_domain`, backed up whole too), and every return-path and tracking host.
    pub fn add_plan(&mut self, plan: &Plan, catalog: &Catalog) {
        for d in &plan.domains {
            self.add_domain(d.name.clone(), []);
        }
        for d in &plan.domains {
            for setup in d.old.iter().chain(&d.new) {
                let profile = catalog.provider(&setup.platform);
                let who = profile.map_or(setup.platform.as_str(), |p| p.name.as_str());
                let names = match profile {
                    Some(profile) => Side { profile, setup }.selectors(),
                    None => setup.selectors.clone().unwrap_or_default(),
                };
                let signer = setup.signing_domain.as_ref().unwrap_or(&d.name);
                self.add_domain(
                    signer.clone(),
                    names.into_iter().map(|name| Selector {
                        name,
                        used_by: Some(who.to_string()),
                        explicit: true,
                    }),
                );
                if let Some(rp) = &setup.return_path {
                    self.add_host(rp.clone(), format!("return path ({who})"));
                }
                for t in &setup.tracking {
                    self.add_host(t.clone(), format!("tracking ({who})"));
                }
            }
        }
    }

    /// Every selector looked up at `named`'s domain: the named ones, the probe list, the
    /// wildcard.
    fn selectors(&self, named: &[Selector]) -> Vec<Selector> {
        let mut out: Vec<Selector> = named.to_vec();
        let wildcard = Selector {
            name: WILDCARD_SELECTOR.into(),
            used_by: None,
            explicit: true,
        };
        for s in self.probe.iter().chain(std::iter::once(&wildcard)) {
            if !out.iter().any(|x| x.name == s.name) {
                out.push(s.clone());
            }
        }
        out
    }
}

/// Records by owner name: (type, TTL, data), each distinct record once.
pub type Records = BTreeMap<String, Vec<(QueryType, u32, RecordData)>>;

/// Records gathered for a snapshot, by owner name.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub domains: Vec<DomainName>,
    /// The zones the file answers for: the domains that exist, and plan hosts outside them.
    pub roots: Vec<DomainName>,
    /// Where the answers came from (`127.0.0.1:5300`, `the system resolver`, zone files).
    pub source: String,
    /// RFC 3339 time the snapshot was taken.
    pub taken: String,
    /// In-domain records.
    pub records: Records,
    /// Answers outside the snapshot's domains (ESP targets), listed for reference only.
    pub outside: Vec<String>,
    /// What was looked up, one line each, for the header.
    pub probed: Vec<String>,
    /// What was not kept or could not be read, one line each, for the header.
    pub notes: Vec<String>,
    /// The digest of each domain's MTA-STS policy (a file, not a record), for `diff`.
    pub policies: Vec<(DomainName, String)>,
}

impl Snapshot {
    pub fn record_count(&self) -> usize {
        self.records.values().map(Vec::len).sum()
    }
}

fn within_any(name: &DomainName, roots: &[DomainName]) -> bool {
    roots.iter().any(|r| name.is_within(r))
}

/// The name an answer's data belongs to: the end of its CNAME chain.
fn data_owner(answer: &Answer) -> &DomainName {
    answer.cname_chain.last().unwrap_or(&answer.name)
}

/// How much a record matters when a set must be cut: what the checks read comes first.
fn keep_rank(data: &RecordData) -> u8 {
    match data.txt_joined() {
        Some(t) if is_spf(&t) => 0,
        Some(t) if is_dmarc_candidate(&t) => 1,
        Some(t) if t.to_ascii_lowercase().starts_with("v=") => 2,
        _ => 3,
    }
}

/// Takes a snapshot: every live mail record of the request's domains and hosts.
pub async fn take(resolver: &Resolver, request: &Request, source: String) -> Snapshot {
    let per_domain = join_all(request.domains.iter().map(|(d, named)| async move {
        let records = fetch_domain(resolver, d, request.selectors(named)).await;
        let extras = join_all(EXTRA_NAMES.iter().map(|(prefix, t, _)| {
            let name = d.child(prefix);
            async move { resolver.lookup(&name, *t).await }
        }))
        .await;
        (records, extras)
    }))
    .await;
    let per_host = join_all(request.hosts.iter().map(|(h, _)| async move {
        let records = fetch_domain(resolver, h, Vec::new()).await;
        let extras = join_all(HOST_TYPES.iter().map(|t| resolver.lookup(h, *t))).await;
        (records, extras)
    }))
    .await;

    // A name that does not exist gets no zone of its own: restored under a parent snapshot
    // domain it stays NXDOMAIN, as it was; otherwise its questions go where they went before.
    // Nor does a name whose own records could not be read: restored empty, it would fail checks
    // that were inconclusive live, and the gate must not count it as backed up.
    let state =
        |records: &crate::fetch::DomainRecords, name: &DomainName| -> Result<bool, String> {
            for t in [QueryType::Txt, QueryType::Mx] {
                if let Some(e) = records.get(name, t).and_then(|a| a.failed()) {
                    return Err(format!(
                        "{name} could not be read ({t}: {e}): not backed up"
                    ));
                }
            }
            Ok(!records
                .get(name, QueryType::Txt)
                .is_some_and(|a| a.outcome == Outcome::NxDomain && a.cname_chain.is_empty()))
        };
    let mut roots: Vec<DomainName> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    for ((d, _), (records, _)) in request.domains.iter().zip(&per_domain) {
        match state(records, d) {
            Ok(true) => roots.push(d.clone()),
            Ok(false) => notes.push(format!("{d} did not exist (NXDOMAIN)")),
            Err(note) => notes.push(note),
        }
    }
    for ((h, _), (records, _)) in request.hosts.iter().zip(&per_host) {
        if within_any(h, &roots) {
            continue;
        }
        match state(records, h) {
            Ok(true) => roots.push(h.clone()),
            Ok(false) => {}
            Err(note) => notes.push(note),
        }
    }
    // The most specific root first, so each owner is filed under its own zone.
    roots.sort_by_key(|r| std::cmp::Reverse(r.label_count()));

    let policies: Vec<(DomainName, String)> = per_domain
        .iter()
        .filter_map(|(records, _)| {
            crate::fetch::mta_sts_policy_digest(records).map(|d| (records.domain.clone(), d))
        })
        .collect();
    let mut answers: Vec<Arc<Answer>> = Vec::new();
    for (records, extras) in per_domain.into_iter().chain(per_host) {
        answers.extend(records.answers().map(|a| Arc::new(a.clone())));
        answers.extend(extras);
    }
    // A probed selector answered by the wildcard `*._domainkey` is the wildcard's record, not
    // one of its own: the restored zone's wildcard answers for it again.
    let data_of = |a: &Answer| -> BTreeSet<String> {
        a.records().iter().map(|r| r.data.presentation()).collect()
    };
    let wildcards: HashMap<&str, BTreeSet<String>> = answers
        .iter()
        .filter(|a| a.qtype == QueryType::Txt && a.cname_chain.is_empty())
        .filter(|a| !a.records().is_empty())
        .filter_map(|a| {
            let domain = a
                .name
                .as_str()
                .strip_prefix(&format!("{WILDCARD_SELECTOR}._domainkey."))?;
            Some((domain, data_of(a)))
        })
        .collect();
    let synthesized: BTreeSet<(DomainName, QueryType)> = answers
        .iter()
        .filter(|a| a.qtype == QueryType::Txt && a.cname_chain.is_empty())
        .filter_map(|a| {
            let (selector, domain) = a.name.as_str().split_once("._domainkey.")?;
            if selector == WILDCARD_SELECTOR {
                return None;
            }
            let own = data_of(a);
            (!own.is_empty() && wildcards.get(domain) == Some(&own))
                .then(|| (a.name.clone(), a.qtype))
        })
        .collect();

    // The CNAME records themselves (with their own TTLs) for every hop of every chain, and for
    // names that hold a CNAME beside other data.
    let mut hops: BTreeSet<DomainName> = BTreeSet::new();
    for answer in &answers {
        let owners = std::iter::once(&answer.name).chain(answer.cname_chain.iter());
        let hop_owners = owners.take(answer.cname_chain.len());
        let conflict = answer.cname_conflict.then_some(&answer.name);
        hops.extend(hop_owners.chain(conflict).cloned());
    }
    answers.extend(join_all(hops.iter().map(|h| resolver.lookup(h, QueryType::Cname))).await);

    let mut collected = Collected::default();
    for answer in &answers {
        if synthesized.contains(&(answer.name.clone(), answer.qtype)) {
            continue;
        }
        let owner = data_owner(answer);
        // A CNAME question's answer is the CNAME at the name itself, not at the chain's end.
        let (owner, qtype) = if answer.qtype == QueryType::Cname {
            (&answer.name, QueryType::Cname)
        } else {
            (owner, answer.qtype)
        };
        for record in answer.records() {
            collected.add(owner, qtype, record, &roots);
        }
        if let Some(e) = answer.failed() {
            if within_any(&answer.name, &roots) || within_any(owner, &roots) {
                notes.push(format!(
                    "{} {} was not answered ({e})",
                    answer.qtype, answer.name
                ));
            }
        }
    }

    // A name that answered NODATA exists; restored without any record at or below it, it would
    // answer NXDOMAIN, which the checks word differently. Addresses, or the NS records of a
    // delegated sending subdomain (Klaviyo's dynamic routing), are what it most likely holds; a
    // name with other types only is named in the header.
    let bare: Vec<DomainName> = answers
        .iter()
        .filter(|a| a.outcome == Outcome::NoData)
        .map(|a| data_owner(a).clone())
        .filter(|n| within_any(n, &roots) && !collected.restored_exists(n, &roots))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let held = join_all(bare.iter().flat_map(|n| {
        [
            resolver.lookup(n, QueryType::A),
            resolver.lookup(n, QueryType::Aaaa),
            resolver.lookup(n, QueryType::Ns),
        ]
    }))
    .await;
    for answer in &held {
        if answer.cname_chain.is_empty() {
            for record in answer.records() {
                collected.add(&answer.name, answer.qtype, record, &roots);
            }
        }
    }
    for name in &bare {
        if !collected.restored_exists(name, &roots) {
            notes.push(format!(
                "{name} existed with record types a snapshot does not keep (restored, it does not exist)"
            ));
        }
    }

    let (records, mut cut) = collected.bounded(&roots);
    notes.append(&mut cut);
    if collected.outside_cut {
        notes.push(format!(
            "reference lines about the platforms' records past the first {MAX_OUTSIDE} left out"
        ));
    }
    // The same failure is met through a domain and through a plan host inside it.
    let mut seen = HashSet::new();
    notes.retain(|n| seen.insert(n.clone()));
    if notes.len() > MAX_NOTES {
        let more = notes.len() - MAX_NOTES;
        notes.truncate(MAX_NOTES);
        notes.push(format!("and {more} more"));
    }
    Snapshot {
        domains: request.domains.iter().map(|(d, _)| d.clone()).collect(),
        roots,
        source,
        taken: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        records,
        outside: collected.outside.into_iter().collect(),
        probed: probed_lines(request),
        notes,
        policies,
    }
}

/// The header line that keeps a policy's digest: `; mta-sts-policy DOMAIN sha256:HEX`.
const POLICY_LINE: &str = "; mta-sts-policy ";

/// The MTA-STS policy digests a snapshot file's header lists, by domain.
fn policy_digests(path: &Path) -> BTreeMap<String, String> {
    let Ok(text) = crate::files::read_text(path, crate::files::FileKind::Zone) else {
        return BTreeMap::new();
    };
    text.lines()
        .take_while(|l| l.starts_with(';') || l.trim().is_empty())
        .filter_map(|l| l.strip_prefix(POLICY_LINE))
        .filter_map(|rest| rest.split_once(' '))
        .map(|(domain, digest)| (domain.to_string(), digest.trim().to_string()))
        .collect()
}

/// One record's TTL and data.
type Kept = (u32, RecordData);

/// Records as they are gathered, before the bounds are applied.
#[derive(Default)]
struct Collected {
    /// (owner, type) → records, each distinct data once.
    sets: BTreeMap<(String, QueryType), Vec<Kept>>,
    /// Reference lines about records outside the roots, bounded while gathering.
    outside: BTreeSet<String>,
    outside_cut: bool,
}

impl Collected {
    fn add(&mut self, owner: &DomainName, qtype: QueryType, record: &Record, roots: &[DomainName]) {
        if within_any(owner, roots) {
            let set = self
                .sets
                .entry((owner.as_str().to_string(), qtype))
                .or_default();
            if !set.iter().any(|(_, d)| *d == record.data) {
                set.push((record.ttl, record.data.clone()));
            }
        } else {
            let line = format!(
                "{owner}. {} {qtype} {}",
                record.ttl,
                record.data.presentation()
            );
            if self.outside.len() < MAX_OUTSIDE {
                self.outside.insert(line);
            } else if !self.outside.contains(&line) {
                self.outside_cut = true;
            }
        }
    }

    /// True when the restored file makes `name` exist: it is a root, or holds or lies above a
    /// kept record of its root.
    fn restored_exists(&self, name: &DomainName, roots: &[DomainName]) -> bool {
        roots.contains(name)
            || self
                .sets
                .keys()
                .any(|(owner, _)| DomainName::from_ascii_unchecked(owner.as_str()).is_within(name))
    }

    /// The records by owner within the bounds, and a line for each cut made.
    fn bounded(&self, roots: &[DomainName]) -> (Records, Vec<String>) {
        let mut notes = Vec::new();
        let mut records = Records::new();
        let mut per_root: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        let mut dropped: BTreeMap<String, usize> = BTreeMap::new();
        // Smaller sets first, so one flooded name cannot crowd the others out of a root's budget.
        let mut sets: Vec<_> = self.sets.iter().collect();
        sets.sort_by_key(|(key, set)| (set.len(), (*key).clone()));
        for ((owner, qtype), set) in sets {
            let mut set: Vec<&Kept> = set.iter().collect();
            set.sort_by_key(|(_, d)| (keep_rank(d), d.presentation()));
            if set.len() > MAX_RECORDS_PER_SET {
                notes.push(format!(
                    "{owner} {qtype}: kept {MAX_RECORDS_PER_SET} of {} records (SPF and DMARC first)",
                    set.len()
                ));
                set.truncate(MAX_RECORDS_PER_SET);
            }
            let name = DomainName::from_ascii_unchecked(owner.as_str());
            let root = roots
                .iter()
                .find(|r| name.is_within(r))
                .map_or_else(String::new, |r| r.to_string());
            let (count, bytes) = per_root.entry(root.clone()).or_default();
            for (ttl, data) in set {
                let weight = Record {
                    ttl: *ttl,
                    data: data.clone(),
                }
                .weight();
                if *count >= MAX_RECORDS_PER_ROOT || *bytes + weight > MAX_BYTES_PER_ROOT {
                    *dropped.entry(root.clone()).or_default() += 1;
                    continue;
                }
                *count += 1;
                *bytes += weight;
                records
                    .entry(owner.clone())
                    .or_default()
                    .push((*qtype, *ttl, data.clone()));
            }
        }
        for (root, n) in dropped {
            notes.push(format!(
                "{root}: {n} records past the cap of {MAX_RECORDS_PER_ROOT} records or {} KiB per domain left out",
                MAX_BYTES_PER_ROOT / 1024
            ));
        }
        for entries in records.values_mut() {
            entries.sort_by_key(|e| (e.0, e.2.presentation()));
        }
        (records, notes)
    }
}

/// The header lines saying what was looked up.
fn probed_lines(request: &Request) -> Vec<String> {
    // `mta-sts CNAME/A/AAAA (MTA-STS policy host)`: one entry per name.
    let mut extras: Vec<(&str, Vec<String>, &str)> = Vec::new();
    for (prefix, qtype, what) in EXTRA_NAMES {
        match extras.last_mut() {
            Some((p, types, _)) if p == prefix => types.push(qtype.to_string()),
            _ => extras.push((prefix, vec![qtype.to_string()], what)),
        }
    }
    let extras: Vec<String> = extras
        .iter()
        .map(|(prefix, types, what)| format!("{prefix} {} ({what})", types.join("/")))
        .collect();
    let mut lines = vec![
        "Looked up at each domain: its TXT (every record) and MX, the MX hosts' addresses, the SPF include tree and the addresses its terms name, the DMARC tree walk and report destinations, *._domainkey TXT (wildcard DKIM key);".to_string(),
        format!("also {}.", extras.join(", ")),
    ];
    let probe: Vec<&str> = request.probe.iter().map(|s| s.name.as_str()).collect();
    if !probe.is_empty() {
        lines.push(format!(
            "DKIM selectors probed at each domain: {}",
            probe.join(", ")
        ));
    }
    for (d, named) in &request.domains {
        let names: Vec<&str> = named.iter().map(|s| s.name.as_str()).collect();
        if !names.is_empty() {
            lines.push(format!(
                "DKIM selectors named for {d}: {}",
                names.join(", ")
            ));
        }
    }
    for (h, role) in &request.hosts {
        lines.push(format!(
            "Plan host {h}, {role}: CNAME, A, AAAA and its own mail records"
        ));
    }
    lines
}

/// The zone-file text of a snapshot.
pub fn render(snapshot: &Snapshot) -> String {
    let names: Vec<String> = snapshot.domains.iter().map(|d| d.to_string()).collect();
    let mut out = String::new();
    out.push_str(&format!("; mailshift snapshot of {}\n", names.join(", ")));
    out.push_str(&format!(
        "; taken {} from {}\n",
        snapshot.taken, snapshot.source
    ));
    out.push_str("; Check against it: mailshift check --zone THIS_FILE DOMAIN…   Roll back: republish the records below.\n");
    out.push_str("; Absent names and types were absent when the snapshot was taken.\n");
    for line in &snapshot.probed {
        out.push_str(&format!("; {line}\n"));
    }
    for (domain, digest) in &snapshot.policies {
        out.push_str(&format!("{POLICY_LINE}{domain} {digest}\n"));
    }
    if snapshot.notes.is_empty() {
        out.push_str(&format!(
            "; Nothing was left out (at most {MAX_RECORDS_PER_SET} records per name and type, {MAX_RECORDS_PER_ROOT} per domain are kept).\n"
        ));
    } else {
        out.push_str("; Not as it was live, or left out:\n");
        for line in &snapshot.notes {
            out.push_str(&format!(";   {line}\n"));
        }
    }
    // Roots in the order the domains were given, plan hosts after.
    let mut order: Vec<&DomainName> = snapshot
        .domains
        .iter()
        .filter(|d| snapshot.roots.contains(d))
        .collect();
    order.extend(
        snapshot
            .roots
            .iter()
            .filter(|r| !snapshot.domains.contains(r)),
    );
    for root in order {
        out.push_str(&format!("\n$ORIGIN {root}.\n"));
        for (owner, entries) in &snapshot.records {
            let d = DomainName::from_ascii_unchecked(owner.clone());
            // Each owner goes under the most specific root that contains it.
            let home = snapshot
                .roots
                .iter()
                .filter(|x| d.is_within(x))
                .max_by_key(|x| x.as_str().len());
            if home != Some(root) {
                continue;
            }
            for (qtype, ttl, data) in entries {
                let rdata = match data {
                    RecordData::Txt(parts) => parts
                        .iter()
                        .map(|p| quote_character_string(p))
                        .collect::<Vec<_>>()
                        .join(" "),
                    other => other.presentation(),
                };
                out.push_str(&format!("{owner}.\t{ttl}\tIN\t{qtype}\t{rdata}\n"));
            }
        }
    }
    if !snapshot.outside.is_empty() {
        out.push_str("\n; Outside these domains (the platforms' side), for reference only:\n");
        for line in &snapshot.outside {
            out.push_str(&format!("; {line}\n"));
        }
    }
    out
}

/// The `taken` time from a snapshot file's header.
pub fn taken_at(path: &Path) -> Option<String> {
    use std::io::Read;
    // Only the header is needed: read its first 4 KiB, never the whole (untrusted) file.
    let (file, _) = crate::files::open(path, crate::files::FileKind::Zone).ok()?;
    let mut head = Vec::new();
    file.take(4096).read_to_end(&mut head).ok()?;
    let text = String::from_utf8_lossy(&head);
    text.lines()
        .take(5)
        .find_map(|l| l.strip_prefix("; taken "))
        .map(|rest| rest.split(" from ").next().unwrap_or(rest).to_string())
}

/// One change between two snapshots.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Change {
    /// `added`, `removed` or `changed`.
    pub kind: &'static str,
    pub name: String,
    /// What changed, in words.
    pub summary: String,
}

type Entries = BTreeMap<(String, QueryType), BTreeSet<String>>;

fn entries(overlay: &ZoneOverlay) -> Entries {
    let mut map: Entries = BTreeMap::new();
    for (owner, qtype, record) in overlay.records() {
        let text = match &record.data {
            RecordData::Txt(_) => record.data.txt_joined().unwrap_or_default(),
            other => other.presentation(),
        };
        map.entry((owner, qtype)).or_default().insert(text);
    }
    map
}

/// `s1` from `s1._domainkey.example.com`.
fn selector_of(owner: &str) -> Option<(&str, &str)> {
    let (selector, rest) = owner.split_once("._domainkey.")?;
    Some((selector, rest))
}

/// Compares two snapshot files.
pub fn diff(old: &Path, new: &Path) -> Result<Vec<Change>, crate::dns::ZoneError> {
    let before = entries(&ZoneOverlay::load(&[old.to_path_buf()])?);
    let after = entries(&ZoneOverlay::load(&[new.to_path_buf()])?);
    let keys: BTreeSet<&(String, QueryType)> = before.keys().chain(after.keys()).collect();
    let mut changes = Vec::new();
    let empty = BTreeSet::new();
    // Selectors appearing or disappearing as a whole are reported once, not per record type.
    let selector_names = |m: &Entries| -> BTreeSet<String> {
        m.keys()
            .filter(|(o, _)| selector_of(o).is_some())
            .map(|(o, _)| o.clone())
            .collect()
    };
    let (sel_before, sel_after) = (selector_names(&before), selector_names(&after));
    for owner in sel_before.difference(&sel_after) {
        if let Some((sel, domain)) = selector_of(owner) {
            changes.push(Change {
                kind: "removed",
                name: owner.clone(),
                summary: format!("DKIM selector {sel} removed from {domain}"),
            });
        }
    }
    for owner in sel_after.difference(&sel_before) {
        if let Some((sel, domain)) = selector_of(owner) {
            changes.push(Change {
                kind: "added",
                name: owner.clone(),
                summary: format!("DKIM selector {sel} added to {domain}"),
            });
        }
    }
    for key in keys {
        let (owner, qtype) = key;
        let a = before.get(key).unwrap_or(&empty);
        let b = after.get(key).unwrap_or(&empty);
        if a == b {
            continue;
        }
        let whole_selector = selector_of(owner).is_some()
            && (sel_before.contains(owner) != sel_after.contains(owner));
        if whole_selector {
            continue;
        }
        changes.extend(describe(owner, *qtype, a, b));
    }
    // A policy changed under the same id is never fetched by senders that cached the old one.
    let (old_policies, new_policies) = (policy_digests(old), policy_digests(new));
    for (domain, digest) in &new_policies {
        let Some(previous) = old_policies.get(domain).filter(|p| *p != digest) else {
            continue;
        };
        let key = (format!("_mta-sts.{domain}"), QueryType::Txt);
        let id = |m: &Entries| {
            m.get(&key)
                .and_then(|set| set.iter().find_map(|t| sts_id(t)))
        };
        match (id(&before), id(&after)) {
            (Some(x), Some(y)) if x == y => changes.push(Change {
                kind: "changed",
                name: format!("mta-sts.{domain}"),
                summary: format!(
                    "MTA-STS policy of {domain} changed ({previous} → {digest}) but its id did not ({y}): senders that cached the old policy keep it until its max_age runs out; change the id"
                ),
            }),
            _ => changes.push(Change {
                kind: "changed",
                name: format!("mta-sts.{domain}"),
                summary: format!("MTA-STS policy of {domain} changed ({previous} → {digest})"),
            }),
        }
    }
    Ok(changes)
}

/// `added`, `removed` or `changed`, from the records before and after.
fn kind_of(a: &BTreeSet<String>, b: &BTreeSet<String>) -> &'static str {
    if a.is_empty() {
        "added"
    } else if b.is_empty() {
        "removed"
    } else {
        "changed"
    }
}

fn describe(
    owner: &str,
    qtype: QueryType,
    a: &BTreeSet<String>,
    b: &BTreeSet<String>,
) -> Vec<Change> {
    if qtype == QueryType::Txt {
        return describe_txt(owner, a, b);
    }
    let kind = kind_of(a, b);
    let change = |summary: String| Change {
        kind,
        name: owner.to_string(),
        summary,
    };
    if qtype == QueryType::Cname {
        return vec![change(match (a.iter().next(), b.iter().next()) {
            (Some(x), Some(y)) => format!(
                "{owner} now points to {} (was {})",
                y.trim_end_matches('.'),
                x.trim_end_matches('.')
            ),
            (None, Some(y)) => format!("{owner} became a CNAME to {}", y.trim_end_matches('.')),
            (Some(x), None) => format!(
                "{owner} is no longer a CNAME to {}",
                x.trim_end_matches('.')
            ),
            (None, None) => String::new(),
        })];
    }
    vec![change(format!(
        "{qtype} of {owner} {kind}: {}",
        set_delta(a, b)
    ))]
}

/// TXT changes at one name. One RRset can hold SPF, DMARC and unrelated strings (an apex
/// carries SPF beside verification records): each part is described on its own, so a removed
/// verification record is not mistaken for a change of SPF.
fn describe_txt(owner: &str, a: &BTreeSet<String>, b: &BTreeSet<String>) -> Vec<Change> {
    let change = |kind: &'static str, summary: String| Change {
        kind,
        name: owner.to_string(),
        summary,
    };
    if let Some((sel, domain)) = selector_of(owner) {
        let kind = kind_of(a, b);
        return vec![change(
            kind,
            format!("DKIM key of selector {sel} at {domain} {kind}"),
        )];
    }
    let part = |s: &BTreeSet<String>, f: fn(&str) -> bool| -> BTreeSet<String> {
        s.iter().filter(|t| f(t)).cloned().collect()
    };
    let mut out = Vec::new();
    let (spf_a, spf_b) = (part(a, is_spf), part(b, is_spf));
    if spf_a != spf_b {
        match (single(&spf_a), single(&spf_b)) {
            (Some(x), Some(y)) => out.extend(
                spf_changes(owner, x, y)
                    .into_iter()
                    .map(|s| change("changed", s)),
            ),
            _ => {
                let kind = kind_of(&spf_a, &spf_b);
                out.push(change(
                    kind,
                    format!(
                        "SPF record of {owner} {kind}: {}",
                        set_delta(&spf_a, &spf_b)
                    ),
                ));
            }
        }
    }
    let (dmarc_a, dmarc_b) = (part(a, is_dmarc_candidate), part(b, is_dmarc_candidate));
    if dmarc_a != dmarc_b {
        match (single(&dmarc_a), single(&dmarc_b)) {
            (Some(x), Some(y)) => out.extend(
                dmarc_changes(owner, x, y)
                    .into_iter()
                    .map(|s| change("changed", s)),
            ),
            _ => {
                let kind = kind_of(&dmarc_a, &dmarc_b);
                out.push(change(
                    kind,
                    format!(
                        "DMARC record of {owner} {kind}: {}",
                        set_delta(&dmarc_a, &dmarc_b)
                    ),
                ));
            }
        }
    }
    let rest = |s: &BTreeSet<String>| -> BTreeSet<String> {
        s.iter()
            .filter(|t| !is_spf(t) && !is_dmarc_candidate(t))
            .cloned()
            .collect()
    };
    let (rest_a, rest_b) = (rest(a), rest(b));
    if rest_a != rest_b {
        out.extend(describe_other_txt(owner, &rest_a, &rest_b).into_iter().map(
            |(kind, summary)| Change {
                kind,
                name: owner.to_string(),
                summary,
            },
        ));
    }
    out
}

/// The only element of a set.
fn single(s: &BTreeSet<String>) -> Option<&str> {
    match s.len() {
        1 => s.iter().next().map(String::as_str),
        _ => None,
    }
}

/// TXT records that are neither SPF nor DMARC, worded by what their name says they are.
fn describe_other_txt(
    owner: &str,
    a: &BTreeSet<String>,
    b: &BTreeSet<String>,
) -> Vec<(&'static str, String)> {
    let kind = kind_of(a, b);
    let delta = set_delta(a, b);
    if let Some((selector, domain)) = owner.split_once("._bimi.") {
        let which = if selector == "default" {
            String::new()
        } else {
            format!(" (selector {selector})")
        };
        return vec![(
            kind,
            format!("BIMI record{which} of {domain} {kind}: {delta}"),
        )];
    }
    if let Some(domain) = owner.strip_prefix("_mta-sts.") {
        let id = |s: &BTreeSet<String>| s.iter().find_map(|t| sts_id(t));
        if let (Some(x), Some(y)) = (id(a), id(b)) {
            if x != y {
                return vec![(
                    kind,
                    format!("MTA-STS policy id of {domain} changed: {x} → {y}"),
                )];
            }
        }
        return vec![(kind, format!("MTA-STS record of {domain} {kind}: {delta}"))];
    }
    if let Some(domain) = owner.strip_prefix("_smtp._tls.") {
        return vec![(kind, format!("TLS-RPT record of {domain} {kind}: {delta}"))];
    }
    // Verification and other strings come and go one by one; a new token is one removed and
    // one added.
    let what = |t: &str| {
        if is_verification(owner, t) {
            "verification record"
        } else {
            "TXT record"
        }
    };
    let mut out = Vec::new();
    for t in a.difference(b) {
        out.push(("removed", format!("{} removed from {owner}: {t}", what(t))));
    }
    for t in b.difference(a) {
        out.push(("added", format!("{} added to {owner}: {t}", what(t))));
    }
    out
}

/// The `id=` of an MTA-STS record (RFC 8461 §3.1).
fn sts_id(text: &str) -> Option<String> {
    crate::records::tags::split_tags(text)
        .0
        .into_iter()
        .find(|t| t.name.eq_ignore_ascii_case("id"))
        .map(|t| t.value)
}

/// A platform's ownership proof: a `_amazonses` or `zendeskverification` record, or an apex
/// string keyed like `google-site-verification=`, `facebook-domain-verification=`, `MS=ms…`
/// or `brevo-code:`.
fn is_verification(owner: &str, text: &str) -> bool {
    let label = owner.split('.').next().unwrap_or_default();
    if matches!(label, "_amazonses" | "zendeskverification") {
        return true;
    }
    let lower = text.trim().to_ascii_lowercase();
    match lower.split_once(['=', ':']) {
        Some((key, _)) => key.contains("verif") || key == "ms" || key.ends_with("-code"),
        None => false,
    }
}

fn set_delta(a: &BTreeSet<String>, b: &BTreeSet<String>) -> String {
    let removed: Vec<String> = a.difference(b).map(|s| format!("-{s}")).collect();
    let added: Vec<String> = b.difference(a).map(|s| format!("+{s}")).collect();
    removed
        .into_iter()
        .chain(added)
        .collect::<Vec<_>>()
        .join(", ")
}

fn spf_changes(owner: &str, old: &str, new: &str) -> Vec<String> {
    let terms = |t: &str| -> Vec<String> {
        SpfRecord::parse(t)
            .terms
            .into_iter()
            .map(|t| t.raw.to_ascii_lowercase())
            .collect()
    };
    let (a, b) = (terms(old), terms(new));
    let is_all = |t: &str| t.trim_start_matches(['+', '-', '~', '?']) == "all";
    let mut out = Vec::new();
    let all_a = a.iter().find(|t| is_all(t));
    let all_b = b.iter().find(|t| is_all(t));
    if all_a != all_b {
        out.push(format!(
            "SPF of {owner}: {} → {}",
            all_a.map_or("no all", |s| s.as_str()),
            all_b.map_or("no all", |s| s.as_str())
        ));
    }
    for t in a.iter().filter(|t| !is_all(t) && !b.contains(t)) {
        out.push(format!("SPF of {owner} lost {t}"));
    }
    for t in b.iter().filter(|t| !is_all(t) && !a.contains(t)) {
        out.push(format!("SPF of {owner} gained {t}"));
    }
    if out.is_empty() {
        out.push(format!("SPF of {owner} reordered: \"{old}\" → \"{new}\""));
    }
    out
}

fn dmarc_changes(owner: &str, old: &str, new: &str) -> Vec<String> {
    let tags = |t: &str| -> BTreeMap<String, String> {
        crate::records::tags::split_tags(t)
            .0
            .into_iter()
            .map(|t| (t.name.to_ascii_lowercase(), t.value))
            .collect()
    };
    let (a, b) = (tags(old), tags(new));
    let domain = owner.strip_prefix("_dmarc.").unwrap_or(owner);
    let mut out = Vec::new();
    for (k, v) in &a {
        match b.get(k) {
            None => out.push(format!("DMARC of {domain} lost {k}={v}")),
            Some(w) if w != v => out.push(format!("DMARC of {domain}: {k}={v} → {k}={w}")),
            _ => {}
        }
    }
    for (k, w) in &b {
        if !a.contains_key(k) {
            out.push(format!("DMARC of {domain} gained {k}={w}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn diff_speaks_in_words() {
        let dir = tempfile::tempdir().unwrap();
        let old = write(dir.path(), "old.zone", "$ORIGIN ex.test.\nex.test. 300 IN TXT \"v=spf1 include:servers.mcsv.net include:sendgrid.net ~all\"\n_dmarc.ex.test. 300 IN TXT \"v=DMARC1; p=none; rua=mailto:d@ex.test\"\ns2._domainkey.ex.test. 300 IN CNAME s2.dkim.esp.test.\nk1._domainkey.ex.test. 300 IN TXT \"v=DKIM1; p=AAAA\"\nex.test. 300 IN MX 10 mx1.ex.test.\n");
        let new = write(dir.path(), "new.zone", "$ORIGIN ex.test.\nex.test. 300 IN TXT \"v=spf1 include:servers.mcsv.net -all\"\n_dmarc.ex.test. 300 IN TXT \"v=DMARC1; p=reject; rua=mailto:d@ex.test\"\nk1._domainkey.ex.test. 300 IN TXT \"v=DKIM1; p=BBBB\"\nex.test. 300 IN MX 10 mx1.ex.test.\nex.test. 300 IN MX 20 mx2.ex.test.\n");
        let changes: Vec<String> = diff(&old, &new)
            .unwrap()
            .into_iter()
            .map(|c| c.summary)
            .collect();
        for expected in [
            "DKIM selector s2 removed from ex.test",
            "SPF of ex.test lost include:sendgrid.net",
            "SPF of ex.test: ~all → -all",
            "DMARC of ex.test: p=none → p=reject",
            "DKIM key of selector k1 at ex.test changed",
            "MX of ex.test changed: +20 mx2.ex.test.",
        ] {
            assert!(
                changes.iter().any(|c| c == expected),
                "missing {expected:?} in {changes:#?}"
            );
        }
        assert!(diff(&old, &old).unwrap().is_empty());
    }

    #[test]
    fn a_policy_changed_under_the_same_id_is_named_in_the_diff() {
        let dir = tempfile::tempdir().unwrap();
        let zone = |policy: &str, id: &str| {
            format!("; mailshift snapshot of ex.no\n{POLICY_LINE}ex.no sha256:{policy}\n$ORIGIN ex.no.\n_mta-sts.ex.no. 300 IN TXT \"v=STSv1; id={id}\"\n")
        };
        let old = write(dir.path(), "old.zone", &zone("aa", "1"));
        let same_id = write(dir.path(), "same.zone", &zone("bb", "1"));
        let new_id = write(dir.path(), "new.zone", &zone("bb", "2"));
        let unchanged = write(dir.path(), "unchanged.zone", &zone("aa", "1"));
        let summaries = |a: &Path, b: &Path| -> Vec<String> {
            diff(a, b).unwrap().into_iter().map(|c| c.summary).collect()
        };
        assert_eq!(
            summaries(&old, &same_id),
            ["MTA-STS policy of ex.no changed (sha256:aa → sha256:bb) but its id did not (1): senders that cached the old policy keep it until its max_age runs out; change the id"]
        );
        assert_eq!(
            summaries(&old, &new_id),
            [
                "MTA-STS policy id of ex.no changed: 1 → 2",
                "MTA-STS policy of ex.no changed (sha256:aa → sha256:bb)"
            ]
        );
        assert!(summaries(&old, &unchanged).is_empty());
        // The line is written where diff reads it.
        let mut snapshot = Snapshot {
            domains: vec![DomainName::parse("ex.no").unwrap()],
            roots: vec![DomainName::parse("ex.no").unwrap()],
            policies: vec![(DomainName::parse("ex.no").unwrap(), "sha256:cc".into())],
            ..Default::default()
        };
        snapshot.records.insert(
            "_mta-sts.ex.no".into(),
            vec![(
                QueryType::Txt,
                300,
                RecordData::Txt(vec![b"v=STSv1; id=1".to_vec()]),
            )],
        );
        let rendered = write(dir.path(), "rendered.zone", &render(&snapshot));
        assert_eq!(
            policy_digests(&rendered).get("ex.no").map(String::as_str),
            Some("sha256:cc")
        );
    }

    #[test]
    fn diff_names_bimi_mta_sts_tls_rpt_and_verification_records() {
        let dir = tempfile::tempdir().unwrap();
        let spf = "ex.co.uk. 300 IN TXT \"v=spf1 include:_spf.google.com ~all\"\n";
        let old = write(dir.path(), "old.zone", &format!("$ORIGIN ex.co.uk.\n{spf}ex.co.uk. 300 IN TXT \"google-site-verification=abc123\"\nex.co.uk. 300 IN TXT \"MS=ms12345678\"\ndefault._bimi.ex.co.uk. 300 IN TXT \"v=BIMI1; l=https://ex.co.uk/logo.svg; a=\"\n_mta-sts.ex.co.uk. 300 IN TXT \"v=STSv1; id=20261101T000000\"\n_smtp._tls.ex.co.uk. 300 IN TXT \"v=TLSRPTv1; rua=mailto:tls@ex.co.uk\"\n_amazonses.ex.co.uk. 300 IN TXT \"pmBGN/7MjnfhTKUZ06Enqq1PeGUaOkw8lGhcfwefcHU=\"\n"));
        let new = write(dir.path(), "new.zone", &format!("$ORIGIN ex.co.uk.\n{spf}ex.co.uk. 300 IN TXT \"MS=ms12345678\"\nex.co.uk. 300 IN TXT \"facebook-domain-verification=zz9\"\ndefault._bimi.ex.co.uk. 300 IN TXT \"v=BIMI1; l=https://ex.co.uk/logo2.svg; a=\"\n_mta-sts.ex.co.uk. 300 IN TXT \"v=STSv1; id=20261201T000000\"\n_smtp._tls.ex.co.uk. 300 IN TXT \"v=TLSRPTv1; rua=mailto:tls@reports.example.net\"\n"));
        let changes = diff(&old, &new).unwrap();
        let summaries: Vec<&str> = changes.iter().map(|c| c.summary.as_str()).collect();
        for (kind, expected) in [
            ("removed", "verification record removed from ex.co.uk: google-site-verification=abc123"),
            ("added", "verification record added to ex.co.uk: facebook-domain-verification=zz9"),
            ("removed", "verification record removed from _amazonses.ex.co.uk: pmBGN/7MjnfhTKUZ06Enqq1PeGUaOkw8lGhcfwefcHU="),
            ("changed", "MTA-STS policy id of ex.co.uk changed: 20261101T000000 → 20261201T000000"),
            ("changed", "BIMI record of ex.co.uk changed: -v=BIMI1; l=https://ex.co.uk/logo.svg; a=, +v=BIMI1; l=https://ex.co.uk/logo2.svg; a="),
            ("changed", "TLS-RPT record of ex.co.uk changed: -v=TLSRPTv1; rua=mailto:tls@ex.co.uk, +v=TLSRPTv1; rua=mailto:tls@reports.example.net"),
        ] {
            assert!(
                changes.iter().any(|c| c.kind == kind && c.summary == expected),
                "missing {kind} {expected:?} in {summaries:#?}"
            );
        }
        // The SPF record beside them did not change, and nothing says it did.
        assert!(
            !summaries.iter().any(|s| s.contains("SPF")),
            "{summaries:#?}"
        );
        assert_eq!(changes.len(), 6, "{summaries:#?}");
        // A record that appears or goes as a whole says so.
        let gone = write(
            dir.path(),
            "gone.zone",
            &format!("$ORIGIN ex.co.uk.\n{spf}"),
        );
        let removed: Vec<String> = diff(&old, &gone)
            .unwrap()
            .into_iter()
            .map(|c| format!("{} {}", c.kind, c.summary))
            .collect();
        assert!(
            removed.contains(
                &"removed MTA-STS record of ex.co.uk removed: -v=STSv1; id=20261101T000000"
                    .to_string()
            ),
            "{removed:#?}"
        );
        assert!(
            removed
                .iter()
                .any(|s| s.starts_with("removed BIMI record of ex.co.uk removed")),
            "{removed:#?}"
        );
    }

    fn offline_resolver(dir: &Path) -> Resolver {
        Resolver::new(&crate::dns::DnsConfig {
            zones: vec![dir.to_path_buf()],
            offline: true,
            ..crate::dns::DnsConfig::default()
        })
        .unwrap()
    }

    fn selector(name: &str) -> Selector {
        Selector {
            name: name.into(),
            used_by: None,
            explicit: false,
        }
    }

    #[tokio::test]
    async fn a_flooded_apex_is_cut_with_spf_kept_and_the_header_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let mut zone = String::from("$ORIGIN flood.example.com.\n$TTL 3600\n@ IN SOA ns1 hostmaster 1 3600 600 86400 300\n@ IN MX 10 mx.flood.example.com.\nmx IN A 192.0.2.25\n@ IN TXT \"v=spf1 mx -all\"\n");
        for i in 0..3000 {
            zone.push_str(&format!(
                "@ IN TXT \"a-token-{i:05}=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"\n"
            ));
        }
        std::fs::write(dir.path().join("flood.example.com.zone"), zone).unwrap();
        let resolver = offline_resolver(dir.path());
        let mut request = Request::new(vec![selector("s1")]);
        request.add_domain(DomainName::parse("flood.example.com").unwrap(), []);
        let snapshot = take(&resolver, &request, "test".into()).await;
        let apex = &snapshot.records["flood.example.com"];
        let txt: Vec<String> = apex
            .iter()
            .filter(|(t, _, _)| *t == QueryType::Txt)
            .filter_map(|(_, _, d)| d.txt_joined())
            .collect();
        assert_eq!(txt.len(), MAX_RECORDS_PER_SET);
        assert!(txt.iter().any(|t| t == "v=spf1 mx -all"), "SPF was cut");
        let text = render(&snapshot);
        assert!(
            text.contains(
                ";   flood.example.com TXT: kept 100 of 3001 records (SPF and DMARC first)\n"
            ),
            "{}",
            &text[..2000.min(text.len())]
        );
        assert!(!text.contains("Nothing was left out"));
        assert!(text.len() < 64 * 1024, "{} bytes", text.len());
        // What was kept still loads, and still answers what the checks read.
        let restored = tempfile::tempdir().unwrap();
        write(restored.path(), "snap.zone", &text);
        let again = offline_resolver(restored.path());
        let mx = again
            .lookup(
                &DomainName::parse("mx.flood.example.com").unwrap(),
                QueryType::A,
            )
            .await;
        assert_eq!(mx.records().len(), 1, "{mx:?}");
    }

    #[tokio::test]
    async fn wildcards_delegations_and_missing_domains_restore_as_they_were() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "example.com.zone", "$ORIGIN example.com.\n$TTL 3600\n@ IN SOA ns1 hostmaster 1 3600 600 86400 300\n@ IN MX 10 aspmx.l.google.com.\n@ IN TXT \"v=spf1 include:send.example.com ~all\"\n; Klaviyo's dynamic routing: the sending subdomain is delegated.\nsend IN NS ns1.klaviyo-dns.example.net.\n");
        write(dir.path(), "example.net.zone", "$ORIGIN example.net.\n$TTL 3600\n@ IN SOA ns1 hostmaster 1 3600 600 86400 300\n@ IN MX 0 .\n@ IN TXT \"v=spf1 -all\"\n*._domainkey IN TXT \"v=DKIM1; p=\"\n");
        let resolver = offline_resolver(dir.path());
        let mut request = Request::new(vec![selector("google"), selector("s1")]);
        for d in ["example.com", "gone.example.com", "example.net"] {
            request.add_domain(DomainName::parse(d).unwrap(), []);
        }
        let snapshot = take(&resolver, &request, "test".into()).await;
        let text = render(&snapshot);
        assert!(
            text.contains("\n*._domainkey.example.net.\t3600\tIN\tTXT\t\"v=DKIM1; p=\"\n"),
            "{text}"
        );
        assert!(!text.contains("google._domainkey.example.net"), "{text}");
        assert!(
            text.contains("\nsend.example.com.\t3600\tIN\tNS\tns1.klaviyo-dns.example.net.\n"),
            "{text}"
        );
        assert!(!text.contains("$ORIGIN gone.example.com."), "{text}");
        assert!(
            text.contains(";   gone.example.com did not exist (NXDOMAIN)\n"),
            "{text}"
        );
        assert!(
            text.contains("; DKIM selectors probed at each domain: google, s1\n"),
            "{text}"
        );
        let restored = tempfile::tempdir().unwrap();
        write(restored.path(), "snap.zone", &text);
        let again = offline_resolver(restored.path());
        let ask = |name: &str, t: QueryType| {
            let name = DomainName::parse(name).unwrap();
            let again = again.clone();
            async move { again.lookup(&name, t).await.outcome.clone() }
        };
        assert_eq!(
            ask("send.example.com", QueryType::Txt).await,
            Outcome::NoData
        );
        assert_eq!(
            ask("gone.example.com", QueryType::Txt).await,
            Outcome::NxDomain
        );
        assert!(matches!(
            ask("google._domainkey.example.net", QueryType::Txt).await,
            Outcome::Records(_)
        ));
    }

    #[test]
    fn rendered_snapshots_load_back() {
        let mut snapshot = Snapshot {
            domains: vec![DomainName::parse("ex.test").unwrap()],
            roots: vec![DomainName::parse("ex.test").unwrap()],
            source: "test".into(),
            taken: "2026-11-25T00:00:00Z".into(),
            ..Default::default()
        };
        snapshot.records.insert(
            "ex.test".into(),
            vec![(
                QueryType::Txt,
                300,
                RecordData::Txt(vec![b"v=spf1 \"quoted\" ".to_vec(), b"-all".to_vec()]),
            )],
        );
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "s.zone", &render(&snapshot));
        let overlay = ZoneOverlay::load(std::slice::from_ref(&path)).unwrap();
        let records = overlay.records();
        assert_eq!(
            records[0].2.data.txt_joined().unwrap(),
            "v=spf1 \"quoted\" -all"
        );
        assert_eq!(taken_at(&path).as_deref(), Some("2026-11-25T00:00:00Z"));
    }
}
