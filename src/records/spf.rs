//! SPF records (RFC 7208): terms, mechanisms, modifiers and macros.
//!
//! [`SpfRecord::parse`] splits a record into terms and parses each one on its own, so one bad
//! term is reported with its position and the rest are still understood (the lookup tree can be
//! shown even for a broken record). Domain specifications that contain macros (`%{i}`) are kept
//! as [`DomainSpec::Macro`]: they are expanded per message and cannot be fetched in advance.

use mail_auth::common::parse::TxtRecordParser;
use std::collections::HashMap;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qualifier {
    Pass,
    Fail,
    SoftFail,
    Neutral,
}

impl Qualifier {
    pub fn symbol(self) -> char {
        match self {
            Qualifier::Pass => '+',
            Qualifier::Fail => '-',
            Qualifier::SoftFail => '~',
            Qualifier::Neutral => '?',
        }
    }
}

/// The target of a mechanism or modifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DomainSpec {
    /// A plain domain, lower case, without the trailing dot.
    Literal(String),
    /// Contains macros; expanded per message (RFC 7208 §7).
    Macro(String),
}

impl fmt::Display for DomainSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DomainSpec::Literal(s) | DomainSpec::Macro(s) => f.write_str(s),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mechanism {
    All,
    Include(DomainSpec),
    A {
        domain: Option<DomainSpec>,
        cidr4: Option<u8>,
        cidr6: Option<u8>,
    },
    Mx {
        domain: Option<DomainSpec>,
        cidr4: Option<u8>,
        cidr6: Option<u8>,
    },
    Ptr(Option<DomainSpec>),
    Ip4 {
        addr: Ipv4Addr,
        prefix: u8,
    },
    Ip6 {
        addr: Ipv6Addr,
        prefix: u8,
    },
    Exists(DomainSpec),
}

