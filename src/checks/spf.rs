//! SPF checks (RFC 7208): the record, its syntax, and the budget of its lookup tree.
//!
//! The analyser walks the fetched include tree in evaluation order and counts what RFC 7208
//! §4.6.4 counts: one lookup per `include`, `a`, `mx`, `ptr`, `exists` and `redirect`, through
//! every include and redirect — but not the address lookups of `mx` hosts, not `exp=`, and
//! nothing after `all` (never evaluated). Void lookups (NXDOMAIN or no data) are counted once per
//! term and per address family, because an `a` host without AAAA is void only for IPv6 senders.
//! The tree itself is the evidence, so users see where the budget goes.
//!
//! Ids: `spf.missing`, `spf.multiple`, `spf.syntax`, `spf.lookup-limit`, `spf.void-lookup-limit`,
//! `spf.include-missing`, `spf.include-invalid`, `spf.loop`, `spf.all-pass`, `spf.all-neutral`,
//! `spf.ptr`, `spf.record-size`, `spf.lookup-budget`, `spf.terms-after-all`,
//! `spf.redirect-ignored`, `spf.mx-too-many`, `spf.ok`, `spf.inconclusive`.

use crate::dns::{Answer, Outcome, QueryType};
use crate::domain::DomainName;
use crate::fetch::{evaluated_terms, mx_hosts, spf_strings, DomainRecords, MAX_MX_HOSTS};
use crate::finding::{Finding, RecordChange, Severity};
use crate::records::spf::{DomainSpec, Mechanism, Qualifier, SpfRecord, TermKind};
use serde::Serialize;

/// RFC 7208 §4.6.4.
pub const LOOKUP_LIMIT: u32 = 10;
pub const VOID_LIMIT: u32 = 2;
/// RFC 7208 §3.4: answers over 512 bytes may need TCP, which some verifiers do not retry.
pub const SIZE_LIMIT: usize = 512;

/// One record in the lookup tree.
#[derive(Debug, Clone, Serialize)]
pub struct SpfNode {
    pub domain: String,
    pub record: Option<String>,
    /// Why the record cannot be used, when it cannot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    pub terms: Vec<SpfTermNode>,
    /// Lookups this record costs, its includes and redirect included.
    pub lookups: u32,
}

/// One term of a record in the tree.
#[derive(Debug, Clone, Serialize)]
pub struct SpfTermNode {
    pub term: String,
    /// What this term itself costs (0 or 1).
    pub cost: u32,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub void_ipv4: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub void_ipv6: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub child: Option<Box<SpfNode>>,
}

/// Totals and problems collected while walking the tree.
#[derive(Debug, Default)]
pub struct SpfWalk {
    pub lookups: u32,
    pub void_ipv4: Vec<String>,
    pub void_ipv6: Vec<String>,
    /// (term, why) for include/redirect targets without a usable SPF record.
    pub missing: Vec<(String, String)>,
    pub invalid: Vec<(String, String)>,
    pub loops: Vec<String>,
    pub ptr: Vec<String>,
    pub mx_too_many: Vec<String>,
    /// (question, error) for lookups that could not be answered.
    pub failed: Vec<(String, String)>,
    pub truncated: bool,
}

