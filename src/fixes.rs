//! Fixes as DNS changes: editing SPF and DMARC record text, merging the changes several findings
//! ask of one record, and rendering a stage's changes as a zone-file fragment.
//!
//! Each finding computes its change against the record as published, so two findings about one
//! record (DMARC's `t=y` and `pct=`, SPF's missing include and an unneeded one) each propose a
//! full replacement of the same old value. [`merge`] turns them into one change by applying
//! every finding's edit — the terms or tags it adds and removes — to the old record, and reports
//! the changes it cannot combine instead of silently keeping one.

use crate::finding::{RecordAction, RecordChange};
use crate::records::tags::split_tags;
use std::collections::BTreeMap;

/// An SPF term without its qualifier, in lower case: how terms are compared.
fn bare(term: &str) -> String {
    term.trim_start_matches(['+', '-', '~', '?'])
        .to_ascii_lowercase()
}

fn is_all(term: &str) -> bool {
    bare(term) == "all"
}

/// `text` (an SPF record) with `remove` taken out and `add` put before the `all` term (or a
/// `redirect=`, or at the end), each only once.
pub fn spf_edit(text: &str, add: &[String], remove: &[String]) -> String {
    let removed: Vec<String> = remove.iter().map(|t| bare(t)).collect();
    let mut terms: Vec<String> = text
        .split_ascii_whitespace()
        .filter(|t| !removed.contains(&bare(t)))
        .map(str::to_string)
        .collect();
    for term in add {
        if terms.iter().any(|t| bare(t) == bare(term)) {
            continue;
        }
        let at = terms
            .iter()
            .position(|t| is_all(t) || bare(t).starts_with("redirect="))
            .unwrap_or(terms.len());
        terms.insert(at, term.clone());
    }
    terms.join(" ")
}

/// `text` (an SPF record) ending in `all_term` (`~all`): its `all` replaced, or added at the end.
pub fn spf_with_all(text: &str, all_term: &str) -> String {
    let mut terms: Vec<String> = text.split_ascii_whitespace().map(str::to_string).collect();
    match terms.iter().position(|t| is_all(t)) {
        Some(i) => {
            if let Some(slot) = terms.get_mut(i) {
                *slot = all_term.to_string();
            }
        }
        None => terms.push(all_term.to_string()),
    }
    terms.join(" ")
}

/// A tag list (a DKIM key record) with tag `name` set to `value`, or removed when `None`; the
/// other tags kept as written.
pub fn tag_list_with(text: &str, name: &str, value: Option<&str>) -> String {
    let (tags, _) = split_tags(text);
    let mut parts: Vec<String> = Vec::new();
    let mut set = false;
    for t in &tags {
        if t.name.eq_ignore_ascii_case(name) {
            if let (Some(v), false) = (value, set) {
                parts.push(format!("{}={v}", t.name));
                set = true;
            }
            continue;
        }
        parts.push(format!("{}={}", t.name, t.value));
    }
    if let (Some(v), false) = (value, set) {
        parts.push(format!("{name}={v}"));
    }
    parts.join("; ")
}

/// What one change does to a record's parts: SPF terms (by their bare form) or tags (by name).
#[derive(Debug, Default)]
struct Edit {
    /// Parts added or changed, with their new text.
    set: Vec<(String, String)>,
    /// Parts taken out.
    removed: Vec<String>,
}

/// The kinds of record text mailshift knows how to edit part by part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Spf,
    Tags,
}

fn shape(text: &str) -> Option<Shape> {
    let lower = text.trim_start().to_ascii_lowercase();
    if lower.starts_with("v=spf1") {
        Some(Shape::Spf)
    } else if lower.starts_with("v=dmarc1") || lower.starts_with("v=dkim1") {
        Some(Shape::Tags)
    } else {
        None
    }
}