impl Mechanism {
    pub fn name(&self) -> &'static str {
        match self {
            Mechanism::All => "all",
            Mechanism::Include(_) => "include",
            Mechanism::A { .. } => "a",
            Mechanism::Mx { .. } => "mx",
            Mechanism::Ptr(_) => "ptr",
            Mechanism::Ip4 { .. } => "ip4",
            Mechanism::Ip6 { .. } => "ip6",
            Mechanism::Exists(_) => "exists",
        }
    }

    /// Mechanisms that cost one of the 10 DNS lookups (RFC 7208 §4.6.4).
    pub fn queries_dns(&self) -> bool {
        matches!(
            self,
            Mechanism::Include(_)
                | Mechanism::A { .. }
                | Mechanism::Mx { .. }
                | Mechanism::Ptr(_)
                | Mechanism::Exists(_)
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TermKind {
    Directive {
        qualifier: Qualifier,
        mechanism: Mechanism,
    },
    Redirect(DomainSpec),
    Exp(DomainSpec),
    /// Any other `name=value`: legal and ignored (RFC 7208 §6), e.g. `ra=` of RFC 6652.
    UnknownModifier {
        name: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    /// 1-based position among the terms after `v=spf1`.
    pub position: usize,
    pub raw: String,
    pub kind: TermKind,
}

/// A term that does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TermError {
    pub position: usize,
    pub raw: String,
    pub reason: String,
}

/// A parsed SPF record. `errors` non-empty means receivers return permerror.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpfRecord {
    pub text: String,
    pub terms: Vec<Term>,
    pub errors: Vec<TermError>,
    /// No syntax error by RFC 7208's grammar. `errors` may still hold one: the verdict of
    /// mail-auth's stricter parser, which receivers running it act on, but an RFC 7208
    /// evaluation (`evaluate::spf`) does not.
    pub follows_rfc7208: bool,
}

/// True for TXT strings that are SPF records: `v=spf1` followed by a space or the end
/// (case-insensitive; `v=spf10` is not SPF).
pub fn is_spf(txt: &str) -> bool {
    let b = txt.as_bytes();
    b.len() >= 6 && b[..6].eq_ignore_ascii_case(b"v=spf1") && (b.len() == 6 || b[6] == b' ')
}

/// Records parsed so far in this run, by text (bounded: emptied when full).
static PARSED: std::sync::Mutex<Option<HashMap<String, Arc<SpfRecord>>>> =
    std::sync::Mutex::new(None);
const PARSED_MAX: usize = 4096;

/// Parses `text` like [`SpfRecord::parse`], reusing an earlier parse of the same text: a bulk run
/// meets the platforms' include records (`_spf.google.com`, `sendgrid.net`) once per domain, and
/// parses each once.
pub fn parse_shared(text: &str) -> Arc<SpfRecord> {
    let mut parsed = PARSED.lock().unwrap_or_else(|p| p.into_inner());
    let map = parsed.get_or_insert_with(HashMap::new);
    if let Some(record) = map.get(text) {
        return record.clone();
    }
    if map.len() >= PARSED_MAX {
        map.clear();
    }
    let record = Arc::new(SpfRecord::parse(text));
    map.insert(text.to_string(), record.clone());
    record
}

impl SpfRecord {
    /// Parses a record that [`is_spf`]. Never fails: problems are collected in `errors`.
    pub fn parse(text: &str) -> SpfRecord {
        let mut terms = Vec::new();
        let mut errors = Vec::new();
        let body = text.get(6..).unwrap_or_default();
        let mut seen_redirect = false;
        let mut seen_exp = false;
        for (i, raw) in body.split(' ').filter(|t| !t.is_empty()).enumerate() {
            let position = i + 1;
            match parse_term(raw) {
                Ok(kind) => {
                    let duplicate = match &kind {
                        TermKind::Redirect(_) => std::mem::replace(&mut seen_redirect, true),
                        TermKind::Exp(_) => std::mem::replace(&mut seen_exp, true),
                        _ => false,
                    };
                    if duplicate {
                        errors.push(TermError {
                            position,
                            raw: raw.to_string(),
                            reason: "this modifier appears more than once; RFC 7208 §6 allows \
                                     each of redirect= and exp= at most once"
                                .into(),
                        });
                    }
                    terms.push(Term {
                        position,
                        raw: raw.to_string(),
                        kind,
                    });
                }
                Err(reason) => errors.push(TermError {
                    position,
                    raw: raw.to_string(),
                    reason,
                }),
            }
        }
        if text.contains(['\t', '\r', '\n']) {
            errors.push(TermError {
                position: 0,
                raw: text.to_string(),
                reason: "the record contains tabs or line breaks; terms must be separated by \
                         single spaces"
                    .into(),
            });
        }
        let follows_rfc7208 = errors.is_empty();
        let mut record = SpfRecord {
            text: text.to_string(),
            terms,
            errors,
            follows_rfc7208,
        };
        // Second opinion: what receivers running mail-auth make of it. A record mail-auth
        // rejects must never be called valid, even where our own grammar is more lenient.
        if record.errors.is_empty() && mail_auth::spf::Spf::parse(text.as_bytes()).is_err() {
            let culprit = record.terms.iter().find(|t| {
                mail_auth::spf::Spf::parse(format!("v=spf1 {}", t.raw).as_bytes()).is_err()
            });
            record.errors.push(TermError {
                position: culprit.map_or(0, |t| t.position),
                raw: culprit.map_or_else(|| text.to_string(), |t| t.raw.clone()),
                reason:
                    "RFC 7208 allows this, but the SPF parser of mail-auth (used by Stalwart and \
                         other receivers) rejects it, so those receivers return permerror"
                        .into(),
            });
        }
        record
    }

    pub fn directives(&self) -> impl Iterator<Item = (&Term, Qualifier, &Mechanism)> {
        self.terms.iter().filter_map(|t| match &t.kind {
            TermKind::Directive {
                qualifier,
                mechanism,
            } => Some((t, *qualifier, mechanism)),
            _ => None,
        })
    }

    /// The `all` directive, if any.
    pub fn all(&self) -> Option<(&Term, Qualifier)> {
        self.directives()
            .find(|(_, _, m)| matches!(m, Mechanism::All))
            .map(|(t, q, _)| (t, q))
    }

    /// The effective `redirect=` target: ignored when the record has an `all` (RFC 7208 §6.1).
    pub fn redirect(&self) -> Option<(&Term, &DomainSpec)> {
        if self.all().is_some() {
            return None;
        }
        self.terms.iter().find_map(|t| match &t.kind {
            TermKind::Redirect(d) => Some((t, d)),
            _ => None,
        })
    }

    /// A `redirect=` that is present but ignored because of `all`.
    pub fn ignored_redirect(&self) -> Option<&Term> {
        self.all()?;
        self.terms
            .iter()
            .find(|t| matches!(t.kind, TermKind::Redirect(_)))
    }

    /// Mechanisms after `all`, which are never evaluated.
    pub fn after_all(&self) -> Vec<&Term> {
        let Some((all, _)) = self.all() else {
            return Vec::new();
        };
        self.terms
            .iter()
            .filter(|t| t.position > all.position && matches!(t.kind, TermKind::Directive { .. }))
            .collect()
    }
}

fn parse_term(raw: &str) -> Result<TermKind, String> {
    if let Some((name, value)) = modifier_parts(raw) {
        let lname = name.to_ascii_lowercase();
        return match lname.as_str() {
            "redirect" | "exp" => {
                // The `exp=` target is a domain-spec like any other: `c`, `r` and `t` belong to
                // the explanation text it points to (RFC 7208 §7.2), not to the name.
                let spec = parse_domain_spec(value)
                    .map_err(|e| format!("`{lname}=` needs a domain: {e}"))?;
                Ok(if lname == "redirect" {
                    TermKind::Redirect(spec)
                } else {
                    TermKind::Exp(spec)
                })
            }
            _ => {
                validate_macro_string(value)
                    .map_err(|e| format!("modifier `{name}=` has a bad value: {e}"))?;
                Ok(TermKind::UnknownModifier { name: lname })
            }
        };
    }
    let (qualifier, rest) = match raw.as_bytes().first() {
        Some(b'+') => (Qualifier::Pass, &raw[1..]),
        Some(b'-') => (Qualifier::Fail, &raw[1..]),
        Some(b'~') => (Qualifier::SoftFail, &raw[1..]),
        Some(b'?') => (Qualifier::Neutral, &raw[1..]),
        _ => (Qualifier::Pass, raw),
    };
    let split = rest.find([':', '/']).unwrap_or(rest.len());
    let (name, args) = rest.split_at(split);
    let lname = name.to_ascii_lowercase();
    let mechanism = match lname.as_str() {
        "all" => {
            if !args.is_empty() {
                return Err(format!("`all` takes no argument (found `{args}`)"));
            }
            Mechanism::All
        }
        "include" | "exists" => {
            let Some(spec) = args.strip_prefix(':') else {
                return Err(format!("`{lname}` needs a domain: `{lname}:example.com`"));
            };
            let spec = parse_domain_spec(spec).map_err(|e| format!("`{lname}:` {e}"))?;
            if lname == "include" {
                Mechanism::Include(spec)
            } else {
                Mechanism::Exists(spec)
            }
        }
        "a" | "mx" => {
            let (domain_part, cidr_part) = split_cidr(args);
            let domain = match domain_part {
                None => None,
                Some(spec) => Some(parse_domain_spec(spec).map_err(|e| format!("`{lname}:` {e}"))?),
            };
            let (cidr4, cidr6) = parse_dual_cidr(cidr_part)?;
            if lname == "a" {
                Mechanism::A {
                    domain,
                    cidr4,
                    cidr6,
                }
            } else {
                Mechanism::Mx {
                    domain,
                    cidr4,
                    cidr6,
                }
            }
        }
        "ptr" => {
            if args.starts_with('/') {
                return Err("`ptr` takes no prefix length".into());
            }
            match args.strip_prefix(':') {
                None => Mechanism::Ptr(None),
                Some(spec) => Mechanism::Ptr(Some(
                    parse_domain_spec(spec).map_err(|e| format!("`ptr:` {e}"))?,
                )),
            }
        }
        "ip4" => {
            let value = args
                .strip_prefix(':')
                .ok_or("`ip4` needs an address: `ip4:192.0.2.0/24`")?;
            let (addr, prefix) = match value.split_once('/') {
                Some((a, p)) => (a, Some(p)),
                None => (value, None),
            };
            let addr: Ipv4Addr = addr.parse().map_err(|_| {
                if addr.parse::<Ipv6Addr>().is_ok() {
                    format!("`{addr}` is an IPv6 address; use `ip6:` for it")
                } else if addr.contains(['~', '-', '+', '?']) {
                    format!("`{addr}` is not an IPv4 address (is a space missing before the next term?)")
                } else {
                    format!("`{addr}` is not an IPv4 address (four numbers 0-255, no host names)")
                }
            })?;
            let prefix = match prefix {
                None => 32,
                Some(p) => parse_cidr(p, 32, "ip4")?,
            };
            Mechanism::Ip4 { addr, prefix }
        }
        "ip6" => {
            let value = args
                .strip_prefix(':')
                .ok_or("`ip6` needs an address: `ip6:2001:db8::/32`")?;
            let (addr, prefix) = match value.rsplit_once('/') {
                Some((a, p)) => (a, Some(p)),
                None => (value, None),
            };
            let addr: Ipv6Addr = addr.parse().map_err(|_| {
                if addr.parse::<Ipv4Addr>().is_ok() {
                    format!("`{addr}` is an IPv4 address; use `ip4:` for it")
                } else {
                    format!("`{addr}` is not an IPv6 address")
                }
            })?;
            let prefix = match prefix {
                None => 128,
                Some(p) => parse_cidr(p, 128, "ip6")?,
            };
            Mechanism::Ip6 { addr, prefix }
        }
        "" => return Err("a qualifier with no mechanism after it".into()),
        other => {
            return Err(format!(
                "unknown mechanism `{other}` (known: all, include, a, mx, ptr, ip4, ip6, exists); \
                 receivers return permerror for the whole record"
            ))
        }
    };
    Ok(TermKind::Directive {
        qualifier,
        mechanism,
    })
}

/// `name=value` where name = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." ) (RFC 7208 §12).
fn modifier_parts(raw: &str) -> Option<(&str, &str)> {
    let (name, value) = raw.split_once('=')?;
    let mut chars = name.chars();
    let first = chars.next()?;
    if !first.is_ascii_alphabetic() {
        return None;
    }
    if !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) {
        return None;
    }
    Some((name, value))
}