/// Analyses the SPF record of `records.domain`.
pub fn analyse(records: &DomainRecords) -> Vec<Finding> {
    let domain = &records.domain;
    let Some(txt) = records.get(domain, QueryType::Txt) else {
        return vec![];
    };
    if let Some(error) = txt.failed() {
        return vec![Finding::new(
            "spf.inconclusive",
            Severity::Inconclusive,
            format!("The TXT records of {domain} could not be fetched ({error}), so SPF was not checked."),
        )
        .evidence(txt.describe())];
    }
    if matches!(txt.outcome, Outcome::CnameLoop | Outcome::NxDomain) {
        // Reported once for the domain (`dns.cname-loop`, `domain.nxdomain`).
        return vec![];
    }
    let spf = spf_strings(txt);
    match spf.len() {
        0 => {
            return vec![Finding::new(
                "spf.missing",
                Severity::Fail,
                format!(
                    "{domain} has no SPF record, so receivers cannot tell which servers may send \
                     its mail; Gmail and Yahoo require SPF or DKIM for all senders and both for \
                     bulk senders."
                ),
            )
            .evidence(txt.describe())
            .fix(format!(
                "Publish one TXT record at {domain}: `v=spf1 include:<your platform's SPF domain> -all` \
                 (or `~all` while you verify)."
            ))]
        }
        1 => {}
        n => {
            return vec![Finding::new(
                "spf.multiple",
                Severity::Fail,
                format!(
                    "{domain} publishes {n} SPF records; receivers return permerror and SPF fails \
                     for all mail (a record split into several strings would be one record — \
                     these are separate records)."
                ),
            )
            .evidence(spf.iter().map(|s| format!("\"{s}\"")).collect::<Vec<_>>().join("\n"))
            .fix("Merge them into one `v=spf1 … -all` record and delete the others.")]
        }
    }
    let record = SpfRecord::parse(&spf[0]);
    let mut findings = Vec::new();
    if !record.errors.is_empty() {
        let lines: Vec<String> = record
            .errors
            .iter()
            .map(|e| {
                if e.position == 0 {
                    e.reason.clone()
                } else {
                    format!("term {} `{}`: {}", e.position, e.raw, e.reason)
                }
            })
            .collect();
        findings.push(
            Finding::new(
                "spf.syntax",
                Severity::Fail,
                format!(
                    "The SPF record of {domain} does not parse, so receivers return permerror \
                     and SPF fails for all mail: {}",
                    lines.join("; ")
                ),
            )
            .evidence(format!("{domain} TXT \"{}\"", record.text))
            .fix("Correct the terms named above; each term is separated by one space, e.g. `v=spf1 ip4:192.0.2.0/24 include:_spf.example.net -all`."),
        );
    }
    let size = record.text.len();
    if size > SIZE_LIMIT {
        findings.push(
            Finding::new(
                "spf.record-size",
                Severity::Warn,
                format!(
                    "The SPF record is {size} bytes; answers over 512 bytes need EDNS or TCP and \
                     some verifiers fail them (RFC 7208 §3.4)."
                ),
            )
            .evidence(format!("{domain} TXT ({size} bytes) \"{}\"", record.text))
            .fix("Shorten the record: drop unused includes, or move a platform's include to the subdomain it sends from."),
        );
    }
    let mut walk = SpfWalk {
        truncated: records.spf_truncated,
        ..Default::default()
    };
    let mut path = vec![domain.clone()];
    let tree = walk_record(records, domain, &record, &mut path, &mut walk);
    let evidence = render_tree(&tree, &walk);
    let data = serde_json::to_value(&tree).ok();
    let with_tree = |f: Finding| {
        let f = f.evidence(evidence.clone());
        match &data {
            Some(d) => f.data(d.clone()),
            None => f,
        }
    };

    // With syntax errors receivers stop at permerror; how the record ends is then moot.
    if record.errors.is_empty() {
        findings.extend(all_findings(records, domain, &record));
    }
    let after_all = record.after_all();
    if !after_all.is_empty() {
        let terms: Vec<&str> = after_all.iter().map(|t| t.raw.as_str()).collect();
        findings.push(
            Finding::new(
                "spf.terms-after-all",
                Severity::Warn,
                format!(
                    "{} after `all` are never evaluated: {}",
                    plural(terms.len(), "term"),
                    terms.join(" ")
                ),
            )
            .evidence(format!("{domain} TXT \"{}\"", record.text))
            .fix(format!(
                "Move these terms before `all`, or delete them: `{}`.",
                crate::fixes::spf_edit(
                    &record.text,
                    &[],
                    &terms.iter().map(|t| t.to_string()).collect::<Vec<_>>()
                )
            ))
            .records(vec![RecordChange::replace(
                domain,
                "TXT",
                record.text.clone(),
                crate::fixes::spf_edit(
                    &record.text,
                    &[],
                    &terms.iter().map(|t| t.to_string()).collect::<Vec<_>>(),
                ),
            )]),
        );
    }
    if let Some(term) = record.ignored_redirect() {
        findings.push(
            Finding::new(
                "spf.redirect-ignored",
                Severity::Warn,
                format!(
                    "`{}` is ignored because the record has an `all` term (RFC 7208 §6.1).",
                    term.raw
                ),
            )
            .evidence(format!("{domain} TXT \"{}\"", record.text))
            .fix("Remove either `all` or the redirect."),
        );
    }
    for (term, why) in &walk.missing {
        findings.push(with_tree(
            Finding::new(
                "spf.include-missing",
                Severity::Fail,
                format!("`{term}` points to a name with no SPF record ({why}); receivers return permerror and SPF fails for all mail."),
            )
            .fix(format!("Remove `{term}`, or correct the name to the one your platform documents.")),
        ));
    }
    for (term, why) in &walk.invalid {
        findings.push(with_tree(
            Finding::new(
                "spf.include-invalid",
                Severity::Fail,
                format!("`{term}` points to an SPF record that is itself broken ({why}); the error propagates and SPF fails."),
            )
            .fix(format!("Ask the owner of the target to fix it, or remove `{term}`.")),
        ));
    }
    for chain in &walk.loops {
        findings.push(with_tree(
            Finding::new(
                "spf.loop",
                Severity::Fail,
                format!("The include/redirect chain loops ({chain}); receivers return permerror."),
            )
            .fix("Remove the include or redirect that points back into the chain."),
        ));
    }
    for term in &walk.mx_too_many {
        findings.push(with_tree(
            Finding::new(
                "spf.mx-too-many",
                Severity::Fail,
                format!("`{term}` has more than {MAX_MX_HOSTS} MX hosts; RFC 7208 §4.6.4 makes that a permerror."),
            )
            .fix("Replace the `mx` term with `ip4:`/`ip6:` ranges or a smaller include."),
        ));
    }
    if !walk.ptr.is_empty() {
        findings.push(with_tree(
            Finding::new(
                "spf.ptr",
                Severity::Warn,
                format!(
                    "The record uses the deprecated `ptr` mechanism ({}): it is slow, unreliable and some receivers ignore it (RFC 7208 §5.5).",
                    walk.ptr.join(", ")
                ),
            )
            .fix("Replace `ptr` with `ip4:`/`ip6:` ranges or `a:` terms for the sending hosts."),
        ));
    }
    let total = walk.lookups;
    if total > LOOKUP_LIMIT {
        let more = if walk.truncated { " or more" } else { "" };
        findings.push(with_tree(
            Finding::new(
                "spf.lookup-limit",
                Severity::Fail,
                format!(
                    "Evaluating the SPF record of {domain} takes {total}{more} DNS lookups; the limit is {LOOKUP_LIMIT}, \
                     so receivers return permerror and SPF fails for all mail."
                ),
            )
            .fix(budget_fix(&tree)),
        ));
    } else if total >= LOOKUP_LIMIT - 1 {
        findings.push(with_tree(
            Finding::new(
                "spf.lookup-budget",
                Severity::Warn,
                format!(
                    "The SPF record uses {total} of {LOOKUP_LIMIT} DNS lookups: there is no room to add another platform's include during a migration."
                ),
            )
            .fix(budget_fix(&tree)),
        ));
    }
    let v4 = walk.void_ipv4.len() as u32;
    let v6 = walk.void_ipv6.len() as u32;
    if v4 > VOID_LIMIT {
        findings.push(with_tree(
            Finding::new(
                "spf.void-lookup-limit",
                Severity::Fail,
                format!(
                    "{v4} lookups return no data (limit {VOID_LIMIT}): {}; receivers return permerror.",
                    walk.void_ipv4.join(", ")
                ),
            )
            .fix("Remove the terms that point to names without records."),
        ));
    } else if v6 > VOID_LIMIT {
        findings.push(with_tree(
            Finding::new(
                "spf.void-lookup-limit",
                Severity::Warn,
                format!(
                    "For senders connecting over IPv6, {v6} lookups return no data (limit {VOID_LIMIT}): {}; \
                     SPF fails for mail sent over IPv6.",
                    walk.void_ipv6.join(", ")
                ),
            )
            .fix("Publish AAAA records for these hosts, or remove the terms."),
        ));
    }
    if !walk.failed.is_empty() {
        let lines: Vec<String> = walk
            .failed
            .iter()
            .map(|(q, e)| format!("{q}: {e}"))
            .collect();
        findings.push(with_tree(Finding::new(
            "spf.inconclusive",
            Severity::Inconclusive,
            format!(
                "{} in the SPF tree could not be answered, so the lookup count is incomplete: {}",
                plural(lines.len(), "lookup"),
                lines.join("; ")
            ),
        )));
    }
    if !findings
        .iter()
        .any(|f| f.severity >= Severity::Inconclusive)
    {
        let ending = effective_all(records, &record)
            .map(|(t, _)| t)
            .unwrap_or_else(|| "no all".into());
        findings.push(with_tree(Finding::new(
            "spf.ok",
            Severity::Pass,
            format!(
                "SPF record found: {total} of {LOOKUP_LIMIT} DNS lookups, {v4} void (IPv4), {v6} void (IPv6), ends with `{ending}`."
            ),
        )));
    }
    findings
}

