//! MTA-STS checks (RFC 8461): does the domain tell senders to require TLS to its MX hosts,
//! and would a sender that honours it still deliver?
//!
//! The dangerous failure is a policy in `enforce` mode whose `mx` lines no longer match the
//! MX hosts (after a move to a new mail host): senders that honour it refuse to deliver. The
//! others make the policy silently void: a record senders ignore, a policy they cannot fetch
//! (no host, a bad certificate, a redirect, the wrong content type) or cannot parse.
//!
//! Ids: `mta-sts.absent`, `mta-sts.record-syntax`, `mta-sts.record-multiple`,
//! `mta-sts.policy-host`, `mta-sts.policy-certificate`, `mta-sts.policy-http`,
//! `mta-sts.policy-redirect`, `mta-sts.policy-content-type`, `mta-sts.policy-size`,
//! `mta-sts.policy-syntax`, `mta-sts.policy-notes`, `mta-sts.mx-mismatch`, `mta-sts.testing`,
//! `mta-sts.mode-none`, `mta-sts.max-age-short`, `mta-sts.ok`, `mta-sts.policy-unchecked`,
//! `mta-sts.inconclusive`.

use crate::dns::{Outcome, QueryType};
use crate::fetch::{mta_sts_host, mta_sts_name, mx_hosts, DomainRecords, MTA_STS_PATH};
use crate::finding::{Finding, RecordChange, Severity};
use crate::records::mta_sts::{
    is_sts_record, mx_matches, parse_policy, parse_record, Mode, Policy, MAX_POLICY_BYTES,
};
use crate::web::{WebError, WebFetch, WebResponse};
use sha2::Digest;

/// Below this, a policy in force lapses within a day of the host going away (RFC 8461 §3.2
/// suggests weeks).
pub const SHORT_MAX_AGE: u64 = 86_400;

pub fn analyse(records: &DomainRecords) -> Vec<Finding> {
    let domain = &records.domain;
    let name = mta_sts_name(domain);
    let Some(txt) = records.get(&name, QueryType::Txt) else {
        return vec![];
    };
    match &txt.outcome {
        Outcome::Failed(e) => {
            return vec![Finding::new(
                "mta-sts.inconclusive",
                Severity::Inconclusive,
                format!("The MTA-STS record of {domain} could not be fetched ({e})."),
            )
            .evidence(txt.describe())]
        }
        Outcome::Records(_) => {}
        _ => return vec![absent(records)],
    }
    let strings = txt.txt_strings();
    let announced: Vec<&String> = strings.iter().filter(|t| is_sts_record(t)).collect();
    let attempts: Vec<&String> = strings
        .iter()
        .filter(|t| !is_sts_record(t) && (t.contains("STSv") || t.contains("id=")))
        .collect();
    let new_record = || {
        format!(
            "v=STSv1; id={}",
            suggested_id(records.mta_sts_policy.as_ref())
        )
    };
    let record = match (announced.as_slice(), attempts.first()) {
        ([], None) => return vec![absent(records)],
        ([], Some(attempt)) => {
            let parsed = parse_record(attempt);
            return vec![Finding::new(
                "mta-sts.record-syntax",
                Severity::Fail,
                format!(
                    "The MTA-STS record of {domain} is ignored by senders: {}. MTA-STS is off for {domain}.",
                    parsed.problems.join("; ")
                ),
            )
            .evidence(txt.describe())
            .fix(format!("Replace it by a record that begins with `v=STSv1;` at {name}."))
            .records(vec![RecordChange::replace(&name, "TXT", attempt.as_str(), new_record())])];
        }
        ([one], _) => one,
        (many, _) => {
            return vec![Finding::new(
                "mta-sts.record-multiple",
                Severity::Fail,
                format!(
                    "{name} has {} records that begin with v=STSv1; senders then assume there is no policy (RFC 8461 §3.1).",
                    many.len()
                ),
            )
            .evidence(txt.describe())
            .fix(format!("Keep exactly one `v=STSv1` record at {name}."))]
        }
    };
    let parsed = parse_record(record);
    let mut findings = Vec::new();
    if !parsed.is_valid() {
        findings.push(
            Finding::new(
                "mta-sts.record-syntax",
                Severity::Fail,
                format!(
                    "The MTA-STS record of {domain} is not valid: {}. Senders assume there is no policy.",
                    parsed.problems.join("; ")
                ),
            )
            .evidence(txt.describe())
            .fix(format!("Publish `v=STSv1; id=...` at {name}, with an id of 1 to 32 letters and digits that changes whenever the policy does."))
            .records(vec![RecordChange::replace(&name, "TXT", record.as_str(), new_record())]),
        );
    }
    let Some(fetch) = &records.mta_sts_policy else {
        return findings;
    };
    let evidence = policy_evidence(fetch);
    let response = match &fetch.result {
        Ok(response) => response,
        Err(e) => {
            findings.push(fetch_failure(records, fetch, e));
            return findings;
        }
    };
    if let Some(problem) = transport_problem(records, fetch, response) {
        findings.push(problem.evidence(evidence));
        return findings;
    }
    let body = String::from_utf8_lossy(&response.body);
    let policy = parse_policy(&body);
    if !policy.notes.is_empty() {
        findings.push(
            Finding::new(
                "mta-sts.policy-notes",
                Severity::Warn,
                format!(
                    "The MTA-STS policy of {domain} has lines senders may read differently: {}.",
                    policy.notes.join("; ")
                ),
            )
            .evidence(evidence.clone())
            .fix("Remove the comments and repeated fields from the policy file."),
        );
    }
    if !policy.is_valid() {
        findings.push(
            Finding::new(
                "mta-sts.policy-syntax",
                Severity::Fail,
                format!(
                    "Senders discard the MTA-STS policy of {domain}: {}.",
                    policy.problems.join("; ")
                ),
            )
            .evidence(evidence)
            .fix(format!(
                "Serve a policy like:\nversion: STSv1\nmode: testing\n{}max_age: 604800\nat {}, then change the id of the {name} record.",
                suggested_mx_lines(records),
                fetch.url
            )),
        );
        return findings;
    }
    findings.extend(judge_policy(
        records,
        &policy,
        parsed.id.as_deref(),
        &evidence,
    ));
    findings
}

