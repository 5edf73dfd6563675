//! A streaming reader of DMARC aggregate reports (`<feedback>`, RFC 7489, RFC 9990 and the
//! pre-RFC draft): the report's metadata and published policy first, then its `<record>`s one at
//! a time, so a report of a hundred thousand records is read in the memory of one. A report of
//! up to [`MAX_IN_MEMORY`] bytes — nearly every one — may instead be held whole and read
//! without copying ([`Parser::in_memory`]); both read the same way, and a test holds them to it.
//! Elements are told by their place in the schema once, when they open (`El`), not by
//! comparing paths for every value.
//!
//! Reports come from every receiver on the Internet and break the schema in every way seen in
//! the wild, so the reader is lenient where it can be and bounded everywhere: result words are
//! lower-cased (`Pass` is `pass`) and unknown ones kept as written; elements it does not know
//! (RFC 9990 extensions, foreign namespaces, stray elements) are skipped; bytes that are not
//! UTF-8 become U+FFFD rather than failing the report; every text value is cut at
//! [`MAX_TEXT`] bytes, a record keeps at most [`MAX_AUTH_RESULTS`] auth results and
//! [`MAX_REASONS`] override reasons, and nothing between two `<`/`>` may be longer than
//! [`MAX_TOKEN`] (quick-xml would otherwise buffer it whole). What it cannot read — XML that is
//! not well-formed, a root that is not `<feedback>`, no reporter or report id — is a
//! [`ParseError`] naming the line. Whether a record is usable (a source IP, a count) is the
//! importer's judgement, not the reader's: [`Record::check`].

use quick_xml::events::Event;
use quick_xml::reader::Reader;
use serde::Serialize;
use std::borrow::Cow;
use std::io::{self, BufRead, Read};
use std::net::IpAddr;

/// The longest text value kept, in bytes (longer ones are cut, and counted in
/// [`Parser::truncated`]).
pub const MAX_TEXT: usize = 1024;
/// The longest run of bytes between two `<` or `>`: a text node or a tag.
pub const MAX_TOKEN: u64 = 1 << 20;
/// DKIM or SPF auth results kept per record.
pub const MAX_AUTH_RESULTS: usize = 64;
/// Policy override reasons kept per record.
pub const MAX_REASONS: usize = 16;
/// `<error>` entries kept from the metadata.
const MAX_ERRORS: usize = 16;
/// Elements nested deeper than this are refused (a report is four levels deep).
const MAX_DEPTH: usize = 64;
/// Elements looked through for a `<feedback>` wrapped in something else.
const MAX_WRAPPERS: usize = 16;

/// The RFC 9990 namespace.
const DMARC2_NS: &str = "urn:ietf:params:xml:ns:dmarc-2.0";

/// A report that could not be read, at its line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

/// Which schema the report follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Flavour {
    /// RFC 9990 (DMARCbis): the `dmarc-2.0` namespace, or version 2.
    Rfc9990,
    /// RFC 7489: version 1.0.
    Rfc7489,
    /// No version and no namespace: the pre-RFC draft, or a reporter that leaves them out.
    Unversioned,
}

impl Flavour {
    pub fn id(self) -> &'static str {
        match self {
            Flavour::Rfc9990 => "rfc9990",
            Flavour::Rfc7489 => "rfc7489",
            Flavour::Unversioned => "unversioned",
        }
    }
}

/// `<report_metadata>`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Metadata {
    pub org_name: String,
    pub email: Option<String>,
    pub extra_contact_info: Option<String>,
    pub report_id: String,
    /// Unix seconds.
    pub begin: Option<i64>,
    pub end: Option<i64>,
    pub errors: Vec<String>,
    pub generator: Option<String>,
}

/// `<policy_published>`, lower-cased.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Policy {
    pub domain: String,
    pub adkim: Option<String>,
    pub aspf: Option<String>,
    pub p: Option<String>,
    pub sp: Option<String>,
    pub np: Option<String>,
    pub pct: Option<i64>,
    pub fo: Option<String>,
    pub testing: Option<String>,
    pub discovery_method: Option<String>,
}

/// What comes before the records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Header {
    pub version: Option<String>,
    pub flavour: Flavour,
    pub metadata: Metadata,
    pub policy: Policy,
}

/// One `<auth_results><dkim>`; stored as the JSON array `[domain, selector, result]` (a row is
/// stored many thousand times, and field names were a fifth of the history).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DkimAuth {
    pub domain: String,
    pub selector: String,
    pub result: String,
}

impl Serialize for DkimAuth {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq([&self.domain, &self.selector, &self.result])
    }
}

/// One `<auth_results><spf>`; stored as `[domain, scope, result]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpfAuth {
    pub domain: String,
    pub scope: String,
    pub result: String,
}

impl Serialize for SpfAuth {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq([&self.domain, &self.scope, &self.result])
    }
}

/// One `<policy_evaluated><reason>`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Reason {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// One `<record>`, as written (words lower-cased).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    /// 1-based position in the report.
    pub index: usize,
    /// The line its `<record>` starts on.
    pub line: usize,
    pub source_ip: Option<String>,
    pub count: Option<String>,
    pub disposition: Option<String>,
    pub dkim: Option<String>,
    pub spf: Option<String>,
    pub reasons: Vec<Reason>,
    pub header_from: Option<String>,
    pub envelope_from: Option<String>,
    pub envelope_to: Option<String>,
    pub dkim_results: Vec<DkimAuth>,
    pub spf_results: Vec<SpfAuth>,
}

impl Record {
    /// The source IP and message count, or why the record cannot be counted.
    pub fn check(&self) -> Result<(IpAddr, u64), String> {
        let ip = match self.source_ip.as_deref() {
            None => return Err("no source_ip".to_string()),
            Some(text) => text.parse::<IpAddr>().map_err(|_| {
                format!(
                    "source_ip `{}` is not an IP address",
                    crate::output::escape::text(text)
                )
            })?,
        };
        let count = match self.count.as_deref() {
            None => return Err("no count".to_string()),
            Some(text) => text.parse::<u64>().map_err(|_| {
                format!(
                    "count `{}` is not a whole number",
                    crate::output::escape::text(text)
                )
            })?,
        };
        Ok((ip, count))
    }
}

/// Where the reader is: before the first record, or between records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Header,
    Records,
    Done,
}

