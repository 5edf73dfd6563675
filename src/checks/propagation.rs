//! Propagation: does every authoritative server serve the same mail records, and does the
//! resolver this run used already see them?
//!
//! A record changed at a DNS provider reaches its secondaries by zone transfer, and resolvers
//! that cached the old value keep it until its TTL runs out. Until both have happened, some
//! receivers see the old SPF include or DKIM key and some the new one, so a seed test or a
//! warmup cohort sent then proves nothing. Each server of the zone's NS set is asked directly
//! (no recursion, no cache) for the SOA and the mail records; the copies are compared with
//! each other and with the run's own resolver. A server that does not answer makes the
//! verdict inconclusive; one that answers without authority is a lame delegation.
//!
//! Ids: `propagation.ok`, `propagation.records-differ`, `propagation.serial-mismatch`,
//! `propagation.pending`, `propagation.lame`, `propagation.unreachable`,
//! `propagation.unchecked`, `propagation.inconclusive`.

use crate::dns::{Answer, DirectAnswer, LookupError, Outcome, QueryType, RecordData};
use crate::domain::DomainName;
use crate::fetch::{DomainRecords, ServerCopy};
use crate::finding::{Finding, Severity};
use std::collections::BTreeMap;

/// One answer reduced to what two servers must agree on: the records' presentation, sorted
/// (servers may order them differently), or what was there instead. TTLs are left out: a
/// secondary counts down nothing, but servers may legitimately differ in how they show them.
fn canonical(outcome: &Outcome) -> Option<String> {
    match outcome {
        Outcome::Records(records) => {
            let mut data: Vec<String> = records
                .iter()
                .map(|r| match &r.data {
                    RecordData::Cname(target) => format!("CNAME {target}"),
                    other => other.presentation(),
                })
                .collect();
            data.sort();
            Some(data.join(" | "))
        }
        Outcome::NxDomain => Some("no such name (NXDOMAIN)".into()),
        Outcome::NoData => Some("no record".into()),
        Outcome::CnameLoop | Outcome::Failed(_) => None,
    }
}

fn serial(answer: &DirectAnswer) -> Option<u32> {
    match &answer.outcome {
        Outcome::Records(records) => records.iter().find_map(|r| match r.data {
            RecordData::Soa { serial, .. } => Some(serial),
            _ => None,
        }),
        _ => None,
    }
}

fn server_name(server: &ServerCopy) -> String {
    format!("{} ({})", server.host, server.address)
}

/// The longest TTL of an answer's records.
fn ttl(outcome: &Outcome) -> Option<u32> {
    match outcome {
        Outcome::Records(records) => records.iter().map(|r| r.ttl).max(),
        _ => None,
    }
}

fn utc(seconds: i64) -> String {
    chrono::DateTime::from_timestamp(seconds, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| format!("{seconds} s after the epoch"))
}

