//! The `--zone` overlay: answer names inside given zone files from the files themselves.
//!
//! Users check draft records before publishing them, and the offline demo runs entirely from
//! zone files. Files are RFC 1035 master files, read with hickory-proto's parser; because its
//! errors carry no position, a failing file is re-parsed on line prefixes to name the line.
//! A name is *inside* the overlay when it is at or below the apex of a loaded zone (an SOA owner
//! or an `$ORIGIN`); such names are answered authoritatively from the files — NXDOMAIN, NODATA,
//! CNAME and `*` wildcards included — and never sent to the network.

use super::answer::{QueryType, Record, RecordData};
use hickory_proto::rr::{Name, RData, RecordType};
use hickory_proto::serialize::txt::Parser;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

/// A zone file that could not be loaded, with where and why.
#[derive(Debug, thiserror::Error)]
pub enum ZoneError {
    #[error("cannot read zone file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Syntax {
        path: PathBuf,
        /// 1-based line of the first record that does not parse (0 when it could not be located).
        line: usize,
        message: String,
    },
    #[error("{path}: no zone files (*.zone) in this directory")]
    EmptyDir { path: PathBuf },
}

/// What the overlay says about one question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZoneAnswer {
    Records(Vec<Record>),
    /// The name holds a CNAME to this target (and, when `conflict`, other data too).
    Cname {
        target: String,
        conflict: bool,
    },
    NoData,
    NxDomain,
}

#[derive(Debug, Default)]
struct Node {
    records: HashMap<QueryType, Vec<Record>>,
}

/// Loaded zone files: records by owner name, the set of existing names, and the zone apexes.
#[derive(Debug, Default)]
pub struct ZoneOverlay {
    nodes: HashMap<String, Node>,
    /// Every owner name and every ancestor of one up to its apex (empty non-terminals exist).
    existing: HashSet<String>,
    apexes: HashMap<String, PathBuf>,
}

