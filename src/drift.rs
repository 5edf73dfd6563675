//! Drift: what changed in a domain's mail records since the last run, as findings of their own.
//!
//! A migration runs for weeks, and records change under it: someone "tidies" the SPF record and
//! drops an include, a DNS provider migration loses a DKIM key, a DMARC policy is relaxed to
//! stop a complaint. `check` and `gate` judge today's records; drift says what moved since the
//! previous run, so a verdict that changed comes with its cause. An [`Observed`] set is what one
//! run read (per name and type: the records, "absent", or "failed"), small enough to keep in the
//! history; [`compare`] turns two of them into `drift.*` findings. A lookup that failed in
//! either run is never reported as a change: an unreachable server is not a removed record.

use crate::dns::Outcome;
use crate::fetch::DomainRecords;
use crate::finding::{Finding, Severity};
use crate::records::dmarc::{DmarcRecord, Policy};
use crate::records::spf::{DomainSpec, Mechanism, Qualifier, SpfRecord, TermKind};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// What one lookup returned, reduced to what can be compared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Seen {
    /// The records' presentation, sorted; a CNAME chain followed is listed first as
    /// `CNAME target`.
    Records(Vec<String>),
    /// NXDOMAIN or no records of the type.
    Absent,
    /// The lookup failed: nothing can be said.
    Failed,
}

/// The answers one run read: `(name, type)` → what was there.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observed(pub BTreeMap<String, Seen>);

impl Observed {
    /// Adds every answer of a domain's fetched records.
    pub fn add(&mut self, records: &DomainRecords) {
        for a in records.answers() {
            let key = format!("{} {}", a.name, a.qtype);
            let seen = match &a.outcome {
                Outcome::Records(rs) => {
                    let mut data: Vec<String> =
                        a.cname_chain.iter().map(|c| format!("CNAME {c}")).collect();
                    let mut own: Vec<String> = rs.iter().map(|r| r.data.presentation()).collect();
                    own.sort();
                    data.extend(own);
                    Seen::Records(data)
                }
                Outcome::NxDomain | Outcome::NoData => Seen::Absent,
                _ => Seen::Failed,
            };
            self.0.insert(key, seen);
        }
        // The MTA-STS policy is a file, not a record: its digest stands for it, so the next run
        // can tell a policy that changed under an unchanged id.
        if let Some(digest) = crate::fetch::mta_sts_policy_digest(records) {
            self.0.insert(
                format!(
                    "{} {MTA_STS_POLICY}",
                    crate::fetch::mta_sts_host(&records.domain)
                ),
                Seen::Records(vec![digest]),
            );
        }
    }
}

/// The pseudo-type under which the MTA-STS policy's digest is kept.
const MTA_STS_POLICY: &str = "MTA-STS-POLICY";

impl Observed {
    /// Where this run's lookup failed, keeps what `before` knew, and so for the names this
    /// run did not ask about (a family left out with `check --skip`, selectors not named this
    /// time): the basis for the next comparison stays the last known records.
    pub fn keep_known(&mut self, before: &Observed) {
        for (key, seen) in self.0.iter_mut() {
            if *seen == Seen::Failed {
                if let Some(known) = before.0.get(key).filter(|k| **k != Seen::Failed) {
                    *seen = known.clone();
                }
            }
        }
        for (key, known) in &before.0 {
            if !self.0.contains_key(key) {
                self.0.insert(key.clone(), known.clone());
            }
        }
    }
}

/// A change, with the name it is about.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Drift {
    pub name: String,
    pub finding: Finding,
}