/// An element the reader knows, by its place in the report: told once, from its parent and
/// name, when it opens, so nothing compares paths per value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum El {
    /// Above the root.
    Top,
    /// What the reader does not know (RFC 9990 extensions, other namespaces), and all inside it.
    Other,
    Feedback,
    Version,
    Metadata,
    OrgName,
    Email,
    ExtraContactInfo,
    ReportId,
    DateRange,
    Begin,
    End,
    Error,
    Generator,
    Policy,
    PolicyDomain,
    Adkim,
    Aspf,
    P,
    Sp,
    Np,
    Pct,
    Fo,
    Testing,
    DiscoveryMethod,
    Record,
    Row,
    SourceIp,
    Count,
    PolicyEvaluated,
    Disposition,
    EvaluatedDkim,
    EvaluatedSpf,
    Reason,
    ReasonType,
    ReasonComment,
    Identifiers,
    HeaderFrom,
    EnvelopeFrom,
    EnvelopeTo,
    AuthResults,
    Dkim,
    DkimDomain,
    DkimSelector,
    DkimResult,
    Spf,
    SpfDomain,
    SpfScope,
    SpfResult,
}

impl El {
    /// The element called `name` inside this one.
    fn child(self, name: &str) -> El {
        use El::*;
        match (self, name) {
            (Top, "feedback") => Feedback,
            (Feedback, "version") => Version,
            (Feedback, "report_metadata") => Metadata,
            (Feedback, "policy_published") => Policy,
            (Feedback, "record") => Record,
            (Metadata, "org_name") => OrgName,
            (Metadata, "email") => Email,
            (Metadata, "extra_contact_info") => ExtraContactInfo,
            (Metadata, "report_id") => ReportId,
            (Metadata, "date_range") => DateRange,
            (Metadata, "error") => Error,
            (Metadata, "generator") => Generator,
            (DateRange, "begin") => Begin,
            (DateRange, "end") => End,
            (Policy, "domain") => PolicyDomain,
            (Policy, "adkim") => Adkim,
            (Policy, "aspf") => Aspf,
            (Policy, "p") => P,
            (Policy, "sp") => Sp,
            (Policy, "np") => Np,
            (Policy, "pct") => Pct,
            (Policy, "fo") => Fo,
            (Policy, "testing") => Testing,
            (Policy, "discovery_method") => DiscoveryMethod,
            (Record, "row") => Row,
            (Record, "identifiers") => Identifiers,
            (Record, "auth_results") => AuthResults,
            (Row, "source_ip") => SourceIp,
            (Row, "count") => Count,
            (Row, "policy_evaluated") => PolicyEvaluated,
            (PolicyEvaluated, "disposition") => Disposition,
            (PolicyEvaluated, "dkim") => EvaluatedDkim,
            (PolicyEvaluated, "spf") => EvaluatedSpf,
            (PolicyEvaluated, "reason") => Reason,
            (Reason, "type") => ReasonType,
            (Reason, "comment") => ReasonComment,
            (Identifiers, "header_from") => HeaderFrom,
            (Identifiers, "envelope_from") => EnvelopeFrom,
            (Identifiers, "envelope_to") => EnvelopeTo,
            (AuthResults, "dkim") => Dkim,
            (AuthResults, "spf") => Spf,
            (Dkim, "domain") => DkimDomain,
            (Dkim, "selector") => DkimSelector,
            (Dkim, "result") => DkimResult,
            (Spf, "domain") => SpfDomain,
            (Spf, "scope") => SpfScope,
            (Spf, "result") => SpfResult,
            _ => Other,
        }
    }

    /// Whether the element's text is a value the reader keeps (the others hold elements).
    fn holds_value(self) -> bool {
        use El::*;
        !matches!(
            self,
            Top | Other
                | Feedback
                | Metadata
                | DateRange
                | Policy
                | Record
                | Row
                | PolicyEvaluated
                | Reason
                | Identifiers
                | AuthResults
                | Dkim
                | Spf
        )
    }
}

/// Where the reader's XML events come from: a report streamed from any reader, or one held
/// whole in memory (most reports are a few kilobytes, and a borrowed reader copies nothing).
pub trait Events {
    fn next_event(&mut self) -> Result<Event<'_>, quick_xml::Error>;
    /// The line the reader is on, from 1.
    fn line(&mut self) -> usize;
    /// Byte sequences that were not UTF-8 and were replaced by U+FFFD.
    fn replaced(&self) -> u64;
    /// Whether whitespace before text is skipped (see [`Parser::step`]).
    fn skip_leading_space(&mut self, skip: bool);
}

/// A report read as it streams in, in bounded memory whatever its size.
pub struct Streamed<R: Read> {
    reader: Reader<Decoded<R>>,
    buf: Vec<u8>,
}

impl<R: Read> Events for Streamed<R> {
    fn next_event(&mut self) -> Result<Event<'_>, quick_xml::Error> {
        self.buf.clear();
        self.reader.read_event_into(&mut self.buf)
    }

    fn line(&mut self) -> usize {
        self.reader.get_mut().line()
    }

    fn replaced(&self) -> u64 {
        self.reader.get_ref().replaced
    }

    fn skip_leading_space(&mut self, skip: bool) {
        self.reader.config_mut().trim_text_start = skip;
    }
}

/// A report held whole (at most [`MAX_IN_MEMORY`] bytes, so no text or tag in it can be longer
/// than [`MAX_TOKEN`]); lines are counted only when one is asked for.
pub struct InMemory<'a> {
    reader: Reader<&'a [u8]>,
    text: &'a str,
    counted: usize,
    line: usize,
    replaced: u64,
}

impl Events for InMemory<'_> {
    fn next_event(&mut self) -> Result<Event<'_>, quick_xml::Error> {
        self.reader.read_event()
    }

    fn line(&mut self) -> usize {
        let at = usize::try_from(self.reader.buffer_position()).unwrap_or(usize::MAX);
        if at > self.counted {
            let bytes = self.text.as_bytes();
            let fresh = bytes.get(self.counted..at.min(bytes.len()));
            self.line += memchr::memchr_iter(b'\n', fresh.unwrap_or_default()).count();
            self.counted = at;
        }
        self.line
    }

    fn replaced(&self) -> u64 {
        self.replaced
    }

    fn skip_leading_space(&mut self, skip: bool) {
        self.reader.config_mut().trim_text_start = skip;
    }
}

/// The largest report read whole rather than streamed: larger ones are streamed.
pub const MAX_IN_MEMORY: usize = MAX_TOKEN as usize;

/// A report being read: [`Parser::header`] once, then [`Parser::next_record`] until `None`.
pub struct Parser<S: Events> {
    source: S,
    state: State,
}