/// The parts of a record in order, keyed for comparison.
fn parts(shape: Shape, text: &str) -> Vec<(String, String)> {
    match shape {
        Shape::Spf => text
            .split_ascii_whitespace()
            .map(|t| (bare(t), t.to_string()))
            .collect(),
        Shape::Tags => split_tags(text)
            .0
            .into_iter()
            .map(|t| {
                (
                    t.name.to_ascii_lowercase(),
                    format!("{}={}", t.name, t.value),
                )
            })
            .collect(),
    }
}

fn diff(shape: Shape, old: &str, new: &str) -> Edit {
    let before = parts(shape, old);
    let after = parts(shape, new);
    let mut edit = Edit::default();
    for (key, text) in &after {
        if !before.iter().any(|(k, t)| k == key && t == text) {
            edit.set.push((key.clone(), text.clone()));
        }
    }
    for (key, _) in &before {
        if !after.iter().any(|(k, _)| k == key) {
            edit.removed.push(key.clone());
        }
    }
    edit
}

fn apply(shape: Shape, old: &str, edits: &[Edit]) -> String {
    let mut current = parts(shape, old);
    for edit in edits {
        current.retain(|(k, _)| !edit.removed.contains(k));
        for (key, text) in &edit.set {
            if let Some(slot) = current.iter_mut().find(|(k, _)| k == key) {
                slot.1 = text.clone();
                continue;
            }
            let at = match shape {
                Shape::Spf => current
                    .iter()
                    .position(|(k, _)| k == "all" || k.starts_with("redirect="))
                    .unwrap_or(current.len()),
                // A new tag goes after `p=` (DMARC) or at the end.
                Shape::Tags => current
                    .iter()
                    .position(|(k, _)| k == "p")
                    .map_or(current.len(), |i| i + 1),
            };
            current.insert(at, (key.clone(), text.clone()));
        }
    }
    let texts: Vec<String> = current.into_iter().map(|(_, t)| t).collect();
    match shape {
        Shape::Spf => texts.join(" "),
        Shape::Tags => texts.join("; "),
    }
}

/// Two findings want different things of one record, and the edits cannot be combined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub name: String,
    pub rtype: String,
    pub values: Vec<String>,
}

/// Merges the changes of many findings: identical changes once, replacements of one record
/// combined edit by edit. Order is kept (first appearance).
pub fn merge(
    changes: impl IntoIterator<Item = RecordChange>,
) -> (Vec<RecordChange>, Vec<Conflict>) {
    let mut out: Vec<RecordChange> = Vec::new();
    let mut conflicts = Vec::new();
    // Replacements grouped by the record they replace.
    let mut groups: BTreeMap<(String, String, String), Vec<String>> = BTreeMap::new();
    let mut order: Vec<(String, String, String)> = Vec::new();
    for change in changes {
        let key_name = change.name.to_ascii_lowercase();
        match (change.action, &change.old) {
            (RecordAction::Replace, Some(old)) => {
                let key = (key_name, change.rtype.to_ascii_uppercase(), old.clone());
                if !groups.contains_key(&key) {
                    order.push(key.clone());
                    out.push(change.clone());
                }
                let values = groups.entry(key).or_default();
                if !values.contains(&change.value) {
                    values.push(change.value.clone());
                }
            }
            _ => {
                if !out.iter().any(|c| same(c, &change)) {
                    out.push(change);
                }
            }
        }
    }
    for key in order {
        let Some(values) = groups.get(&key) else {
            continue;
        };
        let (name, rtype, old) = &key;
        let merged = match (values.as_slice(), shape(old)) {
            ([one], _) => Some(one.clone()),
            (many, Some(s)) => {
                let edits: Vec<Edit> = many.iter().map(|v| diff(s, old, v)).collect();
                Some(apply(s, old, &edits))
            }
            (_, None) => None,
        };
        let slot = out.iter_mut().find(|c| {
            c.action == RecordAction::Replace
                && c.name.eq_ignore_ascii_case(name)
                && c.rtype.eq_ignore_ascii_case(rtype)
                && c.old.as_deref() == Some(old.as_str())
        });
        match (merged, slot) {
            (Some(value), Some(slot)) => slot.value = value,
            (None, _) => conflicts.push(Conflict {
                name: name.clone(),
                rtype: rtype.clone(),
                values: values.clone(),
            }),
            _ => {}
        }
    }
    (out, conflicts)
}

