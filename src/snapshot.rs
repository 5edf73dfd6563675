//! Snapshots: the backup a migration starts with, as an RFC 1035 zone file, and diffs in words.
//!
//! [`take`] reads every mail-related record mailshift looks at for some domains — SPF and the
//! include targets inside those domains, DMARC, the DKIM selectors found, MX and the addresses of
//! in-domain MX hosts, MTA-STS, TLS-RPT and BIMI names, return-path and tracking CNAMEs of a
//! plan — and [`render`] writes them with their TTLs under a header saying when and from where.
//! Feeding the file back with `check --zone FILE` reproduces that moment's verdict; it is also what
//! an operator republishes to roll back. [`diff`] compares two snapshots and says what changed
//! in the terms people use ("DKIM selector s2 removed", "SPF lost include:sendgrid.net").

use crate::dns::answer::quote_character_string;
use crate::dns::{Answer, QueryType, Record, RecordData, Resolver, ZoneOverlay};
use crate::domain::DomainName;
use crate::fetch::{fetch_domain, Selector};
use crate::records::dmarc::is_dmarc_candidate;
use crate::records::spf::{is_spf, SpfRecord};
use futures::future::join_all;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

/// Records gathered for a snapshot, by owner name.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub domains: Vec<DomainName>,
    /// Where the answers came from (`127.0.0.1:5300`, `the system resolver`, zone files).
    pub source: String,
    /// RFC 3339 time the snapshot was taken.
    pub taken: String,
    /// In-domain records: owner → (type, ttl, data), deduplicated.
    pub records: BTreeMap<String, Vec<(QueryType, u32, RecordData)>>,
    /// Answers outside the snapshot's domains (ESP targets), listed for reference only.
    pub outside: Vec<String>,
}

/// Extra names that belong in a snapshot besides each domain's own mail records.
fn extra_names(domain: &DomainName) -> Vec<(DomainName, QueryType)> {
    vec![
        (domain.child("_mta-sts"), QueryType::Txt),
        (domain.child("_smtp._tls"), QueryType::Txt),
        (domain.child("default._bimi"), QueryType::Txt),
        (domain.child("mta-sts"), QueryType::Cname),
    ]
}

/// Takes a snapshot of `domains` (each with its selectors) plus `hosts` (return-path and
/// tracking names from a plan).
pub async fn take(
    resolver: &Resolver,
    domains: &[(DomainName, Vec<Selector>)],
    hosts: &[DomainName],
    source: String,
) -> Snapshot {
    let fetched = join_all(domains.iter().map(|(d, selectors)| async move {
        let records = fetch_domain(resolver, d, selectors.clone()).await;
        let extras = join_all(extra_names(d).iter().map(|(n, t)| resolver.lookup(n, *t))).await;
        (records, extras)
    }))
    .await;
    let host_answers = join_all(hosts.iter().flat_map(|h| {
        [
            resolver.lookup(h, QueryType::Cname),
            resolver.lookup(h, QueryType::Txt),
            resolver.lookup(h, QueryType::Mx),
        ]
    }))
    .await;
    let mut answers: Vec<Arc<Answer>> = host_answers;
    for (records, extras) in fetched {
        answers.extend(records.answers().map(|a| Arc::new(a.clone())));
        answers.extend(extras);
    }
    // The CNAME records themselves (with their own TTLs) for every hop of every chain.
    let mut hops: Vec<DomainName> = Vec::new();
    for answer in &answers {
        let owners = std::iter::once(&answer.name).chain(answer.cname_chain.iter());
        for owner in owners.take(answer.cname_chain.len()) {
            if !hops.contains(owner) {
                hops.push(owner.clone());
            }
        }
    }
    let cnames = join_all(hops.iter().map(|h| resolver.lookup(h, QueryType::Cname))).await;
    let names: Vec<DomainName> = domains.iter().map(|(d, _)| d.clone()).collect();
    let mut snapshot = Snapshot {
        domains: names.clone(),
        source,
        taken: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        ..Snapshot::default()
    };
    let inside = |name: &str| {
        names
            .iter()
            .any(|d| DomainName::from_ascii_unchecked(name).is_within(d))
    };
    let add = |snapshot: &mut Snapshot, owner: &str, qtype: QueryType, record: &Record| {
        if inside(owner) {
            let entry = snapshot.records.entry(owner.to_string()).or_default();
            if !entry
                .iter()
                .any(|(t, _, d)| *t == qtype && *d == record.data)
            {
                entry.push((qtype, record.ttl, record.data.clone()));
            }
        } else {
            let line = format!(
                "{owner}. {} {qtype} {}",
                record.ttl,
                record.data.presentation()
            );
            if !snapshot.outside.contains(&line) {
                snapshot.outside.push(line);
            }
        }
    };
    for cname in &cnames {
        for record in cname.records() {
            add(&mut snapshot, cname.name.as_str(), QueryType::Cname, record);
        }
    }
    for answer in &answers {
        // The data sits at the end of the chain.
        let owner = answer
            .cname_chain
            .last()
            .unwrap_or(&answer.name)
            .to_string();
        for record in answer.records() {
            add(&mut snapshot, &owner, answer.qtype, record);
        }
    }
    for entries in snapshot.records.values_mut() {
        entries.sort_by_key(|e| (e.0, e.2.presentation()));
    }
    snapshot.outside.sort();
    snapshot
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
    for domain in &snapshot.domains {
        out.push_str(&format!("\n$ORIGIN {domain}.\n"));
        for (owner, entries) in &snapshot.records {
            let d = DomainName::from_ascii_unchecked(owner.clone());
            // Each owner goes under the most specific snapshot domain that contains it.
            let home = snapshot
                .domains
                .iter()
                .filter(|x| d.is_within(x))
                .max_by_key(|x| x.as_str().len());
            if home != Some(domain) {
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
    Ok(changes)
}

fn describe(
    owner: &str,
    qtype: QueryType,
    a: &BTreeSet<String>,
    b: &BTreeSet<String>,
) -> Vec<Change> {
    let kind = if a.is_empty() {
        "added"
    } else if b.is_empty() {
        "removed"
    } else {
        "changed"
    };
    let change = |summary: String| Change {
        kind,
        name: owner.to_string(),
        summary,
    };
    if qtype == QueryType::Txt {
        let spf = |s: &BTreeSet<String>| s.iter().find(|t| is_spf(t)).cloned();
        let dmarc = |s: &BTreeSet<String>| s.iter().find(|t| is_dmarc_candidate(t)).cloned();
        if let (Some(x), Some(y)) = (spf(a), spf(b)) {
            return spf_changes(owner, &x, &y).into_iter().map(change).collect();
        }
        if let (Some(x), Some(y)) = (dmarc(a), dmarc(b)) {
            return dmarc_changes(owner, &x, &y)
                .into_iter()
                .map(change)
                .collect();
        }
        if let Some((sel, domain)) = selector_of(owner) {
            return vec![change(format!(
                "DKIM key of selector {sel} at {domain} {kind}"
            ))];
        }
        let what = if spf(a).or(spf(b)).is_some() {
            "SPF record"
        } else if dmarc(a).or(dmarc(b)).is_some() {
            "DMARC record"
        } else {
            "TXT record"
        };
        return vec![change(format!(
            "{what} of {owner} {kind}: {}",
            set_delta(a, b)
        ))];
    }
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
    fn rendered_snapshots_load_back() {
        let mut snapshot = Snapshot {
            domains: vec![DomainName::parse("ex.test").unwrap()],
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
