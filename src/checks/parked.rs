//! Domains that send nothing (`sending = false` in a plan): parked names, typo and defensive
//! registrations. They are judged on what protects them from being spoofed, not on what a
//! sending domain needs — the records that would fail a sender are the right ones here.
//!
//! What protects a domain that sends no mail (M3AAWG's parked-domain guidance, RFC 7505): a null
//! MX (`0 .`), so no one expects mail to or from it; `v=spf1 -all`, so every sender fails SPF;
//! DMARC `p=reject` (and `sp=reject` for its subdomains), so receivers reject what fails; and,
//! optionally, a revoked wildcard DKIM key (`*._domainkey` with an empty `p=`).
//!
//! Ids: `parked.mx`, `parked.spf`, `parked.dmarc`, `parked.dkim`, `parked.inconclusive`.

use crate::checks::domain;
use crate::dns::{Outcome, QueryType, RecordData};
use crate::fetch::{spf_strings, DomainRecords, Selector};
use crate::finding::{Finding, RecordChange, Severity};
use crate::records::dkim::{DkimKeyRecord, PublicKey};
use crate::records::dmarc::{DmarcRecord, Policy};
use crate::records::spf::{Qualifier, SpfRecord, TermKind};

/// The selector looked up for a revoked wildcard key.
pub const WILDCARD: &str = "*";

/// What to fetch for a parked domain: the wildcard DKIM name only.
pub fn selectors() -> Vec<Selector> {
    vec![Selector {
        name: WILDCARD.into(),
        used_by: None,
        explicit: true,
    }]
}

/// The DMARC record of a domain that sends nothing.
const PROTECTIVE_DMARC: &str = "v=DMARC1; p=reject; sp=reject";

/// The record a domain that sends nothing publishes, as a zone-file fragment.
fn protective_records(domain: &str) -> String {
    format!(
        "{domain}. IN MX 0 .\n{domain}. IN TXT \"v=spf1 -all\"\n_dmarc.{domain}. IN TXT \"v=DMARC1; p=reject; sp=reject\"\n*._domainkey.{domain}. IN TXT \"v=DKIM1; p=\""
    )
}

pub fn analyse(records: &DomainRecords) -> Vec<Finding> {
    let (mut findings, exists) = domain::analyse(records);
    if !exists {
        return findings;
    }
    findings.push(mx(records));
    findings.push(spf(records));
    findings.push(dmarc(records));
    findings.push(dkim(records));
    findings
}

fn inconclusive(what: &str, why: String, evidence: String) -> Finding {
    Finding::new(
        "parked.inconclusive",
        Severity::Inconclusive,
        format!("The {what} of this non-sending domain could not be fetched ({why})."),
    )
    .evidence(evidence)
}

fn mx(records: &DomainRecords) -> Finding {
    let domain = &records.domain;
    let Some(answer) = records.get(domain, QueryType::Mx) else {
        return inconclusive("MX records", "not fetched".into(), String::new());
    };
    if let Some(e) = answer.failed() {
        return inconclusive("MX records", e.to_string(), answer.describe());
    }
    let exchanges: Vec<&str> = answer
        .records()
        .iter()
        .filter_map(|r| match &r.data {
            RecordData::Mx { exchange, .. } => Some(exchange.as_str()),
            _ => None,
        })
        .collect();
    match exchanges.as_slice() {
        [""] => Finding::new(
            "parked.mx",
            Severity::Pass,
            format!("{domain} publishes a null MX (RFC 7505): it receives no mail, and receivers know mail claiming to come from it is not real."),
        )
        .evidence(answer.describe()),
        [] => Finding::new(
            "parked.mx",
            Severity::Warn,
            format!("{domain} sends no mail but has no null MX: senders and receivers cannot tell that it never handles mail."),
        )
        .evidence(answer.describe())
        .fix(format!("Publish `{domain}. IN MX 0 .` (RFC 7505)."))
        .records(vec![RecordChange::add(domain, "MX", "0 .")]),
        hosts => Finding::new(
            "parked.mx",
            Severity::Info,
            format!(
                "{domain} sends no mail but receives it (MX {}): fine for a domain that forwards or collects mail; a parked domain would publish a null MX instead.",
                hosts.join(", ")
            ),
        )
        .evidence(answer.describe()),
    }
}

