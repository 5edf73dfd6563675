//! DMARC checks (RFC 9989): discovery by tree walk, the policy, and its report destinations.
//!
//! The policy that applies to a domain is the first DMARC record found walking from the domain
//! towards the root (RFC 9989 §4.10, which replaces RFC 7489's public-suffix lookup). A record
//! found at a parent applies its `sp` to existing subdomains. Reports are how a migration is
//! watched, so missing, unauthorised or undeliverable report addresses are reported too.
//!
//! Ids: `dmarc.missing`, `dmarc.multiple`, `dmarc.syntax`, `dmarc.policy-none`, `dmarc.testing`,
//! `dmarc.rua-missing`, `dmarc.rua-unauthorized`, `dmarc.rua-undeliverable`, `dmarc.inherited`,
//! `dmarc.ignored-tags`, `dmarc.ok`, `dmarc.inconclusive`.

use crate::dns::{Answer, Outcome, QueryType, RecordData};
use crate::domain::DomainName;
use crate::fetch::{is_external_destination, report_authorization_name, DomainRecords};
use crate::finding::{Finding, Severity};
use crate::records::dmarc::{is_dmarc_candidate, DmarcRecord, Policy};

pub fn analyse(records: &DomainRecords) -> Vec<Finding> {
    let domain = &records.domain;
    let mut findings = Vec::new();
    let mut walk_evidence = Vec::new();
    let mut failures = Vec::new();
    let mut found: Option<(DomainName, &Answer, String)> = None;
    for name in &records.dmarc_walk {
        let Some(answer) = records.get(name, QueryType::Txt) else {
            continue;
        };
        walk_evidence.push(answer.describe());
        if let Some(e) = answer.failed() {
            failures.push((name.clone(), e.to_string()));
            continue;
        }
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
                 and raise p= to quarantine or reject once reports show all your mail passes."
            )),
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
    let (p, sp, _np) = record.effective();
    let applied = if inherited { sp } else { p };
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
        if applied == Policy::None {
            let why = if record.p.is_none() {
                "The record has no p= tag, which RFC 9989 reads as p=none"
            } else {
                "The policy is p=none"
            };
            findings.push(
                Finding::new(
                    "dmarc.policy-none",
                    Severity::Warn,
                    format!(
                        "{why}: it meets the Gmail/Yahoo bulk-sender minimum but asks receivers to \
                         do nothing with mail that fails, so spoofing of {domain} is not stopped."
                    ),
                )
                .evidence(evidence.clone())
                .fix("Once aggregate reports show all legitimate mail passes, move to p=quarantine, then p=reject."),
            );
        }
        if record.testing && applied != Policy::None {
            findings.push(
                Finding::new(
                    "dmarc.testing",
                    Severity::Warn,
                    format!(
                        "t=y (testing): receivers apply one step less than p={applied} \
                         (reject acts as quarantine, quarantine as none)."
                    ),
                )
                .evidence(evidence.clone())
                .fix("Remove `t=y` when the policy should take full effect."),
            );
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
            .fix(format!("Add `rua=mailto:dmarc-reports@{policy_domain}` (or your report service's address).")),
        );
    }
    let mut checked: Vec<&DomainName> = Vec::new();
    for uri in record.rua.iter().chain(&record.ruf) {
        let dest = &uri.domain;
        if checked.contains(&dest) {
            continue;
        }
        checked.push(dest);
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
                                "dmarc.rua-unauthorized",
                                Severity::Warn,
                                format!(
                                    "Reports go to {} in another domain, which has not authorised them: \
                                     receivers will not send reports there (RFC 9990 external-destination verification).",
                                    uri.address
                                ),
                            )
                            .evidence(a.describe())
                            .fix(format!(
                                "Ask the owner of {dest} to publish TXT `v=DMARC1` at {auth_name} \
                                 (report services do this when you register the domain)."
                            )),
                        );
                    }
                }
                None => {}
            }
        }
        if let Some(reason) = undeliverable(records, dest) {
            findings.push(
                Finding::new(
                    "dmarc.rua-undeliverable",
                    Severity::Warn,
                    format!("Reports to {} cannot be delivered: {reason}.", uri.address),
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
