//! Runs the third-party record corpus (`fixtures/corpora/records/`) through mailshift's record
//! parsers and compares the valid/invalid verdicts with the source projects' expectations.
//!
//! The corpus holds record strings with the verdicts other checkers' test suites assert
//! (checkdmarc, mail-auth, dkimpy; see PROVENANCE.md there). Those verdicts are other tools'
//! opinions, so a disagreement is not automatically our bug. Every disagreement is classified by
//! reading the RFC:
//!
//! * [`KNOWN_DIFFERENCES`]: the row encodes another tool's opinion or an obsolete rule, and
//!   mailshift follows the RFC (each entry cites the section).
//! * [`PENDING_BUGS`]: mailshift is wrong. Tolerated so the suite stays green while the parser is
//!   fixed, but printed loudly; remove an entry (and raise [`EXPECTED`]) once it is fixed.
//!
//! Rows whose verdict depends on DNS answers (lookup limits, void lookups, include/redirect
//! loops, missing targets) cannot be judged from the record alone; they are excluded from the
//! comparison (the DNS fixture tests cover them) and only required to parse.
//!
//! Run with `cargo test --test records_corpus -- --nocapture` to see the table; set
//! `RECORDS_CORPUS_VERBOSE=1` to list the agreeing rows and mailshift's reasons too.

use mailshift::records::dkim::{DkimKeyRecord, KeyType, PublicKey};
use mailshift::records::dmarc::{is_dmarc_candidate, DmarcRecord};
use mailshift::records::spf::{is_spf, SpfRecord};
use serde_json::Value;
use std::fmt;

const CORPUS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/corpora/records/record-verdicts.json"
);

/// Disagreements where the corpus row encodes another tool's opinion or an obsolete rule and
/// mailshift follows the RFC: `(id, reason)`.
const KNOWN_DIFFERENCES: &[(&str, &str)] = &[
    (
        "spf-050",
        "RFC 7208 §4.6, §4.6.1: `extra` is neither a mechanism nor a name=value modifier, and a \
         syntax error anywhere in the record is permerror (RFC 7208 test suite \
         `detect-errors-anywhere`); checkdmarc only warns",
    ),
    (
        "spf-075",
        "RFC 7208 §5.3, §5.6: dual-cidr-length = [ip4-cidr-length] [\"/\" ip6-cidr-length], so \
         `a:domain.com/12/123` must be written `/12//123`; permerror (RFC 7208 test suite \
         `a-dual-cidr-ip4-err`); mail-auth is lenient",
    ),
    (
        "dkim-key-002",
        "RFC 6376 §3.2: WSP inside a value is significant, so `h=sha1:sha 256:other` allows only \
         sha1 (§3.6.1: unknown algorithms are ignored), and RFC 8301 §3.1 forbids rsa-sha1; \
         mail-auth strips the space and reads sha256",
    ),
];

/// Disagreements where mailshift is wrong per the RFC: `(id, what is wrong)`. Remove an entry
/// when the parser is fixed (the test fails while a fixed row is still listed).
const PENDING_BUGS: &[(&str, &str)] = &[];

/// Pinned per-kind figures: (kind, rows, compared, agreed). A change in any of them (a parser
/// regression, a fixed bug, a row silently dropped from the comparison) fails the test.
const EXPECTED: &[(&str, usize, usize, usize)] = &[
    ("spf", 77, 63, 61),
    ("spf-txt-set", 13, 13, 13),
    ("ip6-literal", 33, 33, 33),
    ("dmarc", 51, 49, 49),
    ("dmarc-txt-set", 4, 4, 4),
    ("dmarc-uri", 3, 3, 3),
    ("dkim-key", 13, 13, 12),
];

/// The kinds this test runs. `ip6-literal` (an `ip6:` value) and `dmarc-uri` (a `rua` value) are
/// wrapped in a minimal record. The corpus's other kinds (MTA-STS, TLS-RPT, RFC 6651 report
/// records) have no parser in `mailshift::records`.
const KINDS: &[&str] = &[
    "spf",
    "spf-txt-set",
    "ip6-literal",
    "dmarc",
    "dmarc-txt-set",
    "dmarc-uri",
    "dkim-key",
];

