//! Domain names as users type them, and the lists they come in.
//!
//! Everything mailshift checks starts as text from a command line or a domains file, and users
//! paste the wrong thing: a URL, an email address, a name with a space. This module turns that text
//! into a [`DomainName`] (lower-case A-labels, no trailing dot) or an [`InvalidDomain`] that says
//! exactly what is wrong, and reads domains files (`--domains-file`) line by line so an error can
//! name the line it came from.

use std::fmt;
use std::path::Path;

/// A syntactically valid domain name in its A-label (ASCII) form: lower case, no trailing dot.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct DomainName(String);

/// Why a piece of text is not a domain name mailshift can check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not a valid domain name: {reason}")]
pub struct InvalidDomain {
    pub input: String,
    pub reason: String,
}

impl DomainName {
    /// Parses user input: trims it, accepts a trailing dot, converts internationalised names to
    /// their A-label form, and refuses anything that is not a plain multi-label host name.
    pub fn parse(input: &str) -> Result<DomainName, InvalidDomain> {
        let invalid = |reason: String| InvalidDomain {
            input: input.to_string(),
            reason,
        };
        let text = input.trim();
        if text.is_empty() {
            return Err(invalid("the name is empty".into()));
        }
        if text.contains("://") || text.starts_with("www.") && text.contains('/') {
            let host = url_host(text).unwrap_or("example.com");
            return Err(invalid(format!(
                "this looks like a URL; give just the domain, e.g. `{host}`"
            )));
        }
        if let Some((_, domain)) = text.rsplit_once('@') {
            return Err(invalid(format!(
                "this looks like an email address; give just the domain, e.g. `{}`",
                domain.trim()
            )));
        }
        if text.chars().any(char::is_whitespace) {
            return Err(invalid("domain names cannot contain spaces".into()));
        }
        if text.contains('/') {
            return Err(invalid("domain names cannot contain `/`".into()));
        }
        let text = text.strip_suffix('.').unwrap_or(text);
        if text.starts_with('.') || text.contains("..") {
            return Err(invalid(
                "the name has an empty label (`..` or a leading dot)".into(),
            ));
        }
        let ascii = if text.is_ascii() {
            text.to_ascii_lowercase()
        } else {
            idna::domain_to_ascii_strict(text).map_err(|_| {
                invalid("the internationalised name cannot be converted to A-labels (IDNA)".into())
            })?
        };
        for label in ascii.split('.') {
            if label.len() > 63 {
                return Err(invalid(format!(
                    "the label `{}…` is {} bytes long; a label may have at most 63",
                    &label[..20],
                    label.len()
                )));
            }
            if let Some(bad) = label
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
            {
                return Err(invalid(format!(
                    "the character `{bad}` is not allowed in a domain name"
                )));
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(invalid(format!(
                    "the label `{label}` starts or ends with a hyphen"
                )));
            }
        }
        if ascii.len() > 253 {
            return Err(invalid(format!(
                "the name is {} bytes long; a domain name may have at most 253",
                ascii.len()
            )));
        }
        if !ascii.contains('.') {
            return Err(invalid(
                "a sending domain needs at least two labels (e.g. `example.com`)".into(),
            ));
        }
        Ok(DomainName(ascii))
    }

