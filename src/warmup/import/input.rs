//! Reading one evidence file in bounded memory: the digest and the first bytes of a first pass,
//! then the records of a second pass, as lines or as JSON values, each under a cap.
//!
//! Evidence files are untrusted and may be tens of gigabytes, so nothing here holds a file: a
//! line or a JSON record is kept only up to [`MAX_RECORD`] (a longer one is skipped to its end
//! and reported, and the records after it are read), and the file itself is opened through
//! [`files::open`] (a regular file, within the `evidence` cap). Both passes hash what they read:
//! the first decides whether the file was imported before without parsing it (re-importing the
//! plan's evidence before every status is the common case), the second proves that what was
//! parsed is the file the first pass hashed.
//!
//! [`JsonRecords`] is a small scanner rather than a serde visitor over the whole document, because
//! it knows where each record starts (problems are reported at the record's line), keeps only
//! one record at a time, and lets a record that is not valid JSON be reported on its own as long
//! as the document's structure (brackets, strings) stays intact.

use crate::files::{self, FileError, FileKind};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// The longest line or JSON record kept (one event is under a kilobyte; a Postmaster Tools day
/// with its IP reputations a few kilobytes).
pub const MAX_RECORD: usize = 1 << 20;

/// How much of the start of a file is kept for recognising its format.
const HEAD: usize = 64 * 1024;

const BUFFER: usize = 256 * 1024;

/// What the first pass learns: the digest, the size and the first bytes.
pub(super) struct Survey {
    pub sha256: String,
    pub head: Vec<u8>,
}

/// Reads the whole file once, hashing it and keeping its first [`HEAD`] bytes.
pub(super) fn survey(path: &Path) -> Result<Survey, FileError> {
    let mut stream = Stream::open(path)?;
    let mut head = Vec::with_capacity(HEAD);
    loop {
        let chunk = stream.fill_buf().map_err(|e| read_error(path, e))?;
        if chunk.is_empty() {
            break;
        }
        let n = chunk.len();
        if head.len() < HEAD {
            let take = n.min(HEAD - head.len());
            head.extend_from_slice(chunk.get(..take).unwrap_or_default());
        }
        stream.consume(n);
    }
    let sha256 = stream.finish()?;
    Ok(Survey { sha256, head })
}

/// The error of a failed read, naming the file.
pub(super) fn read_error(path: &Path, source: io::Error) -> FileError {
    FileError::Open {
        path: path.to_path_buf(),
        kind: FileKind::Evidence,
        error: source,
    }
}

/// The file's bytes, hashed as they are read and stopped one byte past the cap.
struct Hashing {
    inner: io::Take<File>,
    hasher: Sha256,
    bytes: u64,
}

impl Read for Hashing {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let read = buf.get(..n).unwrap_or_default();
        self.hasher.update(read);
        self.bytes += n as u64;
        Ok(n)
    }
}

/// An evidence file opened for one pass.
pub(super) struct Stream {
    reader: BufReader<Hashing>,
    path: PathBuf,
    limit: u64,
}

impl Stream {
    pub fn open(path: &Path) -> Result<Stream, FileError> {
        let (file, _) = files::open(path, FileKind::Evidence)?;
        let limit = files::limits().get(FileKind::Evidence);
        let hashing = Hashing {
            inner: file.take(limit.saturating_add(1)),
            hasher: Sha256::new(),
            bytes: 0,
        };
        Ok(Stream {
            reader: BufReader::with_capacity(BUFFER, hashing),
            path: path.to_path_buf(),
            limit,
        })
    }

    /// Reads what is left (so the digest covers the whole file) and returns the digest, in hex.
    /// A file that grew past the cap while it was read is refused here.
    pub fn finish(mut self) -> Result<String, FileError> {
        io::copy(&mut self.reader, &mut io::sink()).map_err(|e| read_error(&self.path, e))?;
        let hashing = self.reader.into_inner();
        if hashing.bytes > self.limit {
            return Err(FileError::TooLarge {
                path: self.path,
                kind: FileKind::Evidence,
                size: hashing.bytes,
                limit: self.limit,
            });
        }
        Ok(hex(&hashing.hasher.finalize()))
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.reader.read(buf)
    }
}

impl BufRead for Stream {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.reader.fill_buf()
    }

    fn consume(&mut self, amt: usize) {
        self.reader.consume(amt)
    }
}

/// Lower-case hex.
pub(super) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// `bytes` without a leading UTF-8 byte-order mark.
pub(super) fn without_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}