fn same(a: &RecordChange, b: &RecordChange) -> bool {
    a.action == b.action
        && a.name.eq_ignore_ascii_case(&b.name)
        && a.rtype.eq_ignore_ascii_case(&b.rtype)
        && a.value == b.value
        && a.old == b.old
}

/// A record's data as it is written in a zone file: TXT text quoted (split into strings of at
/// most 255 bytes, quotes and backslashes escaped), names fully qualified with a trailing dot.
pub fn zone_data(rtype: &str, value: &str) -> String {
    match rtype.to_ascii_uppercase().as_str() {
        "TXT" => {
            let bytes = value.as_bytes();
            let mut strings = Vec::new();
            let mut start = 0;
            while start < bytes.len() || strings.is_empty() {
                let mut end = (start + 255).min(bytes.len());
                while end > start && !value.is_char_boundary(end) {
                    end -= 1;
                }
                let piece = value.get(start..end).unwrap_or_default();
                strings.push(format!(
                    "\"{}\"",
                    piece.replace('\\', "\\\\").replace('"', "\\\"")
                ));
                if end == start {
                    break;
                }
                start = end;
            }
            strings.join(" ")
        }
        "CNAME" | "NS" | "PTR" => fqdn(value),
        "MX" => match value.split_once(' ') {
            Some((preference, host)) => format!("{preference} {}", fqdn(host.trim())),
            None => value.to_string(),
        },
        _ => value.to_string(),
    }
}

fn fqdn(name: &str) -> String {
    if name.ends_with('.') {
        name.to_string()
    } else {
        format!("{name}.")
    }
}