impl ZoneOverlay {
    /// Loads files and directories (a directory contributes its `*.zone` files, sorted).
    pub fn load(paths: &[PathBuf]) -> Result<ZoneOverlay, ZoneError> {
        let mut overlay = ZoneOverlay::default();
        for path in paths {
            if path.is_dir() {
                let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                    .map_err(|source| ZoneError::Read {
                        path: path.clone(),
                        source,
                    })?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "zone") && p.is_file())
                    .collect();
                if files.is_empty() {
                    return Err(ZoneError::EmptyDir { path: path.clone() });
                }
                files.sort();
                for file in files {
                    overlay.load_file(&file)?;
                }
            } else {
                overlay.load_file(path)?;
            }
        }
        Ok(overlay)
    }

    pub fn is_empty(&self) -> bool {
        self.apexes.is_empty()
    }

    /// The zone file whose zone contains `name`, if any.
    pub fn covering_file(&self, name: &str) -> Option<&Path> {
        let mut candidate = name;
        loop {
            if let Some(path) = self.apexes.get(candidate) {
                return Some(path);
            }
            match candidate.split_once('.') {
                Some((_, rest)) => candidate = rest,
                None => return None,
            }
        }
    }

    /// Answers a question for a name inside the overlay (call `covering_file` first).
    pub fn lookup(&self, name: &str, qtype: QueryType) -> ZoneAnswer {
        if let Some(answer) = self.lookup_exact(name, qtype) {
            return answer;
        }
        if self.existing.contains(name) {
            return ZoneAnswer::NoData;
        }
        // RFC 4592: a wildcard at the closest encloser answers for names that do not exist.
        let mut encloser = name;
        while let Some((_, parent)) = encloser.split_once('.') {
            encloser = parent;
            if self.existing.contains(encloser) {
                let wildcard = format!("*.{encloser}");
                return match self.lookup_exact(&wildcard, qtype) {
                    Some(answer) => answer,
                    None if self.existing.contains(&wildcard) => ZoneAnswer::NoData,
                    None => ZoneAnswer::NxDomain,
                };
            }
            if self.apexes.contains_key(encloser) {
                break;
            }
        }
        ZoneAnswer::NxDomain
    }

    /// Every record in the overlay as `(owner, type, record)`, sorted by owner and type.
    pub fn records(&self) -> Vec<(String, QueryType, Record)> {
        let mut out: Vec<(String, QueryType, Record)> = self
            .nodes
            .iter()
            .flat_map(|(owner, node)| {
                node.records.iter().flat_map(move |(qtype, records)| {
                    records
                        .iter()
                        .map(move |r| (owner.clone(), *qtype, r.clone()))
                })
            })
            .collect();
        out.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        out
    }

    /// The zone apexes (SOA owners and `$ORIGIN`s), sorted.
    pub fn apexes(&self) -> Vec<String> {
        let mut v: Vec<String> = self.apexes.keys().cloned().collect();
        v.sort();
        v
    }

    /// True when `name` holds a CNAME beside other data (invalid DNS, RFC 1034 §3.6.2).
    pub fn has_cname_conflict(&self, name: &str) -> bool {
        self.nodes.get(name).is_some_and(|node| {
            node.records.contains_key(&QueryType::Cname)
                && node.records.keys().any(|t| *t != QueryType::Cname)
        })
    }

    fn lookup_exact(&self, name: &str, qtype: QueryType) -> Option<ZoneAnswer> {
        let node = self.nodes.get(name)?;
        if let Some(records) = node.records.get(&qtype) {
            return Some(ZoneAnswer::Records(records.clone()));
        }
        if qtype != QueryType::Cname {
            if let Some(cname) = node.records.get(&QueryType::Cname).and_then(|r| r.first()) {
                if let RecordData::Cname(target) = &cname.data {
                    let conflict = node.records.keys().any(|t| !matches!(t, QueryType::Cname));
                    return Some(ZoneAnswer::Cname {
                        target: target.clone(),
                        conflict,
                    });
                }
            }
        }
        None
    }

    fn load_file(&mut self, path: &Path) -> Result<(), ZoneError> {
        let text = std::fs::read_to_string(path).map_err(|source| ZoneError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let default_origin = default_origin(path);
        let (origin, records) = parse_zone_text(&text, path, default_origin.clone())?;
        let mut apexes: HashSet<String> = HashSet::new();
        for line in text.lines() {
            let trimmed = line.trim_start();
            if trimmed
                .get(..7)
                .is_some_and(|d| d.eq_ignore_ascii_case("$ORIGIN"))
            {
                if let Some(o) = trimmed.get(7..).and_then(|r| r.split_whitespace().next()) {
                    apexes.insert(normalise(o));
                }
            }
        }
        let mut added_any = false;
        for (key, rrset) in &records {
            for record in rrset.records_without_rrsigs() {
                if let RData::TXT(txt) = &record.data {
                    if let Some(long) = txt.txt_data.iter().find(|s| s.len() > 255) {
                        return Err(ZoneError::Syntax {
                            path: path.to_path_buf(),
                            line: line_of_owner(&text, &Name::from(key.name.clone()).to_ascii()),
                            message: format!(
                                "a TXT character-string of {} bytes at {}; DNS allows at most 255 \
                                 per string: split it into several quoted strings (\"…\" \"…\")",
                                long.len(),
                                key.name
                            ),
                        });
                    }
                }
            }
        }
        for (key, rrset) in records {
            let owner = normalise(&Name::from(key.name.clone()).to_ascii());
            for record in rrset.records_without_rrsigs() {
                if record.record_type() == RecordType::SOA {
                    apexes.insert(owner.clone());
                }
                if let Some((qtype, data)) = convert_rdata(&record.data) {
                    self.nodes
                        .entry(owner.clone())
                        .or_default()
                        .records
                        .entry(qtype)
                        .or_default()
                        .push(Record {
                            ttl: record.ttl,
                            data,
                        });
                    added_any = true;
                }
            }
            self.existing.insert(owner);
        }
        if apexes.is_empty() {
            apexes.insert(normalise(&origin.to_ascii()));
        }
        if !added_any && default_origin.is_none() {
            return Err(ZoneError::Syntax {
                path: path.to_path_buf(),
                line: 0,
                message: "the file holds no records".into(),
            });
        }
        // Ancestors of owners exist as empty non-terminals, up to (not beyond) their apex.
        let owners: Vec<String> = self.existing.iter().cloned().collect();
        for owner in owners {
            let mut name = owner.as_str();
            while !apexes.contains(name) {
                match name.split_once('.') {
                    Some((_, parent)) => {
                        name = parent;
                        if apexes.iter().any(|a| is_within(name, a)) {
                            self.existing.insert(name.to_string());
                        } else {
                            break;
                        }
                    }
                    None => break,
                }
            }
        }
        for apex in apexes {
            self.existing.insert(apex.clone());
            self.apexes
                .entry(apex)
                .or_insert_with(|| path.to_path_buf());
        }
        Ok(())
    }
}