pub fn analyse(records: &DomainRecords) -> Vec<Finding> {
    let Some(copies) = &records.propagation else {
        return vec![];
    };
    let domain = &records.domain;
    let (Some(zone), Some(ns)) = (&copies.zone, &copies.ns) else {
        let why = copies
            .ns
            .as_ref()
            .and_then(|ns| ns.failed().map(|e| (ns.describe(), e.to_string())));
        return vec![match why {
            Some((evidence, e)) => Finding::new(
                "propagation.inconclusive",
                Severity::Inconclusive,
                format!("The name servers of {domain} could not be found ({e})."),
            )
            .evidence(evidence),
            None => Finding::new(
                "propagation.inconclusive",
                Severity::Inconclusive,
                format!("No NS set was found for {domain} or a zone above it."),
            ),
        }];
    };
    if copies.from_zone_file {
        return vec![Finding::new(
            "propagation.unchecked",
            Severity::Info,
            format!(
                "The zone {zone} is answered from --zone files: its authoritative servers were not asked whether they serve the same records."
            ),
        )];
    }
    if copies.servers.is_empty() {
        return vec![Finding::new(
            "propagation.inconclusive",
            Severity::Inconclusive,
            format!("None of the name servers of {zone} has an address mailshift could find."),
        )
        .evidence(ns.describe())];
    }
    let offline = copies.servers.iter().all(|s| {
        s.answers
            .iter()
            .all(|a| matches!(a.outcome, Outcome::Failed(LookupError::Offline)))
    });
    if offline {
        return vec![Finding::new(
            "propagation.unchecked",
            Severity::Info,
            format!("--offline: the name servers of {zone} were not asked."),
        )];
    }
    let mut findings = Vec::new();
    // Servers that answered the SOA with authority are compared; the others are reported.
    let mut serving: Vec<&ServerCopy> = Vec::new();
    for server in &copies.servers {
        let Some(soa) = server.answers.first() else {
            continue;
        };
        match &soa.outcome {
            Outcome::Failed(LookupError::Refused) => findings.push(lame(zone, server, "refuses to answer for it (REFUSED)")),
            Outcome::Failed(e) => findings.push(
                Finding::new(
                    "propagation.unreachable",
                    Severity::Inconclusive,
                    format!(
                        "{} is a name server of {zone} but did not answer ({e}): whether it serves the new records is unknown.",
                        server_name(server)
                    ),
                )
                .fix("Resolvers that pick this server wait, then try another: fix or remove it from the NS set."),
            ),
            _ if !soa.authoritative || serial(soa).is_none() => findings.push(lame(
                zone,
                server,
                "answers without authority for it (a lame delegation)",
            )),
            _ => serving.push(server),
        }
    }
    if serving.is_empty() {
        return findings;
    }
    // Serials: the highest is the primary's copy; anything lower is behind.
    let serials: Vec<(u32, &ServerCopy)> = serving
        .iter()
        .filter_map(|s| s.answers.first().and_then(serial).map(|n| (n, *s)))
        .collect();
    let newest = serials.iter().map(|(n, _)| *n).max();
    let behind: Vec<String> = serials
        .iter()
        .filter(|(n, _)| Some(*n) != newest)
        .map(|(n, s)| format!("{} at {n}", server_name(s)))
        .collect();
    if let (Some(newest), false) = (newest, behind.is_empty()) {
        findings.push(
            Finding::new(
                "propagation.serial-mismatch",
                Severity::Warn,
                format!(
                    "The name servers of {zone} serve different versions of the zone: the newest is serial {newest}; behind: {}.",
                    behind.join(", ")
                ),
            )
            .fix("Secondaries catch up when the primary's NOTIFY reaches them, or at the SOA refresh interval: check that zone transfers from the primary are allowed and arrive (or the DNS provider's sync)."),
        );
    }
    // Each mail record: the same on every server?
    let mut differing = 0;
    let mut compared = 0;
    let mut pending: Vec<Finding> = Vec::new();
    for (index, (name, qtype)) in copies.questions.iter().enumerate().skip(1) {
        let mut groups: BTreeMap<String, Vec<&ServerCopy>> = BTreeMap::new();
        let mut unanswered = Vec::new();
        for server in &serving {
            match server
                .answers
                .get(index)
                .and_then(|a| canonical(&a.outcome))
            {
                Some(text) => groups.entry(text).or_default().push(server),
                None => unanswered.push(server_name(server)),
            }
        }
        if !unanswered.is_empty() {
            findings.push(Finding::new(
                "propagation.unreachable",
                Severity::Inconclusive,
                format!(
                    "{qtype} {name} could not be asked of {}: whether every server serves the same record is unknown.",
                    unanswered.join(", ")
                ),
            ));
            continue;
        }
        compared += 1;
        if groups.len() > 1 {
            differing += 1;
            let answers = describe_groups(&groups);
            findings.push(
                Finding::new(
                    "propagation.records-differ",
                    Severity::Fail,
                    format!(
                        "{qtype} {name} differs between the name servers of {zone}: {answers}. A resolver gets one or the other depending on the server it asks, so receivers judge the same mail differently."
                    ),
                )
                .fix("Wait until every server serves the newest serial (see propagation.serial-mismatch), or fix the zone transfer; run mailshift again before sending seeds or cohorts."),
            );
            continue;
        }
        // Every server agrees: does the run's resolver still hold something else?
        let Some((text, agreeing)) = groups.iter().next() else {
            continue;
        };
        let Some(seen) = records.get(name, *qtype) else {
            continue;
        };
        if matches!(seen.source, crate::dns::Source::Zone(_)) {
            continue;
        }
        let Some(resolver_text) = resolver_view(seen) else {
            continue;
        };
        if &resolver_text != text {
            let authoritative_ttl = agreeing
                .first()
                .and_then(|s| s.answers.get(index))
                .and_then(|a| ttl(&a.outcome));
            pending.push(pending_finding(
                name,
                *qtype,
                text,
                &resolver_text,
                ttl(&seen.outcome),
                authoritative_ttl,
                copies.asked_at,
            ));
        }
    }
    findings.extend(pending);
    if differing == 0 && findings.iter().all(|f| f.severity <= Severity::Info) {
        let hosts: std::collections::BTreeSet<&str> =
            serving.iter().map(|s| s.host.as_str()).collect();
        let mut message = format!(
            "{} name server{} of {zone} ({} address{}) serve serial {} and the same {compared} mail record{}, and the resolver sees them too.",
            hosts.len(),
            if hosts.len() == 1 { "" } else { "s" },
            serving.len(),
            if serving.len() == 1 { "" } else { "es" },
            newest.unwrap_or_default(),
            if compared == 1 { "" } else { "s" },
        );
        if copies.not_asked > 0 {
            message.push_str(&format!(
                " {} more address{} of the NS set {} not asked.",
                copies.not_asked,
                if copies.not_asked == 1 { "" } else { "es" },
                if copies.not_asked == 1 { "was" } else { "were" }
            ));
        }
        findings.push(Finding::new("propagation.ok", Severity::Pass, message));
    }
    findings
}