    /// Builds a name that is known to be valid (a constant, or derived from a valid name).
    /// Used for names mailshift composes itself, such as `_dmarc.<domain>`.
    pub fn from_ascii_unchecked(name: impl Into<String>) -> DomainName {
        let mut s: String = name.into();
        s.make_ascii_lowercase();
        if s.ends_with('.') {
            s.pop();
        }
        DomainName(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name with `prefix.` in front (`_dmarc`, `s1._domainkey`).
    pub fn child(&self, prefix: &str) -> DomainName {
        DomainName::from_ascii_unchecked(format!("{prefix}.{}", self.0))
    }

    /// The parent name, or `None` for a single-label name.
    pub fn parent(&self) -> Option<DomainName> {
        self.0
            .split_once('.')
            .map(|(_, rest)| DomainName(rest.to_string()))
    }

    pub fn label_count(&self) -> usize {
        self.0.split('.').count()
    }

    /// True when `self` equals `other` or lies below it.
    pub fn is_within(&self, other: &DomainName) -> bool {
        self.0 == other.0
            || (self.0.len() > other.0.len()
                && self.0.ends_with(&other.0)
                && self.0.as_bytes()[self.0.len() - other.0.len() - 1] == b'.')
    }

    /// The Unicode form, when the name has punycode labels (for display only).
    pub fn unicode(&self) -> Option<String> {
        if !self.0.split('.').any(|l| l.starts_with("xn--")) {
            return None;
        }
        let (unicode, result) = idna::domain_to_unicode(&self.0);
        result.ok().map(|_| unicode)
    }
}

impl fmt::Display for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn url_host(text: &str) -> Option<&str> {
    let after_scheme = text.split_once("://").map_or(text, |(_, rest)| rest);
    let host = after_scheme.split(['/', '?', '#', ':']).next()?;
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    (!host.is_empty()).then_some(host)
}

/// One domain to check, with the DKIM selectors named for it (empty: probe the common ones).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainRequest {
    pub domain: DomainName,
    pub selectors: Vec<String>,
}

/// A line of input that could not be understood, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}: {error}")]
pub struct InputError {
    /// `FILE:LINE`, `stdin:LINE` or `argument N`.
    pub origin: String,
    /// The text as given, so the error can be reported against it with `--keep-going`.
    pub text: String,
    pub error: InvalidDomain,
}

/// Reads a domains file: one domain per line, `#` starts a comment, blank lines are skipped.
/// A line may name its DKIM selectors: `example.com selectors=s1,s2`.
///
/// Every line is parsed; the valid ones and the errors are both returned so the caller can
/// refuse the input (exit 2) or, with `--keep-going`, report the bad lines and check the rest.
pub fn parse_domains_text(text: &str, source: &str) -> Vec<Result<DomainRequest, InputError>> {
    text.lines()
        .enumerate()
        .filter_map(|(index, line)| parse_domains_line(line, source, index + 1))
        .collect()
}

/// One line of a domains file (`number` is 1-based), or `None` for a blank or comment line.
pub fn parse_domains_line(
    raw_line: &str,
    source: &str,
    number: usize,
) -> Option<Result<DomainRequest, InputError>> {
    let line = match raw_line.find('#') {
        Some(pos) => &raw_line[..pos],
        None => raw_line,
    };
    let line = line.trim().trim_start_matches('\u{feff}');
    if line.is_empty() {
        return None;
    }
    Some(parse_line(line).map_err(|error| InputError {
        origin: format!("{source}:{number}"),
        text: line.to_string(),
        error,
    }))
}

/// The longest line of a domains file (a name is at most 253 bytes; selectors add a little).
pub const MAX_DOMAINS_LINE: usize = 4096;

/// A domains file read line by line, so millions of domains are never held in memory at once.
/// Lines that are not UTF-8 or longer than [`MAX_DOMAINS_LINE`] are errors of their own line.
pub struct DomainLines<R> {
    reader: R,
    source: String,
    number: usize,
    buf: Vec<u8>,
}

impl<R: std::io::BufRead> DomainLines<R> {
    pub fn new(reader: R, source: impl Into<String>) -> DomainLines<R> {
        DomainLines {
            reader,
            source: source.into(),
            number: 0,
            buf: Vec::new(),
        }
    }

    fn invalid(&self, text: &str, reason: String) -> InputError {
        InputError {
            origin: format!("{}:{}", self.source, self.number),
            text: text.to_string(),
            error: InvalidDomain {
                input: text.to_string(),
                reason,
            },
        }
    }
}

impl<R: std::io::BufRead> Iterator for DomainLines<R> {
    type Item = Result<DomainRequest, InputError>;

    fn next(&mut self) -> Option<Self::Item> {
        use std::io::{BufRead, Read};
        loop {
            self.buf.clear();
            let read = (&mut self.reader)
                .take(MAX_DOMAINS_LINE as u64 + 1)
                .read_until(b'\n', &mut self.buf);
            self.number += 1;
            match read {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) => return Some(Err(self.invalid("", format!("cannot read: {e}")))),
            }
            if self.buf.len() > MAX_DOMAINS_LINE && !self.buf.ends_with(b"\n") {
                // Skip the rest of the over-long line.
                let mut rest = Vec::new();
                let _ = self.reader.read_until(b'\n', &mut rest);
                let head = String::from_utf8_lossy(&self.buf[..40]).into_owned();
                return Some(Err(self.invalid(
                    &head,
                    format!("the line is longer than {MAX_DOMAINS_LINE} bytes"),
                )));
            }
            let line = match std::str::from_utf8(&self.buf) {
                Ok(line) => line,
                Err(e) => {
                    let head = String::from_utf8_lossy(&self.buf).into_owned();
                    return Some(Err(self.invalid(
                        head.trim(),
                        format!(
                            "not UTF-8 text (first bad byte at column {})",
                            e.valid_up_to() + 1
                        ),
                    )));
                }
            };
            if let Some(item) = parse_domains_line(line, &self.source, self.number) {
                return Some(item);
            }
        }
    }
}