/// What the reader has found so far, apart from where its events come from.
struct State {
    /// The open elements (wrappers around `<feedback>` are not kept).
    open: Vec<El>,
    text: String,
    version: Option<String>,
    flavour: Flavour,
    metadata: Metadata,
    policy: Policy,
    record: Record,
    dkim: DkimAuth,
    spf: SpfAuth,
    reason: Reason,
    records: usize,
    phase: Phase,
    seen_root: bool,
    /// The first element, when it is not `<feedback>`, and how many such came before it.
    outer: String,
    wrappers: usize,
    /// Text values cut at [`MAX_TEXT`], auth results and reasons over their caps.
    truncated: u64,
}

/// What one event asks of the parser beyond its state.
enum Taken {
    Nothing,
    /// A `<record>` opened: it takes the current line.
    RecordOpened,
}

fn xml_reader<R>(reader: R) -> Reader<R> {
    let mut reader = Reader::from_reader(reader);
    let config = reader.config_mut();
    config.expand_empty_elements = true;
    config.check_end_names = true;
    config.trim_text_start = true;
    reader
}

impl<R: Read> Parser<Streamed<R>> {
    /// A report streamed from `input`, whatever its size and bytes.
    pub fn new(input: R) -> Parser<Streamed<R>> {
        Parser::with_source(Streamed {
            reader: xml_reader(Decoded::new(input)),
            buf: Vec::with_capacity(1024),
        })
    }
}

impl<'a> Parser<InMemory<'a>> {
    /// A report held whole: `text` of at most [`MAX_IN_MEMORY`] bytes, in which `replaced`
    /// byte sequences were not UTF-8 and were replaced (see [`to_text`]).
    pub fn in_memory(text: &'a str, replaced: u64) -> Parser<InMemory<'a>> {
        Parser::with_source(InMemory {
            reader: xml_reader(text.as_bytes()),
            text,
            counted: 0,
            line: 1,
            replaced,
        })
    }
}

/// `bytes` as text, every sequence that is not UTF-8 replaced by U+FFFD, and how many were.
pub fn to_text(bytes: &[u8]) -> (std::borrow::Cow<'_, str>, u64) {
    match std::str::from_utf8(bytes) {
        Ok(text) => (std::borrow::Cow::Borrowed(text), 0),
        Err(_) => {
            let replaced = bytes
                .utf8_chunks()
                .filter(|chunk| !chunk.invalid().is_empty())
                .count();
            (String::from_utf8_lossy(bytes), replaced as u64)
        }
    }
}

impl<S: Events> Parser<S> {
    fn with_source(source: S) -> Parser<S> {
        Parser {
            source,
            state: State {
                open: Vec::new(),
                text: String::new(),
                version: None,
                flavour: Flavour::Unversioned,
                metadata: Metadata::default(),
                policy: Policy::default(),
                record: Record::default(),
                dkim: DkimAuth::default(),
                spf: SpfAuth::default(),
                reason: Reason::default(),
                records: 0,
                phase: Phase::Header,
                seen_root: false,
                outer: String::new(),
                wrappers: 0,
                truncated: 0,
            },
        }
    }

    /// Bytes that were not UTF-8 and were replaced.
    pub fn replaced(&self) -> u64 {
        self.source.replaced()
    }

    /// Text values cut at [`MAX_TEXT`], and auth results and reasons over their caps.
    pub fn truncated(&self) -> u64 {
        self.state.truncated
    }

    fn error(&mut self, message: impl Into<String>) -> ParseError {
        ParseError {
            line: self.source.line(),
            message: message.into(),
        }
    }

    /// The metadata and the policy: reads up to the first record (or the end of the report).
    pub fn header(&mut self) -> Result<Header, ParseError> {
        while self.state.phase == Phase::Header {
            self.step()?;
        }
        let metadata = std::mem::take(&mut self.state.metadata);
        if metadata.org_name.trim().is_empty() && metadata.report_id.trim().is_empty() {
            return Err(self.error(
                "the report has no report_metadata (no org_name, no report_id): it cannot be told apart from others",
            ));
        }
        if metadata.report_id.trim().is_empty() {
            return Err(
                self.error("the report has no report_id: it cannot be told apart from others")
            );
        }
        if self.state.policy.domain.is_empty() {
            return Err(self.error("the report has no policy_published domain"));
        }
        Ok(Header {
            version: self.state.version.clone(),
            flavour: self.state.flavour,
            metadata,
            policy: std::mem::take(&mut self.state.policy),
        })
    }

    /// The next record; `None` after the last.
    pub fn next_record(&mut self) -> Result<Option<Record>, ParseError> {
        if self.state.phase == Phase::Header {
            self.header()?;
        }
        let before = self.state.records;
        while self.state.phase == Phase::Records {
            self.step()?;
            if self.state.records > before {
                return Ok(Some(std::mem::take(&mut self.state.record)));
            }
        }
        Ok(None)
    }

    /// Reads one XML event.
    ///
    /// After a tag the reader skips whitespace before text: the whitespace between a pretty-
    /// printed report's elements is then no event at all (a quarter of its events), and a
    /// value is trimmed anyway. After a reference, CDATA, a comment or a processing
    /// instruction it does not: there the space is inside the value (`Ex &amp; Co`).
    fn step(&mut self) -> Result<(), ParseError> {
        let (taken, after_tag) = match self.source.next_event() {
            Ok(event) => {
                let after_tag = match &event {
                    Event::Start(_) | Event::End(_) => Some(true),
                    Event::Text(_) | Event::Eof => None,
                    _ => Some(false),
                };
                (self.state.take(event), after_tag)
            }
            Err(e) => (Err(xml_message(&e)), None),
        };
        if let Some(skip) = after_tag {
            self.source.skip_leading_space(skip);
        }
        match taken {
            Ok(Taken::Nothing) => Ok(()),
            Ok(Taken::RecordOpened) => {
                self.state.record.line = self.source.line();
                Ok(())
            }
            Err(message) => Err(self.error(message)),
        }
    }
}

/// A record made ready to be stored: checked, its lists in JSON, and only what is stored.
/// What is not stored (the lists themselves, the IP and count as read) is let go where the row
/// is made: on a worker thread for reports read ahead, so the importing thread, the import's
/// critical path, frees a few strings per row instead of a few dozen.
#[derive(Debug)]
pub struct Row {
    /// 1-based position in the report.
    pub index: usize,
    /// The line its `<record>` starts on.
    pub line: usize,
    /// The source IP (as text) and count, or why the record cannot be counted.
    pub checked: Result<(String, u64), String>,
    pub disposition: Option<Cow<'static, str>>,
    pub dkim: Option<Cow<'static, str>>,
    pub spf: Option<Cow<'static, str>>,
    pub header_from: Option<String>,
    pub envelope_from: Option<String>,
    pub envelope_to: Option<String>,
    /// JSON, `[[domain, selector, result], …]` ([`DkimAuth`]).
    pub dkim_results: String,
    /// JSON, `[[domain, scope, result], …]` ([`SpfAuth`]).
    pub spf_results: String,
    pub reasons: Cow<'static, str>,
}

/// The values nearly every row holds, kept without an allocation of their own.
const COMMON_WORDS: [&str; 5] = ["none", "pass", "fail", "quarantine", "reject"];

/// `value` as one of [`COMMON_WORDS`] when it is one (already lower-cased by the parser).
fn common(value: Option<String>) -> Option<Cow<'static, str>> {
    value.map(|v| match COMMON_WORDS.iter().find(|w| **w == v) {
        Some(word) => Cow::Borrowed(*word),
        None => Cow::Owned(v),
    })
}

