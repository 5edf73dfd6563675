//! DKIM key checks (RFC 6376, RFC 8301 key sizes, RFC 8463 Ed25519).
//!
//! Selectors come from the user (`--selector`, the domains file) or from the built-in list of
//! common ones. A selector is often a CNAME delegating the key to the sending platform; when the
//! platform's side is missing, the CNAME dangles and every signature fails, which is reported as
//! such rather than as a plain missing key.
//!
//! Ids: `dkim.missing`, `dkim.selector-missing`, `dkim.key-weak`, `dkim.revoked`, `dkim.testing`,
//! `dkim.syntax`, `dkim.multiple`, `dkim.cname-dangling`, `dkim.hash-sha1`,
//! `dkim.service-not-email`, `dkim.probed`, `dkim.ok`, `dkim.inconclusive`.

use crate::dns::{Answer, Outcome, QueryType};
use crate::fetch::{DomainRecords, Selector};
use crate::finding::{Finding, RecordChange, Severity};
use crate::records::dkim::{DkimKeyRecord, KeyType, PublicKey};

/// RSA keys below this fail outright: receivers following RFC 8301 reject them.
pub const RSA_MIN_BITS: usize = 1024;
/// RSA keys below this are weak; RFC 8301 asks signers for at least 2048 bits.
pub const RSA_GOOD_BITS: usize = 2048;