/// Splits `:domain/24//64` into the domain-spec part and the dual-cidr part. The cidr is only a
/// trailing `/N`, `//N` or `/N//N`: a domain-spec may itself contain `/` (RFC 7208 §7.1
/// macro-literal), as in `a:foo:bar/baz.example.com`.
fn split_cidr(args: &str) -> (Option<&str>, &str) {
    let Some(rest) = args.strip_prefix(':') else {
        return (None, args);
    };
    let digits_after = |s: &str, at: usize, skip: usize| {
        s.get(at + skip..)
            .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
    };
    let mut end = rest.len();
    if let Some(pos) = rest.rfind("//") {
        if digits_after(rest, pos, 2) {
            end = pos;
        }
    }
    if let Some(pos) = rest[..end].rfind('/') {
        if rest[pos..end].len() > 1 && rest[pos + 1..end].bytes().all(|b| b.is_ascii_digit()) {
            end = pos;
        }
    }
    (Some(&rest[..end]), &rest[end..])
}

fn parse_dual_cidr(cidr: &str) -> Result<(Option<u8>, Option<u8>), String> {
    if cidr.is_empty() {
        return Ok((None, None));
    }
    let rest = cidr.strip_prefix('/').unwrap_or(cidr);
    if let Some(v6) = rest.strip_prefix('/') {
        return Ok((None, Some(parse_cidr(v6, 128, "ip6-cidr")?)));
    }
    match rest.split_once("//") {
        Some((v4, v6)) => Ok((
            Some(parse_cidr(v4, 32, "ip4-cidr")?),
            Some(parse_cidr(v6, 128, "ip6-cidr")?),
        )),
        None => Ok((Some(parse_cidr(rest, 32, "ip4-cidr")?), None)),
    }
}