/// Upstream error classes whose verdict comes from DNS answers, not from the record text.
const DNS_ERROR_CLASSES: &[&str] = &[
    "SPFTooManyDNSLookups",
    "SPFTooManyVoidDNSLookups",
    "SPFIncludeLoop",
    "SPFRedirectLoop",
];

/// A verdict, for both sides of the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Valid,
    Invalid,
    /// The TXT set holds no record of this kind.
    NoRecord,
    /// DKIM: empty `p=`.
    Revoked,
    /// DKIM: `s=` excludes email.
    NotForEmail,
    /// DKIM: `h=` allows no hash RFC 8301 receivers accept.
    Sha1Only,
    /// DKIM: RSA key under 1024 bits (RFC 8301 §3.2).
    WeakKey,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Valid => "valid",
            Verdict::Invalid => "invalid",
            Verdict::NoRecord => "no-record",
            Verdict::Revoked => "revoked",
            Verdict::NotForEmail => "not-for-email",
            Verdict::Sha1Only => "sha1-only",
            Verdict::WeakKey => "weak-key",
        })
    }
}

/// Maps the corpus's `expect` to a verdict; `None` for verdicts the record alone cannot decide.
fn expected_verdict(expect: &str) -> Option<Verdict> {
    Some(match expect {
        "valid" | "valid-with-warning" | "lenient-valid" => Verdict::Valid,
        "invalid" | "invalid-or-warn" => Verdict::Invalid,
        "no-spf-record" => Verdict::NoRecord,
        "revoked" => Verdict::Revoked,
        "valid-for-tlsrpt-only" | "invalid-for-email" => Verdict::NotForEmail,
        _ => return None,
    })
}

/// Undoes DNS presentation form: `"v=spf1 a " "-all"` → `v=spf1 a -all` (character-strings are
/// joined without a separator, RFC 7208 §3.3 / RFC 9989 §4.5). Text that is not entirely quoted
/// strings is returned as is.
fn unpresent(text: &str) -> String {
    fn parse(text: &str) -> Option<String> {
        let mut out = Vec::new();
        let mut bytes = text.trim().bytes().peekable();
        bytes.peek()?;
        while let Some(b) = bytes.next() {
            match b {
                b' ' | b'\t' => continue,
                b'"' => {}
                _ => return None,
            }
            loop {
                match bytes.next()? {
                    b'"' => break,
                    b'\\' => {
                        let c = bytes.next()?;
                        if c.is_ascii_digit() {
                            let d2 = bytes.next().filter(u8::is_ascii_digit)?;
                            let d3 = bytes.next().filter(u8::is_ascii_digit)?;
                            let n = u32::from(c - b'0') * 100
                                + u32::from(d2 - b'0') * 10
                                + u32::from(d3 - b'0');
                            out.push(u8::try_from(n).ok()?);
                        } else {
                            out.push(c);
                        }
                    }
                    c => out.push(c),
                }
            }
        }
        String::from_utf8(out).ok()
    }
    if text.trim_start().starts_with('"') {
        parse(text).unwrap_or_else(|| text.to_string())
    } else {
        text.to_string()
    }
}

/// mailshift's verdict on one SPF record, with the reason.
fn spf_verdict(text: &str) -> (Verdict, String) {
    if !is_spf(text) {
        return (
            Verdict::NoRecord,
            "is_spf() is false: not `v=spf1` followed by a space or the end".into(),
        );
    }
    let record = SpfRecord::parse(text);
    match record.errors.first() {
        Some(e) => (Verdict::Invalid, format!("`{}`: {}", e.raw, e.reason)),
        None => (
            Verdict::Valid,
            format!("{} terms, no errors", record.terms.len()),
        ),
    }
}

fn spf_set_verdict(set: &[String]) -> (Verdict, String) {
    let spf: Vec<&String> = set.iter().filter(|t| is_spf(t)).collect();
    match spf.as_slice() {
        [] => (
            Verdict::NoRecord,
            "no string in the set passes is_spf()".into(),
        ),
        [one] => spf_verdict(one),
        many => (
            Verdict::Invalid,
            format!(
                "{} SPF records in the set: permerror (RFC 7208 §4.5)",
                many.len()
            ),
        ),
    }
}