impl Row {
    pub fn new(mut record: Record) -> Row {
        let json = |value: Result<String, serde_json::Error>| value.unwrap_or_else(|_| "[]".into());
        let (checked, dkim_results, spf_results, reasons) = match record.check() {
            Ok((ip, count)) => (
                Ok((canonical_ip(ip, record.source_ip.take()), count)),
                json(serde_json::to_string(&record.dkim_results)),
                json(serde_json::to_string(&record.spf_results)),
                if record.reasons.is_empty() {
                    Cow::Borrowed("[]")
                } else {
                    Cow::Owned(json(serde_json::to_string(&record.reasons)))
                },
            ),
            Err(why) => (Err(why), String::new(), String::new(), Cow::Borrowed("")),
        };
        let Record {
            index,
            line,
            disposition,
            dkim,
            spf,
            header_from,
            envelope_from,
            envelope_to,
            ..
        } = record;
        Row {
            index,
            line,
            checked,
            disposition: common(disposition),
            dkim: common(dkim),
            spf: common(spf),
            header_from,
            envelope_from,
            envelope_to,
            dkim_results,
            spf_results,
            reasons,
        }
    }
}

/// The address as stored: IPv6 in its RFC 5952 form. An IPv4 address parses only as written
/// in its one form (no leading zeros, no spaces), so the text read is kept as it is, without
/// writing it again: twenty thousand rows spent a twentieth of their reading on that.
fn canonical_ip(ip: IpAddr, read: Option<String>) -> String {
    match (ip, read) {
        (IpAddr::V4(_), Some(text)) => text,
        _ => ip.to_string(),
    }
}

/// A report read header first, then record by record: as it is parsed ([`Parser`]) or from
/// what was parsed ahead ([`Parsed`]).
pub trait ReadReport {
    fn header(&mut self) -> Result<Header, ParseError>;
    /// The next record; `None` after the last.
    fn next_row(&mut self) -> Result<Option<Row>, ParseError>;
    /// Text values cut at [`MAX_TEXT`], and auth results and reasons over their caps.
    fn truncated(&self) -> u64;
    /// Byte sequences that were not UTF-8 and were replaced.
    fn replaced(&self) -> u64;
}

impl<S: Events> ReadReport for Parser<S> {
    fn header(&mut self) -> Result<Header, ParseError> {
        Parser::header(self)
    }

    fn next_row(&mut self) -> Result<Option<Row>, ParseError> {
        Ok(Parser::next_record(self)?.map(Row::new))
    }

    fn truncated(&self) -> u64 {
        Parser::truncated(self)
    }

    fn replaced(&self) -> u64 {
        Parser::replaced(self)
    }
}

/// A report parsed to its end (or to its error) ahead of being stored, read back as the
/// parser gave it.
#[derive(Debug)]
pub struct Parsed {
    header: Option<Result<Header, ParseError>>,
    rows: std::vec::IntoIter<Row>,
    end: Option<ParseError>,
    truncated: u64,
    replaced: u64,
}

impl Parsed {
    /// Everything `parser` reads.
    pub fn read<P: ReadReport>(mut parser: P) -> Parsed {
        let mut rows = Vec::new();
        let mut end = None;
        let header = parser.header();
        if header.is_ok() {
            loop {
                match parser.next_row() {
                    Ok(Some(row)) => rows.push(row),
                    Ok(None) => break,
                    Err(e) => {
                        end = Some(e);
                        break;
                    }
                }
            }
        }
        Parsed {
            header: Some(header),
            rows: rows.into_iter(),
            end,
            truncated: parser.truncated(),
            replaced: parser.replaced(),
        }
    }
}

impl Parsed {
    /// Whether the report was read to its end without an error.
    pub fn is_whole(&self) -> bool {
        self.end.is_none() && matches!(self.header, Some(Ok(_)))
    }
}

impl ReadReport for Parsed {
    fn header(&mut self) -> Result<Header, ParseError> {
        self.header.take().unwrap_or_else(|| {
            Err(ParseError {
                line: 0,
                message: "the report's header was read twice".into(),
            })
        })
    }

    fn next_row(&mut self) -> Result<Option<Row>, ParseError> {
        match (self.rows.next(), self.end.take()) {
            (Some(row), end) => {
                self.end = end;
                Ok(Some(row))
            }
            (None, Some(e)) => Err(e),
            (None, None) => Ok(None),
        }
    }

    fn truncated(&self) -> u64 {
        self.truncated
    }

    fn replaced(&self) -> u64 {
        self.replaced
    }
}

impl State {
    fn not_feedback(&self) -> String {
        if self.outer.is_empty() {
            "no <feedback> element: the file is empty or not a DMARC aggregate report".into()
        } else {
            let shown = crate::output::escape::text(&self.outer).into_owned();
            format!(
                "no <feedback> element (the root element is <{shown}>): not a DMARC aggregate report"
            )
        }
    }

    /// Whether text here is a value to keep.
    fn collecting(&self) -> bool {
        self.open.last().is_some_and(|el| el.holds_value())
    }