fn parse_cidr(text: &str, max: u8, what: &str) -> Result<u8, String> {
    let valid_digits = !text.is_empty()
        && text.len() <= 3
        && text.bytes().all(|b| b.is_ascii_digit())
        && !(text.len() > 1 && text.starts_with('0'));
    match text.parse::<u8>() {
        Ok(n) if valid_digits && n <= max => Ok(n),
        _ => Err(format!(
            "`/{text}` is not a valid {what} prefix length (0-{max})"
        )),
    }
}

/// Parses a domain-spec: a macro-string that, without macros, must be a host name.
fn parse_domain_spec(spec: &str) -> Result<DomainSpec, String> {
    if spec.is_empty() {
        return Err("the domain is empty (is there a space after the colon?)".into());
    }
    if spec.contains('%') {
        validate_macro_string(spec)?;
        return Ok(DomainSpec::Macro(spec.to_string()));
    }
    let name = spec.strip_suffix('.').unwrap_or(spec);
    let labels: Vec<&str> = name.split('.').collect();
    if labels.len() < 2 {
        return Err(format!("`{spec}` is not a fully qualified domain name"));
    }
    for label in &labels {
        if label.is_empty() || label.len() > 63 {
            return Err(format!("`{spec}` has an empty or over-long label"));
        }
        // RFC 7208 §7.1: any visible character but `%` is a macro-literal.
        if let Some(bad) = label.chars().find(|c| !matches!(c, '!'..='$' | '&'..='~')) {
            return Err(format!(
                "`{spec}` contains `{bad}`, which is not allowed in a domain"
            ));
        }
    }
    let top = labels.last().copied().unwrap_or_default();
    let top_ok = top.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && top.chars().any(|c| c.is_ascii_alphabetic() || c == '-')
        && !top.starts_with('-')
        && !top.ends_with('-');
    if !top_ok {
        return Err(format!("`{spec}` does not end in a valid top-level label"));
    }
    if name.len() > 253 {
        return Err(format!("`{spec}` is longer than 253 bytes"));
    }
    Ok(DomainSpec::Literal(name.to_ascii_lowercase()))
}