fn spf(records: &DomainRecords) -> Finding {
    let domain = &records.domain;
    let Some(answer) = records.get(domain, QueryType::Txt) else {
        return inconclusive("SPF record", "not fetched".into(), String::new());
    };
    if let Some(e) = answer.failed() {
        return inconclusive("SPF record", e.to_string(), answer.describe());
    }
    let fix = format!(
        "Publish `{domain}. IN TXT \"v=spf1 -all\"` (and nothing else that starts with v=spf1)."
    );
    let texts = spf_strings(answer);
    let [text] = texts.as_slice() else {
        let (message, severity) = if texts.is_empty() {
            (
                format!("{domain} sends no mail but publishes no SPF record: anyone can send as it without failing SPF."),
                Severity::Fail,
            )
        } else {
            (
                format!("{domain} publishes {} SPF records: receivers treat that as a permanent error, so SPF protects nothing.", texts.len()),
                Severity::Fail,
            )
        };
        // One record that says "nobody", in place of none or of several.
        let mut changes: Vec<RecordChange> = texts
            .iter()
            .skip(1)
            .map(|t| RecordChange::remove(domain, "TXT", t.clone()))
            .collect();
        changes.insert(
            0,
            match texts.first() {
                Some(first) => RecordChange::replace(domain, "TXT", first.clone(), "v=spf1 -all"),
                None => RecordChange::add(domain, "TXT", "v=spf1 -all"),
            },
        );
        return Finding::new("parked.spf", severity, message)
            .evidence(answer.describe())
            .fix(fix)
            .records(changes);
    };
    let replace = vec![RecordChange::replace(
        domain,
        "TXT",
        text.clone(),
        "v=spf1 -all",
    )];
    let record = SpfRecord::parse(text);
    let authorises: Vec<&str> = record
        .terms
        .iter()
        .filter(|t| {
            matches!(
                &t.kind,
                TermKind::Directive { qualifier, mechanism } if *qualifier != Qualifier::Fail
                    && !matches!(mechanism, crate::records::spf::Mechanism::All)
            ) || matches!(t.kind, TermKind::Redirect(_))
        })
        .map(|t| t.raw.as_str())
        .collect();
    let ends = record.all().map(|(_, q)| q);
    let (severity, message) = match (record.errors.is_empty(), authorises.as_slice(), ends) {
        (true, [], Some(Qualifier::Fail)) => {
            return Finding::new(
                "parked.spf",
                Severity::Pass,
                format!("{domain} authorises no sender (`{text}`): all mail claiming to be from it fails SPF."),
            )
            .evidence(answer.describe())
        }
        (true, [], _) => (
            Severity::Warn,
            format!("{domain} authorises no sender, but `{text}` does not end in `-all`: mail claiming to be from it only soft-fails or is neutral."),
        ),
        (false, _, _) => (
            Severity::Fail,
            format!("The SPF record of {domain} does not parse (`{text}`): receivers return permerror, so it protects nothing."),
        ),
        (true, terms, _) => (
            Severity::Warn,
            format!(
                "{domain} sends no mail, yet its SPF record authorises senders ({}): whoever sends from them can use the domain.",
                terms.join(" ")
            ),
        ),
    };
    Finding::new("parked.spf", severity, message)
        .evidence(answer.describe())
        .fix(fix)
        .records(replace)
}