/// How the record treats servers it does not list: its `all`, or its redirect target's.
fn all_findings(records: &DomainRecords, domain: &DomainName, record: &SpfRecord) -> Vec<Finding> {
    let mut findings = Vec::new();
    // The exact record ending in `~all`, when the `all` to change is this record's own (not a
    // redirect target's).
    let softfail = || -> Vec<RecordChange> {
        if record.redirect().is_some() && record.all().is_none() {
            return Vec::new();
        }
        vec![RecordChange::replace(
            domain,
            "TXT",
            record.text.clone(),
            crate::fixes::spf_with_all(&record.text, "~all"),
        )]
    };
    if let Some((all_term, qualifier)) = effective_all(records, record) {
        if qualifier == Qualifier::Pass {
            findings.push(
                Finding::new(
                    "spf.all-pass",
                    Severity::Fail,
                    format!(
                        "`{all_term}` authorises every server on the internet to send as {domain}; \
                         SPF then proves nothing and spoofed mail passes."
                    ),
                )
                .evidence(format!("{domain} TXT \"{}\"", record.text))
                .fix("End the record with `-all` (or `~all` while you verify).")
                .records(softfail()),
            );
        } else if qualifier == Qualifier::Neutral {
            findings.push(
                Finding::new(
                    "spf.all-neutral",
                    Severity::Warn,
                    format!("`{all_term}` makes mail from unlisted servers neutral: SPF neither passes nor fails it."),
                )
                .evidence(format!("{domain} TXT \"{}\"", record.text))
                .fix("End the record with `-all` (or `~all`).")
                .records(softfail()),
            );
        }
    } else if record.redirect().is_none() {
        findings.push(
            Finding::new(
                "spf.all-neutral",
                Severity::Warn,
                "The record has neither `all` nor `redirect=`: mail from unlisted servers gets a neutral result.",
            )
            .evidence(format!("{domain} TXT \"{}\"", record.text))
            .fix("End the record with `-all` (or `~all`).")
            .records(softfail()),
        );
    }
    findings
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// The `all` that decides unlisted senders: the record's own, or its redirect target's.
fn effective_all(records: &DomainRecords, record: &SpfRecord) -> Option<(String, Qualifier)> {
    let mut current = std::sync::Arc::new(record.clone());
    for _ in 0..10 {
        if let Some((term, q)) = current.all() {
            return Some((term.raw.clone(), q));
        }
        let (_, DomainSpec::Literal(target)) = current.redirect()? else {
            return None;
        };
        let target = DomainName::parse(target).ok()?;
        let answer = records.get(&target, QueryType::Txt)?;
        current = crate::fetch::single_spf(answer)?;
    }
    None
}

fn budget_fix(tree: &SpfNode) -> String {
    let mut costly: Vec<(String, u32)> = tree
        .terms
        .iter()
        .filter(|t| t.cost > 0)
        .map(|t| {
            let total = t.cost + t.child.as_ref().map_or(0, |c| c.lookups);
            (t.term.clone(), total)
        })
        .collect();
    costly.sort_by_key(|c| std::cmp::Reverse(c.1));
    let list: Vec<String> = costly
        .iter()
        .take(4)
        .map(|(t, n)| format!("`{t}` ({n})"))
        .collect();
    format!(
        "Bring it to 10 or fewer: remove includes of platforms you no longer use, move a \
         platform to the subdomain it sends from (its own SPF record has its own budget), or \
         replace your own `a`/`mx` terms with `ip4:`/`ip6:` ranges. Most expensive here: {}.",
        list.join(", ")
    )
}

/// Walks one record in evaluation order, recursing into include and redirect targets.
fn walk_record(
    records: &DomainRecords,
    current: &DomainName,
    record: &SpfRecord,
    path: &mut Vec<DomainName>,
    walk: &mut SpfWalk,
) -> SpfNode {
    let mut node = SpfNode {
        domain: current.to_string(),
        record: Some(record.text.clone()),
        problem: None,
        terms: Vec::new(),
        lookups: 0,
    };
    let evaluated = evaluated_terms(record);
    for term in &record.terms {
        let mut t = SpfTermNode {
            term: term.raw.clone(),
            cost: 0,
            void_ipv4: false,
            void_ipv6: false,
            note: None,
            child: None,
        };
        let reached = evaluated.iter().find(|(e, _)| e.position == term.position);
        let Some((_, mechanism)) = reached else {
            if matches!(
                term.kind,
                TermKind::Directive { .. } | TermKind::Redirect(_)
            ) {
                t.note = Some("never evaluated".into());
            }
            node.terms.push(t);
            continue;
        };
        match (mechanism, &term.kind) {
            (Some(Mechanism::Include(spec)), _) | (None, TermKind::Redirect(spec)) => {
                t.cost = 1;
                match spec {
                    DomainSpec::Macro(_) => {
                        t.note =
                            Some("macro: expanded per message, its lookups not counted here".into())
                    }
                    DomainSpec::Literal(name) => {
                        let child = follow(records, &term.raw, name, path, walk);
                        t.child = Some(Box::new(child));
                    }
                }
            }
            (Some(Mechanism::A { domain, .. }), _) => {
                t.cost = 1;
                match target(domain, current) {
                    None => t.note = Some("macro: expanded per message".into()),
                    Some(name) => {
                        let a = records.get(&name, QueryType::A);
                        let aaaa = records.get(&name, QueryType::Aaaa);
                        t.void_ipv4 = note_void(a, &term.raw, &mut walk.void_ipv4);
                        t.void_ipv6 = note_void(aaaa, &term.raw, &mut walk.void_ipv6);
                        record_failure(a, walk);
                        record_failure(aaaa, walk);
                        t.note = void_note(t.void_ipv4, t.void_ipv6, &name, "A", "AAAA");
                    }
                }
            }
            (Some(Mechanism::Mx { domain, .. }), _) => {
                t.cost = 1;
                match target(domain, current) {
                    None => t.note = Some("macro: expanded per message".into()),
                    Some(name) => {
                        let mx = records.get(&name, QueryType::Mx);
                        let void = mx.is_some_and(Answer::is_void);
                        if void {
                            t.void_ipv4 = true;
                            t.void_ipv6 = true;
                            walk.void_ipv4.push(term.raw.clone());
                            walk.void_ipv6.push(term.raw.clone());
                            t.note = Some(format!("{name} has no MX: void lookup"));
                        }
                        record_failure(mx, walk);
                        if let Some(mx) = mx {
                            let hosts = mx_hosts(mx);
                            if mx.records().len() > MAX_MX_HOSTS {
                                walk.mx_too_many.push(term.raw.clone());
                            }
                            let no_address: Vec<String> = hosts
                                .iter()
                                .take(MAX_MX_HOSTS)
                                .filter(|h| {
                                    let a = records.get(h, QueryType::A);
                                    let aaaa = records.get(h, QueryType::Aaaa);
                                    record_failure(a, walk);
                                    record_failure(aaaa, walk);
                                    a.is_some_and(Answer::is_void)
                                        && aaaa.is_some_and(Answer::is_void)
                                })
                                .map(|h| h.to_string())
                                .collect();
                            if !no_address.is_empty() {
                                t.note = Some(format!(
                                    "MX hosts without addresses (not counted): {}",
                                    no_address.join(", ")
                                ));
                            }
                        }
                    }
                }
            }
            (Some(Mechanism::Ptr(_)), _) => {
                t.cost = 1;
                walk.ptr.push(format!("{} in {current}", term.raw));
                t.note = Some("deprecated; needs the sender's IP".into());
            }
            (Some(Mechanism::Exists(spec)), _) => {
                t.cost = 1;
                match spec {
                    DomainSpec::Macro(_) => {
                        t.note = Some("macro: evaluated per message with the sender's IP".into())
                    }
                    DomainSpec::Literal(name) => {
                        if let Ok(name) = DomainName::parse(name) {
                            let a = records.get(&name, QueryType::A);
                            record_failure(a, walk);
                            if a.is_some_and(Answer::is_void) {
                                t.void_ipv4 = true;
                                t.void_ipv6 = true;
                                walk.void_ipv4.push(term.raw.clone());
                                walk.void_ipv6.push(term.raw.clone());
                                t.note = Some(format!("{name} has no A record: void lookup"));
                            }
                        }
                    }
                }
            }
            _ => {}
        }
        walk.lookups += t.cost;
        node.lookups += t.cost + t.child.as_ref().map_or(0, |c| c.lookups);
        node.terms.push(t);
    }
    node
}

fn target(domain: &Option<DomainSpec>, current: &DomainName) -> Option<DomainName> {
    match domain {
        None => Some(current.clone()),
        Some(DomainSpec::Literal(s)) => DomainName::parse(s).ok(),
        Some(DomainSpec::Macro(_)) => None,
    }
}

fn note_void(answer: Option<&Answer>, term: &str, list: &mut Vec<String>) -> bool {
    if answer.is_some_and(Answer::is_void) {
        list.push(term.to_string());
        true
    } else {
        false
    }
}

fn void_note(v4: bool, v6: bool, name: &DomainName, t4: &str, t6: &str) -> Option<String> {
    match (v4, v6) {
        (true, true) => Some(format!("{name} has no address: void lookup")),
        (true, false) => Some(format!("{name} has no {t4}: void for IPv4 senders")),
        (false, true) => Some(format!("{name} has no {t6}: void for IPv6 senders")),
        (false, false) => None,
    }
}

fn record_failure(answer: Option<&Answer>, walk: &mut SpfWalk) {
    if let Some(a) = answer {
        if let Some(e) = a.failed() {
            let q = format!("{} {}", a.qtype, a.name);
            if !walk.failed.iter().any(|(x, _)| *x == q) {
                walk.failed.push((q, e.to_string()));
            }
        }
    }
}

/// Follows an include or redirect to its target record.
fn follow(
    records: &DomainRecords,
    term: &str,
    name: &str,
    path: &mut Vec<DomainName>,
    walk: &mut SpfWalk,
) -> SpfNode {
    let mut node = SpfNode {
        domain: name.to_string(),
        record: None,
        problem: None,
        terms: Vec::new(),
        lookups: 0,
    };
    let Ok(target) = DomainName::parse(name) else {
        node.problem = Some("not a valid domain name".into());
        walk.missing
            .push((term.to_string(), "not a valid domain name".into()));
        return node;
    };
    if path.contains(&target) {
        let mut chain: Vec<String> = path.iter().map(|d| d.to_string()).collect();
        chain.push(target.to_string());
        let chain = chain.join(" → ");
        node.problem = Some(format!("loop: {chain}"));
        walk.loops.push(chain);
        return node;
    }
    let Some(answer) = records.get(&target, QueryType::Txt) else {
        node.problem = Some("not fetched: past the lookup limit".into());
        walk.truncated = true;
        return node;
    };
    let problem = match &answer.outcome {
        Outcome::Failed(e) => {
            walk.failed.push((format!("TXT {target}"), e.to_string()));
            Some(format!("lookup failed: {e}"))
        }
        Outcome::CnameLoop => {
            walk.missing
                .push((term.to_string(), "its CNAME chain loops".into()));
            Some("CNAME loop".into())
        }
        Outcome::NxDomain | Outcome::NoData => {
            let why = if answer.outcome == Outcome::NxDomain {
                "the name does not exist"
            } else {
                "the name has no TXT records"
            };
            walk.missing
                .push((term.to_string(), format!("{target}: {why}")));
            // The TXT query of the target returned nothing: a void lookup for every sender.
            walk.void_ipv4.push(term.to_string());
            walk.void_ipv6.push(term.to_string());
            Some(why.into())
        }
        Outcome::Records(_) => {
            let spf = spf_strings(answer);
            match spf.len() {
                0 => {
                    walk.missing.push((
                        term.to_string(),
                        format!("{target} has TXT records but none is SPF"),
                    ));
                    Some("no SPF record".into())
                }
                1 => {
                    let child = crate::records::spf::parse_shared(&spf[0]);
                    if !child.errors.is_empty() {
                        let why = child
                            .errors
                            .iter()
                            .map(|e| format!("`{}`: {}", e.raw, e.reason))
                            .collect::<Vec<_>>()
                            .join("; ");
                        walk.invalid.push((term.to_string(), why));
                    }
                    path.push(target.clone());
                    let sub = walk_record(records, &target, &child, path, walk);
                    path.pop();
                    return sub;
                }
                n => {
                    walk.invalid.push((
                        term.to_string(),
                        format!("{target} publishes {n} SPF records"),
                    ));
                    Some(format!("{n} SPF records"))
                }
            }
        }
    };
    node.problem = problem;
    node
}

/// Renders the lookup tree for the evidence field.
pub fn render_tree(tree: &SpfNode, walk: &SpfWalk) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "{}: {}\n",
        tree.domain,
        tree.record
            .as_deref()
            .map_or(String::new(), |r| format!("\"{r}\""))
    ));
    render_terms(tree, "", &mut out);
    out.push_str(&format!(
        "Total: {} of {} DNS lookups; void lookups: {} for IPv4 senders, {} for IPv6 senders",
        walk.lookups,
        LOOKUP_LIMIT,
        walk.void_ipv4.len(),
        walk.void_ipv6.len()
    ));
    if walk.truncated {
        out.push_str(" (tree not fetched beyond the limit)");
    }
    out
}