/// What changed between `before` and `after`, for the names both runs read.
pub fn compare(before: &Observed, after: &Observed, since: &str) -> Vec<Drift> {
    let mut out = Vec::new();
    for (key, old) in &before.0 {
        let Some(new) = after.0.get(key) else {
            continue;
        };
        if old == new || matches!(old, Seen::Failed) || matches!(new, Seen::Failed) {
            continue;
        }
        let (name, qtype) = key.rsplit_once(' ').unwrap_or((key.as_str(), ""));
        let findings = match qtype {
            MTA_STS_POLICY => mta_sts_policy(name, before, after, since),
            "TXT" if name.contains("._bimi.") => bimi(name, old, new, since),
            "TXT" if name.starts_with("_dmarc.") => dmarc(name, old, new, since),
            "TXT" | "CNAME" if name.contains("._domainkey.") => dkim(name, old, new, since),
            "TXT" if spf_of(old).is_some() || spf_of(new).is_some() => spf(name, old, new, since),
            "MX" => vec![Finding::new(
                "drift.mx-changed",
                Severity::Info,
                format!("The MX records of {name} changed since {since}."),
            )
            .evidence(before_after(old, new))],
            _ => vec![Finding::new(
                "drift.record-changed",
                Severity::Info,
                format!("The {qtype} records of {name} changed since {since}."),
            )
            .evidence(before_after(old, new))],
        };
        out.extend(findings.into_iter().map(|finding| Drift {
            name: name.to_string(),
            finding,
        }));
    }
    out
}

fn shown(seen: &Seen) -> String {
    match seen {
        Seen::Records(r) => r.join(" | "),
        Seen::Absent => "(none)".to_string(),
        Seen::Failed => "(lookup failed)".to_string(),
    }
}

fn before_after(old: &Seen, new: &Seen) -> String {
    format!("before: {}\nnow:    {}", shown(old), shown(new))
}

/// The text of the one TXT record starting with `prefix` (records are presented quoted).
pub(crate) fn txt_with(seen: &Seen, prefix: &str) -> Option<String> {
    let Seen::Records(records) = seen else {
        return None;
    };
    let mut found = records.iter().filter_map(|r| {
        let text = unquote(r);
        text.to_ascii_lowercase()
            .starts_with(prefix)
            .then_some(text)
    });
    let first = found.next()?;
    found.next().is_none().then_some(first)
}

/// `"v=spf1 " "include:x"` → `v=spf1 include:x` (TXT strings are joined without spaces).
fn unquote(presented: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    let mut escaped = false;
    for c in presented.chars() {
        match (inside, escaped, c) {
            (true, false, '\\') => escaped = true,
            (true, false, '"') => inside = false,
            (true, _, c) => {
                out.push(c);
                escaped = false;
            }
            (false, _, '"') => inside = true,
            _ => {}
        }
    }
    if out.is_empty() && !presented.contains('"') {
        return presented.to_string();
    }
    out
}

fn spf_of(seen: &Seen) -> Option<SpfRecord> {
    txt_with(seen, "v=spf1").map(|t| SpfRecord::parse(&t))
}

fn includes(record: &SpfRecord) -> BTreeSet<String> {
    record
        .terms
        .iter()
        .filter_map(|t| match &t.kind {
            TermKind::Directive {
                mechanism: Mechanism::Include(DomainSpec::Literal(n) | DomainSpec::Macro(n)),
                ..
            } => Some(n.clone()),
            TermKind::Redirect(DomainSpec::Literal(n) | DomainSpec::Macro(n)) => {
                Some(format!("redirect={n}"))
            }
            _ => None,
        })
        .collect()
}

/// How permissive the record's `all` is: 0 `-all` … 3 `+all`; no `all` is neutral (2).
fn all_looseness(record: &SpfRecord) -> u8 {
    record
        .terms
        .iter()
        .find_map(|t| match &t.kind {
            TermKind::Directive {
                qualifier,
                mechanism: Mechanism::All,
            } => Some(match qualifier {
                Qualifier::Fail => 0,
                Qualifier::SoftFail => 1,
                Qualifier::Neutral => 2,
                Qualifier::Pass => 3,
            }),
            _ => None,
        })
        .unwrap_or(2)
}

