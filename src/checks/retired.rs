//! After the cutover: is the old platform gone from DNS? (`old-removed` gate requirement.)
//!
//! Once only the new platform sends, the old one's records are a liability: its SPF include
//! still authorises its servers to send as the domain and costs lookups, its DKIM selectors
//! still vouch for mail signed with its keys, and its return-path and tracking hosts still point
//! at an account that may be closed (a dangling CNAME someone else can claim). Each record still
//! published is a failure whose fix is the exact change: the SPF record without the include,
//! the selector or host record to remove. What the new platform or a kept sender still uses is
//! never asked for (a family of platforms can share an include or a host).
//!
//! Ids: `retired.include-present`, `retired.selector-present`, `retired.host-present`,
//! `retired.ok`, `retired.inconclusive`.

use crate::checks::spf;
use crate::dns::{Answer, QueryType, RecordData};
use crate::domain::DomainName;
use crate::fetch::DomainRecords;
use crate::finding::{Finding, RecordChange, Severity};
use crate::migration::Context;

pub fn analyse(records: &DomainRecords, ctx: &Context<'_>) -> Vec<Finding> {
    let Some(old) = ctx.old else {
        return Vec::new();
    };
    let domain = &ctx.domain.name;
    let name = &old.profile.name;
    let mut findings = Vec::new();
    let mut removed: Vec<String> = Vec::new();
    // SPF: the old platform's includes, unless the new platform or a kept sender uses them.
    let still_needed = |include: &str| {
        ctx.new
            .and_then(|n| n.profile.spf.as_ref())
            .is_some_and(|s| s.includes.iter().any(|i| i.eq_ignore_ascii_case(include)))
            || ctx.kept.iter().any(|k| {
                k.include_target()
                    .is_some_and(|t| t.eq_ignore_ascii_case(include))
            })
    };
    match records.get(domain, QueryType::Txt).map(|a| (a, a.failed())) {
        Some((a, Some(e))) => findings.push(
            Finding::new(
                "retired.inconclusive",
                Severity::Inconclusive,
                format!("The SPF record of {domain} could not be fetched ({e})."),
            )
            .evidence(a.describe()),
        ),
        _ => {
            if let (Some(profile_spf), Some((record, _, walk))) =
                (&old.profile.spf, spf::walk_domain(records, domain))
            {
                let present_names: Vec<&String> = profile_spf
                    .includes
                    .iter()
                    .filter(|i| spf::includes(&record, i) && !still_needed(i))
                    .collect();
                let present: Vec<String> = present_names
                    .iter()
                    .map(|i| format!("include:{i}"))
                    .collect();
                // What the removal regains of the 10-lookup budget (RFC 7208 §4.6.4).
                let regained: u32 = present_names
                    .iter()
                    .filter_map(|i| DomainName::parse(i).ok())
                    .map(|target| spf::include_cost(records, &target).lookups)
                    .sum();
                if present.is_empty() {
                    removed.push(format!("its SPF include ({} lookups now)", walk.lookups));
                } else {
                    let value = crate::fixes::spf_edit(&record.text, &[], &present);
                    findings.push(
                        Finding::new(
                            "retired.include-present",
                            Severity::Fail,
                            format!(
                                "{name} no longer sends for {domain}, but the SPF record still authorises it ({}): its servers can still send as {domain}. Removing it regains {regained} of the 10 DNS lookups SPF allows ({} now, {} after).",
                                present.join(" "),
                                walk.lookups,
                                walk.lookups.saturating_sub(regained)
                            ),
                        )
                        .evidence(format!("{domain} TXT \"{}\"", record.text))
                        .fix(format!("Publish the record without it: `{value}`."))
                        .records(vec![RecordChange::replace(domain, "TXT", record.text.clone(), value)]),
                    );
                }
            }
        }
    }
    // DKIM: the old selectors at the domain the old platform signed as.
    let signer = old.signing_domain(domain);
    let new_selectors: Vec<(DomainName, String)> = ctx
        .new
        .map(|n| {
            n.selectors()
                .into_iter()
                .map(|s| (n.signing_domain(domain).clone(), s))
                .collect()
        })
        .unwrap_or_default();
    for selector in old.selectors() {
        if new_selectors
            .iter()
            .any(|(d, s)| d == signer && s.eq_ignore_ascii_case(&selector))
        {
            continue;
        }
        let host = signer.child(&format!("{selector}._domainkey"));
        let Some(answer) = records.get(&host, QueryType::Txt) else {
            continue;
        };
        if let Some(e) = answer.failed() {
            findings.push(
                Finding::new(
                    "retired.inconclusive",
                    Severity::Inconclusive,
                    format!(
                        "The DKIM selector {selector} of {signer} could not be looked up ({e})."
                    ),
                )
                .evidence(answer.describe()),
            );
            continue;
        }
        match published(answer) {
            None => removed.push(format!("selector {selector}")),
            Some((rtype, value)) => findings.push(
                Finding::new(
                    "retired.selector-present",
                    Severity::Fail,
                    format!(
                        "{name}'s DKIM selector {selector} is still published at {signer}: mail signed with its key still passes DKIM as {signer}."
                    ),
                )
                .evidence(answer.describe())
                .fix(format!("Remove the {rtype} record of {host}."))
                .records(vec![RecordChange::remove(&host, rtype, value)]),
            ),
        }
    }
    // Return-path and tracking hosts.
    let new_hosts: Vec<&DomainName> = ctx
        .new
        .map(|n| {
            n.setup
                .return_path
                .iter()
                .chain(&n.setup.tracking)
                .collect()
        })
        .unwrap_or_default();
    for host in old.setup.return_path.iter().chain(&old.setup.tracking) {
        if new_hosts.contains(&host) {
            continue;
        }
        let Some(answer) = records.get(host, QueryType::Cname) else {
            continue;
        };
        if let Some(e) = answer.failed() {
            findings.push(
                Finding::new(
                    "retired.inconclusive",
                    Severity::Inconclusive,
                    format!("The host {host} could not be looked up ({e})."),
                )
                .evidence(answer.describe()),
            );
            continue;
        }
        let target = answer.records().iter().find_map(|r| match &r.data {
            RecordData::Cname(t) => Some(t.trim_end_matches('.').to_string()),
            _ => None,
        });
        match target {
            None => removed.push(format!("host {host}")),
            Some(target) => findings.push(
                Finding::new(
                    "retired.host-present",
                    Severity::Fail,
                    format!(
                        "{host} still points at {name} ({target}): once the account is closed, whoever claims that name controls a host under {domain}."
                    ),
                )
                .evidence(answer.describe())
                .fix(format!("Remove the CNAME of {host}."))
                .records(vec![RecordChange::remove(host, "CNAME", target)]),
            ),
        }
    }
    if findings.is_empty() {
        findings.push(Finding::new(
            "retired.ok",
            Severity::Pass,
            format!(
                "{name} is gone from {domain}{}.",
                if removed.is_empty() {
                    String::new()
                } else {
                    format!(": {}", removed.join(", "))
                }
            ),
        ));
    }
    findings
}

/// The record at a selector, as (type, value) to remove: the CNAME it starts with, or its TXT.
fn published(answer: &Answer) -> Option<(&'static str, String)> {
    if let Some(first) = answer.cname_chain.first() {
        return Some(("CNAME", first.to_string().trim_end_matches('.').to_string()));
    }
    answer.txt_strings().into_iter().next().map(|t| ("TXT", t))
}
