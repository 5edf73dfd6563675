//! Finding the reports in a file, whatever holds them: recognised by content (magic bytes, the
//! first characters, a header field or an mbox `From ` line), never by name, and unpacked in
//! bounded memory.
//!
//! | content | read as |
//! |---|---|
//! | `1f 8b` | gzip: decompressed as a stream, then recognised again (gzip in gzip too) |
//! | `PK 03 04` | zip: every member that is a report (a member without a name too) |
//! | `<` (after a byte-order mark, whitespace) | a DMARC aggregate report, streamed record by record |
//! | `{` | an SMTP TLS report (JSON) |
//! | `From ` | an mbox: each message in turn, the file streamed, each message a report email |
//! | a header field (`Name: value`) | a report email: its XML, gzip, zip or TLS-RPT attachments, inline or base64 |
//!
//! Everything decompressed counts against [`super::ImportOptions::max_report_bytes`] per report
//! (a zip bomb stops there, and says so); what must be held whole — an email, a zip inside
//! something else, a TLS report's JSON — has its own cap. A Maildir given as a directory is the
//! files of its `cur/` and `new/`, each imported as a file of its own.

use super::{within, ImportError, KIND};
use crate::files::{self, FileError, FileKind};
use flate2::read::GzDecoder;
use mail_parser::{MessageParser, MimeHeaders, PartType};
use sha2::{Digest, Sha256};
use std::io::{self, BufRead, BufReader, Cursor, Read, Seek};
use std::path::{Path, PathBuf};

/// How far containers may nest (gzip in zip in an email …).
const MAX_DEPTH: u8 = 4;
/// The largest zip held in memory when it is not the file itself (inside gzip or an email).
const MAX_INNER_ZIP: u64 = 256 << 20;
/// Zip members looked at.
const MAX_ZIP_ENTRIES: usize = 10_000;
/// Bytes looked at to recognise a format.
const HEAD: usize = 512;
/// The buffer over decompressed data (a gzip stream, a zip member). Small: it is zeroed when
/// made, once per report in a thousand small files, and a report read whole or streamed is
/// read past it in larger pieces.
const INNER_BUFFER: usize = 8 * 1024;

/// What the content looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Gzip,
    Zip,
    Xml,
    Json,
    Mbox,
    Email,
    Unknown,
}

/// Recognises a format from the first bytes.
pub fn sniff(head: &[u8]) -> Format {
    if head.starts_with(&[0x1f, 0x8b]) {
        return Format::Gzip;
    }
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        return Format::Zip;
    }
    if head.starts_with(b"From ") {
        return Format::Mbox;
    }
    let text = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let start = text
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(text.len());
    let text = text.get(start..).unwrap_or_default();
    match text.first() {
        Some(b'<') => return Format::Xml,
        Some(b'{') => return Format::Json,
        _ => {}
    }
    // A header field first: a name of printable characters without spaces, then a colon.
    let name_len = head
        .iter()
        .position(|&b| b == b':')
        .filter(|&n| n > 0 && n < 80);
    match name_len.and_then(|n| head.get(..n)) {
        Some(name) if name.iter().all(|&b| (33..=126).contains(&b)) => Format::Email,
        _ => Format::Unknown,
    }
}

/// The files a command-line path stands for: itself, the messages of a Maildir, or the
/// regular files of a directory.
pub fn expand(path: &Path) -> Result<Vec<PathBuf>, ImportError> {
    let is_dir = std::fs::metadata(path).is_ok_and(|m| m.is_dir());
    if !is_dir {
        return Ok(vec![path.to_path_buf()]);
    }
    let any = |_: &Path| true;
    let maildir = ["cur", "new"]
        .iter()
        .map(|d| path.join(d))
        .filter(|d| d.is_dir())
        .collect::<Vec<_>>();
    if maildir.is_empty() {
        return Ok(files::list_dir(path, KIND, any)?);
    }
    let mut all = Vec::new();
    for dir in maildir {
        all.extend(files::list_dir(&dir, KIND, any)?);
    }
    Ok(all)
}

