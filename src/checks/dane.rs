//! DANE for SMTP (RFC 7672), with `check --dnssec`: the TLSA records of each MX host.
//!
//! A sender that does DANE looks up `_25._tcp.<mx host>` TLSA, but only when the domain's MX
//! answer and the TLSA answer are DNSSEC-secure (RFC 7672 §2.2): TLSA records in an unsigned
//! zone are ignored. When they are secure, the sender requires TLS and a certificate matching
//! one usable record; a bogus TLSA answer makes it skip that host (mail is deferred when no
//! host is left). Usable records are DANE-TA (2) and DANE-EE (3) with a defined selector and
//! matching type and a digest of the right length; PKIX-TA (0) and PKIX-EE (1) are unusable
//! for SMTP (§3.1.3). Whether a record matches the server's certificate is the SMTP probe's
//! to say, with [`crate::records::tlsa::tlsa_matches`].
//!
//! Ids: `dane.ok` (pass), `dane.absent` (info), `dane.usage` (warn), `dane.insecure` (warn),
//! `dane.syntax` (fail), `dane.bogus` (fail), `dane.inconclusive`.

use crate::fetch::dnssec::{DaneHost, Security};
use crate::fetch::DomainRecords;
use crate::finding::{Finding, RecordChange, Severity};
use crate::records::tlsa::{presentation, Tlsa, Usage};
use hickory_proto::rr::RecordType;

