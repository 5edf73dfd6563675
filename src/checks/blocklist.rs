//! DNS blocklist checks: is a sending IP or the domain listed where receivers look?
//!
//! A listing is a `fail`: receivers that consult the list refuse the mail. Everything short of
//! a clear answer is *inconclusive*, never "listed" and never "clean": a list's error codes
//! (Spamhaus answers 127.255.255.254 to queries from public resolvers), answers outside
//! 127.0.0.0/8 (a resolver rewriting NXDOMAIN), failed lookups, and a list whose RFC 5782 test
//! entries show it is not answering this resolver (127.0.0.2 missing) or lists everything
//! (127.0.0.1 listed, as dead lists do). Only when the run asked (`--blocklists`, `--ip`, the
//! `blocklists` gate requirement) are lists consulted: their operators limit who may query.
//!
//! Ids: `blocklist.listed`, `blocklist.clean`, `blocklist.refused`, `blocklist.unreliable`,
//! `blocklist.inconclusive`, `blocklist.not-public`.

use crate::catalog::blocklists::{listable, Code};
use crate::catalog::Blocklist;
use crate::dns::{Answer, Outcome, QueryType, RecordData};
use crate::domain::DomainName;
use crate::fetch::DomainRecords;
use crate::finding::{Finding, Severity};

/// What one list said about one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    Clean,
    /// The codes answered, each with its meaning.
    Listed(Vec<String>),
    /// The list reported a problem with the query.
    Refused(String),
    /// No usable answer (lookup failed, or not a list's answer).
    Unknown(String),
    /// Not asked (not fetched: the run did not reach it).
    NotAsked,
}

fn verdict(list: &Blocklist, answer: Option<&Answer>) -> Verdict {
    let Some(answer) = answer else {
        return Verdict::NotAsked;
    };
    match &answer.outcome {
        Outcome::NxDomain | Outcome::NoData => Verdict::Clean,
        Outcome::Failed(e) => Verdict::Unknown(e.to_string()),
        Outcome::CnameLoop => Verdict::Unknown("its answer loops through CNAMEs".into()),
        Outcome::Records(records) => {
            let mut listed = Vec::new();
            for record in records.iter() {
                let RecordData::A(ip) = record.data else {
                    continue;
                };
                match list.code(ip) {
                    Code::Error(why) => return Verdict::Refused(format!("{ip}: {why}")),
                    Code::NotAList => {
                        return Verdict::Unknown(format!(
                            "it answered {ip}, outside 127.0.0.0/8 where lists answer: the resolver probably rewrites missing names"
                        ))
                    }
                    Code::Listed(why) => listed.push(format!("{ip}: {why}")),
                    Code::Unknown => listed.push(format!("{ip}: a code mailshift's table for this list does not explain")),
                }
            }
            if listed.is_empty() {
                Verdict::Clean
            } else {
                Verdict::Listed(listed)
            }
        }
    }
}

/// Whether a list is answering this resolver as RFC 5782 §5 says it must.
fn health(list: &Blocklist, records: &DomainRecords) -> Result<(), String> {
    let (listed, clean) = list.probes();
    if let Some(name) = &clean {
        if let Verdict::Listed(codes) = verdict(list, records.get(name, QueryType::A)) {
            return Err(format!(
                "it lists its must-not-list test entry {name} ({}), so it answers 'listed' for everything (a retired list does this)",
                codes.join(", ")
            ));
        }
    }
    if let Some(name) = &listed {
        match verdict(list, records.get(name, QueryType::A)) {
            Verdict::Listed(_) | Verdict::NotAsked => {}
            Verdict::Clean => {
                return Err(format!(
                    "it does not list its must-list test entry {name}, so it is not answering this resolver (many lists answer only registered or non-public resolvers)"
                ))
            }
            Verdict::Refused(why) => return Err(format!("its test entry {name} answered {why}")),
            Verdict::Unknown(why) => return Err(format!("its test entry {name}: {why}")),
        }
    }
    Ok(())
}