/// What tells that a file changed: its size and modification time.
pub type Fingerprint = (u64, Option<std::time::SystemTime>);

/// The file's size and modification time now.
pub fn fingerprint(path: &Path) -> Result<Fingerprint, FileError> {
    let meta = std::fs::metadata(path).map_err(|e| read_error(path, e))?;
    Ok((meta.len(), meta.modified().ok()))
}

/// The SHA-256 of the file's bytes, in hex (a first pass that parses nothing: a file imported
/// before costs only this), and its fingerprint when it was read.
pub fn digest(path: &Path) -> Result<(String, Fingerprint), FileError> {
    let (file, _) = files::open(path, KIND)?;
    let meta = file.metadata().map_err(|e| read_error(path, e))?;
    let print = (meta.len(), meta.modified().ok());
    let limit = files::limits().get(KIND);
    // Sized to the file: a thousand small reports must not cost a thousand 256 KiB buffers.
    let capacity = usize::try_from(meta.len())
        .unwrap_or(usize::MAX)
        .clamp(4096, 256 * 1024);
    let mut reader = BufReader::with_capacity(capacity, file.take(limit.saturating_add(1)));
    let mut hasher = Sha256::new();
    let mut total = 0u64;
    loop {
        let chunk = reader.fill_buf().map_err(|e| read_error(path, e))?;
        if chunk.is_empty() {
            break;
        }
        hasher.update(chunk);
        let n = chunk.len();
        total += n as u64;
        reader.consume(n);
    }
    if total > limit {
        return Err(FileError::TooLarge {
            path: path.to_path_buf(),
            kind: KIND,
            size: total,
            limit,
        });
    }
    Ok((hex(&hasher.finalize()), print))
}

