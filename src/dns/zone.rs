//! The `--zone` overlay: answer names inside given zone files from the files themselves.
//!
//! Users check draft records before publishing them, and the offline demo runs entirely from
//! zone files. Files are RFC 1035 master files. mailshift reads each entry itself — directives
//! (`$ORIGIN`, `$TTL`, `$INCLUDE`), owner, TTL, class and type — so every error names the file
//! and the real line in one pass, `$INCLUDE`d files go through the bounded reader
//! ([`crate::files`]: a FIFO or `/dev/zero` is refused, not read), and a UTF-8 byte-order mark
//! is accepted. Record data is parsed by hickory-proto's zone parser, a thousand entries at a
//! time, each entry written out in full (absolute owner, explicit TTL) so a batch stands alone.
//! A name is *inside* the overlay when it is at or below the apex of a loaded zone (an SOA owner
//! or an `$ORIGIN`); such names are answered authoritatively from the files — NXDOMAIN, NODATA,
//! CNAME and `*` wildcards included — and never sent to the network.

use super::answer::{QueryType, Record, RecordData};
use crate::files::{self, FileError, FileKind};
use hickory_proto::rr::{DNSClass, Name, RData, RecordType};
use hickory_proto::serialize::txt::{parse_ttl, Parser};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Nested `$INCLUDE`s allowed (BIND allows 20; real zones use one or two).
const MAX_INCLUDE_DEPTH: usize = 8;
/// Entries handed to hickory's parser at once.
const BATCH: usize = 1000;