fn dmarc(records: &DomainRecords) -> Finding {
    let domain = &records.domain;
    let name = domain.child("_dmarc");
    let fix = format!("Publish `_dmarc.{domain}. IN TXT \"{PROTECTIVE_DMARC}\"`.");
    let Some(answer) = records.get(&name, QueryType::Txt) else {
        return inconclusive("DMARC record", "not fetched".into(), String::new());
    };
    if let Some(e) = answer.failed() {
        return inconclusive("DMARC record", e.to_string(), answer.describe());
    }
    let texts: Vec<String> = answer
        .txt_strings()
        .into_iter()
        .filter(|t| crate::records::dmarc::is_dmarc_candidate(t))
        .collect();
    let [text] = texts.as_slice() else {
        let message = if texts.is_empty() {
            format!("{domain} sends no mail but has no DMARC record of its own: receivers have no instruction to reject mail that spoofs it.")
        } else {
            format!(
                "{domain} publishes {} DMARC records: receivers ignore them all.",
                texts.len()
            )
        };
        let mut changes: Vec<RecordChange> = texts
            .iter()
            .skip(1)
            .map(|t| RecordChange::remove(&name, "TXT", t.clone()))
            .collect();
        changes.insert(
            0,
            match texts.first() {
                Some(first) => RecordChange::replace(&name, "TXT", first.clone(), PROTECTIVE_DMARC),
                None => RecordChange::add(&name, "TXT", PROTECTIVE_DMARC),
            },
        );
        return Finding::new("parked.dmarc", Severity::Fail, message)
            .evidence(answer.describe())
            .fix(fix)
            .records(changes);
    };
    let record = DmarcRecord::parse(text);
    if !record.errors.is_empty() {
        return Finding::new(
            "parked.dmarc",
            Severity::Fail,
            format!("The DMARC record of {domain} does not parse: receivers ignore it."),
        )
        .evidence(answer.describe())
        .fix(fix)
        .records(vec![RecordChange::replace(
            &name,
            "TXT",
            text.clone(),
            PROTECTIVE_DMARC,
        )]);
    }
    // The record as it is, made protective: reject for the domain and its subdomains, no
    // testing flag; report addresses and other tags kept.
    let protective = DmarcRecord::parse(
        &DmarcRecord::parse(&record.with_tag("p", Some("reject"))).with_tag("sp", Some("reject")),
    );
    let protective = protective.with_tag("t", None);
    let exact = format!("Publish `_dmarc.{domain}. IN TXT \"{protective}\"`.");
    let replace = vec![RecordChange::replace(
        &name,
        "TXT",
        text.clone(),
        protective,
    )];
    let p = record.p.unwrap_or(Policy::None);
    let sp = record.sp.unwrap_or(p);
    let (severity, message) = match (p, sp, record.testing) {
        (Policy::Reject, Policy::Reject, false) => {
            return Finding::new(
                "parked.dmarc",
                Severity::Pass,
                format!("{domain} asks receivers to reject mail that fails DMARC, for itself and its subdomains."),
            )
            .evidence(answer.describe())
        }
        (Policy::Reject, _, false) => (
            Severity::Warn,
            format!("{domain} rejects spoofed mail, but its subdomains are only `sp={sp}`: a spoofer can use any subdomain."),
        ),
        (_, _, true) => (
            Severity::Warn,
            format!("The DMARC record of {domain} has `t=y` (testing): receivers apply one step less than `p={p}`."),
        ),
        (Policy::Quarantine, _, false) => (
            Severity::Warn,
            format!("{domain} sends no mail, yet asks only for quarantine: nothing legitimate can fail, so `p=reject` costs nothing."),
        ),
        (Policy::None, _, false) => (
            Severity::Fail,
            format!("{domain} sends no mail, yet its DMARC policy is `p=none`: receivers deliver mail that spoofs it."),
        ),
    };
    Finding::new("parked.dmarc", severity, message)
        .evidence(answer.describe())
        .fix(exact)
        .records(replace)
}

fn dkim(records: &DomainRecords) -> Finding {
    let domain = &records.domain;
    let name = domain.child(&format!("{WILDCARD}._domainkey"));
    let answer = records.get(&name, QueryType::Txt);
    let revoked = answer.is_some_and(|a| {
        a.outcome != Outcome::NxDomain
            && a.txt_strings()
                .iter()
                .any(|t| DkimKeyRecord::parse(t).key == PublicKey::Revoked)
    });
    if revoked {
        Finding::new(
            "parked.dkim",
            Severity::Pass,
            format!("{domain} publishes a revoked wildcard DKIM key: any DKIM signature claiming it fails."),
        )
        .evidence(answer.map(|a| a.describe()).unwrap_or_default())
    } else {
        Finding::new(
            "parked.dkim",
            Severity::Info,
            format!(
                "Optionally, publish a revoked wildcard DKIM key so signatures claiming {domain} fail at once. All the records a domain that sends nothing publishes:\n{}",
                protective_records(domain.as_str())
            ),
        )
        .evidence(answer.map(|a| a.describe()).unwrap_or_default())
    }
}