    fn take(&mut self, event: Event<'_>) -> Result<Taken, String> {
        match event {
            Event::Start(start) => {
                if self.open.len() >= MAX_DEPTH {
                    return Err("elements nested too deeply".into());
                }
                let qname = start.name();
                // The whole name: a prefixed one (`x:record`, an extension) has a colon, which
                // none of the report's elements has, so it is never taken for one.
                let name: &str = qname.as_ref();
                if !self.seen_root {
                    if name != "feedback" {
                        // Some reporters wrap the report (in an `<xs:schema>`, even): look
                        // a little way in for it.
                        if self.outer.is_empty() {
                            let full: &str = qname.as_ref();
                            self.outer = full.chars().take(64).collect();
                        }
                        self.wrappers += 1;
                        if self.wrappers > MAX_WRAPPERS {
                            return Err(self.not_feedback());
                        }
                        return Ok(Taken::Nothing);
                    }
                    self.seen_root = true;
                    for attr in start.attributes().with_checks(false).flatten() {
                        let value: &str = attr.value.as_ref();
                        if attr.key.as_ref().starts_with("xmlns") && value == DMARC2_NS {
                            self.flavour = Flavour::Rfc9990;
                        }
                    }
                }
                let el = match self.open.last() {
                    Some(parent) => parent.child(name),
                    None => El::Top.child(name),
                };
                self.open.push(el);
                self.text.clear();
                return Ok(self.opened(el));
            }
            Event::End(_) => {
                if !self.seen_root {
                    return Ok(Taken::Nothing);
                }
                if let Some(el) = self.open.pop() {
                    if el.holds_value() {
                        let value = clean(&self.text);
                        self.value(el, value);
                    } else {
                        self.closed(el);
                    }
                }
                self.text.clear();
                if self.open.is_empty() {
                    self.phase = Phase::Done;
                }
            }
            Event::Text(text) => {
                if self.collecting() {
                    self.push_text(&text);
                }
            }
            Event::CData(data) => {
                if self.collecting() {
                    let text: &str = &data;
                    self.push_text(text);
                }
            }
            Event::GeneralRef(reference) => {
                if self.collecting() {
                    match reference.resolve_char_ref() {
                        Ok(Some(c)) => self.push_text(c.encode_utf8(&mut [0; 4])),
                        _ => match quick_xml::escape::resolve_predefined_entity(&reference) {
                            Some(text) => self.push_text(text),
                            // An entity the report never declared: kept as written.
                            None => {
                                let raw = format!("&{};", &*reference);
                                self.push_text(&raw);
                            }
                        },
                    }
                }
            }
            Event::Eof => {
                if !self.seen_root {
                    return Err(self.not_feedback());
                }
                if !self.open.is_empty() {
                    return Err("the report ends before </feedback>: it is cut short".into());
                }
                self.phase = Phase::Done;
            }
            Event::Empty(_)
            | Event::Comment(_)
            | Event::Decl(_)
            | Event::PI(_)
            | Event::DocType(_) => {}
        }
        Ok(Taken::Nothing)
    }

    fn push_text(&mut self, text: &str) {
        if self.text.len() >= MAX_TEXT {
            if !text.trim().is_empty() {
                self.truncated += 1;
            }
            return;
        }
        let room = MAX_TEXT - self.text.len();
        if text.len() <= room {
            self.text.push_str(text);
        } else {
            let mut cut = room;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            self.text.push_str(text.get(..cut).unwrap_or_default());
            self.truncated += 1;
        }
    }

    /// `el` opened.
    fn opened(&mut self, el: El) -> Taken {
        match el {
            El::Record => {
                if self.phase == Phase::Header {
                    self.phase = Phase::Records;
                }
                self.record = Record {
                    index: self.records + 1,
                    ..Record::default()
                };
                return Taken::RecordOpened;
            }
            El::Dkim => self.dkim = DkimAuth::default(),
            El::Spf => self.spf = SpfAuth::default(),
            El::Reason => self.reason = Reason::default(),
            _ => {}
        }
        Taken::Nothing
    }

    /// `el`, an element holding others, closed.
    fn closed(&mut self, el: El) {
        match el {
            El::Reason => {
                let reason = std::mem::take(&mut self.reason);
                if reason.kind.is_empty() && reason.comment.is_none() {
                    // `<reason><type/><comment/></reason>`: nothing said.
                } else if self.record.reasons.len() < MAX_REASONS {
                    self.record.reasons.push(reason);
                } else {
                    self.truncated += 1;
                }
            }
            El::Dkim => {
                if self.record.dkim_results.len() < MAX_AUTH_RESULTS {
                    self.record
                        .dkim_results
                        .push(std::mem::take(&mut self.dkim));
                } else {
                    self.truncated += 1;
                }
            }
            El::Spf => {
                if self.record.spf_results.len() < MAX_AUTH_RESULTS {
                    self.record.spf_results.push(std::mem::take(&mut self.spf));
                } else {
                    self.truncated += 1;
                }
            }
            El::Record if self.phase == Phase::Records => self.records += 1,
            _ => {}
        }
    }

    /// `el`, an element holding a value, closed with its text.
    fn value(&mut self, el: El, value: Option<String>) {
        let word = |value: Option<String>| value.map(lowercase);
        match el {
            El::Version => {
                // The version comes before the records: the flavour goes with the header.
                if self.flavour != Flavour::Rfc9990 {
                    self.flavour = match value.as_deref() {
                        Some(v) if v.starts_with('2') => Flavour::Rfc9990,
                        Some(v) if v.starts_with('1') => Flavour::Rfc7489,
                        _ => Flavour::Unversioned,
                    };
                }
                self.version = value;
            }
            El::OrgName => self.metadata.org_name = value.unwrap_or_default(),
            El::Email => self.metadata.email = value,
            El::ExtraContactInfo => self.metadata.extra_contact_info = value,
            El::ReportId => self.metadata.report_id = value.unwrap_or_default(),
            El::Begin => self.metadata.begin = value.as_deref().and_then(seconds),
            El::End => self.metadata.end = value.as_deref().and_then(seconds),
            El::Error => {
                if let Some(v) = value {
                    if self.metadata.errors.len() < MAX_ERRORS {
                        self.metadata.errors.push(v);
                    }
                }
            }
            El::Generator => self.metadata.generator = value,
            El::PolicyDomain => self.policy.domain = word(value).unwrap_or_default(),
            El::Adkim => self.policy.adkim = word(value),
            El::Aspf => self.policy.aspf = word(value),
            El::P => self.policy.p = word(value),
            El::Sp => self.policy.sp = word(value),
            El::Np => self.policy.np = word(value),
            El::Pct => self.policy.pct = value.as_deref().and_then(|v| v.parse().ok()),
            El::Fo => self.policy.fo = value,
            El::Testing => self.policy.testing = word(value),
            El::DiscoveryMethod => self.policy.discovery_method = word(value),
            El::SourceIp => self.record.source_ip = value,
            El::Count => self.record.count = value,
            El::Disposition => self.record.disposition = word(value),
            El::EvaluatedDkim => self.record.dkim = word(value),
            El::EvaluatedSpf => self.record.spf = word(value),
            El::ReasonType => self.reason.kind = word(value).unwrap_or_default(),
            El::ReasonComment => self.reason.comment = value,
            El::HeaderFrom => self.record.header_from = word(value),
            El::EnvelopeFrom => self.record.envelope_from = word(value),
            El::EnvelopeTo => self.record.envelope_to = word(value),
            El::DkimDomain => self.dkim.domain = word(value).unwrap_or_default(),
            El::DkimSelector => self.dkim.selector = value.unwrap_or_default(),
            El::DkimResult => self.dkim.result = word(value).unwrap_or_default(),
            El::SpfDomain => self.spf.domain = word(value).unwrap_or_default(),
            El::SpfScope => self.spf.scope = word(value).unwrap_or_default(),
            El::SpfResult => self.spf.result = word(value).unwrap_or_default(),
            _ => {}
        }
    }
}

