//! TLS-RPT checks (RFC 8460): does the domain ask senders for reports of TLS failures?
//!
//! Without it, an MTA-STS policy that breaks delivery fails silently: the reports are how an
//! operator hears that senders cannot negotiate TLS with an MX host. So an absent record is
//! `info` alone, and `warn` beside an MTA-STS record.
//!
//! Ids: `tls-rpt.absent`, `tls-rpt.syntax`, `tls-rpt.multiple`, `tls-rpt.ok`,
//! `tls-rpt.inconclusive`.

use crate::dns::{Outcome, QueryType};
use crate::fetch::{mta_sts_name, tls_rpt_name, DomainRecords};
use crate::finding::{Finding, RecordChange, Severity};
use crate::records::mta_sts::is_sts_record;
use crate::records::tls_rpt::{is_tls_rpt_record, parse_record, ReportUri};

pub fn analyse(records: &DomainRecords) -> Vec<Finding> {
    let domain = &records.domain;
    let name = tls_rpt_name(domain);
    let Some(txt) = records.get(&name, QueryType::Txt) else {
        return vec![];
    };
    if let Outcome::Failed(e) = &txt.outcome {
        return vec![Finding::new(
            "tls-rpt.inconclusive",
            Severity::Inconclusive,
            format!("The TLS-RPT record of {domain} could not be fetched ({e})."),
        )
        .evidence(txt.describe())];
    }
    let strings = txt.txt_strings();
    let announced: Vec<&String> = strings.iter().filter(|t| is_tls_rpt_record(t)).collect();
    let example = format!("v=TLSRPTv1; rua=mailto:tls-reports@{domain}");
    match announced.as_slice() {
        [] => {
            let attempt = strings.iter().find(|t| t.contains("TLSRPT") || t.contains("rua="));
            if let Some(attempt) = attempt {
                let parsed = parse_record(attempt);
                return vec![Finding::new(
                    "tls-rpt.syntax",
                    Severity::Fail,
                    format!(
                        "The TLS-RPT record of {domain} is ignored by senders: {}.",
                        parsed.problems.join("; ")
                    ),
                )
                .evidence(txt.describe())
                .records(vec![RecordChange::replace(&name, "TXT", attempt.as_str(), example)])];
            }
            let with_sts = records
                .get(&mta_sts_name(domain), QueryType::Txt)
                .is_some_and(|a| a.txt_strings().iter().any(|t| is_sts_record(t)));
            let (severity, why) = if with_sts {
                (
                    Severity::Warn,
                    "it publishes MTA-STS, so a sender that cannot negotiate TLS with an MX host stops delivering and nobody hears of it",
                )
            } else {
                (
                    Severity::Info,
                    "senders that fail to negotiate TLS with its MX hosts have nobody to tell",
                )
            };
            vec![Finding::new(
                "tls-rpt.absent",
                severity,
                format!("{domain} publishes no TLS-RPT record: {why}."),
            )
            .evidence(txt.describe())
            .fix(format!("Publish a TLS-RPT record at {name} (`mailshift reports import` reads the reports)."))
            .records(vec![RecordChange::add(&name, "TXT", example)])]
        }
        [one] => {
            let parsed = parse_record(one);
            if !parsed.is_valid() {
                return vec![Finding::new(
                    "tls-rpt.syntax",
                    Severity::Fail,
                    format!(
                        "The TLS-RPT record of {domain} is not valid: {}.",
                        parsed.problems.join("; ")
                    ),
                )
                .evidence(txt.describe())
                .records(vec![RecordChange::replace(&name, "TXT", one.as_str(), example)])];
            }
            let destinations: Vec<String> = parsed
                .rua
                .iter()
                .map(|u| match u {
                    ReportUri::Mailto(a) => a.clone(),
                    ReportUri::Https(u) => u.clone(),
                })
                .collect();
            vec![Finding::new(
                "tls-rpt.ok",
                Severity::Pass,
                format!(
                    "{domain} asks for TLS reports at {}.",
                    destinations.join(", ")
                ),
            )
            .evidence(txt.describe())]
        }
        many => vec![Finding::new(
            "tls-rpt.multiple",
            Severity::Fail,
            format!(
                "{name} has {} records that begin with v=TLSRPTv1; senders then send no reports (RFC 8460 §3).",
                many.len()
            ),
        )
        .evidence(txt.describe())
        .fix(format!("Keep one record at {name}, with every destination in its rua list."))],
    }
}
