//! A streaming reader of DMARC aggregate reports (`<feedback>`, RFC 7489, RFC 9990 and the
//! pre-RFC draft): the report's metadata and published policy first, then its `<record>`s one at
//! a time, so a report of a hundred thousand records is read in the memory of one.
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

/// One `<auth_results><dkim>`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DkimAuth {
    pub domain: String,
    pub selector: String,
    pub result: String,
}

/// One `<auth_results><spf>`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SpfAuth {
    pub domain: String,
    pub scope: String,
    pub result: String,
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

/// A report being read: [`Parser::header`] once, then [`Parser::next_record`] until `None`.
pub struct Parser<R: Read> {
    reader: Reader<Guarded<io::BufReader<Lossy<R>>>>,
    buf: Vec<u8>,
    /// The open elements, `/`-joined (`feedback/record/row`); a foreign-namespace element is `~`.
    path: String,
    /// The length of `path` before each open element was pushed.
    marks: Vec<usize>,
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
    pub truncated: u64,
}

impl<R: Read> Parser<R> {
    pub fn new(input: R) -> Parser<R> {
        let lossy = Lossy::new(input);
        let guarded = Guarded::new(io::BufReader::with_capacity(64 * 1024, lossy));
        let mut reader = Reader::from_reader(guarded);
        let config = reader.config_mut();
        config.expand_empty_elements = true;
        config.check_end_names = true;
        Parser {
            reader,
            buf: Vec::with_capacity(1024),
            path: String::new(),
            marks: Vec::new(),
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
        }
    }

    /// Bytes that were not UTF-8 and were replaced.
    pub fn replaced(&self) -> u64 {
        self.reader.get_ref().inner.get_ref().replaced
    }

    fn line(&self) -> usize {
        self.reader.get_ref().line
    }

    fn error(&self, message: impl Into<String>) -> ParseError {
        ParseError {
            line: self.line(),
            message: message.into(),
        }
    }

    fn not_feedback(&self) -> ParseError {
        if self.outer.is_empty() {
            self.error("no <feedback> element: the file is empty or not a DMARC aggregate report")
        } else {
            let shown = crate::output::escape::text(&self.outer).into_owned();
            self.error(format!(
                "no <feedback> element (the root element is <{shown}>): not a DMARC aggregate report"
            ))
        }
    }

    /// The metadata and the policy: reads up to the first record (or the end of the report).
    pub fn header(&mut self) -> Result<Header, ParseError> {
        while self.phase == Phase::Header {
            self.step()?;
        }
        let metadata = std::mem::take(&mut self.metadata);
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
        if self.policy.domain.is_empty() {
            return Err(self.error("the report has no policy_published domain"));
        }
        Ok(Header {
            version: self.version.clone(),
            flavour: self.flavour,
            metadata,
            policy: std::mem::take(&mut self.policy),
        })
    }

    /// The next record; `None` after the last.
    pub fn next_record(&mut self) -> Result<Option<Record>, ParseError> {
        if self.phase == Phase::Header {
            self.header()?;
        }
        let before = self.records;
        while self.phase == Phase::Records {
            self.step()?;
            if self.records > before {
                return Ok(Some(std::mem::take(&mut self.record)));
            }
        }
        Ok(None)
    }

    /// Reads one XML event.
    fn step(&mut self) -> Result<(), ParseError> {
        // The event borrows the buffer; the handlers need `self`.
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        let result = self.handle(&mut buf);
        self.buf = buf;
        result
    }