fn spf(name: &str, old: &Seen, new: &Seen, since: &str) -> Vec<Finding> {
    let evidence = before_after(old, new);
    let (before, after) = match (spf_of(old), spf_of(new)) {
        (Some(b), Some(a)) => (b, a),
        (Some(_), None) => {
            return vec![Finding::new(
                "drift.spf-removed",
                Severity::Warn,
                format!("{name} no longer has an SPF record; it had one on {since}."),
            )
            .evidence(evidence)]
        }
        (None, Some(_)) => {
            return vec![Finding::new(
                "drift.spf-added",
                Severity::Info,
                format!("{name} has an SPF record it did not have on {since}."),
            )
            .evidence(evidence)]
        }
        (None, None) => return Vec::new(),
    };
    let mut out = Vec::new();
    let (was, now) = (includes(&before), includes(&after));
    let dropped: Vec<&String> = was.difference(&now).collect();
    let added: Vec<&String> = now.difference(&was).collect();
    if !dropped.is_empty() {
        out.push(
            Finding::new(
                "drift.spf-include-removed",
                Severity::Warn,
                format!(
                    "The SPF record of {name} dropped {} since {since}: the senders behind {} are no longer authorised.",
                    list(&dropped),
                    if dropped.len() == 1 { "it" } else { "them" }
                ),
            )
            .evidence(evidence.clone()),
        );
    }
    if !added.is_empty() {
        out.push(
            Finding::new(
                "drift.spf-include-added",
                Severity::Info,
                format!(
                    "The SPF record of {name} gained {} since {since}.",
                    list(&added)
                ),
            )
            .evidence(evidence.clone()),
        );
    }
    if all_looseness(&after) > all_looseness(&before) {
        out.push(
            Finding::new(
                "drift.spf-all-weakened",
                Severity::Warn,
                format!(
                    "The SPF record of {name} treats unlisted senders more leniently than on {since}."
                ),
            )
            .evidence(evidence.clone()),
        );
    }
    if out.is_empty() {
        out.push(
            Finding::new(
                "drift.spf-changed",
                Severity::Info,
                format!("The SPF record of {name} changed since {since}."),
            )
            .evidence(evidence),
        );
    }
    out
}