/// Best-effort line of the first record naming `owner` (for errors found after parsing).
fn line_of_owner(text: &str, owner: &str) -> usize {
    let full = owner.trim_end_matches('.').to_ascii_lowercase();
    let first_label = full.split('.').next().unwrap_or_default().to_string();
    text.lines()
        .position(|l| {
            let first = l
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_ascii_lowercase();
            let first = first.trim_end_matches('.');
            !l.starts_with([' ', '\t']) && (first == full || first == first_label)
        })
        .map_or(0, |i| i + 1)
}

fn is_within(name: &str, apex: &str) -> bool {
    name == apex
        || (name.len() > apex.len()
            && name.ends_with(apex)
            && name.as_bytes()[name.len() - apex.len() - 1] == b'.')
}

/// Owner names in lower case without the trailing dot, the form the rest of mailshift uses.
pub(crate) fn normalise(name: &str) -> String {
    let mut s = name.trim_end_matches('.').to_ascii_lowercase();
    if s.is_empty() {
        s.clear();
    }
    s
}

/// `example.com.zone` → `example.com.`; other names give no default origin.
fn default_origin(path: &Path) -> Option<Name> {
    let stem = path.file_name()?.to_str()?.strip_suffix(".zone")?;
    if !stem.contains('.') {
        return None;
    }
    Name::from_ascii(format!("{stem}.")).ok()
}

type Parsed = (
    Name,
    std::collections::BTreeMap<hickory_proto::rr::RrKey, hickory_proto::rr::RecordSet>,
);

fn parse_zone_text(text: &str, path: &Path, origin: Option<Name>) -> Result<Parsed, ZoneError> {
    let text = &flatten_parentheses(text);
    let parse = |input: &str| {
        Parser::new(input.to_string(), Some(path.to_path_buf()), origin.clone()).parse()
    };
    match parse(text) {
        Ok(parsed) => Ok(parsed),
        Err(error) => {
            let line = locate_error_line(text, |prefix| parse(prefix).is_ok());
            Err(ZoneError::Syntax {
                path: path.to_path_buf(),
                line,
                message: explain_parse_error(&error.to_string()),
            })
        }
    }
}

/// Joins every parenthesised group onto its first line, dropping the parentheses and the
/// comments inside them, and keeps every other line where it was (the newlines a group spanned
/// are emitted after it), so error lines still match the file. Quoted strings are untouched.
///
/// hickory's zone lexer does not understand quoted strings inside `( ... )`: it keeps the quote
/// characters and splits at blanks, so the common multi-line form of a DKIM key
/// (`sel._domainkey IN TXT ( "part one" "part two" )`) would be stored wrongly. On one line,
/// quoted strings are lexed properly. (`$INCLUDE`d files are not preprocessed.)
pub fn flatten_parentheses(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut depth = 0usize;
    let mut in_quote = false;
    let mut escaped = false;
    let mut in_comment = false;
    let mut held_newlines = 0usize;
    for ch in text.chars() {
        if in_comment {
            if ch == '\n' {
                in_comment = false;
                if depth > 0 {
                    out.push(' ');
                    held_newlines += 1;
                } else {
                    out.push('\n');
                    for _ in 0..std::mem::take(&mut held_newlines) {
                        out.push('\n');
                    }
                }
            } else if depth == 0 {
                out.push(ch);
            }
            continue;
        }
        if in_quote {
            out.push(ch);
            if escaped {
                escaped = false;
            } else if ch == '\\' {
                escaped = true;
            } else if ch == '"' {
                in_quote = false;
            }
            continue;
        }
        match ch {
            '"' => {
                in_quote = true;
                out.push(ch);
            }
            ';' => {
                in_comment = true;
                if depth == 0 {
                    out.push(ch);
                }
            }
            '(' => {
                depth += 1;
                out.push(' ');
            }
            ')' if depth > 0 => {
                depth -= 1;
                out.push(' ');
            }
            '\n' if depth > 0 => {
                out.push(' ');
                held_newlines += 1;
            }
            '\r' if depth > 0 => out.push(' '),
            '\n' => {
                out.push('\n');
                for _ in 0..std::mem::take(&mut held_newlines) {
                    out.push('\n');
                }
            }
            _ => out.push(ch),
        }
    }
    for _ in 0..held_newlines {
        out.push('\n');
    }
    out
}

