//! DNSSEC (`check --dnssec`): do the answers the checks rely on validate?
//!
//! A validating resolver (most large receivers run one) answers SERVFAIL for data that is
//! signed but does not validate: SPF and DMARC lookups then fail with a temporary error and
//! mail to the domain is deferred, whatever the records say. An unsigned domain is not a
//! fault (most are), but it cannot use DANE. The verdicts come from `fetch::dnssec`, which
//! validated the domain's TXT (SPF) and MX answers and its DMARC record from the trust anchor
//! down; this module groups them.
//!
//! Ids: `dnssec.secure` (pass), `dnssec.unsigned` (info, with where the chain stops),
//! `dnssec.bogus` (fail, the failing link, why, and the fix), `dnssec.inconclusive`,
//! `dnssec.unchecked` (info: `--zone` files, `--offline`).

use crate::dnssec::{BogusReason, Failure};
use crate::fetch::dnssec::{show, Secured, Security};
use crate::fetch::DomainRecords;
use crate::finding::{Finding, Severity};
use hickory_proto::rr::RecordType;

pub fn analyse(records: &DomainRecords) -> Vec<Finding> {
    let Some(dnssec) = &records.dnssec else {
        return Vec::new();
    };
    let domain = &records.domain;
    if let Some(reason) = &dnssec.unchecked {
        return vec![Finding::new(
            "dnssec.unchecked",
            Severity::Info,
            format!("DNSSEC was not checked for {domain}: {reason}."),
        )];
    }
    let mut findings = Vec::new();
    let questions = &dnssec.questions;

    // Bogus: one finding per failing link, naming every answer it takes down.
    let mut failures: Vec<(&Failure, Vec<&Secured>)> = Vec::new();
    for question in questions {
        if let Security::Bogus(failure) = &question.security {
            match failures.iter_mut().find(|(f, _)| *f == failure) {
                Some((_, affected)) => affected.push(question),
                None => failures.push((failure, vec![question])),
            }
        }
    }
    for (failure, affected) in failures {
        findings.push(
            Finding::new(
                "dnssec.bogus",
                Severity::Fail,
                format!(
                    "DNSSEC validation fails for {}: {failure} ({}). Validating resolvers answer \
                     SERVFAIL instead, so receivers behind them cannot read these records: SPF \
                     and DMARC give temporary errors and mail is deferred.",
                    names(&affected),
                    link(failure)
                ),
            )
            .evidence(evidence(&affected))
            .fix(bogus_fix(failure)),
        );
    }

    let inconclusive: Vec<(&Secured, &String)> = questions
        .iter()
        .filter_map(|q| match &q.security {
            Security::Inconclusive(reason) => Some((q, reason)),
            _ => None,
        })
        .collect();
    if let Some((_, reason)) = inconclusive.first() {
        let affected: Vec<&Secured> = inconclusive.iter().map(|(q, _)| *q).collect();
        findings.push(
            Finding::new(
                "dnssec.inconclusive",
                Severity::Inconclusive,
                format!(
                    "Whether {} validate{} is unknown: {reason}.",
                    names(&affected),
                    if affected.len() == 1 { "s" } else { "" }
                ),
            )
            .evidence(evidence(&affected)),
        );
    }

    let unchecked: Vec<(&Secured, &String)> = questions
        .iter()
        .filter_map(|q| match &q.security {
            Security::Unchecked(reason) => Some((q, reason)),
            _ => None,
        })
        .collect();
    if let Some((_, reason)) = unchecked.first() {
        let affected: Vec<&Secured> = unchecked.iter().map(|(q, _)| *q).collect();
        findings.push(
            Finding::new(
                "dnssec.unchecked",
                Severity::Info,
                format!("DNSSEC was not checked for {}: {reason}.", names(&affected)),
            )
            .evidence(evidence(&affected)),
        );
    }

    // Unsigned: one finding per place a chain stops.
    let mut stops: Vec<(&crate::dnssec::Insecure, Vec<&Secured>)> = Vec::new();
    for question in questions {
        if let Security::Insecure(insecure) = &question.security {
            match stops.iter_mut().find(|(i, _)| *i == insecure) {
                Some((_, affected)) => affected.push(question),
                None => stops.push((insecure, vec![question])),
            }
        }
    }
    for (insecure, affected) in stops {
        findings.push(
            Finding::new(
                "dnssec.unsigned",
                Severity::Info,
                format!(
                    "{} {} not signed: {insecure}. Resolvers accept the answers as they are \
                     (nothing forged is detected), and DANE cannot be used.",
                    names(&affected),
                    if affected.len() == 1 { "is" } else { "are" }
                ),
            )
            .evidence(evidence(&affected))
            .fix(format!(
                "If the domain should be signed: sign {} at its DNS provider, then publish its \
                 DS record at the registrar (through {}).",
                show(&insecure.child),
                show(&insecure.parent)
            )),
        );
    }

    let secure: Vec<&Secured> = questions
        .iter()
        .filter(|q| q.security == Security::Secure)
        .collect();
    if !secure.is_empty() {
        let chain = secure
            .first()
            .map(|q| q.chain.join(" → "))
            .unwrap_or_default();
        findings.push(
            Finding::new(
                "dnssec.secure",
                Severity::Pass,
                format!(
                    "{} validate{} (DNSSEC): signed from the trust anchor down ({chain}).",
                    names(&secure),
                    if secure.len() == 1 { "s" } else { "" }
                ),
            )
            .evidence(evidence(&secure)),
        );
    }
    findings
}