    fn handle(&mut self, buf: &mut Vec<u8>) -> Result<(), ParseError> {
        let event = match self.reader.read_event_into(buf) {
            Ok(event) => event,
            Err(e) => {
                let message = xml_message(&e);
                return Err(self.error(message));
            }
        };
        match event {
            Event::Start(start) => {
                if self.marks.len() >= MAX_DEPTH {
                    return Err(self.error("elements nested too deeply"));
                }
                let qname = start.name();
                let name: &str = if qname.prefix().is_some() {
                    "~"
                } else {
                    qname.as_ref()
                };
                let name = if name.len() > 64 { "?" } else { name };
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
                        return Ok(());
                    }
                    self.seen_root = true;
                    for attr in start.attributes().with_checks(false).flatten() {
                        let value: &str = attr.value.as_ref();
                        if attr.key.as_ref().starts_with("xmlns") && value == DMARC2_NS {
                            self.flavour = Flavour::Rfc9990;
                        }
                    }
                }
                self.marks.push(self.path.len());
                if !self.path.is_empty() {
                    self.path.push('/');
                }
                self.path.push_str(name);
                self.text.clear();
                self.opened();
            }
            Event::End(_) => {
                if !self.seen_root {
                    return Ok(());
                }
                let value = clean(&self.text);
                self.text.clear();
                self.closed(value);
                if let Some(mark) = self.marks.pop() {
                    self.path.truncate(mark);
                }
                if self.marks.is_empty() && self.seen_root {
                    self.phase = Phase::Done;
                }
            }
            Event::Text(text) => self.push_text(&text),
            Event::CData(data) => {
                let text: &str = &data;
                let text = text.to_string();
                self.push_text(&text);
            }
            Event::GeneralRef(reference) => {
                let resolved = match reference.resolve_char_ref() {
                    Ok(Some(c)) => Some(c.to_string()),
                    Ok(None) => {
                        quick_xml::escape::resolve_predefined_entity(&reference).map(str::to_string)
                    }
                    Err(_) => None,
                };
                match resolved {
                    Some(text) => self.push_text(&text),
                    // An entity the report never declared: kept as written.
                    None => {
                        let raw = format!("&{};", &*reference);
                        self.push_text(&raw);
                    }
                }
            }
            Event::Eof => {
                if !self.seen_root {
                    return Err(self.not_feedback());
                }
                if !self.marks.is_empty() {
                    return Err(self.error("the report ends before </feedback>: it is cut short"));
                }
                self.phase = Phase::Done;
            }
            Event::Empty(_)
            | Event::Comment(_)
            | Event::Decl(_)
            | Event::PI(_)
            | Event::DocType(_) => {}
        }
        Ok(())
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

    /// An element opened at `self.path`.
    fn opened(&mut self) {
        match self.path.as_str() {
            "feedback/record" => {
                if self.phase == Phase::Header {
                    self.phase = Phase::Records;
                }
                self.record = Record {
                    index: self.records + 1,
                    line: self.line(),
                    ..Record::default()
                };
            }
            "feedback/record/auth_results/dkim" => self.dkim = DkimAuth::default(),
            "feedback/record/auth_results/spf" => self.spf = SpfAuth::default(),
            "feedback/record/row/policy_evaluated/reason" => self.reason = Reason::default(),
            _ => {}
        }
    }

    /// The element at `self.path` closed, with its text.
    fn closed(&mut self, value: Option<String>) {
        let word = || value.as_deref().map(str::to_lowercase);
        match self.path.as_str() {
            "feedback/version" => self.version = value.clone(),
            "feedback/report_metadata/org_name" => {
                self.metadata.org_name = value.clone().unwrap_or_default()
            }
            "feedback/report_metadata/email" => self.metadata.email = value.clone(),
            "feedback/report_metadata/extra_contact_info" => {
                self.metadata.extra_contact_info = value.clone()
            }
            "feedback/report_metadata/report_id" => {
                self.metadata.report_id = value.clone().unwrap_or_default()
            }
            "feedback/report_metadata/date_range/begin" => {
                self.metadata.begin = value.as_deref().and_then(seconds)
            }
            "feedback/report_metadata/date_range/end" => {
                self.metadata.end = value.as_deref().and_then(seconds)
            }
            "feedback/report_metadata/error" => {
                if let Some(v) = &value {
                    if self.metadata.errors.len() < MAX_ERRORS {
                        self.metadata.errors.push(v.clone());
                    }
                }
            }
            "feedback/report_metadata/generator" => self.metadata.generator = value.clone(),
            "feedback/policy_published/domain" => {
                self.policy.domain = value.as_deref().map(str::to_lowercase).unwrap_or_default()
            }
            "feedback/policy_published/adkim" => self.policy.adkim = word(),
            "feedback/policy_published/aspf" => self.policy.aspf = word(),
            "feedback/policy_published/p" => self.policy.p = word(),
            "feedback/policy_published/sp" => self.policy.sp = word(),
            "feedback/policy_published/np" => self.policy.np = word(),
            "feedback/policy_published/pct" => {
                self.policy.pct = value.as_deref().and_then(|v| v.parse().ok())
            }
            "feedback/policy_published/fo" => self.policy.fo = value.clone(),
            "feedback/policy_published/testing" => self.policy.testing = word(),
            "feedback/policy_published/discovery_method" => self.policy.discovery_method = word(),
            "feedback/record/row/source_ip" => self.record.source_ip = value.clone(),
            "feedback/record/row/count" => self.record.count = value.clone(),
            "feedback/record/row/policy_evaluated/disposition" => self.record.disposition = word(),
            "feedback/record/row/policy_evaluated/dkim" => self.record.dkim = word(),
            "feedback/record/row/policy_evaluated/spf" => self.record.spf = word(),
            "feedback/record/row/policy_evaluated/reason/type" => {
                self.reason.kind = word().unwrap_or_default()
            }
            "feedback/record/row/policy_evaluated/reason/comment" => {
                self.reason.comment = value.clone()
            }
            "feedback/record/row/policy_evaluated/reason" => {
                let reason = std::mem::take(&mut self.reason);
                if reason.kind.is_empty() && reason.comment.is_none() {
                    // `<reason><type/><comment/></reason>`: nothing said.
                } else if self.record.reasons.len() < MAX_REASONS {
                    self.record.reasons.push(reason);
                } else {
                    self.truncated += 1;
                }
            }
            "feedback/record/identifiers/header_from" => {
                self.record.header_from = value.as_deref().map(str::to_lowercase)
            }
            "feedback/record/identifiers/envelope_from" => {
                self.record.envelope_from = value.as_deref().map(str::to_lowercase)
            }
            "feedback/record/identifiers/envelope_to" => {
                self.record.envelope_to = value.as_deref().map(str::to_lowercase)
            }
            "feedback/record/auth_results/dkim/domain" => {
                self.dkim.domain = word().unwrap_or_default()
            }
            "feedback/record/auth_results/dkim/selector" => {
                self.dkim.selector = value.clone().unwrap_or_default()
            }
            "feedback/record/auth_results/dkim/result" => {
                self.dkim.result = word().unwrap_or_default()
            }
            "feedback/record/auth_results/dkim" => {
                if self.record.dkim_results.len() < MAX_AUTH_RESULTS {
                    self.record
                        .dkim_results
                        .push(std::mem::take(&mut self.dkim));
                } else {
                    self.truncated += 1;
                }
            }
            "feedback/record/auth_results/spf/domain" => {
                self.spf.domain = word().unwrap_or_default()
            }
            "feedback/record/auth_results/spf/scope" => self.spf.scope = word().unwrap_or_default(),
            "feedback/record/auth_results/spf/result" => {
                self.spf.result = word().unwrap_or_default()
            }
            "feedback/record/auth_results/spf" => {
                if self.record.spf_results.len() < MAX_AUTH_RESULTS {
                    self.record.spf_results.push(std::mem::take(&mut self.spf));
                } else {
                    self.truncated += 1;
                }
            }
            "feedback/record" if self.phase == Phase::Records => self.records += 1,
            _ => {}
        }
        // The version comes before the records: the flavour goes with the header.
        if self.path == "feedback/version" && self.flavour != Flavour::Rfc9990 {
            self.flavour = match self.version.as_deref() {
                Some(v) if v.starts_with('2') => Flavour::Rfc9990,
                Some(v) if v.starts_with('1') => Flavour::Rfc7489,
                _ => Flavour::Unversioned,
            };
        }
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

/// The input with every byte sequence that is not UTF-8 replaced by U+FFFD: quick-xml refuses
/// such bytes, and one bad byte in a `header_from` should not cost a whole report.
pub struct Lossy<R> {
    inner: R,
    out: Vec<u8>,
    at: usize,
    carry: Vec<u8>,
    chunk: Vec<u8>,
    /// Sequences replaced.
    pub replaced: u64,
}

impl<R: Read> Lossy<R> {
    pub fn new(inner: R) -> Lossy<R> {
        Lossy {
            inner,
            out: Vec::new(),
            at: 0,
            carry: Vec::new(),
            chunk: vec![0; 64 * 1024],
            replaced: 0,
        }
    }

    fn refill(&mut self) -> io::Result<()> {
        self.out.clear();
        self.at = 0;
        let n = loop {
            match self.inner.read(&mut self.chunk) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        };
        if n == 0 {
            if !self.carry.is_empty() {
                // The input ends inside a multi-byte sequence.
                self.carry.clear();
                self.out.extend_from_slice("\u{FFFD}".as_bytes());
                self.replaced += 1;
            }
            return Ok(());
        }
        let mut data = std::mem::take(&mut self.carry);
        data.extend_from_slice(self.chunk.get(..n).unwrap_or_default());
        let mut rest: &[u8] = &data;
        loop {
            match std::str::from_utf8(rest) {
                Ok(_) => {
                    self.out.extend_from_slice(rest);
                    break;
                }
                Err(e) => {
                    let (valid, after) = rest.split_at(e.valid_up_to());
                    self.out.extend_from_slice(valid);
                    match e.error_len() {
                        Some(bad) => {
                            self.out.extend_from_slice("\u{FFFD}".as_bytes());
                            self.replaced += 1;
                            rest = after.get(bad..).unwrap_or_default();
                        }
                        None => {
                            self.carry = after.to_vec();
                            break;
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

impl<R: Read> Read for Lossy<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // An empty refill with a carry left is possible (a chunk of only a partial sequence):
        // read on until there is output or the input ends.
        // Each refill yields output, grows the carry (at most three bytes) or ends the input.
        while self.at >= self.out.len() {
            self.refill()?;
            if self.out.is_empty() && self.carry.is_empty() {
                return Ok(0);
            }
        }
        let available = self.out.get(self.at..).unwrap_or_default();
        let n = available.len().min(buf.len());
        if let (Some(dst), Some(src)) = (buf.get_mut(..n), available.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.at += n;
        Ok(n)
    }
}

/// The input's lines counted, and any run of more than [`MAX_TOKEN`] bytes without a `<` or
/// `>` refused: quick-xml keeps a whole text node or tag in memory.
pub struct Guarded<R> {
    inner: R,
    /// The current line, from 1.
    pub line: usize,
    run: u64,
    tripped: bool,
}

impl<R> Guarded<R> {
    pub fn new(inner: R) -> Guarded<R> {
        Guarded {
            inner,
            line: 1,
            run: 0,
            tripped: false,
        }
    }

    pub fn get_ref(&self) -> &R {
        &self.inner
    }
}

impl<R: BufRead> Read for Guarded<R> {
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

impl<R: BufRead> BufRead for Guarded<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.tripped {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "a text or tag longer than {}: not a DMARC report mailshift can read",
                    crate::files::show_size(MAX_TOKEN)
                ),
            ));
        }
        self.inner.fill_buf()
    }

    fn consume(&mut self, amt: usize) {
        if let Ok(buf) = self.inner.fill_buf() {
            let taken = buf.get(..amt.min(buf.len())).unwrap_or_default();
            // memchr's vectorised scans: this runs over every byte of every report.
            self.line += memchr::memchr_iter(b'\n', taken).count();
            match memchr::memchr2(b'<', b'>', taken) {
                Some(first) => {
                    self.tripped |= self.run + first as u64 > MAX_TOKEN;
                    let last = memchr::memrchr2(b'<', b'>', taken).unwrap_or(first);
                    self.run = (taken.len() - last - 1) as u64;
                }
                None => self.run += taken.len() as u64,
            }
            self.tripped |= self.run > MAX_TOKEN;
        }
        self.inner.consume(amt);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(xml: &str) -> Result<(Header, Vec<Record>), ParseError> {
        let mut parser = Parser::new(xml.as_bytes());
        let header = parser.header()?;
        let mut records = Vec::new();
        while let Some(r) = parser.next_record()? {
            records.push(r);
        }
        Ok((header, records))
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
        assert_eq!(parser.truncated, 1);
        assert_eq!(parser.replaced(), 1);
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
        }

        /// Cutting a real report anywhere gives an error or fewer records, never a panic.
        #[test]
        fn a_report_cut_anywhere_is_an_error_or_fewer_records(cut in 0usize..REPORT.len()) {
            let bytes = &REPORT.as_bytes()[..cut];
            let mut parser = Parser::new(bytes);
            if parser.header().is_ok() {
                while let Ok(Some(_)) = parser.next_record() {}
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
        let mut lossy = Lossy::new(Trickle("h\u{e9}\u{1F600}!".as_bytes()));
        lossy.read_to_string(&mut out).unwrap();
        assert_eq!(out, "h\u{e9}\u{1F600}!");
        assert_eq!(lossy.replaced, 0);
    }
}
