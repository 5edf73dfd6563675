//! MX checks: can the sending domain receive bounces and replies?
//!
//! A sending domain without working MX loses bounces (so lists are never cleaned) and replies,
//! and some receivers reject mail from domains that cannot receive. A null MX (RFC 7505) says
//! the domain sends no mail at all, which contradicts using it as a sender.
//!
//! Ids: `mx.missing`, `mx.null`, `mx.ip-literal`, `mx.cname`, `mx.target-unresolvable`,
//! `mx.ok`, `mx.inconclusive`.

use crate::dns::{Outcome, QueryType, RecordData};
use crate::domain::DomainName;
use crate::fetch::DomainRecords;
use crate::finding::{Finding, RecordChange, Severity};
use std::net::IpAddr;

pub fn analyse(records: &DomainRecords) -> Vec<Finding> {
    let domain = &records.domain;
    let Some(mx) = records.get(domain, QueryType::Mx) else {
        return vec![];
    };
    match &mx.outcome {
        Outcome::Failed(e) => {
            return vec![Finding::new(
                "mx.inconclusive",
                Severity::Inconclusive,
                format!("The MX records of {domain} could not be fetched ({e})."),
            )
            .evidence(mx.describe())]
        }
        Outcome::NxDomain | Outcome::CnameLoop => return vec![],
        Outcome::NoData => {
            return vec![Finding::new(
                "mx.missing",
                Severity::Warn,
                format!(
                    "{domain} has no MX record: bounces and replies to it have nowhere to go, and \
                     some receivers distrust senders that cannot receive."
                ),
            )
            .evidence(mx.describe())
            .fix(format!("Publish MX records for {domain} pointing at a server that accepts mail for it (your mailbox provider shows them)."))]
        }
        Outcome::Records(_) => {}
    }
    let mut entries: Vec<(u16, String)> = mx
        .records()
        .iter()
        .filter_map(|r| match &r.data {
            RecordData::Mx {
                preference,
                exchange,
            } => Some((*preference, exchange.clone())),
            _ => None,
        })
        .collect();
    entries.sort();
    if entries.iter().any(|(_, host)| host.is_empty()) {
        return vec![Finding::new(
            "mx.null",
            Severity::Fail,
            format!(
                "{domain} publishes a null MX (RFC 7505): it declares it accepts no mail, and \
                 receivers may reject mail sent from it."
            ),
        )
        .evidence(mx.describe())
        .fix(format!("Remove the `MX 0 .` record of {domain} and publish real MX records, or send from a domain that receives mail."))
        .records(vec![RecordChange::remove(domain, "MX", "0 .")])];
    }
    let mut findings = Vec::new();
    let mut working = Vec::new();
    let mut failures = Vec::new();
    for (_, host) in &entries {
        if let Some(literal) = ip_literal(host) {
            findings.push(
                Finding::new(
                    "mx.ip-literal",
                    Severity::Fail,
                    format!("The MX target `{host}` is an IP address; MX records must name a host, so senders cannot use it."),
                )
                .evidence(mx.describe())
                .fix(format!("Publish an A record for a host name (e.g. mx1.{domain} A {literal}) and point the MX at that name.")),
            );
            continue;
        }
        let Ok(name) = DomainName::parse(host) else {
            findings.push(
                Finding::new(
                    "mx.target-unresolvable",
                    Severity::Fail,
                    format!("The MX target `{host}` is not a valid host name."),
                )
                .evidence(mx.describe())
                .fix("Point the MX at a valid host name."),
            );
            continue;
        };
        let a = records.get(&name, QueryType::A);
        let aaaa = records.get(&name, QueryType::Aaaa);
        let evidence = [a, aaaa]
            .iter()
            .flatten()
            .map(|x| x.describe())
            .collect::<Vec<_>>()
            .join("\n");
        let has_address = [a, aaaa].iter().flatten().any(|x| !x.records().is_empty());
        if [a, aaaa]
            .iter()
            .flatten()
            .any(|x| !x.cname_chain.is_empty())
        {
            findings.push(
                Finding::new(
                    "mx.cname",
                    Severity::Warn,
                    format!("The MX target {host} is a CNAME; RFC 5321 §5.1 forbids it and some senders will not follow it."),
                )
                .evidence(evidence.clone())
                .fix(format!("Point the MX directly at the canonical host name instead of {host}.")),
            );
        }
        if has_address {
            working.push(host.clone());
        } else if let Some(e) = [a, aaaa].iter().flatten().find_map(|x| x.failed()) {
            failures.push(format!("{host}: {e}"));
        } else if [a, aaaa].iter().flatten().all(|x| x.is_void()) && a.is_some() {
            findings.push(
                Finding::new(
                    "mx.target-unresolvable",
                    Severity::Fail,
                    format!("The MX target {host} has no A or AAAA record: mail to {domain} through it cannot be delivered."),
                )
                .evidence(evidence)
                .fix(format!("Publish an address record for {host}, or remove that MX.")),
            );
        }
    }
    if !failures.is_empty() {
        findings.push(
            Finding::new(
                "mx.inconclusive",
                Severity::Inconclusive,
                format!(
                    "Addresses of MX hosts could not be fetched: {}",
                    failures.join("; ")
                ),
            )
            .evidence(mx.describe()),
        );
    }
    if !findings
        .iter()
        .any(|f| f.severity >= Severity::Inconclusive)
    {
        findings.push(
            Finding::new(
                "mx.ok",
                Severity::Pass,
                format!("{domain} receives mail at {}.", working.join(", ")),
            )
            .evidence(mx.describe()),
        );
    }
    findings
}

/// The address an MX target spells, if it is one: `192.0.2.1`, `[192.0.2.1]`, or an address
/// with the zone's origin appended by a missing trailing dot (`192.0.2.1.example.com`).
fn ip_literal(host: &str) -> Option<String> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if bare.parse::<IpAddr>().is_ok() {
        return Some(bare.to_string());
    }
    let first_four: Vec<&str> = host.splitn(5, '.').take(4).collect();
    let candidate = first_four.join(".");
    (first_four.len() == 4 && candidate.parse::<std::net::Ipv4Addr>().is_ok()).then_some(candidate)
}
