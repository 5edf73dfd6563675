//! DMARC checks (RFC 9989): discovery by tree walk, the policy, and its report destinations.
//!
//! The policy that applies to a domain is the first DMARC record found walking from the domain
//! towards the root (RFC 9989 §4.10, which replaces RFC 7489's public-suffix lookup). A record
//! found at a parent applies its `sp` to existing subdomains. Reports are how a migration is
//! watched, so missing, unauthorised or undeliverable report addresses are reported too.
//!
//! Ids: `dmarc.missing`, `dmarc.multiple`, `dmarc.syntax`, `dmarc.policy-none`, `dmarc.testing`,
//! `dmarc.rua-missing`, `dmarc.rua-unauthorized`, `dmarc.rua-undeliverable`, `dmarc.inherited`,
//! `dmarc.ignored-tags`, `dmarc.subdomains-unenforced`, `dmarc.nonexistent-unenforced`,
//! `dmarc.pct-partial`, `dmarc.ruf-unauthorized`, `dmarc.ruf-undeliverable`, `dmarc.ok`,
//! `dmarc.inconclusive`.

use crate::dns::{Answer, Outcome, QueryType, RecordData};
use crate::domain::DomainName;
use crate::fetch::{is_external_destination, report_authorization_name, DomainRecords};
use crate::finding::{Finding, RecordChange, Severity};
use crate::records::dmarc::{is_dmarc_candidate, DmarcRecord, Policy};