fn dmarc_verdict(text: &str) -> (Verdict, String) {
    if !is_dmarc_candidate(text) {
        return (
            Verdict::Invalid,
            "is_dmarc_candidate() is false: not a DMARC record".into(),
        );
    }
    let record = DmarcRecord::parse(text);
    match record.errors.first() {
        Some(e) => (Verdict::Invalid, format!("`{}`: {}", e.raw, e.reason)),
        None if record.ignored.is_empty() => (Verdict::Valid, "no errors".into()),
        None => (
            Verdict::Valid,
            format!("no errors; ignored: {}", record.ignored.join("; ")),
        ),
    }
}

fn dmarc_set_verdict(set: &[String]) -> (Verdict, String) {
    let candidates: Vec<&String> = set.iter().filter(|t| is_dmarc_candidate(t)).collect();
    match candidates.as_slice() {
        [] => (
            Verdict::NoRecord,
            "no string in the set passes is_dmarc_candidate()".into(),
        ),
        [one] => dmarc_verdict(one),
        many => (
            Verdict::Invalid,
            format!(
                "{} DMARC records in the set: all discarded (RFC 9989 §4.10)",
                many.len()
            ),
        ),
    }
}

/// Mirrors the order of `checks::dkim`: revoked, weak, malformed, then usability restrictions.
fn dkim_verdict(text: &str) -> (Verdict, String) {
    let key = DkimKeyRecord::parse(text);
    if key.key == PublicKey::Revoked {
        return (Verdict::Revoked, "empty `p=`".into());
    }
    if let (KeyType::Rsa, Some(bits)) = (&key.key_type, key.bits()) {
        if bits < 1024 {
            return (Verdict::WeakKey, format!("{bits}-bit RSA key"));
        }
    }
    if let Some(e) = key.errors.first() {
        return (Verdict::Invalid, e.clone());
    }
    if key.not_for_email {
        return (Verdict::NotForEmail, "`s=` excludes email".into());
    }
    if key.sha1_only {
        return (
            Verdict::Sha1Only,
            "`h=` lists no `sha256` (sha1_only)".into(),
        );
    }
    let kind = match key.key_type {
        KeyType::Rsa => format!("RSA {}-bit", key.bits().unwrap_or(0)),
        KeyType::Ed25519 => "Ed25519".into(),
    };
    (Verdict::Valid, format!("{kind} key, no errors"))
}

enum Status {
    Agreed,
    Known(&'static str),
    Pending(&'static str),
    Unexpected,
    Excluded(String),
}

struct Row {
    id: String,
    kind: String,
    /// `owner/repo#test` of the upstream test the verdict comes from.
    source: String,
    record: String,
    expect: String,
    got: Verdict,
    reason: String,
    status: Status,
}

fn record_strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![unpresent(s)],
        Value::Array(items) => items
            .iter()
            .map(|v| unpresent(v.as_str().expect("TXT sets are lists of strings")))
            .collect(),
        other => panic!("unexpected record value {other}"),
    }
}