/// Lower-cased, in place when ASCII (nearly always).
fn lowercase(mut text: String) -> String {
    if text.is_ascii() {
        text.make_ascii_lowercase();
        text
    } else {
        text.to_lowercase()
    }
}

/// Trimmed text; `None` when empty.
fn clean(text: &str) -> Option<String> {
    let t = text.trim();
    (!t.is_empty()).then(|| t.to_string())
}

/// Unix seconds (some reporters write `1524268799 ` or `1524268799.0`).
fn seconds(text: &str) -> Option<i64> {
    let t = text.trim();
    t.parse::<i64>().ok().or_else(|| {
        t.parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(|f| f as i64)
    })
}

/// A quick-xml error in words (its I/O errors carry our own messages: the caps).
fn xml_message(e: &quick_xml::Error) -> String {
    match e {
        quick_xml::Error::Io(io) => io.to_string(),
        other => format!("not well-formed XML: {other}"),
    }
}

/// Bytes read into the buffer at a time.
const CHUNK: usize = 64 * 1024;

/// The input as text for quick-xml, buffered: every byte sequence that is not UTF-8 replaced
/// by U+FFFD (quick-xml refuses such bytes, and one bad byte in a `header_from` should not cost
/// a whole report), its lines counted when one is asked for, and any run of more than
/// [`MAX_TOKEN`] bytes without a `<` or `>` refused (quick-xml keeps a whole text node or tag in
/// memory). Valid input, nearly all of it, is checked in place and never copied.
pub struct Decoded<R> {
    inner: R,
    buf: Vec<u8>,
    /// The text not yet consumed is `buf[start..end]`.
    start: usize,
    end: usize,
    /// `buf[end..end + carry]`: the start of a sequence whose other bytes are still to come.
    carry: usize,
    /// The line at `buf[counted]`, from 1.
    line: usize,
    counted: usize,
    /// Bytes since the last `<` or `>`.
    run: u64,
    tripped: bool,
    /// Sequences replaced.
    pub replaced: u64,
}

impl<R: Read> Decoded<R> {
    pub fn new(inner: R) -> Decoded<R> {
        Decoded {
            inner,
            buf: Vec::new(),
            start: 0,
            end: 0,
            carry: 0,
            line: 1,
            counted: 0,
            run: 0,
            tripped: false,
            replaced: 0,
        }
    }

    /// The line of the next byte to be consumed.
    pub fn line(&mut self) -> usize {
        let fresh = self.buf.get(self.counted..self.start).unwrap_or_default();
        self.line += memchr::memchr_iter(b'\n', fresh).count();
        self.counted = self.start;
        self.line
    }

    /// Reads the next chunk of text into the buffer; an empty one at the end of the input.
    fn refill(&mut self) -> io::Result<()> {
        self.line();
        let pending = self.end..self.end + self.carry;
        self.buf.copy_within(pending.clone(), 0);
        let held = pending.len();
        self.buf.resize(CHUNK.max(held + 4), 0);
        let n = loop {
            match self
                .inner
                .read(self.buf.get_mut(held..).unwrap_or_default())
            {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        };
        let total = held + n;
        self.buf.truncate(total);
        (self.start, self.counted) = (0, 0);
        if n == 0 {
            self.carry = 0;
            self.end = 0;
            if held > 0 {
                // The input ends inside a multi-byte sequence.
                self.buf.clear();
                self.buf.extend_from_slice("\u{FFFD}".as_bytes());
                self.end = self.buf.len();
                self.replaced += 1;
            }
            return Ok(());
        }
        let cut = total - incomplete_tail(&self.buf);
        if std::str::from_utf8(self.buf.get(..cut).unwrap_or_default()).is_err() {
            let mut text = Vec::with_capacity(total + 16);
            for chunk in self.buf.get(..cut).unwrap_or_default().utf8_chunks() {
                text.extend_from_slice(chunk.valid().as_bytes());
                if !chunk.invalid().is_empty() {
                    text.extend_from_slice("\u{FFFD}".as_bytes());
                    self.replaced += 1;
                }
            }
            let end = text.len();
            text.extend_from_slice(self.buf.get(cut..).unwrap_or_default());
            self.buf = text;
            self.end = end;
        } else {
            self.end = cut;
        }
        self.carry = self.buf.len() - self.end;
        let text = self.buf.get(..self.end).unwrap_or_default();
        match memchr::memchr2(b'<', b'>', text) {
            Some(first) => {
                self.tripped |= self.run + first as u64 > MAX_TOKEN;
                let last = memchr::memrchr2(b'<', b'>', text).unwrap_or(first);
                self.run = (text.len() - last - 1) as u64;
            }
            None => self.run += text.len() as u64,
        }
        self.tripped |= self.run > MAX_TOKEN;
        Ok(())
    }
}

/// How many bytes at the end of `bytes` begin a sequence that is not complete yet.
fn incomplete_tail(bytes: &[u8]) -> usize {
    for back in 1..=3.min(bytes.len()) {
        let Some(&byte) = bytes.get(bytes.len() - back) else {
            break;
        };
        if byte & 0xC0 == 0x80 {
            // A continuation byte: its lead is further back.
            continue;
        }
        let needs = match byte {
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF7 => 4,
            _ => 1,
        };
        return if needs > back { back } else { 0 };
    }
    0
}

impl<R: Read> Read for Decoded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        if let (Some(dst), Some(src)) = (buf.get_mut(..n), available.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.consume(n);
        Ok(n)
    }
}