pub fn analyse(records: &DomainRecords) -> Vec<Finding> {
    let domain = &records.domain;
    let mut findings = Vec::new();
    let mut walk_evidence = Vec::new();
    let mut failures = Vec::new();
    let mut found: Option<(DomainName, &Answer, String)> = None;
    let mut answered_below = false;
    for name in &records.dmarc_walk {
        let Some(answer) = records.get(name, QueryType::Txt) else {
            continue;
        };
        walk_evidence.push(answer.describe());
        if let Some(e) = answer.failed() {
            // Offline, names above the zones given are unknown by design: above a name the
            // zones answered (a company's zone under `co.uk`), they count as no record, so a
            // run over the company's own zones needs no stub for the public suffix.
            let offline_above_answer =
                answered_below && matches!(e, crate::dns::LookupError::Offline);
            if !offline_above_answer {
                failures.push((name.clone(), e.to_string()));
            }
            continue;
        }
        answered_below = true;
        if answer.outcome == Outcome::CnameLoop {
            // Reported once as `dns.cname-loop`.
            return findings;
        }
        let candidates: Vec<String> = answer
            .txt_strings()
            .into_iter()
            .filter(|t| is_dmarc_candidate(t))
            .collect();
        match candidates.len() {
            0 => continue,
            1 => {
                let policy_domain = name.parent().unwrap_or_else(|| name.clone());
                found = Some((policy_domain, answer, candidates[0].clone()));
                break;
            }
            n => {
                findings.push(
                    Finding::new(
                        "dmarc.multiple",
                        Severity::Fail,
                        format!(
                            "{name} publishes {n} DMARC records; receivers discard them all \
                             (RFC 9989 §4.10) and treat {domain} as having no policy."
                        ),
                    )
                    .evidence(answer.describe())
                    .fix(format!(
                        "Keep exactly one `v=DMARC1; …` TXT record at {name}."
                    )),
                );
                return findings;
            }
        }
    }
    let Some((policy_domain, answer, text)) = found else {
        // A failure above the TLD leaves the verdict open; one at the TLD does not change what
        // the domain owner must publish.
        if let Some((name, e)) = failures.iter().find(|(n, _)| n.label_count() > 2) {
            findings.push(
                Finding::new(
                    "dmarc.inconclusive",
                    Severity::Inconclusive,
                    format!("The DMARC lookup at {name} could not be answered ({e}), so the policy of {domain} is unknown."),
                )
                .evidence(walk_evidence.join("\n")),
            );
            return findings;
        }
        findings.push(
            Finding::new(
                "dmarc.missing",
                Severity::Fail,
                format!(
                    "No DMARC record applies to {domain} (none at _dmarc.{domain} or any parent); \
                     Gmail and Yahoo refuse bulk mail from domains without one."
                ),
            )
            .evidence(walk_evidence.join("\n"))
            .fix(format!(
                "Publish a TXT record at _dmarc.{domain}: `v=DMARC1; p=none; rua=mailto:dmarc-reports@{domain}` \
                 (with a mailbox that receives the reports), and raise p= to quarantine or reject once reports show all your mail passes."
            ))
            .records(vec![RecordChange::add(
                domain.child("_dmarc"),
                "TXT",
                format!("v=DMARC1; p=none; rua=mailto:dmarc-reports@{domain}"),
            )]),
        );
        return findings;
    };
    let dmarc_name = policy_domain.child("_dmarc");
    let record = DmarcRecord::parse(&text);
    let evidence = answer.describe();
    if !record.errors.is_empty() {
        let lines: Vec<String> = record
            .errors
            .iter()
            .map(|e| format!("`{}`: {}", e.raw, e.reason))
            .collect();
        findings.push(
            Finding::new(
                "dmarc.syntax",
                Severity::Fail,
                format!("The DMARC record at {dmarc_name} is malformed: {}", lines.join("; ")),
            )
            .evidence(evidence.clone())
            .fix("Correct the tags named above; a minimal valid record is `v=DMARC1; p=none; rua=mailto:dmarc@example.com`."),
        );
    }
    if !record.ignored.is_empty() {
        findings.push(
            Finding::new(
                "dmarc.ignored-tags",
                Severity::Info,
                format!("Tags receivers ignore: {}", record.ignored.join("; ")),
            )
            .evidence(evidence.clone()),
        );
    }
    let inherited = policy_domain != *domain;
    let (p, sp, _) = record.effective();
    let applied = if inherited { sp } else { p };
    // The tag that decides this domain's policy, as the fix must edit it.
    let tag = if inherited && record.sp.is_some() {
        "sp"
    } else {
        "p"
    };
    if inherited {
        let which = if record.sp.is_some() {
            format!("its sp={sp}")
        } else {
            format!("its p={p} (no sp=)")
        };
        let psd = if record.psd == Some('y') {
            " It is a public-suffix (psd=y) policy."
        } else {
            ""
        };
        findings.push(
            Finding::new(
                "dmarc.inherited",
                Severity::Info,
                format!(
                    "{domain} has no DMARC record of its own; the policy comes from {dmarc_name}, \
                     and {which} applies to {domain} (np= would apply to names that do not exist).{psd}"
                ),
            )
            .evidence(walk_evidence.join("\n")),
        );
    }
    if record.errors.is_empty() {
        let replace = |name: &str, value: Option<&str>| {
            vec![RecordChange::replace(
                &dmarc_name,
                "TXT",
                record.text.clone(),
                record.with_tag(name, value),
            )]
        };
        if applied == Policy::None {
            let finding = if tag == "sp" {
                // An enforcing p= with sp=none: the parent is protected, this subdomain is not.
                let target = if p == Policy::None {
                    Policy::Quarantine
                } else {
                    p
                };
                let exact = record.with_tag("sp", Some(target.as_str()));
                Finding::new(
                    "dmarc.policy-none",
                    Severity::Warn,
                    format!(
                        "{domain} is governed by `sp=none` in the record at {dmarc_name}{}: receivers do nothing with mail that fails DMARC for {domain}, so spoofing of it is not stopped.",
                        if p == Policy::None {
                            String::new()
                        } else {
                            format!(" (its p={p} applies to {policy_domain} itself only)")
                        }
                    ),
                )
                .evidence(evidence.clone())
                .fix(format!(
                    "Once aggregate reports show all legitimate mail from {domain} passes, change `sp=none` to `sp={target}` at {dmarc_name}: `{exact}` (or give {domain} a DMARC record of its own at _dmarc.{domain})."
                ))
                .records(replace("sp", Some(target.as_str())))
            } else {
                let why = match (record.p.is_none(), inherited) {
                    (true, _) => format!("The record at {dmarc_name} has no p= tag, which RFC 9989 reads as p=none"),
                    (false, true) => format!("{domain} is governed by p=none in the record at {dmarc_name} (which has no sp=)"),
                    (false, false) => "The policy is p=none".to_string(),
                };
                let exact = record.with_tag("p", Some("quarantine"));
                Finding::new(
                    "dmarc.policy-none",
                    Severity::Warn,
                    format!(
                        "{why}: it meets the Gmail/Yahoo bulk-sender minimum but asks receivers to \
                         do nothing with mail that fails, so spoofing of {domain} is not stopped."
                    ),
                )
                .evidence(evidence.clone())
                .fix(format!(
                    "Once aggregate reports show all legitimate mail passes, move to p=quarantine (`{exact}` at {dmarc_name}), then p=reject."
                ))
                .records(replace("p", Some("quarantine")))
            };
            findings.push(finding);
        }
        if !inherited && p != Policy::None {
            // The record's own domain is enforced; say what it leaves open below it.
            if record.sp == Some(Policy::None) {
                findings.push(
                    Finding::new(
                        "dmarc.subdomains-unenforced",
                        Severity::Warn,
                        format!(
                            "p={p} protects {domain} itself, but `sp=none` leaves its subdomains unenforced: mail forged from any subdomain without a DMARC record of its own is not stopped."
                        ),
                    )
                    .evidence(evidence.clone())
                    .fix(format!(
                        "Remove `sp=none` so p={p} covers subdomains too (`{}`), once every subdomain that sends passes DMARC; or give each sending subdomain its own record.",
                        record.with_tag("sp", None)
                    ))
                    .records(replace("sp", None)),
                );
            }
            if record.np == Some(Policy::None) {
                findings.push(
                    Finding::new(
                        "dmarc.nonexistent-unenforced",
                        Severity::Warn,
                        format!(
                            "`np=none` leaves names that do not exist under {domain} unenforced: anyone can send as invented subdomains (billing.{domain}), which no legitimate mail uses."
                        ),
                    )
                    .evidence(evidence.clone())
                    .fix(format!(
                        "Set `np=reject`: `{}`.",
                        record.with_tag("np", Some("reject"))
                    ))
                    .records(replace("np", Some("reject"))),
                );
            }
        }
        if record.testing && applied != Policy::None {
            findings.push(
                Finding::new(
                    "dmarc.testing",
                    Severity::Warn,
                    format!(
                        "t=y (testing) at {dmarc_name}: receivers following RFC 9989 apply one step less than {tag}={applied} \
                         (reject acts as quarantine, quarantine as none), while those still on RFC 7489 do not know t= and apply {applied} in full, so enforcement is unpredictable."
                    ),
                )
                .evidence(evidence.clone())
                .fix(format!(
                    "Remove `t=y` when the policy should take full effect: `{}`.",
                    record.with_tag("t", None)
                ))
                .records(replace("t", None)),
            );
        }
        if let Some(pct) = record.pct.filter(|n| *n < 100) {
            if applied != Policy::None {
                findings.push(
                    Finding::new(
                        "dmarc.pct-partial",
                        Severity::Warn,
                        format!(
                            "pct={pct} at {dmarc_name}: receivers still following RFC 7489 apply {tag}={applied} to only {pct}% of the mail that fails DMARC (the rest gets one step less), while RFC 9989 receivers ignore pct and apply {applied} to all of it, so enforcement is partial or unpredictable depending on the receiver."
                        ),
                    )
                    .evidence(evidence.clone())
                    .fix(format!(
                        "Remove `pct={pct}` (RFC 9989 dropped it; use t=y for a testing step): `{}`.",
                        record.with_tag("pct", None)
                    ))
                    .records(replace("pct", None)),
                );
            }
        }
        findings.extend(report_findings(records, &policy_domain, &record, &evidence));
    }
    if !findings.iter().any(|f| f.severity >= Severity::Fail) {
        let mode = |strict: bool| if strict { "strict" } else { "relaxed" };
        findings.push(
            Finding::new(
                "dmarc.ok",
                Severity::Pass,
                format!(
                    "DMARC policy for {domain}: {applied}{} (from {dmarc_name}; DKIM alignment {}, SPF alignment {}).",
                    if record.testing { ", testing (t=y)" } else { "" },
                    mode(record.adkim_strict),
                    mode(record.aspf_strict)
                ),
            )
            .evidence(evidence),
        );
    }
    findings
}