fn render_terms(node: &SpfNode, indent: &str, out: &mut String) {
    // The record itself is on the line above; only terms that cost a lookup, carry a note or
    // lead to another record get a line of their own.
    let mut lines: Vec<(String, Option<&SpfNode>)> = Vec::new();
    for t in &node.terms {
        if t.cost == 0 && t.note.is_none() && t.child.is_none() {
            continue;
        }
        let cost = match (t.cost, &t.child) {
            (0, _) => String::new(),
            (c, Some(child)) if child.lookups > 0 => format!("  +{c} (+{} inside)", child.lookups),
            (c, _) => format!("  +{c}"),
        };
        let note = t
            .note
            .as_deref()
            .map_or(String::new(), |n| format!("  [{n}]"));
        lines.push((format!("{}{cost}{note}", t.term), t.child.as_deref()));
    }
    let n = lines.len();
    for (i, (text, child)) in lines.into_iter().enumerate() {
        let last = i + 1 == n;
        let branch = if last { "└─ " } else { "├─ " };
        out.push_str(&format!("{indent}{branch}{text}\n"));
        if let Some(child) = child {
            let child_indent = format!("{indent}{}", if last { "   " } else { "│  " });
            let head = match (&child.record, &child.problem) {
                (_, Some(p)) => format!("{}: {p}", child.domain),
                (Some(r), None) => format!("{}: \"{r}\"", child.domain),
                (None, None) => child.domain.clone(),
            };
            out.push_str(&format!("{child_indent}{head}\n"));
            render_terms(child, &child_indent, out);
        }
    }
}