fn parse_line(line: &str) -> Result<DomainRequest, InvalidDomain> {
    let mut parts = line.split_whitespace();
    let first = parts.next().unwrap_or_default();
    let mut selectors = Vec::new();
    let rest: Vec<&str> = parts.collect();
    for part in &rest {
        match part.strip_prefix("selectors=") {
            Some(list) => {
                for sel in list.split(',').filter(|s| !s.is_empty()) {
                    selectors.push(parse_selector(sel).map_err(|reason| InvalidDomain {
                        input: line.to_string(),
                        reason,
                    })?);
                }
            }
            None => {
                // Anything else after the name means the name itself had a space in it.
                return Err(InvalidDomain {
                    input: line.to_string(),
                    reason: "domain names cannot contain spaces (to name DKIM selectors, \
                             write `example.com selectors=s1,s2`)"
                        .into(),
                });
            }
        }
    }
    let domain = DomainName::parse(first).map_err(|mut e| {
        e.input = line.to_string();
        e
    })?;
    Ok(DomainRequest { domain, selectors })
}

/// Validates a DKIM selector: one or more dot-separated labels of letters, digits, `-`, `_`.
pub fn parse_selector(sel: &str) -> Result<String, String> {
    let s = sel.trim().to_ascii_lowercase();
    if s.is_empty() || s.split('.').any(|l| l.is_empty() || l.len() > 63) {
        return Err(format!("`{sel}` is not a valid DKIM selector"));
    }
    if let Some(bad) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_' || *c == '.'))
    {
        return Err(format!(
            "`{sel}` is not a valid DKIM selector: `{bad}` is not allowed"
        ));
    }
    Ok(s)
}

/// Reads a domains file from disk (`-` is standard input).
pub fn read_domains_file(path: &Path) -> Result<(String, String), crate::files::FileError> {
    use crate::files::{self, FileKind};
    if path.as_os_str() == "-" {
        let bytes = files::read_stdin(FileKind::Domains)?;
        Ok((
            files::text(bytes, Path::new("stdin"), FileKind::Domains)?,
            "stdin".to_string(),
        ))
    } else {
        let text = files::read_text(path, FileKind::Domains)?;
        Ok((text, path.display().to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_names_and_normalises() {
        assert_eq!(
            DomainName::parse("Example.COM.").unwrap().as_str(),
            "example.com"
        );
        assert_eq!(
            DomainName::parse("  mail.example.org ").unwrap().as_str(),
            "mail.example.org"
        );
    }

    #[test]
    fn converts_internationalised_names_to_a_labels() {
        let d = DomainName::parse("bücher.example").unwrap();
        assert_eq!(d.as_str(), "xn--bcher-kva.example");
        assert_eq!(d.unicode().as_deref(), Some("bücher.example"));
    }

    #[test]
    fn refuses_what_users_paste_by_mistake() {
        let cases = [
            ("", "empty"),
            ("https://www.example.com/path", "URL"),
            ("user@example.com", "email address"),
            ("exa mple.com", "spaces"),
            ("localhost", "two labels"),
            ("a..example.com", "empty label"),
            ("-bad.example.com", "hyphen"),
            ("bad!.example.com", "`!`"),
        ];
        for (input, expect) in cases {
            let err = DomainName::parse(input).unwrap_err();
            assert!(err.to_string().contains(expect), "{input}: {err}");
        }
        let long = format!("{}.example.com", "a".repeat(64));
        assert!(DomainName::parse(&long).unwrap_err().reason.contains("63"));
    }

    #[test]
    fn email_error_suggests_the_domain() {
        let err = DomainName::parse("ops@Example.com").unwrap_err();
        assert!(err.reason.contains("`Example.com`"), "{err}");
    }

    #[test]
    fn within_is_label_aware() {
        let parent = DomainName::parse("example.com").unwrap();
        assert!(DomainName::parse("a.example.com")
            .unwrap()
            .is_within(&parent));
        assert!(parent.is_within(&parent));
        assert!(!DomainName::parse("badexample.com")
            .unwrap()
            .is_within(&parent));
    }

    #[test]
    fn domains_file_lines_comments_selectors_and_errors() {
        let text = "# list\nexample.com\n\n  example.org selectors=s1,Google # trailing\nnot a domain\nuser@x.com\n";
        let parsed = parse_domains_text(text, "list.txt");
        assert_eq!(parsed.len(), 4);
        assert_eq!(parsed[0].as_ref().unwrap().domain.as_str(), "example.com");
        let second = parsed[1].as_ref().unwrap();
        assert_eq!(
            second.selectors,
            vec!["s1".to_string(), "google".to_string()]
        );
        let third = parsed[2].as_ref().unwrap_err();
        assert_eq!(third.origin, "list.txt:5");
        assert!(third.to_string().contains("spaces"), "{third}");
        let fourth = parsed[3].as_ref().unwrap_err();
        assert_eq!(fourth.origin, "list.txt:6");
        assert!(fourth.to_string().contains("email address"));
    }
}