fn report_findings(
    records: &DomainRecords,
    policy_domain: &DomainName,
    record: &DmarcRecord,
    evidence: &str,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    if record.rua.is_empty() {
        findings.push(
            Finding::new(
                "dmarc.rua-missing",
                Severity::Warn,
                "The DMARC record has no rua= address, so no aggregate reports are sent: the \
                 migration cannot be monitored (which servers send as you, and whether they pass).",
            )
            .evidence(evidence.to_string())
            .fix(format!("Add `rua=mailto:dmarc-reports@{policy_domain}` (or your report service's address): `{}`.", record.with_tag("rua", Some(&format!("mailto:dmarc-reports@{policy_domain}")))))
            .records(vec![RecordChange::replace(
                policy_domain.child("_dmarc"),
                "TXT",
                record.text.clone(),
                record.with_tag("rua", Some(&format!("mailto:dmarc-reports@{policy_domain}"))),
            )]),
        );
    }
    let mut checked: Vec<&DomainName> = Vec::new();
    for uri in record.rua.iter().chain(&record.ruf) {
        let dest = &uri.domain;
        if checked.contains(&dest) {
            continue;
        }
        checked.push(dest);
        // A destination only failure reports go to has ids of its own: losing those reports
        // does not blind the migration the way losing aggregate ones does.
        let kind = if record.rua.iter().any(|u| &u.domain == dest) {
            "rua"
        } else {
            "ruf"
        };
        let reports = if kind == "rua" {
            "Reports"
        } else {
            "Failure reports"
        };
        if is_external_destination(policy_domain, dest) {
            let auth_name = report_authorization_name(policy_domain, dest);
            match records.get(&auth_name, QueryType::Txt) {
                Some(a) if a.failed().is_some() => findings.push(
                    Finding::new(
                        "dmarc.inconclusive",
                        Severity::Inconclusive,
                        format!("The report authorisation at {auth_name} could not be checked."),
                    )
                    .evidence(a.describe()),
                ),
                Some(a) => {
                    let authorised = a.txt_strings().iter().any(|t| is_dmarc_candidate(t));
                    if !authorised {
                        findings.push(
                            Finding::new(
                                &format!("dmarc.{kind}-unauthorized"),
                                Severity::Warn,
                                format!(
                                    "{reports} go to {} in another domain, which has not authorised them: \
                                     receivers will not send reports there (RFC 9990 external-destination verification).",
                                    uri.address
                                ),
                            )
                            .evidence(a.describe())
                            .fix(format!(
                                "Ask the owner of {dest} to publish TXT `v=DMARC1` at {auth_name} \
                                 (report services do this when you register the domain)."
                            ))
                            .records(vec![RecordChange::add(&auth_name, "TXT", "v=DMARC1")]),
                        );
                    }
                }
                None => {}
            }
        }
        if let Some(reason) = undeliverable(records, dest) {
            findings.push(
                Finding::new(
                    &format!("dmarc.{kind}-undeliverable"),
                    Severity::Warn,
                    format!("{reports} to {} cannot be delivered: {reason}.", uri.address),
                )
                .evidence(
                    [QueryType::Mx, QueryType::A, QueryType::Aaaa]
                        .iter()
                        .filter_map(|t| records.get(dest, *t).map(Answer::describe))
                        .collect::<Vec<_>>()
                        .join("\n"),
                )
                .fix(format!("Use a report address whose domain receives mail, or publish MX records for {dest}.")),
            );
        }
    }
    findings
}