pub fn analyse(records: &DomainRecords) -> Vec<Finding> {
    let Some(dnssec) = &records.dnssec else {
        return Vec::new();
    };
    if dnssec.unchecked.is_some() || dnssec.dane.is_empty() {
        return Vec::new();
    }
    let domain = &records.domain;
    // DANE applies only when the MX answer itself is secure (RFC 7672 §2.2.1).
    let mx_security = dnssec.question(domain, RecordType::MX).map(|q| &q.security);
    let mx_secure = matches!(mx_security, Some(Security::Secure));

    let mut findings = Vec::new();
    let mut absent: Vec<&DaneHost> = Vec::new();
    let mut ok: Vec<String> = Vec::new();
    let mut insecure: Vec<String> = Vec::new();
    let mut usage: Vec<(String, RecordChange)> = Vec::new();
    let mut syntax: Vec<(String, RecordChange)> = Vec::new();
    let mut inconclusive: Vec<String> = Vec::new();
    for host in &dnssec.dane {
        let name = &host.tlsa.name;
        match &host.tlsa.security {
            Security::Unchecked(_) => continue,
            Security::Inconclusive(reason) => {
                inconclusive.push(format!("{name} TLSA: {reason}"));
                continue;
            }
            Security::Bogus(failure) => {
                findings.push(
                    Finding::new(
                        "dane.bogus",
                        Severity::Fail,
                        format!(
                            "The TLSA answer for {} does not validate ({failure}): senders that \
                             use DANE treat the host as unusable and defer the mail when no MX \
                             host is left (RFC 7672 §2.2).",
                            host.host
                        ),
                    )
                    .evidence(format!(
                        "{name} TLSA; chain {}",
                        host.tlsa.chain.join(" → ")
                    ))
                    .fix(format!(
                        "Re-sign the zone of {name} (see dnssec.bogus for what fails), or, if DANE \
                         is not wanted, remove its TLSA records and re-sign."
                    )),
                );
                continue;
            }
            Security::Secure | Security::Insecure(_) => {}
        }
        if host.records.is_empty() {
            absent.push(host);
            continue;
        }
        let shown: Vec<String> = host.records.iter().map(|r| presentation(r)).collect();
        let evidence = format!("{name} TLSA {}", shown.join(" | "));
        match (&host.tlsa.security, mx_secure) {
            (Security::Insecure(why), _) => {
                insecure.push(format!("{evidence} (the zone is not signed: {why})"));
                continue;
            }
            (_, false) => {
                match mx_security {
                    Some(Security::Insecure(i)) => {
                        insecure.push(format!("{evidence} (the MX records are not signed: {i})"))
                    }
                    Some(Security::Bogus(f)) => {
                        insecure.push(format!("{evidence} (the MX records do not validate: {f})"))
                    }
                    _ => inconclusive.push(format!(
                        "{evidence}: whether the MX records validate is unknown"
                    )),
                }
                continue;
            }
            _ => {}
        }
        for rdata in &host.records {
            let text = presentation(rdata);
            match Tlsa::parse(rdata) {
                Err(e) => syntax.push((
                    format!("{name} TLSA {text}: {e}"),
                    RecordChange::remove(name, "TLSA", text),
                )),
                Ok(record) if !record.smtp_usable() => {
                    let replacement = Tlsa {
                        usage: match record.usage {
                            Usage::PkixTa => Usage::DaneTa,
                            _ => Usage::DaneEe,
                        },
                        ..record.clone()
                    };
                    usage.push((
                        format!(
                            "{name} TLSA {text}: usage {} ({})",
                            record.usage.number(),
                            record.usage.acronym()
                        ),
                        RecordChange::replace(name, "TLSA", text, replacement.to_string()),
                    ));
                }
                Ok(record) => ok.push(format!("{name} TLSA {record} ({})", record.usage.acronym())),
            }
        }
    }

    if !syntax.is_empty() {
        let (lines, changes): (Vec<String>, Vec<RecordChange>) = syntax.into_iter().unzip();
        findings.push(
            Finding::new(
                "dane.syntax",
                Severity::Fail,
                format!(
                    "{} malformed: senders cannot use {} (RFC 6698, RFC 7671).",
                    crate::words::count(lines.len(), "TLSA record is", "TLSA records are"),
                    if lines.len() == 1 { "it" } else { "them" }
                ),
            )
            .evidence(lines.join("\n"))
            .fix(
                "Replace each with the record the server's key gives: `3 1 1 <SHA-256 of the \
                 certificate's SubjectPublicKeyInfo>` (RFC 7671 §5.1); or remove it.",
            )
            .records(changes),
        );
    }
    if !usage.is_empty() {
        let (lines, changes): (Vec<String>, Vec<RecordChange>) = usage.into_iter().unzip();
        findings.push(
            Finding::new(
                "dane.usage",
                Severity::Warn,
                format!(
                    "{} PKIX-TA (0) or PKIX-EE (1): SMTP senders treat these usages as \
                     unusable (RFC 7672 §3.1.3), so they secure nothing.",
                    crate::words::count(lines.len(), "TLSA record uses", "TLSA records use")
                ),
            )
            .evidence(lines.join("\n"))
            .fix(
                "Use DANE-EE (3) for the server's own certificate or key, DANE-TA (2) for the CA \
                 that issues it: the same association data with usage 3 (for 1) or 2 (for 0).",
            )
            .records(changes),
        );
    }
    if !insecure.is_empty() {
        findings.push(
            Finding::new(
                "dane.insecure",
                Severity::Warn,
                format!(
                    "{} published, but senders ignore TLSA records that are not DNSSEC-secure \
                     (RFC 7672 §2.2): DANE is not in effect.",
                    crate::words::count(
                        insecure.len(),
                        "MX host has TLSA records",
                        "MX hosts have TLSA records"
                    )
                ),
            )
            .evidence(insecure.join("\n"))
            .fix(
                "Sign the zones of the domain and of its MX hosts and publish their DS records at \
                 the registrar; or remove the TLSA records if DANE is not wanted.",
            ),
        );
    }
    if !inconclusive.is_empty() {
        findings.push(
            Finding::new(
                "dane.inconclusive",
                Severity::Inconclusive,
                "Whether the MX hosts publish usable TLSA records is unknown: a lookup failed.",
            )
            .evidence(inconclusive.join("\n")),
        );
    }
    if !absent.is_empty() {
        let hosts: Vec<&str> = absent.iter().map(|h| h.host.as_str()).collect();
        let unsigned_hosts = absent
            .iter()
            .any(|h| matches!(h.tlsa.security, Security::Insecure(_)));
        let note = match mx_security {
            Some(Security::Bogus(_)) => " (and the MX records do not validate: see dnssec.bogus)",
            Some(Security::Insecure(_)) => " (it needs DNSSEC-signed MX records first)",
            _ if unsigned_hosts => " (it needs the hosts' zones DNSSEC-signed first)",
            _ => "",
        };
        findings.push(
            Finding::new(
                "dane.absent",
                Severity::Info,
                format!(
                    "No TLSA records for {}: senders cannot authenticate {} with DANE{note}.",
                    hosts.join(", "),
                    if hosts.len() == 1 { "it" } else { "them" },
                ),
            )
            .evidence(
                absent
                    .iter()
                    .map(|h| format!("{} TLSA: no records", h.tlsa.name))
                    .collect::<Vec<_>>()
                    .join("\n"),
            )
            .fix(
                "To use DANE, publish `_25._tcp.<host> TLSA 3 1 1 <SHA-256 of the server \
                 certificate's SubjectPublicKeyInfo>` for each MX host in a signed zone, and \
                 update it before each key change (RFC 7671 §8.1); MTA-STS protects without \
                 DNSSEC.",
            ),
        );
    }
    if !ok.is_empty() {
        findings.push(
            Finding::new(
                "dane.ok",
                Severity::Pass,
                format!(
                    "{} DNSSEC-secure and usable by SMTP senders (DANE).",
                    crate::words::count(ok.len(), "TLSA record is", "TLSA records are")
                ),
            )
            .evidence(ok.join("\n")),
        );
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dnssec::{Failure, Insecure, InsecureReason};
    use crate::domain::DomainName;
    use crate::fetch::dnssec::{DnssecRecords, Secured};
    use hickory_proto::rr::Name;

    fn secured(owner: &str, record_type: RecordType, security: Security) -> Secured {
        Secured {
            name: DomainName::parse(owner).unwrap(),
            record_type,
            security,
            chain: vec!["bryggeri.se".into()],
            cnames: Vec::new(),
            has_records: true,
        }
    }

    fn host(name: &str, security: Security, records: Vec<Vec<u8>>) -> DaneHost {
        DaneHost {
            host: DomainName::parse(name).unwrap(),
            tlsa: secured(&format!("_25._tcp.{name}"), RecordType::TLSA, security),
            records,
        }
    }

    fn tlsa(usage: u8, selector: u8, matching: u8, len: usize) -> Vec<u8> {
        let mut out = vec![usage, selector, matching];
        out.extend(std::iter::repeat_n(0xab, len));
        out
    }

    fn check(mx: Security, dane: Vec<DaneHost>) -> Vec<Finding> {
        let domain = DomainName::parse("post.bryggeri.se").unwrap();
        let mut records = DomainRecords::new(domain);
        records.dnssec = Some(DnssecRecords {
            unchecked: None,
            questions: vec![secured("post.bryggeri.se", RecordType::MX, mx)],
            dane,
        });
        analyse(&records)
    }

    fn ids(findings: &[Finding]) -> Vec<(&str, Severity)> {
        findings
            .iter()
            .map(|f| (f.id.as_str(), f.severity))
            .collect()
    }

    fn insecure() -> Security {
        Security::Insecure(Insecure {
            parent: Name::from_ascii("bryggeri.se.").unwrap(),
            child: Name::from_ascii("osignerad.bryggeri.se.").unwrap(),
            reason: InsecureReason::NsecDeniesDs,
        })
    }

    #[test]
    fn secure_usable_records_pass_and_pkix_usages_warn_with_the_exact_replacement() {
        let findings = check(
            Security::Secure,
            vec![
                host(
                    "mx1.post.bryggeri.se",
                    Security::Secure,
                    vec![tlsa(3, 1, 1, 32)],
                ),
                host(
                    "mx2.post.bryggeri.se",
                    Security::Secure,
                    vec![tlsa(1, 0, 1, 32)],
                ),
            ],
        );
        assert_eq!(
            ids(&findings),
            [("dane.usage", Severity::Warn), ("dane.ok", Severity::Pass)]
        );
        let fix = findings[0].fix.as_ref().unwrap();
        assert_eq!(fix.records.len(), 1);
        assert!(fix.records[0].value.starts_with("3 0 1 abab"), "{fix:?}");
        assert!(findings[0].message.contains("RFC 7672 §3.1.3"));
        assert!(findings[1].evidence.contains("(DANE-EE)"));
    }

    #[test]
    fn malformed_records_fail_and_are_removed() {
        let findings = check(
            Security::Secure,
            vec![host(
                "mx1.post.bryggeri.se",
                Security::Secure,
                vec![tlsa(3, 1, 1, 16), tlsa(3, 1, 1, 32)],
            )],
        );
        assert_eq!(
            ids(&findings),
            [("dane.syntax", Severity::Fail), ("dane.ok", Severity::Pass)]
        );
        assert_eq!(
            findings[0].message,
            "1 TLSA record is malformed: senders cannot use it (RFC 6698, RFC 7671)."
        );
        assert!(
            findings[0]
                .evidence
                .contains("a SHA-256 association is 32 bytes; this record's is 16"),
            "{}",
            findings[0].evidence
        );
    }

    #[test]
    fn records_without_dnssec_are_ignored_by_senders() {
        // In an unsigned zone.
        let findings = check(
            insecure(),
            vec![host(
                "mx1.osignerad.bryggeri.se",
                insecure(),
                vec![tlsa(3, 1, 1, 32)],
            )],
        );
        assert_eq!(ids(&findings), [("dane.insecure", Severity::Warn)]);
        // In a signed zone, but the MX records that lead there are not signed.
        let findings = check(
            insecure(),
            vec![host(
                "mx1.post.bryggeri.se",
                Security::Secure,
                vec![tlsa(3, 1, 1, 32)],
            )],
        );
        assert_eq!(ids(&findings), [("dane.insecure", Severity::Warn)]);
        assert!(findings[0]
            .evidence
            .contains("the MX records are not signed"));
        // When the MX answer could not be validated, neither can DANE.
        let findings = check(
            Security::Inconclusive("timed out".into()),
            vec![host(
                "mx1.post.bryggeri.se",
                Security::Secure,
                vec![tlsa(3, 1, 1, 32)],
            )],
        );
        assert_eq!(
            ids(&findings),
            [("dane.inconclusive", Severity::Inconclusive)]
        );
    }

    #[test]
    fn bogus_absent_and_failed_lookups() {
        let failure = Failure {
            zone: Name::from_ascii("utgangen.bryggeri.se.").unwrap(),
            owner: Name::from_ascii("utgangen.bryggeri.se.").unwrap(),
            record_type: RecordType::DNSKEY,
            reason: crate::dnssec::BogusReason::SignatureExpired { expiration: 0 },
        };
        let findings = check(
            Security::Secure,
            vec![
                host("mx1.utgangen.bryggeri.se", Security::Bogus(failure), vec![]),
                host("mx1.bryggeri.se", Security::Secure, vec![]),
                host(
                    "mx2.bryggeri.se",
                    Security::Inconclusive("timed out".into()),
                    vec![],
                ),
            ],
        );
        assert_eq!(
            ids(&findings),
            [
                ("dane.bogus", Severity::Fail),
                ("dane.inconclusive", Severity::Inconclusive),
                ("dane.absent", Severity::Info)
            ]
        );
        assert!(findings[2].message.contains("mx1.bryggeri.se"));
        assert!(!findings[2].message.contains("needs DNSSEC"));
        // No MX hosts, or no --dnssec: nothing.
        assert!(check(Security::Secure, vec![]).is_empty());
    }
}