impl<R: Read> BufRead for Decoded<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        // A refill may give no text (only the start of a sequence): read on until there is
        // text or the input ends.
        while self.start >= self.end && !self.tripped {
            self.refill()?;
            if self.end == 0 && self.carry == 0 {
                break;
            }
        }
        if self.tripped {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "a text or tag longer than {}: not a DMARC report mailshift can read",
                    crate::files::show_size(MAX_TOKEN)
                ),
            ));
        }
        Ok(self.buf.get(self.start..self.end).unwrap_or_default())
    }

    fn consume(&mut self, amt: usize) {
        self.start = (self.start + amt).min(self.end);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all<S: Events>(mut parser: Parser<S>) -> Result<(Header, Vec<Record>), ParseError> {
        let header = parser.header()?;
        let mut records = Vec::new();
        while let Some(r) = parser.next_record()? {
            records.push(r);
        }
        Ok((header, records))
    }

    /// The report read both ways, streamed and held whole: they must agree, errors and their
    /// lines included (when the whole report fits in memory).
    fn parse(xml: &str) -> Result<(Header, Vec<Record>), ParseError> {
        let streamed = read_all(Parser::new(xml.as_bytes()));
        if xml.len() <= MAX_IN_MEMORY {
            let whole = read_all(Parser::in_memory(xml, 0));
            assert_eq!(
                streamed, whole,
                "streamed and in-memory readers differ on {xml:?}"
            );
        }
        streamed
    }

    const REPORT: &str = r#"<?xml version="1.0"?>
<feedback xmlns="urn:ietf:params:xml:ns:dmarc-2.0" xmlns:x="urn:x">
  <report_metadata><org_name>Ex &amp; Co</org_name><report_id>r1</report_id>
    <date_range><begin>100</begin><end>200 </end></date_range><x:stray>y</x:stray></report_metadata>
  <policy_published><domain>Example.COM</domain><p>Reject</p><np>none</np><pct>50</pct></policy_published>
  <record><row><source_ip>192.0.2.1</source_ip><count>3</count>
    <policy_evaluated><disposition>None</disposition><dkim>Pass</dkim><spf>hardfail</spf>
    <reason><type/><comment/></reason></policy_evaluated></row>
    <identifiers><header_from>Example.com</header_from></identifiers>
    <auth_results><dkim><domain>example.com</domain><selector>s1</selector><result>PASS</result></dkim>
    <spf><domain>example.com</domain><scope>mfrom</scope><result>HardFail</result></spf></auth_results>
    <x:ext>z</x:ext></record>
  <record><row><source_ip/><count>x</count></row></record>
</feedback>"#;

    #[test]
    fn a_report_is_read_header_first_then_record_by_record() {
        let (header, records) = parse(REPORT).unwrap();
        assert_eq!(header.flavour, Flavour::Rfc9990);
        assert_eq!(header.metadata.org_name, "Ex & Co");
        assert_eq!(header.metadata.end, Some(200));
        assert_eq!(header.policy.domain, "example.com");
        assert_eq!(header.policy.p.as_deref(), Some("reject"));
        assert_eq!(header.policy.pct, Some(50));
        assert_eq!(records.len(), 2);
        let r = &records[0];
        assert_eq!(r.check().unwrap().1, 3);
        assert_eq!(r.disposition.as_deref(), Some("none"));
        assert_eq!(r.dkim.as_deref(), Some("pass"));
        assert_eq!(r.spf.as_deref(), Some("hardfail"));
        assert!(r.reasons.is_empty());
        assert_eq!(r.dkim_results[0].result, "pass");
        assert_eq!(r.spf_results[0].result, "hardfail");
        assert_eq!(records[1].check().unwrap_err(), "no source_ip");
        assert_eq!(records[1].index, 2);
    }

    #[test]
    fn space_inside_a_value_is_kept_around_references_cdata_and_comments() {
        let xml = "<feedback>\n  <report_metadata>\n    <org_name>\n      Ex &amp;  Co &#x41; <![CDATA[ b ]]> c<!-- d --> e <?pi?> f\n    </org_name>\n    <report_id> r 1 </report_id>\n  </report_metadata>\n  <policy_published><domain> example.com </domain></policy_published>\n  <record>\n    <row>\n      <source_ip>\n        192.0.2.1\n      </source_ip>\n      <count>2</count>\n    </row>\n    <auth_results><dkim><domain>d</domain><selector>  s 1 </selector><result>pass</result></dkim></auth_results>\n  </record>\n</feedback>\n";
        let (header, records) = parse(xml).unwrap();
        assert_eq!(header.metadata.org_name, "Ex &  Co A  b  c e  f");
        assert_eq!(header.metadata.report_id, "r 1");
        assert_eq!(header.policy.domain, "example.com");
        assert_eq!(records.len(), 1);
        assert_eq!(
            records[0].check().unwrap(),
            ("192.0.2.1".parse().unwrap(), 2)
        );
        assert_eq!(records[0].dkim_results[0].selector, "s 1");
        assert_eq!(records[0].line, 9);
    }

    #[test]
    fn a_source_address_is_stored_in_its_canonical_form() {
        for (read, stored) in [
            ("192.0.2.1", "192.0.2.1"),
            ("0.0.0.0", "0.0.0.0"),
            ("2001:DB8:0:0::0:1", "2001:db8::1"),
            ("::ffff:192.0.2.1", "::ffff:192.0.2.1"),
        ] {
            let ip: IpAddr = read.parse().unwrap();
            assert_eq!(canonical_ip(ip, Some(read.to_string())), stored);
            assert_eq!(ip.to_string(), stored, "{read}");
        }
        // What is kept as read is what writing the address would give, or it does not parse.
        for read in ["01.2.3.4", "1.2.3.04", "1.2.3", "1.2.3.4 ", "0x1.2.3.4"] {
            assert!(read.parse::<IpAddr>().is_err(), "{read}");
        }
    }

    #[test]
    fn broken_reports_are_errors_at_their_line() {
        let err = parse("<feedback>\n<report_metadata>\n<org_name>a</wrong>").unwrap_err();
        assert_eq!(err.line, 3, "{err}");
        assert!(err.message.contains("not well-formed"), "{err}");
        let err = parse("").unwrap_err();
        assert!(err.message.contains("no <feedback>"), "{err}");
        let err = parse("<html><body><p>x</p></body></html>").unwrap_err();
        assert!(err.message.contains("the root element is <html>"), "{err}");
        // A report wrapped in another element is found.
        let (header, _) = parse("<xs:schema><feedback><report_metadata><report_id>1</report_id></report_metadata><policy_published><domain>d</domain></policy_published></feedback></xs:schema>").unwrap();
        assert_eq!(header.metadata.report_id, "1");
        let err =
            parse("<feedback><policy_published><domain>a</domain></policy_published></feedback>")
                .unwrap_err();
        assert!(err.message.contains("report_metadata"), "{err}");
        let err =
            parse("<feedback><report_metadata><report_id>1</report_id></report_metadata><record>")
                .unwrap_err();
        assert!(err.message.contains("policy_published domain"), "{err}");
    }

    #[test]
    fn values_are_capped_and_bad_bytes_replaced() {
        let long = "a".repeat(5000);
        let xml = format!(
            "<feedback><report_metadata><org_name>{long}</org_name><report_id>\u{e9}x</report_id></report_metadata><policy_published><domain>d</domain></policy_published></feedback>"
        );
        let mut bytes = xml.into_bytes();
        // é as Latin-1: not UTF-8.
        let at = bytes
            .windows(2)
            .position(|w| w == "\u{e9}".as_bytes())
            .unwrap();
        bytes.splice(at..at + 2, [0xE9]);
        let mut parser = Parser::new(&bytes[..]);
        let header = parser.header().unwrap();
        assert_eq!(header.metadata.org_name.len(), MAX_TEXT);
        assert_eq!(header.metadata.report_id, "\u{FFFD}x");
        assert_eq!(parser.truncated(), 1);
        assert_eq!(parser.replaced(), 1);
        let (text, replaced) = to_text(&bytes);
        let mut whole = Parser::in_memory(&text, replaced);
        assert_eq!(whole.header().unwrap(), header);
        assert_eq!((whole.truncated(), whole.replaced()), (1, 1));
        // A text node longer than MAX_TOKEN is refused rather than buffered.
        let huge = format!(
            "<feedback><report_metadata><org_name>{}</org_name></report_metadata></feedback>",
            "b".repeat(MAX_TOKEN as usize + 10)
        );
        let err = parse(&huge).unwrap_err();
        assert!(err.message.contains("longer than 1 MiB"), "{err}");
    }

    /// Differential: on every mail-auth sample this reader agrees with
    /// `mail_auth::report::Report::parse_xml`.
    #[test]
    fn agrees_with_mail_auth_on_its_samples() {
        use mail_auth::report::{ActionDisposition, DmarcResult, Report};
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/reports/mail-auth/dmarc-feedback");
        let mut samples: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "xml"))
            .collect();
        samples.sort();
        assert_eq!(samples.len(), 5);
        for sample in samples {
            let name = sample.display().to_string();
            let bytes = std::fs::read(&sample).unwrap();
            let theirs = Report::parse_xml(&bytes).unwrap();
            let (header, records) = parse(std::str::from_utf8(&bytes).unwrap()).unwrap();
            let m = &header.metadata;
            assert_eq!(m.org_name, theirs.org_name().trim(), "{name}");
            assert_eq!(m.report_id, theirs.report_id(), "{name}");
            assert_eq!(
                header.policy.domain,
                theirs.domain().to_lowercase(),
                "{name}"
            );
            assert_eq!(m.begin, Some(theirs.date_range_begin() as i64), "{name}");
            assert_eq!(m.end, Some(theirs.date_range_end() as i64), "{name}");
            assert_eq!(records.len(), theirs.records().len(), "{name}");
            for (ours, theirs) in records.iter().zip(theirs.records()) {
                let at = format!("{name} record {}", ours.index);
                let (ip, count) = ours.check().unwrap();
                assert_eq!(Some(ip), theirs.source_ip(), "{at}");
                assert_eq!(count, u64::from(theirs.count()), "{at}");
                let disposition = match theirs.action_disposition() {
                    ActionDisposition::None => Some("none"),
                    ActionDisposition::Pass => Some("pass"),
                    ActionDisposition::Quarantine => Some("quarantine"),
                    ActionDisposition::Reject => Some("reject"),
                    ActionDisposition::Unspecified => None,
                };
                assert_eq!(ours.disposition.as_deref(), disposition, "{at}");
                let word = |r: DmarcResult| match r {
                    DmarcResult::Pass => Some("pass"),
                    DmarcResult::Fail => Some("fail"),
                    DmarcResult::Unspecified => None,
                };
                assert_eq!(
                    ours.dkim.as_deref(),
                    word(theirs.dmarc_dkim_result()),
                    "{at}"
                );
                assert_eq!(ours.spf.as_deref(), word(theirs.dmarc_spf_result()), "{at}");
                let dkim: Vec<(String, String, String)> = theirs
                    .dkim_auth_result()
                    .iter()
                    .map(|d| {
                        (
                            d.domain().to_lowercase(),
                            d.selector().to_string(),
                            d.result().to_string(),
                        )
                    })
                    .collect();
                let our_dkim: Vec<(String, String, String)> = ours
                    .dkim_results
                    .iter()
                    .map(|d| (d.domain.clone(), d.selector.clone(), d.result.clone()))
                    .collect();
                assert_eq!(our_dkim, dkim, "{at}");
                let spf: Vec<(String, String)> = theirs
                    .spf_auth_result()
                    .iter()
                    .map(|s| (s.domain().to_lowercase(), s.result().to_string()))
                    .collect();
                let our_spf: Vec<(String, String)> = ours
                    .spf_results
                    .iter()
                    .map(|s| (s.domain.clone(), s.result.clone()))
                    .collect();
                assert_eq!(our_spf, spf, "{at}");
            }
        }
    }

    proptest::proptest! {
        /// Whatever the bytes, the reader ends with records or an error: no panic, no hang.
        #[test]
        fn any_bytes_end_without_a_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..2048)) {
            let mut parser = Parser::new(&bytes[..]);
            if parser.header().is_ok() {
                let mut n = 0;
                while let Ok(Some(_)) = parser.next_record() {
                    n += 1;
                    proptest::prop_assert!(n < 10_000);
                }
            }
            let (text, replaced) = to_text(&bytes);
            let streamed = read_all(Parser::new(&bytes[..]));
            let whole = read_all(Parser::in_memory(&text, replaced));
            proptest::prop_assert_eq!(streamed, whole);
        }

        /// Cutting a real report anywhere gives an error or fewer records, never a panic.
        #[test]
        fn a_report_cut_anywhere_is_an_error_or_fewer_records(cut in 0usize..REPORT.len()) {
            if let Ok(text) = std::str::from_utf8(&REPORT.as_bytes()[..cut]) {
                let _ = parse(text);
            }
        }
    }

    #[test]
    fn lossy_keeps_sequences_split_across_reads() {
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = self.0.len().min(1).min(buf.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut out = String::new();
        let mut decoded = Decoded::new(Trickle("h\u{e9}\u{1F600}!".as_bytes()));
        decoded.read_to_string(&mut out).unwrap();
        assert_eq!(out, "h\u{e9}\u{1F600}!");
        assert_eq!(decoded.replaced, 0);
        // Bad bytes, one cut short at the end, each one replacement; lines counted across.
        let mut out = String::new();
        let mut decoded = Decoded::new(Trickle(b"a\xff\nb\xe2\x82\nc\xf0\x9f"));
        decoded.read_to_string(&mut out).unwrap();
        assert_eq!(out, "a\u{FFFD}\nb\u{FFFD}\nc\u{FFFD}");
        assert_eq!(decoded.replaced, 3);
        assert_eq!(decoded.line(), 3);
    }
}