/// The changes as a zone-file fragment for review: additions as records, replacements as the
/// new record with the old one in a comment, removals as comments (a zone file cannot say
/// "delete").
pub fn zone_fragment(changes: &[RecordChange], ttl: u32) -> String {
    let mut out = String::new();
    for c in changes {
        let owner = fqdn(&c.name);
        let line = |value: &str| {
            format!(
                "{owner} {ttl} IN {} {}",
                c.rtype.to_ascii_uppercase(),
                zone_data(&c.rtype, value)
            )
        };
        match c.action {
            RecordAction::Add => out.push_str(&format!("; add\n{}\n", line(&c.value))),
            RecordAction::Replace => {
                if let Some(old) = &c.old {
                    out.push_str(&format!("; replace: {}\n", line(old)));
                }
                out.push_str(&format!("{}\n", line(&c.value)));
            }
            RecordAction::Remove => out.push_str(&format!("; remove: {}\n", line(&c.value))),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spf_terms_are_added_before_all_and_removed_by_their_bare_form() {
        let rec = "v=spf1 include:_spf.google.com include:servers.mcsv.net ~all";
        assert_eq!(
            spf_edit(
                rec,
                &["include:spf.mtasv.net".into()],
                &["include:SERVERS.mcsv.net".into()]
            ),
            "v=spf1 include:_spf.google.com include:spf.mtasv.net ~all"
        );
        // Already there: not added twice.
        assert_eq!(
            spf_edit(rec, &["+include:_spf.google.com".into()], &[]),
            rec
        );
        assert_eq!(
            spf_edit(
                "v=spf1 redirect=_spf.example.co.uk",
                &["ip4:192.0.2.1".into()],
                &[]
            ),
            "v=spf1 ip4:192.0.2.1 redirect=_spf.example.co.uk"
        );
    }

    #[test]
    fn a_key_record_loses_or_changes_one_tag() {
        let key = "v=DKIM1; k=rsa; t=y:s; h=sha1; p=MIIB";
        assert_eq!(
            tag_list_with(key, "h", None),
            "v=DKIM1; k=rsa; t=y:s; p=MIIB"
        );
        assert_eq!(
            tag_list_with(key, "t", Some("s")),
            "v=DKIM1; k=rsa; t=s; h=sha1; p=MIIB"
        );
    }

    #[test]
    fn two_findings_replacing_one_record_merge_into_one_change() {
        let old = "v=DMARC1; p=quarantine; pct=25; t=y; rua=mailto:d@example.de";
        let (merged, conflicts) = merge([
            RecordChange::replace(
                "_dmarc.example.de",
                "TXT",
                old,
                "v=DMARC1; p=quarantine; pct=25; rua=mailto:d@example.de",
            ),
            RecordChange::replace(
                "_dmarc.example.de",
                "TXT",
                old,
                "v=DMARC1; p=quarantine; t=y; rua=mailto:d@example.de",
            ),
            RecordChange::add("example.de", "TXT", "v=spf1 -all"),
            RecordChange::add("example.de", "TXT", "v=spf1 -all"),
        ]);
        assert!(conflicts.is_empty());
        assert_eq!(merged.len(), 2);
        assert_eq!(
            merged[0].value,
            "v=DMARC1; p=quarantine; rua=mailto:d@example.de"
        );
        let spf_old = "v=spf1 include:a.example include:b.example ~all";
        let (merged, _) = merge([
            RecordChange::replace(
                "example.de",
                "TXT",
                spf_old,
                "v=spf1 include:a.example include:b.example include:c.example ~all",
            ),
            RecordChange::replace(
                "example.de",
                "TXT",
                spf_old,
                "v=spf1 include:a.example ~all",
            ),
        ]);
        assert_eq!(
            merged[0].value,
            "v=spf1 include:a.example include:c.example ~all"
        );
        // CNAMEs cannot be combined: both wishes are reported.
        let (_, conflicts) = merge([
            RecordChange::replace(
                "s1._domainkey.example.de",
                "CNAME",
                "x.example",
                "y.example",
            ),
            RecordChange::replace(
                "s1._domainkey.example.de",
                "CNAME",
                "x.example",
                "z.example",
            ),
        ]);
        assert_eq!(conflicts.len(), 1);
        assert_eq!(conflicts[0].values, ["y.example", "z.example"]);
    }

    #[test]
    fn a_fragment_quotes_txt_and_qualifies_names() {
        let long = format!("v=DKIM1; k=rsa; p={}", "A".repeat(400));
        let text = zone_fragment(
            &[
                RecordChange::add("example.co.uk", "TXT", "v=spf1 \"quoted\" -all"),
                RecordChange::replace(
                    "kl._domainkey.example.co.uk",
                    "CNAME",
                    "kl2.example.net",
                    "kl.example.net",
                ),
                RecordChange::add("sel._domainkey.example.co.uk", "TXT", long.clone()),
                RecordChange::add("example.co.uk", "MX", "0 ."),
            ],
            3600,
        );
        assert!(
            text.contains("example.co.uk. 3600 IN TXT \"v=spf1 \\\"quoted\\\" -all\""),
            "{text}"
        );
        assert!(text.contains("; replace: kl._domainkey.example.co.uk. 3600 IN CNAME kl2.example.net.\nkl._domainkey.example.co.uk. 3600 IN CNAME kl.example.net.\n"), "{text}");
        let dkim = text.lines().find(|l| l.starts_with("sel.")).unwrap();
        assert_eq!(
            dkim.matches('"').count(),
            4,
            "split into two strings: {dkim}"
        );
        assert!(text.contains("example.co.uk. 3600 IN MX 0 .\n"), "{text}");
    }
}