/// Finds the line where the first record that does not parse starts, by binary search over
/// prefixes of the file. Prefixes are only cut between records (outside parentheses and quoted
/// strings), so a multi-line SOA is never split; the answer is the record's first line.
fn locate_error_line(text: &str, parses: impl Fn(&str) -> bool) -> usize {
    // (byte offset just after the line, 1-based number of the line that follows)
    let mut cuts: Vec<(usize, usize)> = vec![(0, 1)];
    let (mut depth, mut quoted, mut escaped, mut comment) = (0i32, false, false, false);
    let mut line = 1;
    for (i, c) in text.char_indices() {
        if c == '\n' {
            line += 1;
            comment = false;
            if depth <= 0 && !quoted {
                cuts.push((i + 1, line));
            }
            continue;
        }
        if comment {
            continue;
        }
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ';' if !quoted => comment = true,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth -= 1,
            _ => {}
        }
    }
    if cuts.last().map(|c| c.0) != Some(text.len()) {
        cuts.push((text.len(), line + 1));
    }
    // Invariant: the prefix up to cuts[good] parses, the one up to cuts[bad] does not.
    let (mut good, mut bad) = (0usize, cuts.len() - 1);
    while bad - good > 1 {
        let mid = (good + bad) / 2;
        if parses(&text[..cuts[mid].0]) {
            good = mid;
        } else {
            bad = mid;
        }
    }
    // The failing record starts on the first non-blank line after the good prefix.
    let first = cuts[good].1;
    text.lines()
        .enumerate()
        .skip(first - 1)
        .find(|(_, l)| {
            let t = l.trim();
            !t.is_empty() && !t.starts_with(';')
        })
        .map_or(first, |(i, _)| i + 1)
}

fn explain_parse_error(raw: &str) -> String {
    if raw.contains("$ORIGIN was not specified") {
        return "relative names but no $ORIGIN: add `$ORIGIN example.com.` at the top, or name \
                the file after its zone (example.com.zone)"
            .into();
    }
    raw.to_string()
}

fn convert_rdata(data: &RData) -> Option<(QueryType, RecordData)> {
    Some(match data {
        RData::A(a) => (QueryType::A, RecordData::A(a.0)),
        RData::AAAA(a) => (QueryType::Aaaa, RecordData::Aaaa(a.0)),
        RData::TXT(txt) => (
            QueryType::Txt,
            RecordData::Txt(txt.txt_data.iter().map(|s| s.to_vec()).collect()),
        ),
        RData::MX(mx) => (
            QueryType::Mx,
            RecordData::Mx {
                preference: mx.preference,
                exchange: normalise(&mx.exchange.to_ascii()),
            },
        ),
        RData::CNAME(c) => (
            QueryType::Cname,
            RecordData::Cname(normalise(&c.0.to_ascii())),
        ),
        RData::PTR(p) => (QueryType::Ptr, RecordData::Ptr(normalise(&p.0.to_ascii()))),
        RData::NS(n) => (QueryType::Ns, RecordData::Ns(normalise(&n.0.to_ascii()))),
        RData::SOA(soa) => (
            QueryType::Soa,
            RecordData::Soa {
                mname: normalise(&soa.mname.to_ascii()),
                rname: normalise(&soa.rname.to_ascii()),
                serial: soa.serial,
            },
        ),
        _ => return None,
    })
}