/// The single SPF record at `domain`, its lookup tree and totals, as fetched; `None` when the
/// domain has no single parseable record.
pub fn walk_domain(
    records: &DomainRecords,
    domain: &DomainName,
) -> Option<(std::sync::Arc<SpfRecord>, SpfNode, SpfWalk)> {
    let answer = records.get(domain, QueryType::Txt)?;
    let record = crate::fetch::single_spf(answer)?;
    let mut walk = SpfWalk::default();
    let mut path = vec![domain.clone()];
    let tree = walk_record(records, domain, &record, &mut path, &mut walk);
    Some((record, tree, walk))
}

/// What adding `include:<target>` to a record costs: 1 plus the lookups of the target's tree.
pub fn include_cost(records: &DomainRecords, target: &DomainName) -> SpfWalk {
    let record = SpfRecord::parse(&format!("v=spf1 include:{target} -all"));
    let mut walk = SpfWalk::default();
    walk_record(records, target, &record, &mut Vec::new(), &mut walk);
    walk
}

/// True when the record includes (or redirects to) `target`, directly.
pub fn includes(record: &SpfRecord, target: &str) -> bool {
    let target = target.trim_end_matches('.').to_ascii_lowercase();
    record.terms.iter().any(|t| match &t.kind {
        TermKind::Directive {
            mechanism: Mechanism::Include(DomainSpec::Literal(name)),
            ..
        }
        | TermKind::Redirect(DomainSpec::Literal(name)) => *name == target,
        _ => false,
    })
}