fn list(items: &[&String]) -> String {
    items
        .iter()
        .map(|i| {
            if i.starts_with("redirect=") {
                i.to_string()
            } else {
                format!("include:{i}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn strength(p: Option<Policy>) -> u8 {
    match p {
        None | Some(Policy::None) => 0,
        Some(Policy::Quarantine) => 1,
        Some(Policy::Reject) => 2,
    }
}

fn dmarc(name: &str, old: &Seen, new: &Seen, since: &str) -> Vec<Finding> {
    let evidence = before_after(old, new);
    let parse = |s: &Seen| txt_with(s, "v=dmarc1").map(|t| DmarcRecord::parse(&t));
    let (before, after) = match (parse(old), parse(new)) {
        (Some(b), Some(a)) => (b, a),
        (Some(_), None) => {
            return vec![Finding::new(
                "drift.dmarc-removed",
                Severity::Warn,
                format!(
                    "{name} no longer has a DMARC record; it had one on {since}: receivers apply no policy and send no reports."
                ),
            )
            .evidence(evidence)]
        }
        (None, Some(_)) => {
            return vec![Finding::new(
                "drift.dmarc-added",
                Severity::Info,
                format!("{name} has a DMARC record it did not have on {since}."),
            )
            .evidence(evidence)]
        }
        (None, None) => return Vec::new(),
    };
    let mut weaker = Vec::new();
    let mut stronger = Vec::new();
    let word = |p: Option<Policy>| p.map_or("unset", |p| p.as_str());
    for (tag, b, a) in [("p", before.p, after.p), ("sp", before.sp, after.sp)] {
        // An unset sp inherits p: compare what applies, and only when one of the records
        // sets it (else the p change says it all).
        let (b, a) = if tag == "sp" {
            if b.is_none() && a.is_none() {
                continue;
            }
            (b.or(before.p), a.or(after.p))
        } else {
            (b, a)
        };
        match strength(a).cmp(&strength(b)) {
            std::cmp::Ordering::Less => {
                weaker.push(format!("{tag}={} → {tag}={}", word(b), word(a)))
            }
            std::cmp::Ordering::Greater => {
                stronger.push(format!("{tag}={} → {tag}={}", word(b), word(a)))
            }
            std::cmp::Ordering::Equal => {}
        }
    }
    let (pct_b, pct_a) = (before.pct.unwrap_or(100), after.pct.unwrap_or(100));
    if pct_a < pct_b {
        weaker.push(format!("pct={pct_b} → pct={pct_a}"));
    }
    let mut out = Vec::new();
    if !weaker.is_empty() {
        out.push(
            Finding::new(
                "drift.dmarc-weakened",
                Severity::Warn,
                format!(
                    "The DMARC policy of {name} was weakened since {since}: {}.",
                    weaker.join(", ")
                ),
            )
            .evidence(evidence.clone()),
        );
    }
    if !stronger.is_empty() {
        out.push(
            Finding::new(
                "drift.dmarc-strengthened",
                Severity::Info,
                format!(
                    "The DMARC policy of {name} was tightened since {since}: {}.",
                    stronger.join(", ")
                ),
            )
            .evidence(evidence.clone()),
        );
    }
    let rua = |r: &DmarcRecord| -> BTreeSet<String> {
        r.rua
            .iter()
            .map(|u| u.address.to_ascii_lowercase())
            .collect()
    };
    let (rua_b, rua_a) = (rua(&before), rua(&after));
    let lost: Vec<&String> = rua_b.difference(&rua_a).collect();
    if !lost.is_empty() {
        out.push(
            Finding::new(
                "drift.dmarc-reports-dropped",
                Severity::Warn,
                format!(
                    "The DMARC record of {name} no longer sends aggregate reports to {} (since {since}).",
                    lost.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                ),
            )
            .evidence(evidence.clone()),
        );
    }
    if out.is_empty() {
        out.push(
            Finding::new(
                "drift.dmarc-changed",
                Severity::Info,
                format!("The DMARC record of {name} changed since {since}."),
            )
            .evidence(evidence),
        );
    }
    out
}

/// The `p=` of a DKIM key record, `Some("")` when revoked.
fn dkim_key(seen: &Seen) -> Option<String> {
    let text = txt_with(seen, "v=dkim1").or_else(|| {
        let Seen::Records(r) = seen else { return None };
        r.iter().map(|x| unquote(x)).find(|t| t.contains("p="))
    })?;
    text.split(';')
        .filter_map(|tag| tag.split_once('='))
        .find(|(k, _)| k.trim() == "p")
        .map(|(_, v)| v.split_whitespace().collect::<String>())
}

/// The policy at `mta-sts.<domain>` changed since the last run: senders fetch a new policy only
/// when the `_mta-sts` record's id changes (RFC 8461 §3.1), so a new policy under the old id
/// stays unseen by every sender that cached the old one, for up to its `max_age`.
fn mta_sts_policy(host: &str, before: &Observed, after: &Observed, since: &str) -> Vec<Finding> {
    let domain = host.strip_prefix("mta-sts.").unwrap_or(host);
    let record = format!("_mta-sts.{domain} TXT");
    let id = |observed: &Observed| {
        observed
            .0
            .get(&record)
            .and_then(|seen| txt_with(seen, "v=stsv1"))
            .and_then(|text| crate::records::mta_sts::parse_record(&text).id)
    };
    match (id(before), id(after)) {
        (Some(old), Some(new)) if old == new => vec![Finding::new(
            "drift.mta-sts-id-unchanged",
            Severity::Fail,
            format!(
                "The MTA-STS policy of {domain} changed since {since}, but its record's id did not ({new}): senders that cached the old policy keep using it until its max_age runs out, and never fetch the new one."
            ),
        )
        .fix(format!(
            "Change the id in the _mta-sts.{domain} record (e.g. to today's date and time) whenever the policy changes."
        ))],
        _ => vec![Finding::new(
            "drift.mta-sts-policy-changed",
            Severity::Info,
            format!("The MTA-STS policy of {domain} changed since {since}, with a new id."),
        )],
    }
}

fn bimi(name: &str, old: &Seen, new: &Seen, since: &str) -> Vec<Finding> {
    let evidence = before_after(old, new);
    let (was, is) = (txt_with(old, "v=bimi1"), txt_with(new, "v=bimi1"));
    let finding = match (was, is) {
        (Some(_), None) => Finding::new(
            "drift.bimi-removed",
            Severity::Warn,
            format!(
                "The BIMI record {name} is gone since {since}: receivers stop showing the logo."
            ),
        ),
        (None, Some(_)) => Finding::new(
            "drift.bimi-added",
            Severity::Info,
            format!("The BIMI record {name} is published since {since}."),
        ),
        _ => Finding::new(
            "drift.bimi-changed",
            Severity::Info,
            format!(
                "The BIMI record {name} changed since {since} (a new logo or certificate URL)."
            ),
        ),
    };
    vec![finding.evidence(evidence)]
}

fn dkim(name: &str, old: &Seen, new: &Seen, since: &str) -> Vec<Finding> {
    let evidence = before_after(old, new);
    let selector = name.split("._domainkey.").next().unwrap_or(name);
    let finding = match (old, new) {
        (Seen::Records(_), Seen::Absent) => Finding::new(
            "drift.dkim-removed",
            Severity::Warn,
            format!(
                "The DKIM selector {selector} ({name}) is gone since {since}: mail still signed with it fails DKIM."
            ),
        ),
        (Seen::Absent, Seen::Records(_)) => Finding::new(
            "drift.dkim-added",
            Severity::Info,
            format!("The DKIM selector {selector} ({name}) is published since {since}."),
        ),
        _ => match (dkim_key(old), dkim_key(new)) {
            (Some(b), Some(a)) if !b.is_empty() && a.is_empty() => Finding::new(
                "drift.dkim-revoked",
                Severity::Warn,
                format!("The DKIM key of selector {selector} ({name}) was revoked (empty p=) since {since}."),
            ),
            (Some(b), Some(a)) if b != a => Finding::new(
                "drift.dkim-key-changed",
                Severity::Info,
                format!(
                    "The DKIM key of selector {selector} ({name}) changed since {since} (a rotation: mail signed with the old key before then no longer verifies)."
                ),
            ),
            _ => Finding::new(
                "drift.dkim-changed",
                Severity::Info,
                format!("The DKIM record of selector {selector} ({name}) changed since {since}."),
            ),
        },
    };
    vec![finding.evidence(evidence)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observed(entries: &[(&str, Seen)]) -> Observed {
        Observed(
            entries
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        )
    }

    fn txt(texts: &[&str]) -> Seen {
        Seen::Records(texts.iter().map(|t| format!("\"{t}\"")).collect())
    }

    fn ids(drift: &[Drift]) -> Vec<(&str, &str, Severity)> {
        drift
            .iter()
            .map(|d| (d.name.as_str(), d.finding.id.as_str(), d.finding.severity))
            .collect()
    }

    #[test]
    fn an_mta_sts_policy_changed_under_the_same_id_fails_and_a_bimi_record_removed_warns() {
        let policy = |digest: &str| Seen::Records(vec![format!("sha256:{digest}")]);
        let sts = |id: &str| txt(&[&format!("v=STSv1; id={id}")]);
        let bimi = txt(&["v=BIMI1; l=https://bimi.fjellbakeri.no/logo.svg"]);
        let before = observed(&[
            ("mta-sts.fjellbakeri.no MTA-STS-POLICY", policy("aa")),
            ("_mta-sts.fjellbakeri.no TXT", sts("20261101")),
            ("default._bimi.fjellbakeri.no TXT", bimi.clone()),
            (
                "mta-sts.nordhavn-outfitters.dk MTA-STS-POLICY",
                policy("cc"),
            ),
            ("_mta-sts.nordhavn-outfitters.dk TXT", sts("1")),
        ]);
        let after = observed(&[
            ("mta-sts.fjellbakeri.no MTA-STS-POLICY", policy("bb")),
            ("_mta-sts.fjellbakeri.no TXT", sts("20261101")),
            ("default._bimi.fjellbakeri.no TXT", Seen::Absent),
            (
                "mta-sts.nordhavn-outfitters.dk MTA-STS-POLICY",
                policy("dd"),
            ),
            ("_mta-sts.nordhavn-outfitters.dk TXT", sts("2")),
        ]);
        let drift = compare(&before, &after, "2026-11-30");
        assert_eq!(
            ids(&drift),
            [
                (
                    "_mta-sts.nordhavn-outfitters.dk",
                    "drift.record-changed",
                    Severity::Info
                ),
                (
                    "default._bimi.fjellbakeri.no",
                    "drift.bimi-removed",
                    Severity::Warn
                ),
                (
                    "mta-sts.fjellbakeri.no",
                    "drift.mta-sts-id-unchanged",
                    Severity::Fail
                ),
                (
                    "mta-sts.nordhavn-outfitters.dk",
                    "drift.mta-sts-policy-changed",
                    Severity::Info
                ),
            ]
        );
        assert!(drift[2]
            .finding
            .message
            .contains("its record's id did not (20261101)"));
    }

    #[test]
    fn a_fetched_policy_is_kept_as_its_digest_and_an_unfetched_one_not_at_all() {
        let domain = crate::domain::DomainName::parse("fjellbakeri.no").unwrap();
        let mut records = crate::fetch::DomainRecords::new(domain.clone());
        let response = |status: u16| crate::web::WebFetch {
            url: "https://mta-sts.fjellbakeri.no/.well-known/mta-sts.txt".into(),
            result: Ok(crate::web::WebResponse {
                status,
                content_type: Some("text/plain".into()),
                location: None,
                body: b"version: STSv1\nmode: enforce\n".to_vec(),
                over_cap: false,
            }),
        };
        records.mta_sts_policy = Some(response(200));
        let mut seen = Observed::default();
        seen.add(&records);
        let Some(Seen::Records(digest)) = seen.0.get("mta-sts.fjellbakeri.no MTA-STS-POLICY")
        else {
            panic!("{seen:?}");
        };
        assert_eq!(digest.len(), 1);
        assert!(digest[0].starts_with("sha256:") && digest[0].len() == 7 + 64);
        records.mta_sts_policy = Some(response(404));
        let mut seen = Observed::default();
        seen.add(&records);
        assert!(seen.0.is_empty(), "{seen:?}");
    }

    #[test]
    fn an_include_dropped_a_key_removed_and_a_policy_weakened_are_each_reported() {
        let before = observed(&[
            (
                "northwind.example TXT",
                txt(&["v=spf1 include:_spf.google.com include:servers.mcsv.net include:sendgrid.net -all", "google-site-verification=abc"]),
            ),
            ("_dmarc.northwind.example TXT", txt(&["v=DMARC1; p=reject; rua=mailto:dmarc@northwind.example"])),
            ("s1._domainkey.northwind.example CNAME", Seen::Records(vec!["s1.domainkey.u1234.wl.sendgrid.net.".into()])),
            ("k1._domainkey.northwind.example TXT", txt(&["v=DKIM1; k=rsa; p=MIIBold"])),
            ("northwind.example MX", Seen::Records(vec!["10 mx1.northwind.example.".into()])),
        ]);
        let after = observed(&[
            (
                "northwind.example TXT",
                txt(&[
                    "v=spf1 include:_spf.google.com include:sendgrid.net ~all",
                    "google-site-verification=abc",
                ]),
            ),
            ("_dmarc.northwind.example TXT", txt(&["v=DMARC1; p=none"])),
            ("s1._domainkey.northwind.example CNAME", Seen::Absent),
            (
                "k1._domainkey.northwind.example TXT",
                txt(&["v=DKIM1; k=rsa; p=MIIBnew"]),
            ),
            (
                "northwind.example MX",
                Seen::Records(vec!["10 mx1.northwind.example.".into()]),
            ),
        ]);
        let got = compare(&before, &after, "2026-11-02");
        assert_eq!(
            ids(&got),
            [
                (
                    "_dmarc.northwind.example",
                    "drift.dmarc-weakened",
                    Severity::Warn
                ),
                (
                    "_dmarc.northwind.example",
                    "drift.dmarc-reports-dropped",
                    Severity::Warn
                ),
                (
                    "k1._domainkey.northwind.example",
                    "drift.dkim-key-changed",
                    Severity::Info
                ),
                (
                    "northwind.example",
                    "drift.spf-include-removed",
                    Severity::Warn
                ),
                (
                    "northwind.example",
                    "drift.spf-all-weakened",
                    Severity::Warn
                ),
                (
                    "s1._domainkey.northwind.example",
                    "drift.dkim-removed",
                    Severity::Warn
                ),
            ]
        );
        let weakened = &got[0].finding;
        assert!(
            weakened.message.contains("p=reject → p=none"),
            "{}",
            weakened.message
        );
        assert!(got[3]
            .finding
            .message
            .contains("dropped include:servers.mcsv.net since 2026-11-02"));
        assert!(got[3]
            .finding
            .evidence
            .starts_with("before: \"v=spf1 include:_spf.google.com include:servers.mcsv.net"));
    }

    #[test]
    fn a_failed_lookup_or_a_name_not_read_again_is_no_change() {
        let before = observed(&[
            ("_dmarc.a.example TXT", txt(&["v=DMARC1; p=reject"])),
            ("s1._domainkey.a.example TXT", txt(&["v=DKIM1; p=MIIB"])),
        ]);
        let after = observed(&[("_dmarc.a.example TXT", Seen::Failed)]);
        assert!(compare(&before, &after, "yesterday").is_empty());
        assert!(compare(&after, &before, "yesterday").is_empty());
        assert!(compare(&before, &before, "yesterday").is_empty());
    }

    #[test]
    fn tightening_and_an_inherited_subdomain_policy_are_told_apart() {
        let before = observed(&[("_dmarc.a.example TXT", txt(&["v=DMARC1; p=reject"]))]);
        // sp was inherited (reject); now explicitly none: weaker for subdomains only.
        let after = observed(&[(
            "_dmarc.a.example TXT",
            txt(&["v=DMARC1; p=reject; sp=none"]),
        )]);
        let got = compare(&before, &after, "then");
        assert_eq!(
            ids(&got),
            [("_dmarc.a.example", "drift.dmarc-weakened", Severity::Warn)]
        );
        assert!(got[0].finding.message.contains("sp=reject → sp=none"));
        let got = compare(&after, &before, "then");
        assert_eq!(
            ids(&got),
            [(
                "_dmarc.a.example",
                "drift.dmarc-strengthened",
                Severity::Info
            )]
        );
        let pct = observed(&[("_dmarc.a.example TXT", txt(&["v=DMARC1; p=reject; pct=25"]))]);
        assert!(compare(&before, &pct, "then")[0]
            .finding
            .message
            .contains("pct=100 → pct=25"));
    }

    #[test]
    fn a_revoked_key_and_split_txt_strings_are_read_as_receivers_read_them() {
        let before = observed(&[
            ("k1._domainkey.a.example TXT", txt(&["v=DKIM1; p=MIIB"])),
            (
                "a.example TXT",
                Seen::Records(vec![
                    "\"v=spf1 include:a.example \" \"include:b.example -all\"".into(),
                ]),
            ),
        ]);
        let after = observed(&[
            ("k1._domainkey.a.example TXT", txt(&["v=DKIM1; p="])),
            ("a.example TXT", txt(&["v=spf1 include:a.example -all"])),
        ]);
        let got = compare(&before, &after, "then");
        assert_eq!(
            ids(&got),
            [
                ("a.example", "drift.spf-include-removed", Severity::Warn),
                (
                    "k1._domainkey.a.example",
                    "drift.dkim-revoked",
                    Severity::Warn
                ),
            ]
        );
        assert!(got[0].finding.message.contains("include:b.example"));
    }
}