pub fn analyse(records: &DomainRecords) -> Vec<Finding> {
    let domain = &records.domain;
    let mut findings = Vec::new();
    let mut usable = Vec::new();
    let mut present = 0usize;
    let mut failed = Vec::new();
    let mut revoked: Vec<(&Selector, String)> = Vec::new();
    for selector in &records.selectors {
        let name = domain.child(&format!("{}._domainkey", selector.name));
        let Some(answer) = records.get(&name, QueryType::Txt) else {
            continue;
        };
        let label = label(selector);
        match &answer.outcome {
            Outcome::Failed(e) => failed.push(format!("{name}: {e}")),
            Outcome::CnameLoop => present += 1,
            Outcome::NxDomain | Outcome::NoData if !answer.cname_chain.is_empty() => {
                present += 1;
                let target = answer
                    .cname_chain
                    .last()
                    .map(|t| t.to_string())
                    .unwrap_or_default();
                findings.push(
                    Finding::new(
                        "dkim.cname-dangling",
                        Severity::Fail,
                        format!(
                            "Selector {label} is a CNAME to {target}, which has no key \
                             ({}); mail signed with this selector fails DKIM.",
                            if answer.outcome == Outcome::NxDomain { "the name does not exist" } else { "no TXT record" }
                        ),
                    )
                    .evidence(answer.describe())
                    .fix(format!(
                        "Finish domain authentication in the sending platform so it publishes the key at {target}, \
                         or point {name} at the target the platform shows."
                    )),
                );
            }
            Outcome::NxDomain | Outcome::NoData => {
                if selector.explicit {
                    findings.push(
                        Finding::new(
                            "dkim.selector-missing",
                            Severity::Fail,
                            format!("Selector {label} has no key record at {name}; mail signed with it fails DKIM."),
                        )
                        .evidence(answer.describe())
                        .fix(format!("Publish the key your platform shows at {name} (TXT or the CNAME it asks for).")),
                    );
                }
            }
            Outcome::Records(_) => {
                present += 1;
                let txts = answer.txt_strings();
                if txts.len() > 1 {
                    findings.push(
                        Finding::new(
                            "dkim.multiple",
                            Severity::Fail,
                            format!("Selector {label} has {} TXT records; receivers may pick the wrong one and fail the signature.", txts.len()),
                        )
                        .evidence(answer.describe())
                        .fix(format!("Keep exactly one key record at {name}.")),
                    );
                }
                let Some(text) = txts.first() else { continue };
                let key = DkimKeyRecord::parse(text);
                match key_findings(&label, &name.to_string(), answer, &key) {
                    KeyVerdict::Usable(mut f) => {
                        usable.push(selector);
                        findings.append(&mut f);
                    }
                    KeyVerdict::Revoked(reason) => revoked.push((selector, reason)),
                    KeyVerdict::Broken(mut f) => findings.append(&mut f),
                }
            }
        }
    }
    // A revoked probed selector beside a working one is normal key rotation.
    for (selector, evidence) in revoked {
        let label = label(selector);
        let (severity, msg) = if selector.explicit || usable.is_empty() {
            (
                Severity::Fail,
                format!(
                    "Selector {label} has been revoked (empty p=); mail signed with it fails DKIM."
                ),
            )
        } else {
            (Severity::Info, format!("Selector {label} has been revoked (empty p=), as is normal after a key rotation."))
        };
        let mut f = Finding::new("dkim.revoked", severity, msg).evidence(evidence);
        if severity == Severity::Fail {
            f = f.fix("Publish the current public key at this selector, or sign with a selector that has one.");
        }
        findings.push(f);
    }
    if !records.selectors.iter().any(|s| s.explicit) {
        let found: Vec<String> = records
            .selectors
            .iter()
            .filter(|s| {
                let name = domain.child(&format!("{}._domainkey", s.name));
                records
                    .get(&name, QueryType::Txt)
                    .is_some_and(|a| !a.records().is_empty() || !a.cname_chain.is_empty())
            })
            .map(label)
            .collect();
        findings.push(Finding::new(
            "dkim.probed",
            Severity::Info,
            format!(
                "No selector was given, so {} common selectors were probed; found: {}. \
                 Platforms with per-account selectors (Amazon SES, SparkPost, Postmark) need --selector.",
                records.selectors.len(),
                if found.is_empty() { "none".to_string() } else { found.join(", ") }
            ),
        ));
    }
    if present == 0 {
        if !failed.is_empty() {
            findings.push(
                Finding::new(
                    "dkim.inconclusive",
                    Severity::Inconclusive,
                    format!(
                        "No DKIM key was found, but {} could not be answered.",
                        crate::words::count(failed.len(), "lookup", "lookups")
                    ),
                )
                .evidence(failed.join("\n")),
            );
        } else {
            let names: Vec<String> = records.selectors.iter().map(|s| s.name.clone()).collect();
            findings.push(
                Finding::new(
                    "dkim.missing",
                    Severity::Fail,
                    format!(
                        "No DKIM key was found for {domain} (selectors tried: {}); without DKIM, \
                         Gmail and Yahoo bulk-sender requirements are not met and DMARC rests on SPF alone.",
                        names.join(", ")
                    ),
                )
                .fix("Enable DKIM signing in your sending platform and publish the records it shows; if you already sign, name the selector with --selector."),
            );
        }
    } else if !failed.is_empty() {
        findings.push(
            Finding::new(
                "dkim.inconclusive",
                Severity::Inconclusive,
                format!("{} selector lookups could not be answered.", failed.len()),
            )
            .evidence(failed.join("\n")),
        );
    }
    findings
}

fn label(selector: &Selector) -> String {
    match &selector.used_by {
        Some(by) if !selector.explicit => format!("{} ({by})", selector.name),
        _ => selector.name.clone(),
    }
}

enum KeyVerdict {
    Usable(Vec<Finding>),
    Revoked(String),
    Broken(Vec<Finding>),
}