/// Two versions of an answer as what each has that the other has not, and how many records
/// they share.
fn difference(a: &str, b: &str) -> (String, String, usize) {
    let parts = |text: &str| -> Vec<String> { text.split(" | ").map(str::to_string).collect() };
    let (a, b) = (parts(a), parts(b));
    let only = |x: &[String], y: &[String]| -> String {
        let own: Vec<&str> = x
            .iter()
            .filter(|r| !y.contains(r))
            .map(String::as_str)
            .collect();
        if own.is_empty() {
            "nothing more".to_string()
        } else {
            own.join(" | ")
        }
    };
    let shared = a.iter().filter(|r| b.contains(r)).count();
    (only(&a, &b), only(&b, &a), shared)
}

fn beside(shared: usize, whose: &str) -> String {
    match shared {
        0 => String::new(),
        1 => format!(" (beside 1 record {whose})"),
        n => format!(" (beside {n} records {whose})"),
    }
}

/// Who answers what, in words. With two versions (the usual case: a server behind), only the
/// records that differ are shown, so a TXT set with one changed SPF record reads as that
/// change.
fn describe_groups(groups: &BTreeMap<String, Vec<&ServerCopy>>) -> String {
    let who = |servers: &[&ServerCopy]| {
        let names: Vec<String> = servers.iter().map(|s| server_name(s)).collect();
        let verb = if names.len() == 1 {
            "answers"
        } else {
            "answer"
        };
        (names.join(", "), verb)
    };
    let entries: Vec<(&String, &Vec<&ServerCopy>)> = groups.iter().collect();
    if let [(a_text, a_servers), (b_text, b_servers)] = entries.as_slice() {
        let (only_a, only_b, shared) = difference(a_text, b_text);
        let (a_who, a_verb) = who(a_servers);
        let (b_who, b_verb) = who(b_servers);
        return format!(
            "{a_who} {a_verb} {only_a}; {b_who} {b_verb} {only_b}{}",
            beside(shared, "all serve")
        );
    }
    entries
        .iter()
        .map(|(text, servers)| {
            let (names, verb) = who(servers);
            format!("{names} {verb} {text}")
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// What the run's resolver answered, in the form servers are compared in; CNAMEs it
/// followed are shown as the first hop, as a server asked directly answers.
fn resolver_view(seen: &Answer) -> Option<String> {
    match (seen.cname_chain.first(), &seen.outcome) {
        (Some(first), Outcome::Records(_) | Outcome::NoData | Outcome::NxDomain) => {
            Some(format!("CNAME {first}"))
        }
        (_, outcome) => canonical(outcome),
    }
}

fn pending_finding(
    name: &DomainName,
    qtype: QueryType,
    servers: &str,
    resolver: &str,
    resolver_ttl: Option<u32>,
    authoritative_ttl: Option<u32>,
    asked_at: i64,
) -> Finding {
    let (new, old, shared) = difference(servers, resolver);
    let remaining = match resolver_ttl {
        Some(ttl) => format!(
            " It may keep it {ttl} s more, until {}.",
            utc(asked_at + i64::from(ttl))
        ),
        None => " How long it keeps the absence is the zone's negative-caching TTL (the SOA's last field).".into(),
    };
    let everywhere = resolver_ttl
        .into_iter()
        .chain(authoritative_ttl)
        .max()
        .map(|ttl| {
            format!(
                " Every resolver has the new record by {} at the latest, if the old record's TTL was no longer than {ttl} s (resolvers keep a record for its TTL from when they fetched it).",
                utc(asked_at + i64::from(ttl))
            )
        })
        .unwrap_or_default();
    Finding::new(
        "propagation.pending",
        Severity::Warn,
        format!(
            "{qtype} {name} changed recently: the name servers answer {new}, but the resolver this run used still answers {old}{}.{remaining}{everywhere}",
            beside(shared, "both hold")
        ),
    )
    .fix("Wait until then before sending seeds or a warmup cohort: until then some receivers judge mail by the old record.")
    .data(serde_json::json!({
        "name": name.as_str(),
        "type": qtype.as_str(),
        "resolver_ttl": resolver_ttl,
        "visible_everywhere_by": resolver_ttl.into_iter().chain(authoritative_ttl).max().map(|t| utc(asked_at + i64::from(t))),
    }))
}

fn lame(zone: &DomainName, server: &ServerCopy, what: &str) -> Finding {
    Finding::new(
        "propagation.lame",
        Severity::Warn,
        format!(
            "{} is a name server of {zone} but {what}: resolvers that ask it get no answer from it and retry elsewhere.",
            server_name(server)
        ),
    )
    .fix(format!(
        "Remove {} from the NS set of {zone} (at the zone and at its parent), or serve the zone there.",
        server.host
    ))
}