/// Converts record data from the wire into mailshift's form (shared with the network path).
pub(crate) fn convert_wire_rdata(data: &RData) -> Option<(QueryType, RecordData)> {
    convert_rdata(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn overlay_from(name: &str, text: &str) -> (tempfile::TempDir, Result<ZoneOverlay, ZoneError>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::File::create(&path)
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let result = ZoneOverlay::load(&[path]);
        (dir, result)
    }

    const ZONE: &str = "$TTL 300\n\
@ IN SOA ns1 hostmaster 1 3600 600 86400 300\n\
@ IN TXT \"v=spf1 \" \"-all\"\n\
@ IN MX 10 mx1\n\
mx1 IN A 192.0.2.1\n\
a.b.deep IN TXT \"x\"\n\
alias IN CNAME target.elsewhere.test.\n\
*.wild IN TXT \"wildcard\"\n";

    #[test]
    fn answers_records_nxdomain_nodata_cname_and_wildcards() {
        let (_dir, overlay) = overlay_from("example.test.zone", ZONE);
        let overlay = overlay.unwrap();
        assert!(overlay.covering_file("mx1.example.test").is_some());
        assert!(overlay.covering_file("example.org").is_none());
        match overlay.lookup("example.test", QueryType::Txt) {
            ZoneAnswer::Records(r) => assert_eq!(r[0].data.txt_joined().unwrap(), "v=spf1 -all"),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            overlay.lookup("nope.example.test", QueryType::Txt),
            ZoneAnswer::NxDomain
        );
        assert_eq!(
            overlay.lookup("mx1.example.test", QueryType::Txt),
            ZoneAnswer::NoData
        );
        // empty non-terminal
        assert_eq!(
            overlay.lookup("deep.example.test", QueryType::Txt),
            ZoneAnswer::NoData
        );
        assert_eq!(
            overlay.lookup("alias.example.test", QueryType::Txt),
            ZoneAnswer::Cname {
                target: "target.elsewhere.test".into(),
                conflict: false
            }
        );
        assert!(matches!(
            overlay.lookup("x.wild.example.test", QueryType::Txt),
            ZoneAnswer::Records(_)
        ));
    }

    #[test]
    fn multi_line_txt_in_parentheses_keeps_its_strings_and_line_numbers() {
        let text = "$TTL 300\n@ IN SOA ns1 hostmaster 1 3600 600 86400 300\nsel._domainkey IN TXT ( \"v=DKIM1; k=rsa; \" ; first\n   \"p=ABC\" )\nbad IN A 999.0.0.1\n";
        let flat = flatten_parentheses(text);
        assert_eq!(flat.lines().count(), text.lines().count());
        let (_dir, result) = overlay_from("multi.test.zone", text);
        assert!(result
            .unwrap_err()
            .to_string()
            .contains("multi.test.zone:5:"));
        let good = text.replace("bad IN A 999.0.0.1\n", "");
        let (_dir, overlay) = overlay_from("multi.test.zone", &good);
        match overlay
            .unwrap()
            .lookup("sel._domainkey.multi.test", QueryType::Txt)
        {
            ZoneAnswer::Records(r) => {
                assert_eq!(r[0].data.txt_joined().unwrap(), "v=DKIM1; k=rsa; p=ABC")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn over_long_txt_strings_are_refused() {
        let text = format!(
            "$TTL 300\n@ IN SOA ns1 hostmaster 1 3600 600 86400 300\nlong IN TXT \"{}\"\n",
            "a".repeat(300)
        );
        let (_dir, result) = overlay_from("long.test.zone", &text);
        let err = result.unwrap_err().to_string();
        assert!(
            err.contains("long.test.zone:3:") && err.contains("255"),
            "{err}"
        );
    }

    #[test]
    fn syntax_errors_name_file_and_line() {
        let bad = "$TTL 300\n@ IN SOA ns1 hostmaster 1 3600 600 86400 300\nok IN A 192.0.2.1\nbroken IN A 999.1.1.1\nlater IN A 192.0.2.2\n";
        let (_dir, result) = overlay_from("bad.test.zone", bad);
        let err = result.unwrap_err();
        let text = err.to_string();
        assert!(text.contains("bad.test.zone:4:"), "{text}");
    }

    #[test]
    fn multi_line_soa_does_not_confuse_line_location() {
        let bad = "$TTL 300\n@ IN SOA ns1 hostmaster (\n 1 3600 600\n 86400 300 )\nok IN A 192.0.2.1\nx IN MX notanumber mx\n";
        let (_dir, result) = overlay_from("paren.test.zone", bad);
        let text = result.unwrap_err().to_string();
        assert!(text.contains("paren.test.zone:6:"), "{text}");
    }
}