fn lookup(list: &'static [(&'static str, &'static str)], id: &str) -> Option<&'static str> {
    list.iter().find(|(i, _)| *i == id).map(|(_, r)| *r)
}

fn evaluate(entry: &Value) -> Option<Row> {
    let field = |name: &str| entry.get(name).and_then(Value::as_str).unwrap_or_default();
    let kind = field("kind");
    if !KINDS.contains(&kind) {
        return None;
    }
    let id = field("id").to_string();
    let expect = field("expect").to_string();
    let strings = record_strings(&entry["record"]);
    let strings = match kind {
        "ip6-literal" => vec![format!("v=spf1 ip6:{} -all", strings[0])],
        "dmarc-uri" => vec![format!("v=DMARC1; p=none; rua={}", strings[0])],
        _ => strings,
    };
    let (got, reason) = match kind {
        "spf" | "ip6-literal" => spf_verdict(&strings[0]),
        "spf-txt-set" => spf_set_verdict(&strings),
        "dmarc" | "dmarc-uri" => dmarc_verdict(&strings[0]),
        "dmarc-txt-set" => dmarc_set_verdict(&strings),
        "dkim-key" => dkim_verdict(&strings[0]),
        _ => unreachable!(),
    };
    let record = if strings.len() == 1 {
        format!("{:?}", strings[0])
    } else {
        format!("{strings:?}")
    };
    let error_class = field("error_class");
    let status = if !field("dns_context").is_empty() {
        Status::Excluded(format!("depends on DNS: {}", field("dns_context")))
    } else if DNS_ERROR_CLASSES.contains(&error_class) {
        Status::Excluded(format!(
            "depends on DNS lookups ({error_class}): not decidable from the record"
        ))
    } else {
        match expected_verdict(&expect) {
            None => Status::Excluded(format!(
                "`{expect}`: the verdict depends on the signature, not the key record"
            )),
            Some(want) if want == got => Status::Agreed,
            Some(_) => {
                if let Some(r) = lookup(KNOWN_DIFFERENCES, &id) {
                    Status::Known(r)
                } else if let Some(r) = lookup(PENDING_BUGS, &id) {
                    Status::Pending(r)
                } else {
                    Status::Unexpected
                }
            }
        }
    };
    let source = field("source");
    let repo = source.split('@').next().unwrap_or_default();
    let test = source.rsplit_once('#').map_or("", |(_, t)| t);
    Some(Row {
        id,
        kind: kind.to_string(),
        source: format!("{repo}#{test}"),
        record,
        expect,
        got,
        reason,
        status,
    })
}

#[test]
fn record_corpus_agrees_with_mailshift_or_is_classified() {
    let text = std::fs::read_to_string(CORPUS).expect("read the record corpus");
    let corpus: Vec<Value> = serde_json::from_str(&text).expect("parse the record corpus");
    let rows: Vec<Row> = corpus.iter().filter_map(evaluate).collect();
    let mut failures = Vec::new();

    println!(
        "\n{:<14} {:>5} {:>9} {:>9} {:>7} {:>10} {:>6} {:>8} {:>11}",
        "kind",
        "rows",
        "excluded",
        "compared",
        "agreed",
        "disagreed",
        "known",
        "pending",
        "unexpected"
    );
    let mut figures = Vec::new();
    for kind in KINDS {
        let of_kind: Vec<&Row> = rows.iter().filter(|r| r.kind == *kind).collect();
        let count = |f: fn(&Status) -> bool| of_kind.iter().filter(|r| f(&r.status)).count();
        let excluded = count(|s| matches!(s, Status::Excluded(_)));
        let agreed = count(|s| matches!(s, Status::Agreed));
        let known = count(|s| matches!(s, Status::Known(_)));
        let pending = count(|s| matches!(s, Status::Pending(_)));
        let unexpected = count(|s| matches!(s, Status::Unexpected));
        let compared = of_kind.len() - excluded;
        println!(
            "{:<14} {:>5} {:>9} {:>9} {:>7} {:>10} {:>6} {:>8} {:>11}",
            kind,
            of_kind.len(),
            excluded,
            compared,
            agreed,
            compared - agreed,
            known,
            pending,
            unexpected
        );
        figures.push((*kind, of_kind.len(), compared, agreed));
    }

    let total = |i: usize| -> usize {
        figures
            .iter()
            .map(|f: &(&str, usize, usize, usize)| [f.1, f.2, f.3][i])
            .sum()
    };
    println!(
        "{:<14} {:>5} {:>9} {:>9} {:>7} {:>10}",
        "total",
        total(0),
        total(0) - total(1),
        total(1),
        total(2),
        total(1) - total(2)
    );

    println!("\nDisagreements (id | record | expected | got | our reason | upstream test):");
    for row in &rows {
        let class = match &row.status {
            Status::Agreed | Status::Excluded(_) => continue,
            Status::Known(r) => format!("KNOWN DIFFERENCE (mailshift follows the RFC): {r}"),
            Status::Pending(r) => format!("!!! PENDING BUG (mailshift is wrong): {r}"),
            Status::Unexpected => "UNCLASSIFIED: a regression, or a new row to classify".into(),
        };
        println!(
            "  {} | {} | {} | {} | {} | {}\n      -> {class}",
            row.id, row.record, row.expect, row.got, row.reason, row.source
        );
        if matches!(row.status, Status::Unexpected) {
            failures.push(format!(
                "{}: expected {}, mailshift says {} ({})",
                row.id, row.expect, row.got, row.reason
            ));
        }
    }

    if std::env::var_os("RECORDS_CORPUS_VERBOSE").is_some() {
        println!("\nAgreements (RECORDS_CORPUS_VERBOSE):");
        for row in rows.iter().filter(|r| matches!(r.status, Status::Agreed)) {
            println!(
                "  {} | {} | {} | {} | {}",
                row.id, row.record, row.expect, row.got, row.reason
            );
        }
    }

    println!("\nExcluded from the comparison:");
    for row in &rows {
        if let Status::Excluded(why) = &row.status {
            println!(
                "  {} | {} | mailshift: {} ({}) | {why}",
                row.id, row.record, row.got, row.reason
            );
        }
    }

    let pending: Vec<&Row> = rows
        .iter()
        .filter(|r| matches!(r.status, Status::Pending(_)))
        .collect();
    if !pending.is_empty() {
        println!(
            "\n!!!!!!!! {} PENDING PARSER BUG(S), tolerated until fixed !!!!!!!!",
            pending.len()
        );
        for row in &pending {
            if let Status::Pending(r) = row.status {
                println!(
                    "!!! {}: {} -> mailshift says {}: {r}",
                    row.id, row.record, row.got
                );
            }
        }
    }

    // Every list entry must name a row that still disagrees, so fixed bugs and stale reasons
    // are noticed.
    for (list, name) in [
        (KNOWN_DIFFERENCES, "KNOWN_DIFFERENCES"),
        (PENDING_BUGS, "PENDING_BUGS"),
    ] {
        for (id, _) in list {
            let row = rows.iter().find(|r| r.id == *id);
            let still =
                row.is_some_and(|r| matches!(r.status, Status::Known(_) | Status::Pending(_)));
            if !still {
                failures.push(format!(
                    "{name} lists {id}, which no longer disagrees (or is not a compared row): \
                     remove the entry{}",
                    if name == "PENDING_BUGS" {
                        " and raise the agreed count in EXPECTED"
                    } else {
                        ""
                    }
                ));
            }
        }
    }
    for id in KNOWN_DIFFERENCES.iter().map(|(id, _)| id) {
        if lookup(PENDING_BUGS, id).is_some() {
            failures.push(format!(
                "{id} is in both KNOWN_DIFFERENCES and PENDING_BUGS"
            ));
        }
    }

    // DNS-dependent rows are not compared, but their text must at least be well-formed: the
    // upstream verdict comes from the (mocked) DNS answers, not from the record's syntax.
    for row in &rows {
        if matches!(row.status, Status::Excluded(_))
            && row.expect != "context-dependent"
            && row.got != Verdict::Valid
        {
            failures.push(format!(
                "{}: DNS-dependent row does not even parse: {} ({})",
                row.id, row.got, row.reason
            ));
        }
    }

    if figures != EXPECTED {
        failures.push(format!(
            "per-kind figures changed:\n  expected {EXPECTED:?}\n  got      {figures:?}"
        ));
    }

    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn presentation_form_is_joined_like_dns() {
    assert_eq!(
        unpresent(r#""v=spf1 ip4:192.0.2.1 " "include:_spf.example.com -all""#),
        "v=spf1 ip4:192.0.2.1 include:_spf.example.com -all"
    );
    assert_eq!(unpresent(r#""a\"b\\c\059""#), r#"a"b\c;"#);
    assert_eq!(unpresent(r#""""#), "");
    // Not presentation form: left alone.
    assert_eq!(unpresent("v=spf1 -all"), "v=spf1 -all");
    assert_eq!(unpresent(r#""unterminated"#), r#""unterminated"#);
}