/// One line of a line-oriented file.
pub(super) enum Line<'a> {
    /// The line without its line break.
    Text(&'a str),
    /// Longer than [`MAX_RECORD`]: skipped to its end; its length in bytes.
    TooLong(u64),
    /// Not UTF-8 text.
    NotText,
}

/// The lines of a file, each at most [`MAX_RECORD`] bytes kept, numbered from 1.
pub(super) struct Lines<R> {
    input: R,
    number: usize,
    buf: Vec<u8>,
}

impl<R: BufRead> Lines<R> {
    pub fn new(input: R) -> Lines<R> {
        Lines {
            input,
            number: 0,
            buf: Vec::new(),
        }
    }

    /// The next line and its number; `None` at the end of the file.
    pub fn next_line(&mut self) -> io::Result<Option<(usize, Line<'_>)>> {
        self.buf.clear();
        let n = (&mut self.input)
            .take(MAX_RECORD as u64 + 1)
            .read_until(b'\n', &mut self.buf)?;
        if n == 0 {
            return Ok(None);
        }
        self.number += 1;
        if self.buf.len() > MAX_RECORD && self.buf.last() != Some(&b'\n') {
            let mut length = n as u64;
            loop {
                self.buf.clear();
                let m = (&mut self.input)
                    .take(BUFFER as u64)
                    .read_until(b'\n', &mut self.buf)?;
                length += m as u64;
                if m == 0 || self.buf.last() == Some(&b'\n') {
                    break;
                }
            }
            return Ok(Some((self.number, Line::TooLong(length))));
        }
        let mut text: &[u8] = &self.buf;
        if self.number == 1 {
            text = without_bom(text);
        }
        let text = text.strip_suffix(b"\n").unwrap_or(text);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        Ok(Some((
            self.number,
            match std::str::from_utf8(text) {
                Ok(t) => Line::Text(t),
                Err(_) => Line::NotText,
            },
        )))
    }
}

/// A break in a JSON document's structure: the records after it cannot be found.
#[derive(Debug)]
pub(crate) enum ScanError {
    Io(io::Error),
    Syntax { line: usize, message: String },
}

/// One record of a JSON document: where it starts, and its text unless it was over the cap.
pub(super) struct JsonRecord<'a> {
    pub line: usize,
    pub text: Result<&'a [u8], u64>,
}

#[derive(Clone, Copy)]
enum State {
    /// Between top-level values.
    Top,
    /// Inside an array whose elements are the records.
    Elements { first: bool, wrapped: bool },
    /// After the records of a wrapper object (`{"metrics": [...], ...}`): its other members.
    WrapperRest,
}

/// The records of a JSON document: the elements of a top-level array (several arrays one after
/// the other are read in turn, as when each webhook POST was appended to a file), the elements
/// of the array under one of `wrappers` in a top-level object (`{"trafficStats": [...]}`), or a
/// top-level object itself when it has none of them.
pub(super) struct JsonRecords<R> {
    input: R,
    line: usize,
    state: State,
    wrappers: &'static [&'static str],
    /// The wrapper key whose array is being read.
    pub wrapper: Option<&'static str>,
    buf: Vec<u8>,
    started: bool,
}

/// Where a JSON value being copied has got to.
#[derive(Default)]
struct ValueScan {
    depth: u32,
    in_string: bool,
    escape: bool,
    scalar: bool,
}

impl ValueScan {
    fn new(first: u8) -> ValueScan {
        ValueScan {
            scalar: !matches!(first, b'{' | b'[' | b'"'),
            ..ValueScan::default()
        }
    }

    /// Feeds the next bytes of the value: `Ok(Some(end))` when it ends inside `chunk` (`end`
    /// exclusive), `Ok(None)` when it goes on, `Err((at, why))` when it cannot be JSON.
    fn feed(&mut self, chunk: &[u8]) -> Result<Option<usize>, (usize, &'static str)> {
        for (i, &b) in chunk.iter().enumerate() {
            if self.scalar {
                if matches!(b, b',' | b']' | b'}' | b' ' | b'\t' | b'\r' | b'\n') {
                    return Ok(Some(i));
                }
                continue;
            }
            if self.in_string {
                if self.escape {
                    self.escape = false;
                } else if b == b'\\' {
                    self.escape = true;
                } else if b == b'"' {
                    self.in_string = false;
                    if self.depth == 0 {
                        return Ok(Some(i + 1));
                    }
                } else if b == b'\n' {
                    return Err((
                        i,
                        "a line break inside a string: the JSON is cut short or malformed",
                    ));
                }
                continue;
            }
            match b {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => {
                    self.depth = self
                        .depth
                        .checked_sub(1)
                        .ok_or((i, "a closing bracket that closes nothing"))?;
                    if self.depth == 0 {
                        return Ok(Some(i + 1));
                    }
                }
                _ => {}
            }
        }
        Ok(None)
    }
}