/// A zone file that could not be loaded, with where and why.
#[derive(Debug, thiserror::Error)]
pub enum ZoneError {
    #[error(transparent)]
    Read(#[from] FileError),
    #[error("{path}:{line}: {message}")]
    Syntax {
        path: PathBuf,
        /// 1-based line of the entry at fault (0 for a problem of the whole file).
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

/// The records at one name, by type (a name has a few types: a list beats a map in memory).
#[derive(Debug, Default)]
struct Node {
    records: Vec<(QueryType, Vec<Record>)>,
}

impl Node {
    fn get(&self, qtype: QueryType) -> Option<&Vec<Record>> {
        self.records
            .iter()
            .find(|(t, _)| *t == qtype)
            .map(|(_, r)| r)
    }

    fn has(&self, qtype: QueryType) -> bool {
        self.get(qtype).is_some()
    }
}

/// Loaded zone files: records by owner name, the set of existing names, and the zone apexes.
#[derive(Debug, Default)]
pub struct ZoneOverlay {
    nodes: HashMap<String, Node>,
    /// Names that exist without records mailshift keeps: empty non-terminals (every ancestor of
    /// an owner up to its apex), apexes, owners of other types only.
    existing: HashSet<String>,
    apexes: HashMap<String, PathBuf>,
}

impl ZoneOverlay {
    /// Loads files and directories (a directory contributes its `*.zone` files, sorted).
    pub fn load(paths: &[PathBuf]) -> Result<ZoneOverlay, ZoneError> {
        let mut overlay = ZoneOverlay::default();
        for path in paths {
            if path.is_dir() {
                let files = files::list_dir(path, FileKind::Zone, |p| {
                    p.extension().is_some_and(|x| x == "zone")
                })?;
                if files.is_empty() {
                    return Err(ZoneError::EmptyDir { path: path.clone() });
                }
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
        if self.exists(name) {
            return ZoneAnswer::NoData;
        }
        // RFC 4592: a wildcard at the closest encloser answers for names that do not exist.
        let mut encloser = name;
        while let Some((_, parent)) = encloser.split_once('.') {
            encloser = parent;
            if self.exists(encloser) {
                let wildcard = format!("*.{encloser}");
                return match self.lookup_exact(&wildcard, qtype) {
                    Some(answer) => answer,
                    None if self.exists(&wildcard) => ZoneAnswer::NoData,
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

    /// True when `name` exists in the overlay (with records, or as an empty non-terminal).
    fn exists(&self, name: &str) -> bool {
        self.nodes.contains_key(name) || self.existing.contains(name)
    }

    /// True when `name` holds a CNAME beside other data (invalid DNS, RFC 1034 §3.6.2).
    pub fn has_cname_conflict(&self, name: &str) -> bool {
        self.nodes.get(name).is_some_and(|node| {
            node.has(QueryType::Cname) && node.records.iter().any(|(t, _)| *t != QueryType::Cname)
        })
    }

    /// Adds one record; an identical record at the same name is kept once, as in an RRset.
    fn insert(&mut self, owner: String, qtype: QueryType, record: Record) {
        let node = self.nodes.entry(owner).or_default();
        match node.records.iter_mut().find(|(t, _)| *t == qtype) {
            Some((_, records)) => {
                if !records.iter().any(|r| r.data == record.data) {
                    records.push(record);
                }
            }
            None => node.records.push((qtype, vec![record])),
        }
    }

    fn lookup_exact(&self, name: &str, qtype: QueryType) -> Option<ZoneAnswer> {
        let node = self.nodes.get(name)?;
        if let Some(records) = node.get(qtype) {
            return Some(ZoneAnswer::Records(records.clone()));
        }
        if qtype != QueryType::Cname {
            if let Some(cname) = node.get(QueryType::Cname).and_then(|r| r.first()) {
                if let RecordData::Cname(target) = &cname.data {
                    let conflict = node
                        .records
                        .iter()
                        .any(|(t, _)| !matches!(t, QueryType::Cname));
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
        let text = files::read_text(path, FileKind::Zone)?;
        let default_origin = default_origin(path);
        let mut loader = Loader {
            overlay: self,
            apexes: HashSet::new(),
            soa: HashMap::new(),
            added_any: false,
            batch: Batch::default(),
        };
        let mut state = EntryState {
            origin: default_origin.as_ref().map(|o| absolute(&o.to_ascii())),
            ..EntryState::default()
        };
        loader.read(path, text, &mut state, 0)?;
        loader.flush()?;
        let Loader {
            mut apexes,
            added_any,
            ..
        } = loader;
        if apexes.is_empty() {
            if let Some(origin) = &state.origin {
                apexes.insert(normalise(origin));
            }
        }
        if !added_any && default_origin.is_none() {
            return Err(ZoneError::Syntax {
                path: path.to_path_buf(),
                line: 0,
                message: "the file holds no records".into(),
            });
        }
        // Ancestors of owners exist as empty non-terminals, up to (not beyond) their apex.
        let mut empty_non_terminals: HashSet<String> = HashSet::new();
        for owner in self.nodes.keys().chain(self.existing.iter()) {
            let mut name = owner.as_str();
            while !apexes.contains(name) {
                match name.split_once('.') {
                    Some((_, parent)) => {
                        name = parent;
                        if self.nodes.contains_key(name)
                            || self.existing.contains(name)
                            || empty_non_terminals.contains(name)
                        {
                            break;
                        }
                        if apexes.iter().any(|a| is_within(name, a)) {
                            empty_non_terminals.insert(name.to_string());
                        } else {
                            break;
                        }
                    }
                    None => break,
                }
            }
        }
        self.existing.extend(empty_non_terminals);
        for apex in apexes {
            self.existing.insert(apex.clone());
            self.apexes
                .entry(apex)
                .or_insert_with(|| path.to_path_buf());
        }
        Ok(())
    }
}

/// What RFC 1035 carries from one entry to the next.
#[derive(Debug, Clone, Default)]
struct EntryState {
    /// Absolute, with the trailing dot.
    origin: Option<String>,
    /// `$TTL`.
    default_ttl: Option<u32>,
    /// The TTL of the last entry that gave one (used when there is no `$TTL`).
    last_ttl: Option<u32>,
    /// The last owner, absolute (entries starting with a blank reuse it).
    owner: Option<String>,
}

/// One entry written out in full, and where it came from.
struct Line {
    text: String,
    path: PathBuf,
    line: usize,
}

/// Entries waiting to be parsed together (they share one `$ORIGIN`).
#[derive(Default)]
struct Batch {
    origin: String,
    lines: Vec<Line>,
}

/// Reads one top-level zone file (and what it includes) into the overlay.
struct Loader<'a> {
    overlay: &'a mut ZoneOverlay,
    apexes: HashSet<String>,
    /// SOA owners seen, and where.
    soa: HashMap<String, (PathBuf, usize)>,
    added_any: bool,
    batch: Batch,
}

fn syntax(path: &Path, line: usize, message: impl Into<String>) -> ZoneError {
    ZoneError::Syntax {
        path: path.to_path_buf(),
        line,
        message: message.into(),
    }
}

const NO_ORIGIN: &str = "relative names but no $ORIGIN: add `$ORIGIN example.com.` at the top, \
                         or name the file after its zone (example.com.zone)";

/// A name as written, made absolute against `origin` (`@` is the origin itself).
fn resolve_name(
    name: &str,
    origin: Option<&str>,
    path: &Path,
    line: usize,
) -> Result<String, ZoneError> {
    if name == "@" {
        return origin
            .map(str::to_string)
            .ok_or_else(|| syntax(path, line, NO_ORIGIN));
    }
    if name.ends_with('.') && !name.ends_with("\\.") {
        return Ok(name.to_string());
    }
    match origin {
        Some(".") => Ok(format!("{name}.")),
        Some(o) => Ok(format!("{name}.{o}")),
        None => Err(syntax(path, line, NO_ORIGIN)),
    }
}

fn absolute(name: &str) -> String {
    if name.ends_with('.') {
        name.to_string()
    } else {
        format!("{name}.")
    }
}

/// The entries of a (parenthesis-flattened) file, each with its first line's number. An entry
/// ends at a newline outside a quoted string. Produced one at a time: a large zone's entries are
/// never all listed at once.
fn entries(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut rest = text;
    let mut line = 1usize;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let start_line = line;
        let (mut quoted, mut escaped, mut comment) = (false, false, false);
        let mut end = rest.len();
        let mut next = rest.len();
        for (i, c) in rest.char_indices() {
            if c == '\n' {
                line += 1;
                comment = false;
                if !quoted {
                    end = i;
                    next = i + 1;
                    break;
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
                _ => {}
            }
        }
        let entry = &rest[..end];
        rest = &rest[next..];
        Some((start_line, entry))
    })
}

/// The first words of an entry (owner, TTL, class, type: at most five are needed), up to a
/// comment or a quoted string, each with the byte offset where it ends: record data is taken
/// raw from the entry after the type.
fn leading_words(entry: &str) -> Vec<(&str, usize)> {
    let mut words = Vec::new();
    let mut start: Option<usize> = None;
    for (i, c) in entry.char_indices() {
        if c == ';' || c == '"' || c.is_whitespace() {
            if let Some(s) = start.take() {
                words.push((&entry[s..i], i));
                if words.len() == 5 {
                    return words;
                }
            }
            if c != ';' && c != '"' {
                continue;
            }
            return words;
        }
        if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        words.push((&entry[s..], entry.len()));
    }
    words
}

impl Loader<'_> {
    fn read(
        &mut self,
        path: &Path,
        text: String,
        state: &mut EntryState,
        depth: usize,
    ) -> Result<(), ZoneError> {
        let flat = flatten_parentheses(&text);
        // Only the flattened copy is read from here on.
        drop(text);
        for (line, entry) in entries(&flat) {
            let entry = entry.trim_end_matches('\r');
            let words = leading_words(entry);
            let Some(&(first, _)) = words.first() else {
                continue; // blank or comment
            };
            if first.starts_with('$') {
                let args: Vec<&str> = entry
                    .split(';')
                    .next()
                    .unwrap_or_default()
                    .split_whitespace()
                    .skip(1)
                    .collect();
                self.directive(path, line, first, &args, state, depth)?;
                continue;
            }
            let (owner, mut rest) = if entry.starts_with([' ', '\t']) {
                let owner = state.owner.clone().ok_or_else(|| {
                    syntax(
                        path,
                        line,
                        "the entry starts with a blank but no owner name came before it",
                    )
                })?;
                (owner, &words[..])
            } else {
                let owner = resolve_name(first, state.origin.as_deref(), path, line)?;
                (owner, &words[1..])
            };
            state.owner = Some(owner.clone());
            let (mut ttl, mut class, mut rtype) = (None, None, None);
            let mut data_from = entry.len();
            while let Some((&(word, end), others)) = rest.split_first() {
                rest = others;
                let upper = word.to_ascii_uppercase();
                if ttl.is_none() && word.starts_with(|c: char| c.is_ascii_digit()) {
                    let value = parse_ttl(word)
                        .map_err(|_| syntax(path, line, format!("`{word}` is not a TTL")))?;
                    ttl = Some(value);
                } else if class.is_none() && DNSClass::from_str(&upper).is_ok() {
                    class = Some(upper);
                } else {
                    let t = RecordType::from_str(&upper).map_err(|_| {
                        syntax(path, line, format!("`{word}` is not a record type"))
                    })?;
                    rtype = Some(t);
                    data_from = end;
                    break;
                }
            }
            let Some(rtype) = rtype else {
                return Err(syntax(path, line, "the entry has no record type"));
            };
            let ttl = match ttl {
                Some(t) => {
                    state.last_ttl = Some(t);
                    t
                }
                None => state.default_ttl.or(state.last_ttl).ok_or_else(|| {
                    syntax(
                        path,
                        line,
                        "the record has no TTL and none came before: add `$TTL 3600` at the top",
                    )
                })?,
            };
            let origin = state
                .origin
                .clone()
                .ok_or_else(|| syntax(path, line, NO_ORIGIN))?;
            if rtype == RecordType::SOA {
                let key = normalise(&owner);
                if let Some((first_path, first_line)) = self.soa.get(&key) {
                    return Err(syntax(
                        path,
                        line,
                        format!(
                            "a second SOA record for {key} (the first is at {}:{first_line})",
                            first_path.display()
                        ),
                    ));
                }
                self.soa.insert(key.clone(), (path.to_path_buf(), line));
                self.apexes.insert(key);
            }
            let data = entry.get(data_from..).unwrap_or_default();
            if rtype == RecordType::TXT {
                // TXT data is read here: hickory's lexer decodes `\DDD` wrongly (as if each
                // digit were a byte of a 24-bit number) and cannot hold bytes that are not UTF-8.
                let strings = txt_strings(data).map_err(|e| syntax(path, line, e))?;
                if let Some(long) = strings.iter().find(|s| s.len() > 255) {
                    return Err(syntax(
                        path,
                        line,
                        format!(
                            "a TXT character-string of {} bytes at {}; DNS allows at most 255 \
                             per string: split it into several quoted strings (\"…\" \"…\")",
                            long.len(),
                            normalise(&owner)
                        ),
                    ));
                }
                self.overlay.insert(
                    normalise(&owner),
                    QueryType::Txt,
                    Record {
                        ttl,
                        data: RecordData::Txt(strings),
                    },
                );
                self.added_any = true;
                continue;
            }
            if self.batch.origin != origin || self.batch.lines.len() >= BATCH {
                self.flush()?;
                self.batch.origin = origin;
            }
            self.batch.lines.push(Line {
                text: format!(
                    "{owner} {ttl} {} {rtype} {data}",
                    class.as_deref().unwrap_or("IN")
                ),
                path: path.to_path_buf(),
                line,
            });
        }
        Ok(())
    }

    fn directive(
        &mut self,
        path: &Path,
        line: usize,
        name: &str,
        args: &[&str],
        state: &mut EntryState,
        depth: usize,
    ) -> Result<(), ZoneError> {
        match name.to_ascii_uppercase().as_str() {
            "$ORIGIN" => {
                let [origin] = args else {
                    return Err(syntax(path, line, "$ORIGIN takes one domain name"));
                };
                let origin = resolve_name(origin, state.origin.as_deref(), path, line)?;
                Name::from_ascii(&origin).map_err(|e| {
                    syntax(path, line, format!("`{origin}` is not a domain name: {e}"))
                })?;
                self.apexes.insert(normalise(&origin));
                state.origin = Some(origin);
            }
            "$TTL" => {
                let [ttl] = args else {
                    return Err(syntax(path, line, "$TTL takes one value"));
                };
                state.default_ttl = Some(
                    parse_ttl(ttl)
                        .map_err(|_| syntax(path, line, format!("`{ttl}` is not a TTL")))?,
                );
            }
            "$INCLUDE" => {
                let (file, origin) = match args {
                    [file] => (*file, None),
                    [file, origin] => (*file, Some(*origin)),
                    _ => {
                        return Err(syntax(
                            path,
                            line,
                            "$INCLUDE takes a file name and an optional origin",
                        ))
                    }
                };
                if depth >= MAX_INCLUDE_DEPTH {
                    return Err(syntax(
                        path,
                        line,
                        format!("$INCLUDEs nest deeper than {MAX_INCLUDE_DEPTH} files (a loop?)"),
                    ));
                }
                let file = file.trim_matches('"');
                let included = path.parent().unwrap_or(Path::new(".")).join(file);
                let text = files::read_text(&included, FileKind::Zone)
                    .map_err(|e| syntax(path, line, format!("$INCLUDE {file}: {e}")))?;
                // RFC 1035 §5.1: an include never changes the including file's origin; BIND
                // restores the owner too. $TTL carries on.
                let mut inner = state.clone();
                if let Some(o) = origin {
                    inner.origin = Some(resolve_name(o, state.origin.as_deref(), path, line)?);
                }
                self.read(&included, text, &mut inner, depth + 1)?;
                state.default_ttl = inner.default_ttl;
                state.last_ttl = inner.last_ttl;
            }
            other => {
                return Err(syntax(
                    path,
                    line,
                    format!("{other} is not supported (known: $ORIGIN, $TTL, $INCLUDE)"),
                ))
            }
        }
        Ok(())
    }

    /// Parses the waiting entries and adds their records to the overlay.
    fn flush(&mut self) -> Result<(), ZoneError> {
        let batch = std::mem::take(&mut self.batch);
        if batch.lines.is_empty() {
            return Ok(());
        }
        let parse = |lines: &[Line]| {
            let mut text = format!("$ORIGIN {}\n", batch.origin);
            for l in lines {
                text.push_str(&l.text);
                text.push('\n');
            }
            Parser::new(text, None, None).parse()
        };
        let records = match parse(&batch.lines) {
            Ok((_, records)) => records,
            Err(_) => {
                // The first entry that fails on its own is the error's real place.
                for l in &batch.lines {
                    if let Err(e) = parse(std::slice::from_ref(l)) {
                        return Err(syntax(&l.path, l.line, explain_parse_error(&e.to_string())));
                    }
                }
                let (path, line) = batch
                    .lines
                    .first()
                    .map_or((PathBuf::new(), 0), |l| (l.path.clone(), l.line));
                return Err(syntax(
                    &path,
                    line,
                    "these records cannot be parsed together",
                ));
            }
        };
        for (key, rrset) in records {
            let owner = name_text(&Name::from(key.name.clone()));
            for record in rrset.records_without_rrsigs() {
                if let Some((qtype, data)) = convert_rdata(&record.data) {
                    self.overlay.insert(
                        owner.clone(),
                        qtype,
                        Record {
                            ttl: record.ttl,
                            data,
                        },
                    );
                    self.added_any = true;
                }
            }
            if !self.overlay.nodes.contains_key(&owner) {
                // Records of types mailshift does not keep: the name still exists.
                self.overlay.existing.insert(owner);
            }
        }
        Ok(())
    }
}

/// True when `name` is `apex` or below it (both normalised).
pub(crate) fn is_within(name: &str, apex: &str) -> bool {
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

/// A name from the wire or a parsed zone in mailshift's form: the labels' bytes joined with
/// dots, ASCII letters in lower case, without the trailing dot. Unlike `Name::to_ascii`, no
/// presentation-format escapes (a backslash before a colon, a slash or a space): a name that SPF
/// macros made, such as `foo:bar/baz.example.com`, must read back as the name that was asked for.
/// Bytes that are not UTF-8 are replaced (such a name is never asked for again as it was).
pub(crate) fn name_text(name: &Name) -> String {
    let mut text = String::with_capacity(name.len());
    for (i, label) in name.iter().enumerate() {
        if i > 0 {
            text.push('.');
        }
        text.push_str(&String::from_utf8_lossy(label));
    }
    text.make_ascii_lowercase();
    text
}

/// `example.com.zone` → `example.com.`; other names give no default origin.
fn default_origin(path: &Path) -> Option<Name> {
    let stem = path.file_name()?.to_str()?.strip_suffix(".zone")?;
    if !stem.contains('.') {
        return None;
    }
    Name::from_ascii(format!("{stem}.")).ok()
}

/// Joins every parenthesised group onto its first line, dropping the parentheses and the
/// comments inside them, and keeps every other line where it was (the newlines a group spanned
/// are emitted after it), so error lines still match the file. Quoted strings are untouched.
///
/// hickory's zone lexer does not understand quoted strings inside `( ... )`: it keeps the quote
/// characters and splits at blanks, so the common multi-line form of a DKIM key
/// (`sel._domainkey IN TXT ( "part one" "part two" )`) would be stored wrongly. On one line,
/// quoted strings are lexed properly.
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

/// The character-strings of TXT record data as written in a zone file: quoted strings or bare
/// words, `\DDD` a decimal byte, `\X` the character X (RFC 1035 §5.1).
fn txt_strings(data: &str) -> Result<Vec<Vec<u8>>, String> {
    let mut strings = Vec::new();
    let mut chars = data.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let Some(&first) = chars.peek() else { break };
        if first == ';' {
            break;
        }
        let quoted = first == '"';
        if quoted {
            chars.next();
        }
        let mut bytes = Vec::new();
        let mut closed = !quoted;
        while let Some(c) = chars.next() {
            match c {
                '"' if quoted => {
                    closed = true;
                    break;
                }
                c if !quoted && (c.is_whitespace() || c == ';' || c == '"') => {
                    if c == ';' || c == '"' {
                        return Err(format!("unexpected `{c}` in TXT data (quote the string)"));
                    }
                    break;
                }
                '\\' => match chars.next() {
                    Some(d) if d.is_ascii_digit() => {
                        let mut value = d.to_digit(10).unwrap_or(0);
                        for _ in 0..2 {
                            match chars.next().and_then(|c| c.to_digit(10)) {
                                Some(digit) => value = value * 10 + digit,
                                None => {
                                    return Err(
                                        "`\\` followed by a digit needs three digits (\\DDD)"
                                            .into(),
                                    )
                                }
                            }
                        }
                        let byte = u8::try_from(value)
                            .map_err(|_| format!("`\\{value:03}` is not a byte (0-255)"))?;
                        bytes.push(byte);
                    }
                    Some(other) => {
                        let mut buf = [0u8; 4];
                        bytes.extend_from_slice(other.encode_utf8(&mut buf).as_bytes());
                    }
                    None => return Err("the TXT data ends with a lone `\\`".into()),
                },
                c => {
                    let mut buf = [0u8; 4];
                    bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
            }
        }
        if !closed {
            return Err("a quoted TXT string is not closed (missing `\"`)".into());
        }
        strings.push(bytes);
    }
    if strings.is_empty() {
        return Err("a TXT record needs at least one string (\"\" is an empty one)".into());
    }
    Ok(strings)
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
                exchange: name_text(&mx.exchange),
            },
        ),
        RData::CNAME(c) => (QueryType::Cname, RecordData::Cname(name_text(&c.0))),
        RData::PTR(p) => (QueryType::Ptr, RecordData::Ptr(name_text(&p.0))),
        RData::NS(n) => (QueryType::Ns, RecordData::Ns(name_text(&n.0))),
        RData::SOA(soa) => (
            QueryType::Soa,
            RecordData::Soa {
                mname: name_text(&soa.mname),
                rname: name_text(&soa.rname),
                serial: soa.serial,
            },
        ),
        _ => return None,
    })
}

/// Converts record data from the wire into mailshift's form (shared with the network path).
pub(crate) fn convert_wire_rdata(data: &RData) -> Option<(QueryType, RecordData)> {
    match data {
        // Empty RDATA (see `transport::decode`): for TXT, a record with no strings, which is
        // still a record (its text is empty); for the other types, nothing usable.
        RData::Update0(RecordType::TXT) => Some((QueryType::Txt, RecordData::Txt(Vec::new()))),
        _ => convert_rdata(data),
    }
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

    #[test]
    fn errors_at_the_apex_name_their_real_line() {
        let text = format!(
            "$TTL 300\n@ IN SOA ns1 hostmaster 1 3600 600 86400 300\nwww IN A 192.0.2.1\n@ IN TXT \"{}\"\n",
            "a".repeat(300)
        );
        let (_dir, result) = overlay_from("apex.test.zone", &text);
        let err = result.unwrap_err().to_string();
        assert!(err.contains("apex.test.zone:4:"), "{err}");
        let bad = "$TTL 300\n@ IN SOA ns1 hostmaster 1 3600 600 86400 300\n\n@ IN MX ten mx1\n";
        let (_dir, result) = overlay_from("apex.test.zone", bad);
        let err = result.unwrap_err().to_string();
        assert!(err.contains("apex.test.zone:4:"), "{err}");
    }

    #[test]
    fn a_byte_order_mark_crlf_and_blank_owners_are_accepted() {
        let text = "\u{feff}$TTL 300\r\n@ IN SOA ns1 hostmaster 1 3600 600 86400 300\r\n  IN TXT \"v=spf1 -all\"\r\nmx 60 IN A 192.0.2.1\r\n   IN AAAA 2001:db8::1\r\n";
        let (_dir, overlay) = overlay_from("bom.test.zone", text);
        let overlay = overlay.unwrap();
        match overlay.lookup("bom.test", QueryType::Txt) {
            ZoneAnswer::Records(r) => assert_eq!(r[0].data.txt_joined().unwrap(), "v=spf1 -all"),
            other => panic!("{other:?}"),
        }
        match overlay.lookup("mx.bom.test", QueryType::A) {
            ZoneAnswer::Records(r) => assert_eq!(r[0].ttl, 60),
            other => panic!("{other:?}"),
        }
        // RFC 2308: without its own TTL, a record takes $TTL.
        match overlay.lookup("mx.bom.test", QueryType::Aaaa) {
            ZoneAnswer::Records(r) => assert_eq!(r[0].ttl, 300),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_error_on_the_last_line_of_a_large_zone_is_found_in_one_pass() {
        let mut text = String::from("$TTL 300\n@ IN SOA ns1 hostmaster 1 3600 600 86400 300\n");
        for i in 0..20_000 {
            text.push_str(&format!("h{i} IN A 192.0.2.{}\n", i % 250));
        }
        text.push_str("broken IN A 192.0.2.300\n");
        let (_dir, result) = overlay_from("large.test.zone", &text);
        let err = result.unwrap_err().to_string();
        assert!(err.contains("large.test.zone:20003:"), "{err}");
    }

    #[test]
    fn includes_are_read_through_the_bounded_reader() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("inner.db"),
            "www IN A 192.0.2.7\n@ IN TXT \"included\"\n",
        )
        .unwrap();
        let main = dir.path().join("inc.test.zone");
        std::fs::write(
            &main,
            "$TTL 300\n@ IN SOA ns1 hostmaster 1 3600 600 86400 300\n$INCLUDE inner.db sub.inc.test.\nafter IN A 192.0.2.8\n",
        )
        .unwrap();
        let overlay = ZoneOverlay::load(std::slice::from_ref(&main)).unwrap();
        assert!(matches!(
            overlay.lookup("www.sub.inc.test", QueryType::A),
            ZoneAnswer::Records(_)
        ));
        // The include did not change the including file's origin.
        assert!(matches!(
            overlay.lookup("after.inc.test", QueryType::A),
            ZoneAnswer::Records(_)
        ));
        for (target, expect) in [
            ("/dev/zero", "a character device"),
            ("missing.db", "No such file"),
            ("loop.db", "nest deeper"),
        ] {
            std::fs::write(dir.path().join("loop.db"), "$INCLUDE loop.db\n").unwrap();
            std::fs::write(
                &main,
                format!(
                    "$TTL 300\n@ IN SOA ns1 hostmaster 1 3600 600 86400 300\n$INCLUDE {target}\n"
                ),
            )
            .unwrap();
            let err = ZoneOverlay::load(std::slice::from_ref(&main))
                .unwrap_err()
                .to_string();
            assert!(err.contains(":3:") || err.contains("loop.db:1:"), "{err}");
            assert!(err.contains(expect), "{err}");
        }
        let fifo = dir.path().join("pipe.db");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        std::fs::write(
            &main,
            "$TTL 300\n@ IN SOA ns1 hostmaster 1 3600 600 86400 300\n$INCLUDE pipe.db\n",
        )
        .unwrap();
        let err = ZoneOverlay::load(std::slice::from_ref(&main))
            .unwrap_err()
            .to_string();
        assert!(err.contains("FIFO"), "{err}");
    }

    #[test]
    fn entries_without_ttl_type_or_owner_are_named() {
        for (text, expect) in [
            ("@ IN SOA ns1 hostmaster 1 3600 600 86400 300\n", "no TTL"),
            ("$TTL 300\n  IN A 192.0.2.1\n", "no owner name"),
            ("$TTL 300\nwww IN\n", "no record type"),
            ("$TTL 300\nwww IN BOGUS x\n", "`BOGUS` is not a record type"),
            (
                "$TTL 300\n$GENERATE 1-5 h$ A 192.0.2.$\n",
                "$GENERATE is not supported",
            ),
            (
                "$TTL 300\n@ IN SOA ns1 hm 1 1 1 1 1\n@ IN SOA ns2 hm 2 1 1 1 1\n",
                "a second SOA",
            ),
        ] {
            let (_dir, result) = overlay_from("named.test.zone", text);
            let err = result.unwrap_err().to_string();
            assert!(err.contains(expect), "{text:?}: {err}");
        }
    }

    #[test]
    fn txt_escapes_are_decimal_bytes_as_rfc_1035_says() {
        assert_eq!(
            txt_strings(r#""v=spf1 \027]0;x\007 -all" bare\"word "semi;colon" ; comment"#).unwrap(),
            vec![
                b"v=spf1 \x1b]0;x\x07 -all".to_vec(),
                b"bare\"word".to_vec(),
                b"semi;colon".to_vec()
            ]
        );
        assert_eq!(
            txt_strings(r#""\200\255""#).unwrap(),
            vec![vec![200u8, 255]]
        );
        assert_eq!(txt_strings(r#""""#).unwrap(), vec![Vec::<u8>::new()]);
        for bad in [
            r#""\256""#,
            r#""\12""#,
            r#""open"#,
            "",
            "; only a comment",
            r#""x\"#,
        ] {
            assert!(txt_strings(bad).is_err(), "{bad}");
        }
    }
}