/// What a valid policy means for this domain's mail.
fn judge_policy(
    records: &DomainRecords,
    policy: &Policy,
    id: Option<&str>,
    evidence: &str,
) -> Vec<Finding> {
    let domain = &records.domain;
    let mut findings = Vec::new();
    let mode = policy.mode.unwrap_or(Mode::None);
    let mx_answer = records.get(domain, QueryType::Mx);
    let hosts: Vec<String> = mx_answer
        .map(|a| mx_hosts(a).iter().map(|h| h.to_string()).collect())
        .unwrap_or_default();
    let unmatched: Vec<&String> = hosts
        .iter()
        .filter(|h| !policy.mx.iter().any(|p| mx_matches(p, h)))
        .collect();
    let mx_evidence = mx_answer.map(|a| a.describe()).unwrap_or_default();
    if mode != Mode::None && !unmatched.is_empty() {
        let (severity, consequence) = if mode == Mode::Enforce {
            (
                Severity::Fail,
                "senders that honour the policy refuse to deliver to them",
            )
        } else {
            (
                Severity::Warn,
                "in testing mode mail still flows, but TLS reports will show failures, and enforcing the policy would stop delivery to them",
            )
        };
        let names: Vec<&str> = unmatched.iter().map(|h| h.as_str()).collect();
        findings.push(
            Finding::new(
                "mta-sts.mx-mismatch",
                severity,
                format!(
                    "The MTA-STS policy of {domain} ({}) does not cover the MX host{} {}: {consequence}.",
                    mode.as_str(),
                    if names.len() == 1 { "" } else { "s" },
                    names.join(", ")
                ),
            )
            .evidence(format!("{evidence}\n{mx_evidence}"))
            .fix(format!(
                "Add {} to the policy, then change the id of the {} record so senders fetch it again.",
                names
                    .iter()
                    .map(|n| format!("`mx: {n}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                mta_sts_name(domain)
            )),
        );
    }
    match mode {
        Mode::Testing => findings.push(
            Finding::new(
                "mta-sts.testing",
                Severity::Info,
                format!("The MTA-STS policy of {domain} is in testing mode: senders report TLS failures but still deliver without TLS."),
            )
            .evidence(evidence.to_string()),
        ),
        Mode::None => findings.push(
            Finding::new(
                "mta-sts.mode-none",
                Severity::Info,
                format!("The MTA-STS policy of {domain} is mode none: it withdraws an earlier policy, and senders require no TLS."),
            )
            .evidence(evidence.to_string()),
        ),
        Mode::Enforce => {}
    }
    if let Some(age) = policy.max_age {
        if mode == Mode::Enforce && age < SHORT_MAX_AGE {
            findings.push(
                Finding::new(
                    "mta-sts.max-age-short",
                    Severity::Warn,
                    format!("The MTA-STS policy of {domain} is cached for only {age} seconds: if the policy host is down or attacked for longer, senders fall back to no TLS requirement."),
                )
                .evidence(evidence.to_string())
                .fix("Set max_age to at least 604800 (one week); RFC 8461 suggests weeks."),
            );
        }
    }
    if !findings.iter().any(|f| f.severity >= Severity::Warn) {
        findings.push(
            Finding::new(
                "mta-sts.ok",
                Severity::Pass,
                format!(
                    "{domain} publishes an MTA-STS policy (id {}, mode {}, max_age {}){}.",
                    id.unwrap_or("?"),
                    mode.as_str(),
                    policy.max_age.unwrap_or(0),
                    if hosts.is_empty() || mode == Mode::None {
                        String::new()
                    } else {
                        format!(" that covers its MX hosts {}", hosts.join(", "))
                    }
                ),
            )
            .evidence(evidence.to_string()),
        );
    }
    findings
}

/// The finding for a policy that could not be fetched.
fn fetch_failure(records: &DomainRecords, fetch: &WebFetch, e: &WebError) -> Finding {
    let domain = &records.domain;
    let host = mta_sts_host(domain);
    let host_evidence = [QueryType::A, QueryType::Aaaa]
        .iter()
        .filter_map(|t| records.get(&host, *t))
        .map(|a| a.describe())
        .collect::<Vec<_>>()
        .join("\n");
    let evidence = format!("GET {}: {e}\n{host_evidence}", fetch.url);
    if *e == WebError::Offline {
        // The run was asked to stay off the network (zone files only): say what is unchecked
        // rather than make every offline gate inconclusive over a file it chose not to fetch.
        return Finding::new(
            "mta-sts.policy-unchecked",
            Severity::Info,
            format!("The MTA-STS policy of {domain} at {} was not fetched (--offline): whether it covers the MX hosts is unchecked.", fetch.url),
        )
        .evidence(evidence);
    }
    if e.is_inconclusive() {
        return Finding::new(
            "mta-sts.inconclusive",
            Severity::Inconclusive,
            format!("The MTA-STS policy of {domain} could not be fetched ({e}); whether senders can is unknown."),
        )
        .evidence(evidence);
    }
    match e {
        WebError::NoAddress { .. } => Finding::new(
            "mta-sts.policy-host",
            Severity::Fail,
            format!("{domain} announces an MTA-STS policy, but {host} has no address, so no sender can fetch it: the policy is void."),
        )
        .evidence(evidence)
        .fix(format!("Point {host} (A/AAAA or CNAME) at a web server that serves {MTA_STS_PATH} over HTTPS with a certificate for {host}, or remove the {} record.", mta_sts_name(domain))),
        _ => Finding::new(
            "mta-sts.policy-certificate",
            Severity::Fail,
            format!("Senders cannot fetch the MTA-STS policy of {domain}: {e}. The policy is void."),
        )
        .evidence(evidence)
        .fix(format!("Serve {} with a certificate for {host} from a public certificate authority (a covering wildcard will do).", fetch.url)),
    }
}

/// A response senders do not accept as a policy (RFC 8461 §3.3), whatever its body.
fn transport_problem(
    records: &DomainRecords,
    fetch: &WebFetch,
    response: &WebResponse,
) -> Option<Finding> {
    let domain = &records.domain;
    if (300..400).contains(&response.status) {
        return Some(
            Finding::new(
                "mta-sts.policy-redirect",
                Severity::Fail,
                format!(
                    "{} answers with a redirect (HTTP {}{}); senders must not follow redirects (RFC 8461 §3.3), so the policy of {domain} is void.",
                    fetch.url,
                    response.status,
                    response
                        .location
                        .as_deref()
                        .map(|l| format!(" to {l}"))
                        .unwrap_or_default()
                ),
            )
            .fix(format!("Serve the policy at {} itself, with status 200.", fetch.url)),
        );
    }
    if response.status != 200 {
        return Some(
            Finding::new(
                "mta-sts.policy-http",
                Severity::Fail,
                format!(
                    "{} answers HTTP {}, not 200: senders get no policy for {domain}.",
                    fetch.url, response.status
                ),
            )
            .fix(format!(
                "Serve the policy file at {} with status 200.",
                fetch.url
            )),
        );
    }
    if response.over_cap {
        return Some(
            Finding::new(
                "mta-sts.policy-size",
                Severity::Fail,
                format!(
                    "The MTA-STS policy of {domain} is over {} KiB; senders stop reading and discard it.",
                    MAX_POLICY_BYTES / 1024
                ),
            )
            .fix("Serve only the policy lines (a policy is a few hundred bytes)."),
        );
    }
    let media = response
        .content_type
        .as_deref()
        .and_then(|c| c.split(';').next())
        .map(|c| c.trim().to_ascii_lowercase());
    if media.as_deref() != Some("text/plain") {
        return Some(
            Finding::new(
                "mta-sts.policy-content-type",
                Severity::Fail,
                format!(
                    "{} is served as {}, not text/plain; senders discard it (RFC 8461 §3.3).",
                    fetch.url,
                    response
                        .content_type
                        .as_deref()
                        .map(|c| format!("`{c}`"))
                        .unwrap_or_else(|| "no content type".into())
                ),
            )
            .fix("Serve the file with `Content-Type: text/plain`."),
        );
    }
    None
}

fn absent(records: &DomainRecords) -> Finding {
    let domain = &records.domain;
    let name = mta_sts_name(domain);
    Finding::new(
        "mta-sts.absent",
        Severity::Info,
        format!("{domain} publishes no MTA-STS policy: senders may deliver to it without TLS when an attacker strips STARTTLS."),
    )
    .evidence(
        records
            .get(&name, QueryType::Txt)
            .map(|a| a.describe())
            .unwrap_or_default(),
    )
    .fix(format!(
        "To require TLS for mail to {domain}: serve a policy at https://{}{MTA_STS_PATH} (start with mode: testing), publish `v=STSv1; id=...` at {name}, and a TLS-RPT record to hear about failures.",
        mta_sts_host(domain)
    ))
}

/// The policy's first lines, with where it came from.
fn policy_evidence(fetch: &WebFetch) -> String {
    match &fetch.result {
        Ok(r) => {
            let body = String::from_utf8_lossy(&r.body);
            let mut lines: Vec<String> = body.lines().take(12).map(|l| format!("  {l}")).collect();
            if body.lines().count() > 12 {
                lines.push("  …".into());
            }
            format!(
                "GET {}: HTTP {}, {}, {} bytes{}\n{}",
                fetch.url,
                r.status,
                r.content_type.as_deref().unwrap_or("no content type"),
                r.body.len(),
                if r.over_cap { " (cut)" } else { "" },
                lines.join("\n")
            )
        }
        Err(e) => format!("GET {}: {e}", fetch.url),
    }
}

/// An id for the record that changes whenever the policy does: the start of its SHA-256.
fn suggested_id(fetch: Option<&WebFetch>) -> String {
    let body = fetch
        .and_then(|f| f.result.as_ref().ok())
        .map(|r| r.body.as_slice())
        .unwrap_or_default();
    let digest = sha2::Sha256::digest(body);
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// `mx:` lines for the domain's MX hosts.
fn suggested_mx_lines(records: &DomainRecords) -> String {
    records
        .get(&records.domain, QueryType::Mx)
        .map(mx_hosts)
        .unwrap_or_default()
        .iter()
        .map(|h| format!("mx: {h}\n"))
        .collect()
}

/// The policy senders apply to the domain, if any: one valid `v=STSv1` record, and a policy
/// fetched, served as a policy (200, text/plain, within the cap) and valid. Other families
/// (`checks::smtp`) judge by its mode.
pub fn policy_in_force(records: &DomainRecords) -> Option<Policy> {
    let txt = records.get(&mta_sts_name(&records.domain), QueryType::Txt)?;
    let strings = txt.txt_strings();
    let announced: Vec<&String> = strings.iter().filter(|t| is_sts_record(t)).collect();
    let [record] = announced.as_slice() else {
        return None;
    };
    if !parse_record(record).is_valid() {
        return None;
    }
    let fetch = records.mta_sts_policy.as_ref()?;
    let response = fetch.result.as_ref().ok()?;
    if transport_problem(records, fetch, response).is_some() {
        return None;
    }
    let policy = parse_policy(&String::from_utf8_lossy(&response.body));
    policy.is_valid().then_some(policy)
}