fn newlines(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b == b'\n').count()
}

impl<R: BufRead> JsonRecords<R> {
    pub fn new(input: R, wrappers: &'static [&'static str]) -> JsonRecords<R> {
        JsonRecords {
            input,
            line: 1,
            state: State::Top,
            wrappers,
            wrapper: None,
            buf: Vec::new(),
            started: false,
        }
    }

    fn syntax(&self, message: impl Into<String>) -> ScanError {
        ScanError::Syntax {
            line: self.line,
            message: message.into(),
        }
    }

    fn peek(&mut self) -> Result<Option<u8>, ScanError> {
        match self.input.fill_buf() {
            Ok(buf) => Ok(buf.first().copied()),
            Err(e) => Err(ScanError::Io(e)),
        }
    }

    fn bump(&mut self) {
        self.input.consume(1);
    }

    /// Skips whitespace (and, at the very start, a byte-order mark).
    fn skip_ws(&mut self) -> Result<(), ScanError> {
        if !self.started {
            self.started = true;
            let buf = self.input.fill_buf().map_err(ScanError::Io)?;
            if buf.starts_with(b"\xEF\xBB\xBF") {
                self.input.consume(3);
            }
        }
        loop {
            let buf = self.input.fill_buf().map_err(ScanError::Io)?;
            if buf.is_empty() {
                return Ok(());
            }
            let n = buf
                .iter()
                .position(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
                .unwrap_or(buf.len());
            let lines = newlines(buf.get(..n).unwrap_or_default());
            self.input.consume(n);
            self.line += lines;
            if n == 0 {
                return Ok(());
            }
        }
    }

    /// Copies the JSON value that starts here onto `buf` while `buf` stays within the cap.
    /// Returns the value's size and whether it was kept whole.
    fn value(&mut self, keep: bool) -> Result<(u64, bool), ScanError> {
        let Some(first) = self.peek()? else {
            return Err(self.syntax("the file ends where a value was expected: it is cut short"));
        };
        let mut scan = ValueScan::new(first);
        let mut size = 0u64;
        let mut kept = keep;
        loop {
            let chunk = self.input.fill_buf().map_err(ScanError::Io)?;
            if chunk.is_empty() {
                if scan.scalar {
                    return Ok((size, kept));
                }
                return Err(self.syntax("the file ends inside a value: it is cut short"));
            }
            let (end, done) = match scan.feed(chunk) {
                Ok(Some(end)) => (end, true),
                Ok(None) => (chunk.len(), false),
                Err((at, why)) => {
                    let before = newlines(chunk.get(..at).unwrap_or_default());
                    self.line += before;
                    return Err(self.syntax(why));
                }
            };
            let part = chunk.get(..end).unwrap_or_default();
            let lines = newlines(part);
            if kept {
                if self.buf.len() + part.len() > MAX_RECORD {
                    kept = false;
                } else {
                    self.buf.extend_from_slice(part);
                }
            }
            size += end as u64;
            self.input.consume(end);
            self.line += lines;
            if done {
                return Ok((size, kept));
            }
        }
    }

    fn expect(&mut self, byte: u8, what: &str) -> Result<(), ScanError> {
        self.skip_ws()?;
        match self.peek()? {
            Some(b) if b == byte => {
                self.bump();
                Ok(())
            }
            Some(b) => Err(self.syntax(format!("expected {what}, found {}", shown(b)))),
            None => Err(self.syntax(format!(
                "the file ends where {what} was expected: it is cut short"
            ))),
        }
    }

    /// The next record; `None` at the end of the document.
    pub fn next_record(&mut self) -> Result<Option<JsonRecord<'_>>, ScanError> {
        loop {
            match self.state {
                State::Top => {
                    self.skip_ws()?;
                    match self.peek()? {
                        None => return Ok(None),
                        Some(b'[') => {
                            self.bump();
                            self.state = State::Elements {
                                first: true,
                                wrapped: false,
                            };
                        }
                        Some(b'{') => {
                            if let Some((line, size, kept)) = self.object()? {
                                return Ok(Some(self.record(line, size, kept)));
                            }
                        }
                        Some(b) => {
                            return Err(self.syntax(format!(
                                "expected a JSON array or object, found {}",
                                shown(b)
                            )))
                        }
                    }
                }
                State::Elements { first, wrapped } => {
                    self.skip_ws()?;
                    match self.peek()? {
                        Some(b']') => {
                            self.bump();
                            self.state = if wrapped {
                                State::WrapperRest
                            } else {
                                State::Top
                            };
                            continue;
                        }
                        Some(b',') if !first => {
                            self.bump();
                            self.skip_ws()?;
                            if self.peek()? == Some(b']') {
                                return Err(self.syntax("a comma before `]`"));
                            }
                        }
                        Some(_) if first => {}
                        Some(b) => {
                            return Err(self.syntax(format!(
                                "expected `,` or `]` after a record, found {}",
                                shown(b)
                            )))
                        }
                        None => {
                            return Err(
                                self.syntax("the file ends inside an array: it is cut short")
                            )
                        }
                    }
                    self.state = State::Elements {
                        first: false,
                        wrapped,
                    };
                    let line = self.line;
                    self.buf.clear();
                    let (size, kept) = self.value(true)?;
                    return Ok(Some(self.record(line, size, kept)));
                }
                State::WrapperRest => {
                    self.rest_of_object()?;
                    self.state = State::Top;
                }
            }
        }
    }

    fn record(&self, line: usize, size: u64, kept: bool) -> JsonRecord<'_> {
        JsonRecord {
            line,
            text: if kept { Ok(&self.buf) } else { Err(size) },
        }
    }

    /// A top-level object: either a record itself (returned with its line, size and whether it
    /// was kept), or a wrapper whose array is entered (`None`).
    fn object(&mut self) -> Result<Option<(usize, u64, bool)>, ScanError> {
        let line = self.line;
        self.bump();
        self.buf.clear();
        self.buf.push(b'{');
        let mut size = 1u64;
        let mut kept = true;
        let mut first = true;
        loop {
            self.skip_ws()?;
            match self.peek()? {
                Some(b'}') => {
                    self.bump();
                    self.buf.push(b'}');
                    return Ok(Some((line, size + 1, kept)));
                }
                Some(b',') if !first => {
                    self.bump();
                    self.buf.push(b',');
                    self.skip_ws()?;
                }
                Some(b'"') if first => {}
                Some(b) => {
                    return Err(self.syntax(format!(
                        "expected a member name or `}}`, found {}",
                        shown(b)
                    )))
                }
                None => return Err(self.syntax("the file ends inside an object: it is cut short")),
            }
            first = false;
            // The key is copied even once the object is over the cap (the buffer was emptied
            // then), so a wrapper is recognised wherever its key comes.
            let key_start = self.buf.len();
            let (key_size, key_kept) = self.value(true)?;
            let key = self
                .buf
                .get(key_start + 1..self.buf.len().saturating_sub(1))
                .unwrap_or_default();
            let wrapper = if key_kept {
                self.wrappers.iter().copied().find(|w| w.as_bytes() == key)
            } else {
                None
            };
            kept = kept && key_kept;
            if !kept {
                self.buf.clear();
            }
            self.expect(b':', "`:`")?;
            if kept {
                self.buf.push(b':');
            }
            self.skip_ws()?;
            if let Some(w) = wrapper {
                if self.peek()? == Some(b'[') {
                    self.bump();
                    self.wrapper = Some(w);
                    self.state = State::Elements {
                        first: true,
                        wrapped: true,
                    };
                    return Ok(None);
                }
            }
            let (value_size, value_kept) = self.value(kept)?;
            kept = kept && value_kept;
            size += key_size + value_size + 2;
            if !kept {
                self.buf.clear();
            }
        }
    }

    /// The members of a wrapper object after its array, up to its `}`: skipped.
    fn rest_of_object(&mut self) -> Result<(), ScanError> {
        loop {
            self.skip_ws()?;
            match self.peek()? {
                Some(b'}') => {
                    self.bump();
                    return Ok(());
                }
                Some(b',') => {
                    self.bump();
                    self.skip_ws()?;
                    self.buf.clear();
                    self.value(false)?;
                    self.expect(b':', "`:`")?;
                    self.skip_ws()?;
                    self.value(false)?;
                }
                Some(b) => {
                    return Err(self.syntax(format!("expected `,` or `}}`, found {}", shown(b))))
                }
                None => return Err(self.syntax("the file ends inside an object: it is cut short")),
            }
        }
    }
}