/// `post.example TXT, post.example MX and _dmarc.post.example TXT`.
fn names(questions: &[&Secured]) -> String {
    let names: Vec<String> = questions
        .iter()
        .map(|q| format!("{} {}", q.name, q.record_type))
        .collect();
    match names.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// One line per question: its verdict and the chain of zones.
fn evidence(questions: &[&Secured]) -> String {
    questions
        .iter()
        .map(|q| {
            let verdict = match &q.security {
                Security::Secure => "secure".to_string(),
                Security::Insecure(i) => format!("insecure: {i}"),
                Security::Bogus(f) => format!("bogus: {f}"),
                Security::Inconclusive(r) => format!("inconclusive: {r}"),
                Security::Unchecked(r) => format!("unchecked: {r}"),
            };
            let via = if q.cnames.is_empty() {
                String::new()
            } else {
                format!(
                    " (via CNAME {})",
                    q.cnames
                        .iter()
                        .map(|c| c.as_str())
                        .collect::<Vec<_>>()
                        .join(" → ")
                )
            };
            let chain = if q.chain.is_empty() {
                String::new()
            } else {
                format!("; chain {}", q.chain.join(" → "))
            };
            format!("{} {}{via}: {verdict}{chain}", q.name, q.record_type)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Which link of the chain failed, in words.
fn link(failure: &Failure) -> String {
    let (zone, owner) = (show(&failure.zone), show(&failure.owner));
    match failure.record_type {
        RecordType::DNSKEY => format!("the link to {zone}: its DNSKEY RRset"),
        RecordType::DS => format!("the link from {zone} to {owner}: the DS there"),
        RecordType::NSEC | RecordType::NSEC3 => {
            format!(
                "the link from {zone}: its {} proof at {owner}",
                failure.record_type
            )
        }
        other => format!("the {other} RRset of {owner} in {zone}"),
    }
}

/// What the zone's owner does about a failing link.
fn bogus_fix(failure: &Failure) -> String {
    let (zone, owner, rtype) = (
        show(&failure.zone),
        show(&failure.owner),
        failure.record_type,
    );
    match &failure.reason {
        BogusReason::SignatureExpired { .. } => format!(
            "Re-sign {zone}: its signatures have expired (the signer stopped re-signing, or an \
             old copy of the zone is served); make sure signing runs automatically before \
             signatures expire."
        ),
        BogusReason::SignatureNotYetValid { .. } => format!(
            "Check the clock of {zone}'s signer: its signatures start in the future. Re-sign \
             with an inception time in the past."
        ),
        BogusReason::NoDnskeyMatchesDs { key_tags } => format!(
            "At the registrar of {zone}, publish the DS of the zone's current key-signing key \
             (the DS there names key tag {}, which {zone} does not publish); if {zone} is no \
             longer meant to be signed, remove the stale DS. In a key rollover, the new DS \
             goes to the registrar only once the new key is in the zone.",
            key_tags
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        BogusReason::NoDnskey => format!(
            "{zone} publishes no DNSKEY, yet its parent holds a DS: sign the zone again, or \
             remove the DS at the registrar (to stop signing, remove the DS first, wait for \
             its TTL, then remove the keys)."
        ),
        BogusReason::NoDnskeyMatchesAnchor => format!(
            "No key of {zone} is the configured trust anchor: update --trust-anchor to the \
             zone's current key-signing key."
        ),
        BogusReason::SignatureDoesNotVerify { .. } => format!(
            "The {rtype} records of {owner} changed after {zone} was signed (edited by hand, or \
             a server serves another copy): re-sign {zone} and serve the signed copy from every \
             name server."
        ),
        BogusReason::NoSignature | BogusReason::NoKeyForSignature { .. } => format!(
            "{owner} {rtype} is served without a valid signature from {zone}'s keys (a record \
             added after signing, a server that strips signatures, or a key removed too \
             early): re-sign {zone} with the keys it publishes."
        ),
        BogusReason::SignerIsNotZone { .. } => {
            format!("Re-sign {owner} {rtype} with the keys of {zone}, the zone it is in.")
        }
        BogusReason::NoDsProof
        | BogusReason::DsDenialContradicted
        | BogusReason::NotADelegation => format!(
            "{zone}'s servers give no valid answer about the DS of {owner}: check that {owner} \
             is delegated from {zone}, and re-sign {zone}."
        ),
        BogusReason::TooManySignatureChecks { .. } => format!(
            "Remove the extra signatures or keys of {zone} (several keys share a key tag, or \
             an RRset carries many signatures): validators stop before checking them all."
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dnssec::{Insecure, InsecureReason};
    use crate::domain::DomainName;
    use crate::fetch::dnssec::DnssecRecords;
    use hickory_proto::rr::Name;

    fn name(text: &str) -> Name {
        Name::from_ascii(text).unwrap()
    }

    fn question(owner: &str, record_type: RecordType, security: Security) -> Secured {
        Secured {
            name: DomainName::parse(owner).unwrap(),
            record_type,
            security,
            chain: vec![
                "bryggeri.se".into(),
                owner.trim_start_matches("_dmarc.").into(),
            ],
            cnames: Vec::new(),
            has_records: true,
        }
    }

    fn analyse_with(domain: &str, dnssec: DnssecRecords) -> Vec<Finding> {
        let mut records = DomainRecords::new(DomainName::parse(domain).unwrap());
        records.dnssec = Some(dnssec);
        analyse(&records)
    }

    fn ids(findings: &[Finding]) -> Vec<(&str, Severity)> {
        findings
            .iter()
            .map(|f| (f.id.as_str(), f.severity))
            .collect()
    }

    #[test]
    fn secure_answers_pass_with_their_chain() {
        let findings = analyse_with(
            "post.bryggeri.se",
            DnssecRecords {
                questions: vec![
                    question("post.bryggeri.se", RecordType::TXT, Security::Secure),
                    question("post.bryggeri.se", RecordType::MX, Security::Secure),
                ],
                ..DnssecRecords::default()
            },
        );
        assert_eq!(ids(&findings), [("dnssec.secure", Severity::Pass)]);
        assert_eq!(
            findings[0].message,
            "post.bryggeri.se TXT and post.bryggeri.se MX validate (DNSSEC): signed from the \
             trust anchor down (bryggeri.se → post.bryggeri.se)."
        );
    }

    #[test]
    fn an_unsigned_domain_is_info_naming_where_the_chain_stops() {
        let insecure = Security::Insecure(Insecure {
            parent: name("bryggeri.se."),
            child: name("osignerad.bryggeri.se."),
            reason: InsecureReason::NsecDeniesDs,
        });
        let findings = analyse_with(
            "osignerad.bryggeri.se",
            DnssecRecords {
                questions: vec![
                    question("osignerad.bryggeri.se", RecordType::TXT, insecure.clone()),
                    question("osignerad.bryggeri.se", RecordType::MX, insecure),
                ],
                ..DnssecRecords::default()
            },
        );
        assert_eq!(ids(&findings), [("dnssec.unsigned", Severity::Info)]);
        assert!(
            findings[0]
                .message
                .contains("bryggeri.se proves it has no DS (NSEC)"),
            "{}",
            findings[0].message
        );
    }

    #[test]
    fn a_bogus_link_fails_once_with_its_fix() {
        let failure = Failure {
            zone: name("fel-ds.bryggeri.se."),
            owner: name("fel-ds.bryggeri.se."),
            record_type: RecordType::DNSKEY,
            reason: BogusReason::NoDnskeyMatchesDs {
                key_tags: vec![4711],
            },
        };
        let bogus = Security::Bogus(failure);
        let findings = analyse_with(
            "fel-ds.bryggeri.se",
            DnssecRecords {
                questions: vec![
                    question("fel-ds.bryggeri.se", RecordType::TXT, bogus.clone()),
                    question("fel-ds.bryggeri.se", RecordType::MX, bogus),
                    question(
                        "_dmarc.fel-ds.bryggeri.se",
                        RecordType::TXT,
                        Security::Inconclusive("timed out".into()),
                    ),
                ],
                ..DnssecRecords::default()
            },
        );
        assert_eq!(
            ids(&findings),
            [
                ("dnssec.bogus", Severity::Fail),
                ("dnssec.inconclusive", Severity::Inconclusive)
            ]
        );
        let message = &findings[0].message;
        assert!(
            message.contains("fel-ds.bryggeri.se TXT and fel-ds.bryggeri.se MX"),
            "{message}"
        );
        assert!(
            message.contains("no DNSKEY of fel-ds.bryggeri.se matches DS key tag 4711"),
            "{message}"
        );
        assert!(
            message.contains("the link to fel-ds.bryggeri.se"),
            "{message}"
        );
        let fix = findings[0].fix_text().unwrap();
        assert!(fix.contains("key tag 4711"), "{fix}");
        assert!(fix.contains("remove the stale DS"), "{fix}");
    }

    #[test]
    fn zone_files_and_offline_runs_are_unchecked() {
        let findings = analyse_with(
            "draft.test",
            DnssecRecords {
                unchecked: Some("draft.test is answered from the --zone file d.zone".into()),
                ..DnssecRecords::default()
            },
        );
        assert_eq!(ids(&findings), [("dnssec.unchecked", Severity::Info)]);
        // Without --dnssec, nothing at all.
        let records = DomainRecords::new(DomainName::parse("draft.test").unwrap());
        assert!(analyse(&records).is_empty());
    }
}