/// The SHA-256 of `bytes`, in hex: [`digest`] of a file already read.
pub fn hex_digest(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(digest: &[u8]) -> String {
    use std::fmt::Write;
    digest.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn read_error(path: &Path, source: io::Error) -> FileError {
    FileError::Open {
        path: path.to_path_buf(),
        kind: KIND,
        error: source,
    }
}

/// Where the reports found in a file go: stored as they are read ([`super::Session`]), or
/// held to be stored in order later ([`super::prefetch::Recorder`]).
pub(crate) trait Sink {
    /// The file being read.
    fn path(&self) -> &Path;
    /// [`super::ImportOptions::max_report_bytes`].
    fn max_report_bytes(&self) -> u64;
    /// A report or record not imported.
    fn reject(&mut self, at: &str, message: String);
    /// One DMARC aggregate report, as XML.
    fn dmarc(&mut self, input: &mut dyn Read, at: &str) -> Result<(), ImportError>;
    /// One SMTP TLS report, as JSON.
    fn tls(&mut self, bytes: &[u8], at: &str) -> Result<(), ImportError>;
}

fn reject(sink: &mut dyn Sink, at: &str, message: impl Into<String>) {
    sink.reject(at, message.into());
}

/// Reads the reports of the sink's file.
pub(super) fn import(session: &mut dyn Sink) -> Result<(), ImportError> {
    let path = session.path().to_path_buf();
    let path = path.as_path();
    let (mut file, _) = files::open(path, KIND)?;
    let limit = files::limits().get(KIND);
    let mut head = [0u8; 8];
    let n = read_head(&mut file, &mut head).map_err(|e| read_error(path, e))?;
    file.rewind().map_err(|e| read_error(path, e))?;
    let head = head.get(..n).unwrap_or_default();
    if sniff(head) == Format::Zip {
        return zip(session, BufReader::new(file), "", 0);
    }
    let size = file.metadata().map_or(u64::MAX, |m| m.len());
    let capacity = usize::try_from(size)
        .unwrap_or(usize::MAX)
        .clamp(HEAD, 256 * 1024);
    let mut input = BufReader::with_capacity(capacity, file.take(limit));
    let head = peek(&mut input).map_err(|e| read_error(path, e))?;
    match sniff(&head) {
        Format::Unknown => Err(not_a_report(path, &head)),
        Format::Mbox => mbox(session, &mut input),
        _ => stream(session, &mut input, "", 0),
    }
}

/// Reads the reports of the sink's file from its bytes, already read whole.
pub(super) fn import_bytes(sink: &mut dyn Sink, bytes: &[u8]) -> Result<(), ImportError> {
    let head = bytes.get(..HEAD).unwrap_or(bytes);
    match sniff(head) {
        Format::Zip => zip(sink, Cursor::new(bytes), "", 0),
        Format::Unknown => Err(not_a_report(sink.path(), head)),
        Format::Mbox => mbox(sink, &mut &bytes[..]),
        _ => stream(sink, &mut &bytes[..], "", 0),
    }
}

fn not_a_report(path: &Path, head: &[u8]) -> ImportError {
    ImportError::Format {
        path: path.to_path_buf(),
        message: format!(
            "{}: not a DMARC aggregate or SMTP TLS report (formats: XML, JSON, gzip, zip, a report email, an mbox)",
            describe(head)
        ),
    }
}

fn read_head(input: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match input.read(buf.get_mut(n..).unwrap_or_default()) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// The first bytes of `input` without consuming them (as many as its buffer holds, at most
/// [`HEAD`]).
fn peek(input: &mut dyn BufRead) -> io::Result<Vec<u8>> {
    let buf = input.fill_buf()?;
    Ok(buf.get(..buf.len().min(HEAD)).unwrap_or_default().to_vec())
}

/// What a file that is no report starts with, in words.
fn describe(head: &[u8]) -> String {
    if head.is_empty() {
        return "the file is empty".to_string();
    }
    if head.iter().take(64).any(|&b| b == 0) {
        return "binary content".to_string();
    }
    let text = head.trim_ascii_start();
    let first: String = String::from_utf8_lossy(text.get(..text.len().min(24)).unwrap_or_default())
        .chars()
        .take_while(|c| *c != '\n' && *c != '\r')
        .collect();
    format!(
        "it starts with `{}`",
        crate::output::escape::text(first.trim())
    )
}

/// A reader that stops with an error once more than `cap` bytes came out of it: what a
/// compressed report may decompress to.
struct Capped<'a> {
    inner: &'a mut dyn Read,
    left: u64,
    cap: u64,
    what: &'static str,
}

impl Read for Capped<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self
            .inner
            .read(buf)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", self.what)))?;
        if n as u64 > self.left {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{} to more than {} (the cap per report; a zip bomb?)",
                    self.what.replace("damaged", "decompresses"),
                    files::show_size(self.cap)
                ),
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// One report stream (or a container of them) at `at` in the file.
fn stream(
    session: &mut dyn Sink,
    mut input: &mut dyn BufRead,
    at: &str,
    depth: u8,
) -> Result<(), ImportError> {
    let head = match peek(input) {
        Ok(head) => head,
        Err(e) => {
            reject(session, at, format!("cannot be read: {e}"));
            return Ok(());
        }
    };
    let format = sniff(&head);
    if depth >= MAX_DEPTH && matches!(format, Format::Gzip | Format::Zip | Format::Email) {
        reject(session, at, "containers nested too deeply");
        return Ok(());
    }
    let cap = session.max_report_bytes();
    match format {
        Format::Gzip => {
            // One gzip member: some reporters leave bytes after it (a stray CRLF).
            let mut gz = GzDecoder::new(input);
            let mut capped = Capped {
                inner: &mut gz,
                left: cap,
                cap,
                what: "the gzip data is damaged",
            };
            let mut inner = BufReader::with_capacity(INNER_BUFFER, &mut capped);
            stream(session, &mut inner, at, depth + 1)
        }
        Format::Zip => {
            let mut bytes = Vec::new();
            let read = input.take(MAX_INNER_ZIP + 1).read_to_end(&mut bytes);
            match read {
                Err(e) => reject(session, at, format!("the zip archive cannot be read: {e}")),
                Ok(_) if bytes.len() as u64 > MAX_INNER_ZIP => reject(
                    session,
                    at,
                    format!(
                        "a zip archive over {} inside another container is not read",
                        files::show_size(MAX_INNER_ZIP)
                    ),
                ),
                Ok(_) => zip(session, Cursor::new(bytes), at, depth + 1)?,
            }
            Ok(())
        }
        Format::Xml => session.dmarc(&mut input, at),
        Format::Json => {
            let mut bytes = Vec::new();
            match input.take(super::tls::MAX_JSON + 1).read_to_end(&mut bytes) {
                Err(e) => reject(session, at, format!("cannot be read: {e}")),
                Ok(_) if bytes.len() as u64 > super::tls::MAX_JSON => reject(
                    session,
                    at,
                    format!(
                        "a TLS report over {} is not read",
                        files::show_size(super::tls::MAX_JSON)
                    ),
                ),
                Ok(_) => session.tls(&bytes, at)?,
            }
            Ok(())
        }
        Format::Email | Format::Mbox => {
            let cap = files::limits().get(FileKind::Message);
            let mut bytes = Vec::new();
            match input.take(cap + 1).read_to_end(&mut bytes) {
                Err(e) => reject(session, at, format!("cannot be read: {e}")),
                Ok(_) if bytes.len() as u64 > cap => reject(
                    session,
                    at,
                    format!(
                        "a message over {} is not read (--max-file-size message=SIZE)",
                        files::show_size(cap)
                    ),
                ),
                Ok(_) => email(session, &bytes, at, depth + 1)?,
            }
            Ok(())
        }
        Format::Unknown => {
            reject(
                session,
                at,
                format!(
                    "{}: not a DMARC aggregate or SMTP TLS report",
                    describe(&head)
                ),
            );
            Ok(())
        }
    }
}

/// The members of a zip archive that are reports.
fn zip<R: Read + Seek>(
    session: &mut dyn Sink,
    input: R,
    at: &str,
    depth: u8,
) -> Result<(), ImportError> {
    let mut archive = match zip::ZipArchive::new(input) {
        Ok(archive) => archive,
        Err(e) => {
            reject(session, at, format!("not a readable zip archive: {e}"));
            return Ok(());
        }
    };
    let cap = session.max_report_bytes();
    let mut found = 0;
    for i in 0..archive.len().min(MAX_ZIP_ENTRIES) {
        let mut entry = match archive.by_index(i) {
            Ok(entry) => entry,
            Err(e) => {
                reject(
                    session,
                    &within(at, format!("zip entry {}", i + 1)),
                    format!("cannot be read: {e}"),
                );
                found += 1;
                continue;
            }
        };
        if entry.is_dir() {
            continue;
        }
        let name = match entry.name() {
            "" => format!("zip entry {} (no name)", i + 1),
            name => format!("zip entry {}", crate::output::escape::text(name)),
        };
        let here = within(at, name);
        let mut capped = Capped {
            inner: &mut entry,
            left: cap,
            cap,
            what: "the zip entry is damaged",
        };
        let mut member = BufReader::with_capacity(INNER_BUFFER, &mut capped);
        let head = match peek(&mut member) {
            Ok(head) => head,
            Err(e) => {
                reject(session, &here, format!("cannot be read: {e}"));
                found += 1;
                continue;
            }
        };
        if sniff(&head) == Format::Unknown {
            // A README or a signature beside the report: not a report, not a problem.
            continue;
        }
        found += 1;
        stream(session, &mut member, &here, depth)?;
    }
    if found == 0 {
        reject(session, at, "the zip archive holds no report");
    }
    Ok(())
}

/// An mbox: each message a report email; the file is read message by message.
fn mbox(session: &mut dyn Sink, input: &mut dyn BufRead) -> Result<(), ImportError> {
    let cap = files::limits().get(FileKind::Message);
    let mut message: Vec<u8> = Vec::new();
    let mut line: Vec<u8> = Vec::new();
    let (mut number, mut start, mut line_no) = (0usize, 0usize, 0usize);
    let mut oversized = false;
    loop {
        line.clear();
        let n = input
            .take(cap + 1)
            .read_until(b'\n', &mut line)
            .map_err(|e| read_error(session.path(), e))?;
        if n == 0 {
            break;
        }
        line_no += 1;
        if line.starts_with(b"From ") {
            if number > 0 {
                mbox_message(session, &message, number, start, oversized, cap)?;
            }
            number += 1;
            start = line_no;
            message.clear();
            oversized = false;
            continue;
        }
        if oversized {
            continue;
        }
        // mboxrd: `>From ` in a body was `From `.
        let body = if line.starts_with(b">")
            && line
                .iter()
                .skip_while(|&&b| b == b'>')
                .take(5)
                .eq(b"From ".iter())
        {
            line.get(1..).unwrap_or_default()
        } else {
            &line
        };
        if message.len() as u64 + body.len() as u64 > cap {
            oversized = true;
            message = Vec::new();
        } else {
            message.extend_from_slice(body);
        }
    }
    if number > 0 {
        mbox_message(session, &message, number, start, oversized, cap)?;
    }
    Ok(())
}

fn mbox_message(
    session: &mut dyn Sink,
    message: &[u8],
    number: usize,
    start: usize,
    oversized: bool,
    cap: u64,
) -> Result<(), ImportError> {
    let at = format!("message {number} (line {start})");
    if oversized {
        reject(
            session,
            &at,
            format!(
                "a message over {} is not read (--max-file-size message=SIZE)",
                files::show_size(cap)
            ),
        );
        return Ok(());
    }
    email(session, message, &at, 1)
}

/// A report email: every part that holds a report (XML, gzip, zip, TLS-RPT JSON).
fn email(session: &mut dyn Sink, bytes: &[u8], at: &str, depth: u8) -> Result<(), ImportError> {
    let Some(message) = MessageParser::default().parse(bytes) else {
        reject(session, at, "not an email message");
        return Ok(());
    };
    let mut found = 0;
    for (i, part) in message.parts.iter().enumerate() {
        let text = match &part.body {
            PartType::Text(_) => true,
            PartType::Binary(_) | PartType::InlineBinary(_) => false,
            _ => continue,
        };
        let contents = part.contents();
        let format = sniff(contents);
        let subtype = part
            .content_type()
            .map(|ct| {
                format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or_default()).to_ascii_lowercase()
            })
            .unwrap_or_default();
        let wanted = match format {
            Format::Gzip | Format::Zip => true,
            Format::Xml => {
                let t = contents
                    .strip_prefix(b"\xEF\xBB\xBF")
                    .unwrap_or(contents)
                    .trim_ascii_start();
                t.starts_with(b"<?xml") || t.starts_with(b"<feedback")
            }
            Format::Json => !text || subtype.contains("json") || subtype.contains("tlsrpt"),
            _ => false,
        };
        if !wanted {
            continue;
        }
        found += 1;
        let name = match part.attachment_name() {
            Some(name) => format!("attachment {}", crate::output::escape::text(name)),
            None => format!("part {} ({subtype})", i + 1),
        };
        let mut input: &[u8] = contents;
        stream(session, &mut input, &within(at, name), depth)?;
    }
    if found == 0 {
        let subject = message
            .subject()
            .map(|s| format!(" (subject: {})", crate::output::escape::text(s)))
            .unwrap_or_default();
        reject(
            session,
            at,
            format!(
                "no DMARC or TLS report in the message{subject}: no XML, gzip, zip or TLS-RPT JSON part"
            ),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_recognised_by_content() {
        assert_eq!(sniff(b"\x1f\x8b\x08"), Format::Gzip);
        assert_eq!(sniff(b"PK\x03\x04"), Format::Zip);
        assert_eq!(sniff(b"\xEF\xBB\xBF  <?xml"), Format::Xml);
        assert_eq!(sniff(b"\n{\"a\":1}"), Format::Json);
        assert_eq!(sniff(b"From a@b Mon Jan 1"), Format::Mbox);
        assert_eq!(sniff(b"Return-Path: <a@b>\r\n"), Format::Email);
        assert_eq!(sniff(b"A text file"), Format::Unknown);
        assert_eq!(sniff(b""), Format::Unknown);
        assert_eq!(sniff(b"unused"), Format::Unknown);
    }
}