/// A byte as an error message shows it.
fn shown(b: u8) -> String {
    if b.is_ascii_graphic() {
        format!("`{}`", b as char)
    } else {
        format!("byte 0x{b:02x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(
        text: &str,
        wrappers: &'static [&'static str],
    ) -> Result<Vec<(usize, String)>, String> {
        let mut scan = JsonRecords::new(text.as_bytes(), wrappers);
        let mut out = Vec::new();
        loop {
            match scan.next_record() {
                Ok(Some(r)) => out.push((
                    r.line,
                    match r.text {
                        Ok(t) => String::from_utf8(t.to_vec()).unwrap(),
                        Err(size) => format!("<{size} bytes>"),
                    },
                )),
                Ok(None) => return Ok(out),
                Err(ScanError::Syntax { line, message }) => {
                    return Err(format!("{line}: {message}"))
                }
                Err(ScanError::Io(e)) => return Err(e.to_string()),
            }
        }
    }

    #[test]
    fn array_elements_are_records_at_their_lines() {
        let text =
            "\u{feff}[\n  {\"a\": \"x]\\\"}\"},\n  {\"b\": [1, {\"c\": 2}]}\n, 7 ]\n[{\"d\":1}]";
        assert_eq!(
            records(text, &[]).unwrap(),
            vec![
                (2, r#"{"a": "x]\"}"}"#.to_string()),
                (3, r#"{"b": [1, {"c": 2}]}"#.to_string()),
                (4, "7".to_string()),
                (5, r#"{"d":1}"#.to_string()),
            ]
        );
    }

    #[test]
    fn a_wrapper_object_streams_its_array_and_a_plain_object_is_one_record() {
        let text = "{\"nextPageToken\": \"x\",\n \"trafficStats\": [\n {\"name\": 1},\n {\"name\": 2}\n ],\n \"more\": {\"a\": [1]}}\n";
        let mut scan = JsonRecords::new(text.as_bytes(), &["trafficStats"]);
        assert_eq!(scan.next_record().unwrap().unwrap().line, 3);
        assert_eq!(scan.wrapper, Some("trafficStats"));
        assert_eq!(scan.next_record().unwrap().unwrap().line, 4);
        assert!(scan.next_record().unwrap().is_none());
        let one =
            "\n{\"name\": \"domains/a.example/trafficStats/20261201\",\n \"ipReputations\": []}";
        assert_eq!(
            records(one, &["trafficStats"]).unwrap(),
            vec![(
                2,
                "{\"name\":\"domains/a.example/trafficStats/20261201\",\"ipReputations\":[]}"
                    .to_string()
            )]
        );
    }

    #[test]
    fn a_broken_structure_is_an_error_at_its_line_and_a_huge_record_is_skipped() {
        let cut = "[\n{\"a\": 1},\n{\"b\": \"unterminated\n}]";
        assert_eq!(
            records(cut, &[]).unwrap_err(),
            "3: a line break inside a string: the JSON is cut short or malformed"
        );
        assert!(records("[{\"a\": 1},", &[])
            .unwrap_err()
            .contains("cut short"));
        assert!(records("[{\"a\": 1} {\"b\": 2}]", &[])
            .unwrap_err()
            .contains("expected `,` or `]`"));
        assert!(records("[1,]", &[]).unwrap_err().contains("a comma before"));
        assert!(records("hello", &[]).unwrap_err().contains("found `h`"));
        let big = format!("[{{\"a\": \"{}\"}}, {{\"b\": 1}}]", "x".repeat(MAX_RECORD));
        let got = records(&big, &[]).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].1, format!("<{} bytes>", MAX_RECORD + 9));
        assert_eq!(got[1].1, "{\"b\": 1}");
    }

    #[test]
    fn lines_are_capped_and_numbered() {
        let long = "y".repeat(MAX_RECORD + 10);
        let text = format!("\u{feff}a,b\r\n{long}\nc\n\u{ff}\n");
        let mut bytes = text.into_bytes();
        let n = bytes.len();
        bytes[n - 3] = 0xff;
        let mut lines = Lines::new(&bytes[..]);
        assert!(matches!(
            lines.next_line().unwrap(),
            Some((1, Line::Text("a,b")))
        ));
        assert!(matches!(
            lines.next_line().unwrap(),
            Some((2, Line::TooLong(n))) if n == MAX_RECORD as u64 + 11
        ));
        assert!(matches!(
            lines.next_line().unwrap(),
            Some((3, Line::Text("c")))
        ));
        assert!(matches!(
            lines.next_line().unwrap(),
            Some((4, Line::NotText))
        ));
        assert!(lines.next_line().unwrap().is_none());
    }
}
