//! Domain-level checks: does the domain exist, and is its DNS itself sound?
//!
//! These come before the record checks because they make them moot: a domain that does not
//! exist fails everything for one reason, and a CNAME loop fails every resolver.
//!
//! Ids: `domain.nxdomain`, `dns.cname-loop`, `dns.cname-and-data`.

use crate::dns::{Outcome, QueryType};
use crate::fetch::DomainRecords;
use crate::finding::{Finding, Severity};

/// Checks existence and DNS-level breakage. Returns the findings and whether the domain exists.
pub fn analyse(records: &DomainRecords) -> (Vec<Finding>, bool) {
    let domain = &records.domain;
    let mut findings = Vec::new();
    let nx = |t| {
        records
            .get(domain, t)
            .is_some_and(|a| a.outcome == Outcome::NxDomain && a.cname_chain.is_empty())
    };
    if nx(QueryType::Txt) || nx(QueryType::Mx) {
        findings.push(
            Finding::new(
                "domain.nxdomain",
                Severity::Fail,
                format!("{domain} does not exist in DNS (NXDOMAIN): mail from it fails every check and is rejected."),
            )
            .evidence(
                records
                    .get(domain, QueryType::Txt)
                    .map(|a| a.describe())
                    .unwrap_or_default(),
            )
            .fix(format!("Check the spelling; if {domain} is new, publish its records (SPF, DKIM, DMARC, MX) at your DNS provider.")),
        );
        return (findings, false);
    }
    let mut answers: Vec<_> = records
        .answers()
        .filter(|a| a.name.is_within(domain))
        .collect();
    answers.sort_by(|a, b| (&a.name, a.qtype).cmp(&(&b.name, b.qtype)));
    let mut reported = Vec::new();
    for answer in answers {
        if reported.contains(&answer.name) {
            continue;
        }
        if answer.outcome == Outcome::CnameLoop {
            reported.push(answer.name.clone());
            let chain: Vec<String> = std::iter::once(answer.name.to_string())
                .chain(answer.cname_chain.iter().map(|c| c.to_string()))
                .collect();
            findings.push(
                Finding::new(
                    "dns.cname-loop",
                    Severity::Fail,
                    format!(
                        "{} is a CNAME chain that loops or never ends ({}); every resolver fails on it.",
                        answer.name,
                        chain.join(" → ")
                    ),
                )
                .evidence(answer.describe())
                .fix(format!("Point {} at the final host name, or replace the CNAME with the record itself.", answer.name)),
            );
        } else if answer.cname_conflict {
            reported.push(answer.name.clone());
            findings.push(
                Finding::new(
                    "dns.cname-and-data",
                    Severity::Fail,
                    format!(
                        "{} has a CNAME and other records at once; that is invalid DNS (RFC 1034 §3.6.2) and which answer a receiver gets depends on its resolver.",
                        answer.name
                    ),
                )
                .evidence(answer.describe())
                .fix(format!("Keep either the CNAME or the other records at {}, not both.", answer.name)),
            );
        }
    }
    (findings, true)
}