/// Why mail to `dest` cannot be delivered, if it cannot (null MX, or no MX and no address).
fn undeliverable(records: &DomainRecords, dest: &DomainName) -> Option<String> {
    let mx = records.get(dest, QueryType::Mx)?;
    if mx.failed().is_some() {
        return None;
    }
    let null_mx = mx.records().len() == 1
        && matches!(&mx.records()[0].data, RecordData::Mx { exchange, .. } if exchange.is_empty());
    if null_mx {
        return Some(format!("{dest} publishes a null MX (it accepts no mail)"));
    }
    if mx.outcome == Outcome::NxDomain {
        return Some(format!("{dest} does not exist"));
    }
    if mx.is_void() {
        let a = records.get(dest, QueryType::A)?;
        let aaaa = records.get(dest, QueryType::Aaaa)?;
        if a.is_void() && aaaa.is_void() {
            return Some(format!("{dest} has no MX and no address records"));
        }
    }
    None
}

/// The organisational domain of `domain` (RFC 9989 §4.10.2), from a full tree walk in
/// `records` (`fetch::fetch_dmarc_walk_all`): the first record with `psd=n`; one label below the
/// first record with `psd=y` (other than the domain's own); otherwise the shortest name with a
/// DMARC record; the domain itself when there is none. `None` when a lookup of the walk failed
/// that could change the answer.
///
/// As in policy discovery, a failed lookup at the top-level domain (`_dmarc.com`) counts as no
/// record, and so does one outside the `--zone` files with `--offline` once a record was found
/// below it: a run over a company's zones then needs no stub zone for `com` or `co.uk`, and
/// `check` and `gate` decide alike offline.
pub fn organizational_domain(records: &DomainRecords, domain: &DomainName) -> Option<DomainName> {
    let mut found: Vec<(DomainName, Option<char>)> = Vec::new();
    for name in crate::fetch::dmarc_walk_names(domain) {
        let answer = records.get(&name, QueryType::Txt)?;
        if let Some(e) = answer.failed() {
            let at_tld = name.label_count() <= 2;
            let offline_above_record =
                !found.is_empty() && matches!(e, crate::dns::LookupError::Offline);
            if at_tld || offline_above_record {
                continue;
            }
            return None;
        }
        let candidates: Vec<String> = answer
            .txt_strings()
            .into_iter()
            .filter(|t| is_dmarc_candidate(t))
            .collect();
        if let [only] = candidates.as_slice() {
            let record = DmarcRecord::parse(only);
            if record.errors.is_empty() {
                let owner = name.parent().unwrap_or_else(|| name.clone());
                found.push((owner, record.psd));
            }
        }
    }
    for (name, psd) in &found {
        match psd {
            Some('n') => return Some(name.clone()),
            Some('y') if name != domain => {
                let depth = name.label_count() + 1;
                let labels: Vec<&str> = domain.as_str().split('.').collect();
                let keep = labels.len().saturating_sub(depth);
                return Some(DomainName::from_ascii_unchecked(labels[keep..].join(".")));
            }
            _ => {}
        }
    }
    Some(
        found
            .last()
            .map_or_else(|| domain.clone(), |(name, _)| name.clone()),
    )
}