/// Validates macro syntax (RFC 7208 §7.1): `%{letter[digits][r][delimiters]}`, `%%`, `%_`, `%-`.
fn validate_macro_string(text: &str) -> Result<(), String> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            match bytes.get(i + 1) {
                Some(b'%' | b'_' | b'-') => i += 2,
                Some(b'{') => {
                    let close = text[i..]
                        .find('}')
                        .ok_or_else(|| format!("unterminated macro in `{text}`"))?;
                    let inner = &text[i + 2..i + close];
                    validate_macro_body(inner)
                        .map_err(|e| format!("bad macro `%{{{inner}}}`: {e}"))?;
                    i += close + 1;
                }
                _ => {
                    return Err(format!(
                        "`%` must start a macro (`%{{…}}`, `%%`, `%_`, `%-`) in `{text}`"
                    ))
                }
            }
        } else if (0x21..=0x7e).contains(&b) {
            i += 1;
        } else {
            return Err(format!("`{text}` contains a character not allowed in SPF"));
        }
    }
    Ok(())
}

fn validate_macro_body(inner: &str) -> Result<(), String> {
    let mut chars = inner.chars();
    let letter = chars.next().ok_or("empty macro")?.to_ascii_lowercase();
    match letter {
        's' | 'l' | 'o' | 'd' | 'i' | 'p' | 'h' | 'v' => {}
        // Only in the explanation text an `exp=` points to, never in a record (§7.2).
        'c' | 'r' | 't' => return Err(format!("`{letter}` is only allowed in exp= text")),
        other => return Err(format!("`{other}` is not a macro letter")),
    }
    let rest: String = chars.collect();
    let digits_end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let (digits, after) = rest.split_at(digits_end);
    if !digits.is_empty() && digits.parse::<u32>().map_or(true, |n| n == 0 || n > 128) {
        return Err("the label count must be 1-128".into());
    }
    let after = after.strip_prefix(['r', 'R']).unwrap_or(after);
    if let Some(bad) = after
        .chars()
        .find(|c| !matches!(c, '.' | '-' | '+' | ',' | '/' | '_' | '='))
    {
        return Err(format!("`{bad}` is not a delimiter"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errs(text: &str) -> Vec<String> {
        SpfRecord::parse(text)
            .errors
            .into_iter()
            .map(|e| format!("{}: {}", e.raw, e.reason))
            .collect()
    }

    #[test]
    fn recognises_spf_records() {
        assert!(is_spf("v=spf1 -all"));
        assert!(is_spf("V=SPF1"));
        assert!(!is_spf("v=spf10 -all"));
        assert!(!is_spf("v=DMARC1; p=none"));
    }

    #[test]
    fn parses_a_realistic_record() {
        let r = SpfRecord::parse(
            "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 a mx:mail.example.com/24//64 \
             include:_spf.google.com exists:%{i}._spf.%{d} ~all exp=explain.%{d}",
        );
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        assert_eq!(r.terms.len(), 8);
        assert_eq!(r.all().unwrap().1, Qualifier::SoftFail);
        assert!(matches!(
            r.terms[5].kind,
            TermKind::Directive {
                mechanism: Mechanism::Exists(DomainSpec::Macro(_)),
                ..
            }
        ));
        match &r.terms[3].kind {
            TermKind::Directive {
                mechanism:
                    Mechanism::Mx {
                        domain,
                        cidr4,
                        cidr6,
                    },
                ..
            } => {
                assert_eq!(
                    domain,
                    &Some(DomainSpec::Literal("mail.example.com".into()))
                );
                assert_eq!((*cidr4, *cidr6), (Some(24), Some(64)));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unknown_modifiers_are_legal_unknown_mechanisms_are_not() {
        assert!(errs("v=spf1 ra=postmaster rp=100 -all").is_empty());
        let e = errs("v=spf1 foo -all");
        assert!(e[0].contains("unknown mechanism `foo`"), "{e:?}");
    }

    #[test]
    fn explains_common_mistakes() {
        let cases = [
            ("v=spf1 ip4:78.46.96.236/99 ~all", "prefix length"),
            (
                "v=spf1 ip4:1200:0000:AB00:1234:0000:2552:7777:1313 ~all",
                "use `ip6:`",
            ),
            ("v=spf1 ip6:78.46.96.236 ~all", "use `ip4:`"),
            ("v=spf1 ip4:8.8.8.8~all", "space missing"),
            ("v=spf1 include: example.com ~all", "empty"),
            ("v=spf1 a:%{?} -all", "not a macro letter"),
            ("v=spf1 -all exp=%{z}", "not a macro letter"),
            ("v=spf1 +ip4:relay.example.net -all", "not an IPv4 address"),
            (
                "v=spf1 redirect=a.example redirect=b.example",
                "more than once",
            ),
            ("v=spf1 all:foo", "takes no argument"),
        ];
        for (record, expect) in cases {
            let e = errs(record);
            assert!(e.iter().any(|m| m.contains(expect)), "{record}: {e:?}");
        }
    }

    #[test]
    fn domain_specs_may_contain_any_macro_literal() {
        let r = SpfRecord::parse("v=spf1 a:foo:bar/baz.example.com mx:x.example.com/24//64 -all");
        // Valid by the RFC grammar; flagged only because mail-auth's parser rejects it.
        assert_eq!(r.errors.len(), 1, "{:?}", r.errors);
        assert!(
            r.errors[0].reason.starts_with("RFC 7208 allows this"),
            "{:?}",
            r.errors
        );
        match &r.terms[0].kind {
            TermKind::Directive {
                mechanism: Mechanism::A { domain, cidr4, .. },
                ..
            } => {
                assert_eq!(
                    domain,
                    &Some(DomainSpec::Literal("foo:bar/baz.example.com".into()))
                );
                assert_eq!(*cidr4, None);
            }
            other => panic!("{other:?}"),
        }
        assert!(!errs("v=spf1 a:example.com/99 -all").is_empty());
        assert!(!errs("v=spf1 a:example.123 -all").is_empty());
    }

    /// Former evaluation failures: records RFC 7208 allows and mail-auth's parser rejects are
    /// flagged for receivers running mail-auth, but evaluated as the RFC says.
    #[test]
    fn rfc_validity_is_kept_apart_from_mail_auths_verdict() {
        for text in [
            "v=spf1 moo.cow-far_out=man:dog/cat ip4:1.2.3.4 -all",
            "v=spf1 a:foo:bar/baz.example.com",
            "v=spf1 mx:foo:bar/baz.example.com",
        ] {
            let r = SpfRecord::parse(text);
            assert!(r.follows_rfc7208, "{text}: {:?}", r.errors);
            assert!(
                r.errors
                    .iter()
                    .all(|e| e.reason.starts_with("RFC 7208 allows this")),
                "{text}: {:?}",
                r.errors
            );
        }
        for text in [
            "v=spf1 moo.cow/far_out=man:dog/cat ip4:1.2.3.4 -all",
            "v=spf1 -all exp=%{r}.example.com",
            "v=spf1 ip4:1.2.3.4 -all moo",
            "v=spf1 a:%{a}.example.com -all",
        ] {
            let r = SpfRecord::parse(text);
            assert!(!r.follows_rfc7208 && !r.errors.is_empty(), "{text}");
        }
    }

    #[test]
    fn redirect_is_ignored_when_all_is_present() {
        let r = SpfRecord::parse("v=spf1 -all redirect=other.example");
        assert!(r.redirect().is_none());
        assert!(r.ignored_redirect().is_some());
        let r = SpfRecord::parse("v=spf1 redirect=other.example");
        assert!(r.redirect().is_some());
    }

    #[test]
    fn mechanisms_after_all_are_reported() {
        let r = SpfRecord::parse("v=spf1 -all ip4:192.0.2.1");
        assert_eq!(r.after_all().len(), 1);
    }
}