pub fn analyse(records: &DomainRecords) -> Vec<Finding> {
    let Some(request) = &records.blocklists else {
        return vec![];
    };
    let domain = &records.domain;
    let mut findings = Vec::new();
    let private: Vec<String> = request
        .ips
        .iter()
        .filter(|a| !listable(a.ip))
        .map(|a| format!("{} ({})", a.ip, a.from))
        .collect();
    if !private.is_empty() {
        findings.push(Finding::new(
            "blocklist.not-public",
            Severity::Info,
            format!(
                "Not looked up in blocklists: {} — private or reserved addresses, which no public list holds and receivers never see.",
                private.join(", ")
            ),
        ));
    }
    let mut clean_lists = Vec::new();
    let mut entries_clean = 0usize;
    let mut skipped_v6 = Vec::new();
    for list in &request.lists {
        let mut entries: Vec<(String, DomainName)> = Vec::new();
        if let Some(name) = list.domain_query(domain) {
            entries.push((domain.to_string(), name));
        }
        for address in request.ips.iter().filter(|a| listable(a.ip)) {
            match list.ip_query(address.ip) {
                Some(name) => entries.push((format!("{} ({})", address.ip, address.from), name)),
                None if list.lists == crate::catalog::blocklists::Listing::Ip => {
                    skipped_v6.push(format!("{} on {}", address.ip, list.name));
                }
                None => {}
            }
        }
        if entries.is_empty() {
            continue;
        }
        let healthy = health(list, records);
        let mut all_clean = true;
        for (entry, name) in &entries {
            let answer = records.get(name, QueryType::A);
            let evidence = answer.map(Answer::describe).unwrap_or_default();
            match verdict(list, answer) {
                Verdict::Clean => match &healthy {
                    Ok(()) => entries_clean += 1,
                    Err(why) => {
                        all_clean = false;
                        findings.push(unreliable(list, entry, why, evidence));
                    }
                },
                Verdict::Listed(codes) => {
                    all_clean = false;
                    if let Err(why) = &healthy {
                        if why.contains("must-not-list") {
                            findings.push(unreliable(list, entry, why, evidence));
                            continue;
                        }
                    }
                    let reason = records
                        .get(name, QueryType::Txt)
                        .map(|t| t.txt_strings().join(" "))
                        .filter(|t| !t.is_empty());
                    findings.push(listed(list, entry, name, &codes, reason, evidence));
                }
                Verdict::Refused(why) => {
                    all_clean = false;
                    findings.push(
                        Finding::new(
                            "blocklist.refused",
                            Severity::Inconclusive,
                            format!(
                                "{} did not say whether {entry} is listed: it answered {why}. This is not a listing.",
                                list.name
                            ),
                        )
                        .evidence(evidence)
                        .fix(format!(
                            "Query {} through a resolver of your own (not a public one such as 8.8.8.8 or 1.1.1.1), or give mailshift a zone with your access key in DIR/blocklists.toml (--checks-dir DIR).",
                            list.name
                        )),
                    );
                }
                Verdict::Unknown(why) => {
                    all_clean = false;
                    findings.push(
                        Finding::new(
                            "blocklist.inconclusive",
                            Severity::Inconclusive,
                            format!("{} could not be asked about {entry}: {why}.", list.name),
                        )
                        .evidence(evidence),
                    );
                }
                Verdict::NotAsked => all_clean = false,
            }
        }
        if all_clean {
            clean_lists.push(list.name.clone());
        }
    }
    if !clean_lists.is_empty() {
        let mut message = format!(
            "Not listed: {entries_clean} lookup{} on {} ({}).",
            if entries_clean == 1 { "" } else { "s" },
            if clean_lists.len() == 1 {
                "1 list".to_string()
            } else {
                format!("{} lists", clean_lists.len())
            },
            clean_lists.join(", ")
        );
        if !skipped_v6.is_empty() {
            message.push_str(&format!(
                " Not asked, as these lists hold IPv4 addresses only: {}.",
                skipped_v6.join(", ")
            ));
        }
        findings.push(Finding::new("blocklist.clean", Severity::Pass, message));
    }
    findings
}

fn listed(
    list: &Blocklist,
    entry: &str,
    name: &DomainName,
    codes: &[String],
    reason: Option<String>,
    evidence: String,
) -> Finding {
    let mut message = format!("{entry} is listed on {}: {}.", list.name, codes.join("; "));
    if let Some(reason) = &reason {
        message.push_str(&format!(" The list says: \"{reason}\"."));
    }
    let lookup = list
        .lookup
        .as_deref()
        .map(|url| format!(" Look the listing up and request removal at {url}."))
        .unwrap_or_default();
    Finding::new("blocklist.listed", Severity::Fail, message)
        .evidence(evidence)
        .fix(format!(
            "Receivers that consult {} refuse or junk this mail. Find and stop what got it listed (a compromised account, a bought list, a spam trap hit), then request removal.{lookup} Before warmup, ask the platform for different IPs rather than warming listed ones.",
            list.name
        ))
        .data(serde_json::json!({
            "list": list.id,
            "zone": list.zone.as_str(),
            "query": name.as_str(),
            "codes": codes,
            "reason": reason,
        }))
}