fn key_findings(label: &str, name: &str, answer: &Answer, key: &DkimKeyRecord) -> KeyVerdict {
    let evidence = answer.describe();
    if key.key == PublicKey::Revoked {
        return KeyVerdict::Revoked(evidence);
    }
    let mut findings = Vec::new();
    // The key record edited, when it is published here (a CNAME'd selector is the platform's
    // to change).
    let edit = |tag: &str, value: Option<&str>| -> Vec<RecordChange> {
        if !answer.cname_chain.is_empty() {
            return Vec::new();
        }
        vec![RecordChange::replace(
            name,
            "TXT",
            key.text.clone(),
            crate::fixes::tag_list_with(&key.text, tag, value),
        )]
    };
    if let Some(bits) = key.bits() {
        if key.key_type == KeyType::Rsa && bits < RSA_MIN_BITS {
            findings.push(
                Finding::new(
                    "dkim.key-weak",
                    Severity::Fail,
                    format!("Selector {label} has a {bits}-bit RSA key; receivers reject keys under 1024 bits (RFC 8301) and such keys can be factored."),
                )
                .evidence(evidence.clone())
                .fix("Generate a 2048-bit key in your platform and publish it (rotate to a new selector)."),
            );
            return KeyVerdict::Broken(findings);
        }
    }
    if !key.errors.is_empty() {
        findings.push(
            Finding::new(
                "dkim.syntax",
                Severity::Fail,
                format!("The key record of selector {label} is malformed: {}", key.errors.join("; ")),
            )
            .evidence(evidence)
            .fix(format!("Copy the record for {name} again from your platform, exactly as shown (a TXT record `v=DKIM1; k=rsa; p=<base64>`).")),
        );
        return KeyVerdict::Broken(findings);
    }
    if key.sha1_only {
        findings.push(
            Finding::new(
                "dkim.hash-sha1",
                Severity::Fail,
                format!("Selector {label} allows only SHA-1 signatures (h=sha1), which receivers reject since RFC 8301."),
            )
            .evidence(evidence.clone())
            .fix("Remove `h=sha1` (or use `h=sha256`) and sign with rsa-sha256.")
            .records(edit("h", None)),
        );
    }
    if key.not_for_email {
        findings.push(
            Finding::new(
                "dkim.service-not-email",
                Severity::Fail,
                format!("Selector {label} is restricted to other services by s=; receivers will not use it for email."),
            )
            .evidence(evidence.clone())
            .fix("Remove the s= tag or set `s=email`.")
            .records(edit("s", None)),
        );
    }
    let bits = key.bits().unwrap_or(0);
    if key.key_type == KeyType::Rsa && bits < RSA_GOOD_BITS {
        findings.push(
            Finding::new(
                "dkim.key-weak",
                Severity::Warn,
                format!("Selector {label} has a {bits}-bit RSA key; 2048 bits is the current standard and some receivers will stop accepting 1024."),
            )
            .evidence(evidence.clone())
            .fix("Rotate to a 2048-bit key under a new selector, then revoke this one."),
        );
    }
    if key.testing {
        findings.push(
            Finding::new(
                "dkim.testing",
                Severity::Warn,
                format!("Selector {label} is in testing mode (t=y): receivers may treat its signatures as absent."),
            )
            .evidence(evidence.clone())
            .fix("Remove `t=y` from the key record once signing works.")
            .records({
                // Other flags (`t=y:s`) stay.
                let flags: Vec<String> = crate::records::tags::split_tags(&key.text)
                    .0
                    .iter()
                    .filter(|t| t.name.eq_ignore_ascii_case("t"))
                    .flat_map(|t| t.value.split(':').map(|f| f.trim().to_string()).collect::<Vec<_>>())
                    .filter(|f| !f.eq_ignore_ascii_case("y") && !f.is_empty())
                    .collect();
                if flags.is_empty() {
                    edit("t", None)
                } else {
                    edit("t", Some(&flags.join(":")))
                }
            }),
        );
    }
    if findings.iter().any(|f| f.severity == Severity::Fail) {
        return KeyVerdict::Broken(findings);
    }
    let kind = match key.key_type {
        KeyType::Rsa => format!("RSA {bits}-bit"),
        KeyType::Ed25519 => "Ed25519".to_string(),
    };
    let via = answer
        .cname_chain
        .last()
        .map_or(String::new(), |t| format!(" via CNAME to {t}"));
    findings.push(
        Finding::new(
            "dkim.ok",
            Severity::Pass,
            format!("Selector {label}: {kind} key{via}."),
        )
        .evidence(evidence),
    );
    KeyVerdict::Usable(findings)
}