/// The DMARC record that applies to `domain`: the first single record of the tree walk, with
/// the name it was found at (its policy domain).
pub fn policy_record(
    records: &DomainRecords,
    domain: &DomainName,
) -> Option<(DomainName, DmarcRecord)> {
    for name in crate::fetch::dmarc_walk_names(domain) {
        let Some(answer) = records.get(&name, QueryType::Txt) else {
            continue;
        };
        let candidates: Vec<String> = answer
            .txt_strings()
            .into_iter()
            .filter(|t| is_dmarc_candidate(t))
            .collect();
        match candidates.as_slice() {
            [] => continue,
            [only] => {
                return Some((
                    name.parent().unwrap_or_else(|| name.clone()),
                    DmarcRecord::parse(only),
                ))
            }
            _ => return None,
        }
    }
    None
}

#[cfg(test)]
mod org_tests {
    use super::*;
    use crate::dns::{Answer, Outcome, Record, RecordData, Source};

    fn txt(name: &str, text: Option<&str>) -> Answer {
        Answer {
            name: DomainName::from_ascii_unchecked(name),
            qtype: QueryType::Txt,
            outcome: match text {
                Some(t) => Outcome::Records(
                    vec![Record {
                        ttl: 300,
                        data: RecordData::Txt(vec![t.as_bytes().to_vec()]),
                    }]
                    .into(),
                ),
                None => Outcome::NxDomain,
            },
            cname_chain: vec![],
            cname_conflict: false,
            source: Source::Network,
        }
    }

    fn org(domain: &str, records: &[(&str, Option<&str>)]) -> Option<String> {
        let d = DomainName::parse(domain).unwrap();
        let answers = crate::fetch::dmarc_walk_names(&d)
            .iter()
            .map(|n| {
                let text = records
                    .iter()
                    .find(|(r, _)| *r == n.as_str())
                    .and_then(|(_, t)| *t);
                txt(n.as_str(), text)
            })
            .collect();
        let recs = DomainRecords::with_answers(d.clone(), answers);
        organizational_domain(&recs, &d).map(|o| o.to_string())
    }

    #[test]
    fn rfc9989_organizational_domain() {
        // The shortest name with a record wins when no psd= tag decides.
        assert_eq!(
            org(
                "shop.example.com",
                &[
                    ("_dmarc.shop.example.com", Some("v=DMARC1; p=reject")),
                    ("_dmarc.example.com", Some("v=DMARC1; p=none"))
                ]
            )
            .as_deref(),
            Some("example.com")
        );
        // psd=n marks the organisational domain.
        assert_eq!(
            org(
                "a.b.example.com",
                &[
                    ("_dmarc.b.example.com", Some("v=DMARC1; p=reject; psd=n")),
                    ("_dmarc.example.com", Some("v=DMARC1; p=none"))
                ]
            )
            .as_deref(),
            Some("b.example.com")
        );
        // psd=y at a public suffix: one label below it.
        assert_eq!(
            org(
                "mail.agency.gov.example",
                &[("_dmarc.gov.example", Some("v=DMARC1; p=reject; psd=y"))]
            )
            .as_deref(),
            Some("agency.gov.example")
        );
        // No record at all: the domain itself.
        assert_eq!(org("x.example.net", &[]).as_deref(), Some("x.example.net"));
    }
}