fn unreliable(list: &Blocklist, entry: &str, why: &str, evidence: String) -> Finding {
    Finding::new(
        "blocklist.unreliable",
        Severity::Inconclusive,
        format!(
            "{}'s answer about {entry} cannot be trusted: {why}.",
            list.name
        ),
    )
    .evidence(evidence)
    .fix(format!(
        "Ask {} through a resolver it answers, or disable it with `enabled = false` in DIR/blocklists.toml (--checks-dir DIR) if it is retired.",
        list.name
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;
    use crate::dns::{Answer, LookupError, Record, Source};
    use crate::fetch::{BlocklistRequest, SendingAddress};
    use std::sync::Arc;

    fn a(name: &str, ips: &[&str]) -> Answer {
        let outcome = if ips.is_empty() {
            Outcome::NxDomain
        } else {
            Outcome::Records(
                ips.iter()
                    .map(|ip| Record {
                        ttl: 300,
                        data: RecordData::A(ip.parse().unwrap()),
                    })
                    .collect::<Vec<_>>()
                    .into(),
            )
        };
        answer(name, QueryType::A, outcome)
    }

    fn answer(name: &str, qtype: QueryType, outcome: Outcome) -> Answer {
        Answer {
            name: DomainName::from_ascii_unchecked(name),
            qtype,
            outcome,
            cname_chain: vec![],
            cname_conflict: false,
            source: Source::Network,
        }
    }

    fn lists(ids: &[&str]) -> Vec<Blocklist> {
        Catalog::embedded()
            .unwrap()
            .blocklists
            .into_iter()
            .filter(|l| ids.contains(&l.id.as_str()))
            .collect()
    }

    /// Healthy probes for ZEN and DBL, plus the given answers.
    fn records(ips: &[&str], extra: Vec<Answer>) -> DomainRecords {
        let mut answers = vec![
            a("2.0.0.127.zen.spamhaus.org", &["127.0.0.2", "127.0.0.10"]),
            a("1.0.0.127.zen.spamhaus.org", &[]),
            a("dbltest.com.dbl.spamhaus.org", &["127.0.1.2"]),
            a("invalid.dbl.spamhaus.org", &[]),
            a("vinterhavn.se.dbl.spamhaus.org", &[]),
        ];
        answers.extend(extra);
        let mut r =
            DomainRecords::with_answers(DomainName::parse("vinterhavn.se").unwrap(), answers);
        r.blocklists = Some(Arc::new(BlocklistRequest {
            lists: lists(&["spamhaus-zen", "spamhaus-dbl"]),
            ips: ips
                .iter()
                .map(|ip| SendingAddress {
                    ip: ip.parse().unwrap(),
                    from: "--ip".into(),
                })
                .collect(),
        }));
        r
    }

    fn ids(findings: &[Finding]) -> Vec<(String, Severity)> {
        findings
            .iter()
            .map(|f| (f.id.clone(), f.severity))
            .collect()
    }

    #[test]
    fn clean_everywhere_is_one_pass() {
        let r = records(
            &["149.72.10.20"],
            vec![a("20.10.72.149.zen.spamhaus.org", &[])],
        );
        let f = analyse(&r);
        assert_eq!(ids(&f), [("blocklist.clean".to_string(), Severity::Pass)]);
        assert!(
            f[0].message.contains("2 lookups on 2 lists"),
            "{}",
            f[0].message
        );
    }

    #[test]
    fn a_listing_fails_with_its_meaning_and_reason() {
        let mut r = records(
            &["149.72.10.20"],
            vec![a("20.10.72.149.zen.spamhaus.org", &["127.0.0.3"])],
        );
        r.insert(Arc::new(answer(
            "20.10.72.149.zen.spamhaus.org",
            QueryType::Txt,
            Outcome::Records(
                vec![Record {
                    ttl: 300,
                    data: RecordData::Txt(vec![
                        b"https://check.spamhaus.org/query/ip/149.72.10.20".to_vec(),
                    ]),
                }]
                .into(),
            ),
        )));
        let f = analyse(&r);
        let listed = f.iter().find(|f| f.id == "blocklist.listed").unwrap();
        assert_eq!(listed.severity, Severity::Fail);
        assert!(
            listed
                .message
                .contains("149.72.10.20 (--ip) is listed on Spamhaus ZEN: 127.0.0.3: CSS"),
            "{}",
            listed.message
        );
        assert!(
            listed.message.contains("check.spamhaus.org/query/ip"),
            "{}",
            listed.message
        );
        // The DBL still answered clean for the domain.
        assert!(f
            .iter()
            .any(|f| f.id == "blocklist.clean" && f.message.contains("Spamhaus DBL")));
    }

    #[test]
    fn public_resolver_answer_is_inconclusive_never_listed() {
        let r = records(
            &["149.72.10.20"],
            vec![a("20.10.72.149.zen.spamhaus.org", &["127.255.255.254"])],
        );
        let f = analyse(&r);
        assert!(!f.iter().any(|f| f.id == "blocklist.listed"));
        let refused = f.iter().find(|f| f.id == "blocklist.refused").unwrap();
        assert_eq!(refused.severity, Severity::Inconclusive);
        assert!(
            refused.message.contains("public or open resolver"),
            "{}",
            refused.message
        );
    }

    #[test]
    fn a_list_that_lists_everything_is_not_believed() {
        let mut r = records(
            &["149.72.10.20"],
            vec![a("20.10.72.149.zen.spamhaus.org", &["127.0.0.2"])],
        );
        r.insert(Arc::new(a("1.0.0.127.zen.spamhaus.org", &["127.0.0.2"])));
        let f = analyse(&r);
        assert!(
            !f.iter().any(|f| f.id == "blocklist.listed"),
            "{:?}",
            ids(&f)
        );
        let u = f.iter().find(|f| f.id == "blocklist.unreliable").unwrap();
        assert!(u.message.contains("must-not-list"), "{}", u.message);
    }

    #[test]
    fn a_silent_list_is_not_called_clean() {
        let mut r = records(
            &["149.72.10.20"],
            vec![a("20.10.72.149.zen.spamhaus.org", &[])],
        );
        r.insert(Arc::new(a("2.0.0.127.zen.spamhaus.org", &[])));
        let f = analyse(&r);
        let u = f.iter().find(|f| f.id == "blocklist.unreliable").unwrap();
        assert!(
            u.message.contains("not answering this resolver"),
            "{}",
            u.message
        );
        assert!(f
            .iter()
            .all(|f| f.id != "blocklist.clean" || !f.message.contains("ZEN")));
    }

    #[test]
    fn failed_and_rewritten_answers_are_inconclusive() {
        let r = records(
            &["149.72.10.20", "2a01:111:f400::1"],
            vec![
                a("20.10.72.149.zen.spamhaus.org", &["198.51.100.80"]),
                answer(
                    lists(&["spamhaus-zen"])[0]
                        .ip_query("2a01:111:f400::1".parse().unwrap())
                        .unwrap()
                        .as_str(),
                    QueryType::A,
                    Outcome::Failed(LookupError::Timeout),
                ),
            ],
        );
        let f = analyse(&r);
        let inconclusive: Vec<&Finding> = f
            .iter()
            .filter(|f| f.id == "blocklist.inconclusive")
            .collect();
        assert_eq!(inconclusive.len(), 2, "{:?}", ids(&f));
        assert!(inconclusive[0].message.contains("outside 127.0.0.0/8"));
        assert!(inconclusive[1].message.contains("timed out"));
    }

    #[test]
    fn private_addresses_are_named_and_skipped() {
        let r = records(&["10.20.30.40"], vec![]);
        let f = analyse(&r);
        assert_eq!(f[0].id, "blocklist.not-public");
        assert!(f[0].message.contains("10.20.30.40 (--ip)"));
        // Only the domain was asked (DBL); ZEN had nothing to look up.
        let clean = f.iter().find(|f| f.id == "blocklist.clean").unwrap();
        assert!(
            clean.message.contains("1 lookup on 1 list (Spamhaus DBL)"),
            "{}",
            clean.message
        );
    }
}
