//! The header fields a verdict needs, read once from the parsed header section: identity
//! (From, Date, Message-ID, Subject), the bulk-sender rules, and where the SPF inputs of a
//! saved message come from (Received-SPF, Received, Return-Path).
//!
//! Structured values are parsed with mail-parser's field parsers (the ones mail-auth uses for
//! From); the checks on top are RFC 5322 §3.6 (exactly one From, Date and Message-ID; the forms
//! of `date-time` and `msg-id`) and RFC 8058 (one-click unsubscribe).

use mail_parser::parsers::MessageStream;
use mail_parser::{Address, HeaderValue, Host};
use std::borrow::Cow;
use std::net::IpAddr;

/// One header field: its name and raw value (folded, as in the message).
pub type RawHeader<'x> = (&'x [u8], &'x [u8]);

/// The value of a field as one line: folding removed, surrounding whitespace trimmed, invalid
/// UTF-8 replaced.
pub fn unfold(value: &[u8]) -> String {
    let text = String::from_utf8_lossy(value);
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if i > 0 && !out.is_empty() && !out.ends_with(' ') {
            out.push(' ');
        }
        out.push_str(if i > 0 { line.trim_start() } else { line });
    }
    out.trim().to_string()
}

/// The values of every field named `name` (case-insensitive), top to bottom.
pub fn values<'x>(headers: &[RawHeader<'x>], name: &str) -> Vec<&'x [u8]> {
    headers
        .iter()
        .filter(|(n, _)| trim_name(n).eq_ignore_ascii_case(name.as_bytes()))
        .map(|(_, v)| *v)
        .collect()
}

fn trim_name(name: &[u8]) -> &[u8] {
    let end = name
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |p| p + 1);
    &name[..end]
}

/// A field value as mail-parser's parsers expect it: ending with a line break.
fn terminated(value: &[u8]) -> Cow<'_, [u8]> {
    if value.ends_with(b"\n") {
        Cow::Borrowed(value)
    } else {
        let mut v = value.to_vec();
        v.extend_from_slice(b"\r\n");
        Cow::Owned(v)
    }
}

/// How a rule came out: the severity is decided by the caller from `ok` and `reason`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub ok: bool,
    /// What was found or what is wrong, in plain words.
    pub message: String,
    /// The field(s) as written.
    pub evidence: String,
}

fn rule(ok: bool, message: impl Into<String>, evidence: impl Into<String>) -> Rule {
    Rule {
        ok,
        message: message.into(),
        evidence: evidence.into(),
    }
}

// ---------------------------------------------------------------------------------------------
// From
// ---------------------------------------------------------------------------------------------

/// RFC 5322 §3.6: exactly one From field; the bulk-sender rules and DMARC (RFC 9989 §4.4) also
/// need exactly one author address, with a domain.
pub fn from_rule(headers: &[RawHeader<'_>]) -> (Rule, Option<String>) {
    let fields = values(headers, "From");
    let evidence = fields
        .iter()
        .map(|v| format!("From: {}", unfold(v)))
        .collect::<Vec<_>>()
        .join("\n");
    let [value] = fields.as_slice() else {
        let message = if fields.is_empty() {
            "the message has no From field (RFC 5322 §3.6 requires exactly one)".to_string()
        } else {
            format!(
                "the message has {} From fields (RFC 5322 §3.6 allows exactly one; DMARC \
                 cannot tell who the author is)",
                fields.len()
            )
        };
        return (rule(false, message, evidence), None);
    };
    let value_text = terminated(value);
    let parsed = MessageStream::new(&value_text).parse_address();
    let addresses: Vec<String> = match &parsed {
        HeaderValue::Address(Address::List(list)) => list
            .iter()
            .filter_map(|a| a.address.as_ref().map(|s| s.to_string()))
            .collect(),
        HeaderValue::Address(Address::Group(groups)) => {
            return (
                rule(
                    false,
                    format!(
                        "From is a group ({} addresses); it must name one author mailbox",
                        groups.iter().map(|g| g.addresses.len()).sum::<usize>()
                    ),
                    evidence,
                ),
                None,
            )
        }
        _ => Vec::new(),
    };
    let display = unfold(value);
    match addresses.as_slice() {
        [] => (
            rule(false, "From holds no address mailshift can read", evidence),
            None,
        ),
        [one] => match one.rsplit_once('@') {
            Some((local, domain)) if !local.is_empty() && domain.contains('.') => (
                rule(true, format!("one From address: {one}"), evidence),
                Some(display),
            ),
            _ => (
                rule(
                    false,
                    format!("the From address `{one}` has no valid domain"),
                    evidence,
                ),
                Some(display),
            ),
        },
        many => (
            rule(
                false,
                format!(
                    "From names {} mailboxes ({}); the bulk-sender rules and DMARC need a single \
                     author address",
                    many.len(),
                    many.join(", ")
                ),
                evidence,
            ),
            Some(display),
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// Date
// ---------------------------------------------------------------------------------------------

/// How far in the future a Date may be before it is reported (clock skew is normal).
pub const DATE_FUTURE_TOLERANCE_SECS: i64 = 24 * 3600;

/// RFC 5322 §3.6.1: exactly one Date field holding a valid date-time. `now`: Unix seconds, to
/// report a date in the future (the `bool` is "in the future").
pub fn date_rule(headers: &[RawHeader<'_>], now: i64) -> (Rule, bool) {
    let fields = values(headers, "Date");
    let evidence = fields
        .iter()
        .map(|v| format!("Date: {}", unfold(v)))
        .collect::<Vec<_>>()
        .join("\n");
    let [value] = fields.as_slice() else {
        let message = if fields.is_empty() {
            "the message has no Date field (RFC 5322 §3.6 requires exactly one)".to_string()
        } else {
            format!(
                "the message has {} Date fields (RFC 5322 §3.6 allows exactly one)",
                fields.len()
            )
        };
        return (rule(false, message, evidence), false);
    };
    match MessageStream::new(&terminated(value)).parse_date() {
        HeaderValue::DateTime(dt) if dt.is_valid() => {
            let when = dt.to_timestamp();
            if when > now + DATE_FUTURE_TOLERANCE_SECS {
                (
                    rule(
                        true,
                        format!(
                            "Date is {} hours in the future ({})",
                            (when - now) / 3600,
                            dt.to_rfc3339()
                        ),
                        evidence,
                    ),
                    true,
                )
            } else {
                (
                    rule(true, format!("Date: {}", dt.to_rfc3339()), evidence),
                    false,
                )
            }
        }
        _ => (
            rule(
                false,
                format!(
                    "Date `{}` is not an RFC 5322 date-time",
                    truncate(&unfold(value), 80)
                ),
                evidence,
            ),
            false,
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// Message-ID
// ---------------------------------------------------------------------------------------------

/// RFC 5322 §3.6.4: one Message-ID field, `<id-left@id-right>`.
pub fn message_id_rule(headers: &[RawHeader<'_>]) -> (Rule, Option<String>) {
    let fields = values(headers, "Message-ID");
    let evidence = fields
        .iter()
        .map(|v| format!("Message-ID: {}", unfold(v)))
        .collect::<Vec<_>>()
        .join("\n");
    let [value] = fields.as_slice() else {
        let message = if fields.is_empty() {
            "the message has no Message-ID (RFC 5322 §3.6.4 says it should; Gmail's sender \
             guidelines require one)"
                .to_string()
        } else {
            format!(
                "the message has {} Message-ID fields (RFC 5322 §3.6 allows one)",
                fields.len()
            )
        };
        return (rule(false, message, evidence), None);
    };
    let text = strip_comments(&unfold(value));
    let id = text.trim();
    match msg_id_problem(id) {
        None => (
            rule(true, format!("Message-ID {id}"), evidence),
            Some(id.to_string()),
        ),
        Some(problem) => (
            rule(
                false,
                format!("Message-ID `{}` is malformed: {problem}", truncate(id, 80)),
                evidence,
            ),
            Some(id.to_string()),
        ),
    }
}

/// Why `id` is not an RFC 5322 `msg-id` (`"<" id-left "@" id-right ">"`, printable ASCII, no
/// spaces), or `None`.
pub fn msg_id_problem(id: &str) -> Option<&'static str> {
    let Some(inner) = id.strip_prefix('<').and_then(|i| i.strip_suffix('>')) else {
        return Some("it must be enclosed in angle brackets");
    };
    if !inner.bytes().all(|b| b.is_ascii_graphic()) {
        return Some("it contains spaces or non-ASCII characters");
    }
    if inner.contains(['<', '>']) {
        return Some("it contains more than one identifier");
    }
    let Some((left, right)) = inner.rsplit_once('@') else {
        return Some("it has no `@`");
    };
    if left.is_empty() || right.is_empty() {
        return Some("the part before or after `@` is empty");
    }
    if right.starts_with('[') != right.ends_with(']') {
        return Some("the domain literal is not closed");
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Subject
// ---------------------------------------------------------------------------------------------

/// The decoded Subject (RFC 2047 encoded words decoded).
pub fn subject(headers: &[RawHeader<'_>]) -> Option<String> {
    let value = values(headers, "Subject").into_iter().next()?;
    match MessageStream::new(&terminated(value)).parse_unstructured() {
        HeaderValue::Text(text) => Some(text.trim().to_string()),
        _ => Some(unfold(value)),
    }
}

// ---------------------------------------------------------------------------------------------
// RFC 8058 one-click unsubscribe
// ---------------------------------------------------------------------------------------------

/// What the message offers for unsubscribing (RFC 2369, RFC 8058).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Unsubscribe {
    /// Number of List-Unsubscribe fields.
    pub fields: usize,
    /// The URIs of the (first) List-Unsubscribe field, as written between `<` and `>`.
    pub uris: Vec<String>,
    /// The first `https:` URI.
    pub https: Option<String>,
    /// List-Unsubscribe-Post fields, unfolded.
    pub post: Vec<String>,
}

impl Unsubscribe {
    pub fn read(headers: &[RawHeader<'_>]) -> Unsubscribe {
        let fields = values(headers, "List-Unsubscribe");
        let uris = fields
            .first()
            .map(|v| list_uris(&unfold(v)))
            .unwrap_or_default();
        let https = uris
            .iter()
            .find(|u| {
                u.len() > 8
                    && u.get(..8)
                        .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
            })
            .cloned();
        Unsubscribe {
            fields: fields.len(),
            uris,
            https,
            post: values(headers, "List-Unsubscribe-Post")
                .iter()
                .map(|v| unfold(v))
                .collect(),
        }
    }

    /// `List-Unsubscribe-Post: List-Unsubscribe=One-Click`, exactly one such field.
    pub fn one_click_post(&self) -> bool {
        matches!(self.post.as_slice(), [p] if p == "List-Unsubscribe=One-Click")
    }
}

/// The `<…>` URIs of an RFC 2369 list field, in order (comments and whitespace ignored).
pub fn list_uris(value: &str) -> Vec<String> {
    let text = strip_comments(value);
    let mut uris = Vec::new();
    let mut rest = text.as_str();
    while let Some(start) = rest.find('<') {
        let after = &rest[start + 1..];
        let Some(end) = after.find('>') else { break };
        let uri: String = after[..end]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        if !uri.is_empty() {
            uris.push(uri);
        }
        rest = &after[end + 1..];
    }
    uris
}

// ---------------------------------------------------------------------------------------------
// SPF inputs from the trace fields
// ---------------------------------------------------------------------------------------------

/// SPF inputs found in one trace field.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TraceHop {
    /// Which field: `Received-SPF` or `Received`, and its position among those fields (1 = top).
    pub field: &'static str,
    pub position: usize,
    pub ip: Option<IpAddr>,
    pub helo: Option<String>,
    /// `envelope-from=` of a Received-SPF field.
    pub mail_from: Option<String>,
    /// The field, unfolded and shortened, for the detail.
    pub text: String,
}

/// Whether `ip` is the address of a hop inside a receiver's own network (loopback, private,
/// link-local, unspecified, unique-local), where SPF means nothing.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal(IpAddr::V4(v4));
            }
            v6.is_loopback()
                || v6.is_unspecified()
                || (v6.segments()[0] & 0xfe00) == 0xfc00
                || (v6.segments()[0] & 0xffc0) == 0xfe80
        }
    }
}

/// The client of the receiving server as the receiver recorded it: the topmost Received-SPF
/// field with `client-ip=` (RFC 7208 §9.1), else the topmost Received field with the client's
/// address that is not an internal hop (else, if all are internal, the topmost with an
/// address). `skipped` counts Received fields passed over.
pub fn client_hop(headers: &[RawHeader<'_>]) -> (Option<TraceHop>, usize) {
    for (i, value) in values(headers, "Received-SPF").iter().enumerate() {
        if let Some(hop) = received_spf(value, i + 1) {
            return (Some(hop), 0);
        }
    }
    let received: Vec<TraceHop> = values(headers, "Received")
        .iter()
        .enumerate()
        .map(|(i, v)| received_hop(v, i + 1))
        .collect();
    if let Some(pos) = received
        .iter()
        .position(|h| h.ip.is_some_and(|ip| !is_internal(ip)))
    {
        return (Some(received[pos].clone()), pos);
    }
    match received.iter().position(|h| h.ip.is_some()) {
        Some(pos) => (Some(received[pos].clone()), pos),
        None => (None, received.len()),
    }
}

/// A Received field's client: `from <helo> (<rdns> [<ip>])` and its variants (Exim's
/// `from [ip] (helo=name)`, qmail's `from unknown (HELO name) (ip)`), as mail-parser reads them.
pub fn received_hop(value: &[u8], position: usize) -> TraceHop {
    let text = truncate(&unfold(value), 160);
    let mut hop = TraceHop {
        field: "Received",
        position,
        text,
        ..TraceHop::default()
    };
    if let HeaderValue::Received(received) = MessageStream::new(&terminated(value)).parse_received()
    {
        let from_ip = match &received.from {
            Some(Host::IpAddr(ip)) => Some(*ip),
            _ => None,
        };
        hop.ip = received.from_ip.or(from_ip);
        let name = |host: &Option<Host<'_>>| match host {
            Some(Host::Name(name)) if !name.eq_ignore_ascii_case("unknown") => {
                Some(name.trim_end_matches('.').to_string())
            }
            _ => None,
        };
        hop.helo = name(&received.helo).or_else(|| name(&received.from));
    }
    hop
}

/// A Received-SPF field (RFC 7208 §9.1): `result (comment) key=value; ...` with `client-ip`,
/// `helo` and `envelope-from`. `None` without a parsable `client-ip`.
pub fn received_spf(value: &[u8], position: usize) -> Option<TraceHop> {
    let text = unfold(value);
    let body = strip_comments(&text);
    let mut hop = TraceHop {
        field: "Received-SPF",
        position,
        text: truncate(&text, 160),
        ..TraceHop::default()
    };
    for part in body.split(';') {
        for token in part.split_whitespace() {
            let Some((key, val)) = token.split_once('=') else {
                continue;
            };
            let val = val.trim_matches('"').trim_end_matches(';');
            match key.to_ascii_lowercase().as_str() {
                "client-ip" => hop.ip = val.parse().ok(),
                "helo" if !val.is_empty() => hop.helo = Some(val.trim_end_matches('.').into()),
                "envelope-from" => hop.mail_from = Some(val.trim_matches(['<', '>']).to_string()),
                _ => {}
            }
        }
    }
    hop.ip.map(|_| hop)
}

/// The MAIL FROM recorded by the final delivery (RFC 5321 §4.4): the topmost Return-Path, the
/// address between `<` and `>` (`""` for the null sender).
pub fn return_path(headers: &[RawHeader<'_>]) -> Option<String> {
    let value = values(headers, "Return-Path").into_iter().next()?;
    let text = strip_comments(&unfold(value));
    let text = text.trim();
    let inner = match (text.find('<'), text.rfind('>')) {
        (Some(start), Some(end)) if start < end => &text[start + 1..end],
        _ => text,
    };
    // A source route (`<@a,@b:user@c>`) is obsolete; keep the mailbox.
    let inner = inner.rsplit_once(':').map_or(inner, |(_, m)| m).trim();
    Some(inner.to_string())
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// `text` without RFC 5322 comments (parenthesised, nested, outside quoted strings).
pub fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut depth = 0usize;
    let mut quoted = false;
    let mut escaped = false;
    for c in text.chars() {
        if escaped {
            escaped = false;
            if depth == 0 {
                out.push(c);
            }
            continue;
        }
        match c {
            '\\' if quoted || depth > 0 => {
                escaped = true;
                if depth == 0 {
                    out.push(c);
                }
            }
            '"' if depth == 0 => {
                quoted = !quoted;
                out.push(c);
            }
            '(' if !quoted => depth += 1,
            ')' if !quoted && depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    out.push(' ');
                }
            }
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// At most `max` characters of `text`, with `…` when shortened.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(fields: &[(&'static str, &'static str)]) -> Vec<RawHeader<'static>> {
        fields
            .iter()
            .map(|(n, v)| (n.as_bytes(), v.as_bytes()))
            .collect()
    }

    #[test]
    fn unfolding_joins_continuation_lines() {
        assert_eq!(unfold(b" a\r\n\tb c\r\n"), "a b c");
        assert_eq!(unfold(b" one\n two\n"), "one two");
    }

    #[test]
    fn from_needs_one_field_with_one_mailbox() {
        let (r, shown) = from_rule(&h(&[("From", " News <news@example.com>\r\n")]));
        assert!(r.ok, "{r:?}");
        assert_eq!(shown.as_deref(), Some("News <news@example.com>"));
        assert!(!from_rule(&h(&[])).0.ok);
        let two = h(&[
            ("From", " a@example.com\r\n"),
            ("From", " b@example.com\r\n"),
        ]);
        assert!(from_rule(&two).0.message.contains("2 From fields"));
        let many = from_rule(&h(&[("From", " a@example.com, b@example.org\r\n")])).0;
        assert!(!many.ok && many.message.contains("2 mailboxes"), "{many:?}");
        let group = from_rule(&h(&[("From", " Team: a@example.com, b@example.com;\r\n")])).0;
        assert!(!group.ok && group.message.contains("group"), "{group:?}");
        let nodomain = from_rule(&h(&[("From", " example.com\r\n")])).0;
        assert!(!nodomain.ok, "{nodomain:?}");
    }

    #[test]
    fn date_must_be_valid_and_single() {
        let now = 1_700_000_000;
        let (r, future) = date_rule(&h(&[("Date", " Tue, 14 Nov 2023 22:13:20 +0000\r\n")]), now);
        assert!(r.ok && !future, "{r:?}");
        assert!(!date_rule(&h(&[("Date", " yesterday\r\n")]), now).0.ok);
        assert!(!date_rule(&h(&[]), now).0.ok);
        let two = h(&[
            ("Date", " Tue, 14 Nov 2023 22:13:20 +0000\r\n"),
            ("Date", " Tue, 14 Nov 2023 22:13:20 +0000\r\n"),
        ]);
        assert!(!date_rule(&two, now).0.ok);
        let (r, future) = date_rule(&h(&[("Date", " Sat, 14 Nov 2026 22:13:20 +0000\r\n")]), now);
        assert!(r.ok && future, "{r:?}");
    }

    #[test]
    fn message_ids() {
        let (r, id) = message_id_rule(&h(&[("Message-ID", " <abc.123@mail.example.com>\r\n")]));
        assert!(r.ok, "{r:?}");
        assert_eq!(id.as_deref(), Some("<abc.123@mail.example.com>"));
        assert!(
            message_id_rule(&h(&[("Message-Id", " <a@b> (comment)\r\n")]))
                .0
                .ok
        );
        for bad in [
            "abc@example.com",
            "<abc>",
            "<a b@example.com>",
            "<@example.com>",
            "<a@>",
        ] {
            assert!(msg_id_problem(bad).is_some(), "{bad}");
        }
        assert!(msg_id_problem("<a@[192.0.2.1]>").is_none());
        assert!(!message_id_rule(&h(&[])).0.ok);
    }

    #[test]
    fn list_unsubscribe_uris_and_one_click() {
        assert_eq!(
            list_uris("<mailto:u@example.com?subject=unsub>, (web) <https://example.com/u?x=1>"),
            [
                "mailto:u@example.com?subject=unsub",
                "https://example.com/u?x=1"
            ]
        );
        let u = Unsubscribe::read(&h(&[
            (
                "List-Unsubscribe",
                " <https://example.com/u/abc>,\r\n <mailto:u@example.com>\r\n",
            ),
            ("List-Unsubscribe-Post", " List-Unsubscribe=One-Click\r\n"),
        ]));
        assert_eq!(u.https.as_deref(), Some("https://example.com/u/abc"));
        assert!(u.one_click_post());
        let mailto_only =
            Unsubscribe::read(&h(&[("List-Unsubscribe", " <mailto:u@example.com>\r\n")]));
        assert!(mailto_only.https.is_none() && !mailto_only.one_click_post());
        let wrong = Unsubscribe::read(&h(&[(
            "List-Unsubscribe-Post",
            " List-Unsubscribe=Yes\r\n",
        )]));
        assert!(!wrong.one_click_post());
    }

    #[test]
    fn received_variants() {
        let postfix = received_hop(
            b" from mail.example.com (mail.example.com [203.0.113.5])\r\n\tby mx.example.net (Postfix) with ESMTPS id 4A;\r\n\tTue, 14 Nov 2023 22:13:20 +0000\r\n",
            1,
        );
        assert_eq!(postfix.ip, Some("203.0.113.5".parse().unwrap()));
        assert_eq!(postfix.helo.as_deref(), Some("mail.example.com"));
        let gmail = received_hop(
            b" from mail-sor-f41.google.com (mail-sor-f41.google.com. [209.85.220.41])\r\n        by mx.google.com with SMTPS id x;\r\n        Tue, 14 Nov 2023 22:13:20 -0800 (PST)\r\n",
            1,
        );
        assert_eq!(gmail.ip, Some("209.85.220.41".parse().unwrap()));
        assert_eq!(gmail.helo.as_deref(), Some("mail-sor-f41.google.com"));
        let exim = received_hop(
            b" from [198.51.100.7] (helo=out.example.org)\r\n\tby mx.example.net with esmtps id 1;\r\n\tTue, 14 Nov 2023 22:13:20 +0000\r\n",
            1,
        );
        assert_eq!(exim.ip, Some("198.51.100.7".parse().unwrap()));
        assert_eq!(exim.helo.as_deref(), Some("out.example.org"));
        let v6 = received_hop(
            b" from out.example.org (out.example.org [IPv6:2001:db8::25])\r\n\tby mx.example.net; Tue, 14 Nov 2023 22:13:20 +0000\r\n",
            1,
        );
        assert_eq!(v6.ip, Some("2001:db8::25".parse().unwrap()));
        // The seed inbox's own trace field.
        let seed = received_hop(
            b" from mail.example.com ([198.51.100.7]) by seeds.example (mailshift seed inbox) with ESMTPS; 2026-11-25T19:32:27Z\r\n",
            1,
        );
        assert_eq!(seed.ip, Some("198.51.100.7".parse().unwrap()));
        assert_eq!(seed.helo.as_deref(), Some("mail.example.com"));
        let internal = received_hop(
            b" by 10.157.14.6 with HTTP; Tue, 3 Jan 2017 12:22:54 -0800 (PST)\r\n",
            1,
        );
        assert_eq!(internal.ip, None);
    }

    #[test]
    fn client_hop_skips_internal_hops_and_prefers_received_spf() {
        let headers = h(&[
            ("Received", " from localhost (localhost [127.0.0.1]) by mail.example.net (amavis); Tue, 14 Nov 2023 22:13:20 +0000\r\n"),
            ("Received", " by 2002:a05:6a11:1::1 with SMTP id x; Tue, 14 Nov 2023 22:13:20 +0000\r\n"),
            ("Received", " from out.example.org (out.example.org [198.51.100.7]) by mail.example.net; Tue, 14 Nov 2023 22:13:19 +0000\r\n"),
        ]);
        let (hop, skipped) = client_hop(&headers);
        let hop = hop.unwrap();
        assert_eq!((hop.position, skipped), (3, 2));
        assert_eq!(hop.ip, Some("198.51.100.7".parse().unwrap()));
        let mut with_spf = headers.clone();
        with_spf.insert(0, (b"Received-SPF".as_slice(), b" pass (mx.example.net: domain of b@example.org designates 198.51.100.9 as permitted sender) client-ip=198.51.100.9; envelope-from=\"b@example.org\"; helo=out2.example.org;\r\n".as_slice()));
        let hop = client_hop(&with_spf).0.unwrap();
        assert_eq!(hop.field, "Received-SPF");
        assert_eq!(hop.ip, Some("198.51.100.9".parse().unwrap()));
        assert_eq!(hop.helo.as_deref(), Some("out2.example.org"));
        assert_eq!(hop.mail_from.as_deref(), Some("b@example.org"));
        assert!(client_hop(&h(&[])).0.is_none());
    }

    #[test]
    fn return_paths() {
        assert_eq!(
            return_path(&h(&[("Return-Path", " <bounce@example.com>\r\n")])).as_deref(),
            Some("bounce@example.com")
        );
        assert_eq!(
            return_path(&h(&[("Return-Path", " <>\r\n")])).as_deref(),
            Some("")
        );
        assert_eq!(
            return_path(&h(&[(
                "Return-Path",
                " <@relay.example:user@example.com>\r\n"
            )]))
            .as_deref(),
            Some("user@example.com")
        );
        assert_eq!(return_path(&h(&[])), None);
    }

    #[test]
    fn comments_are_stripped_outside_quotes() {
        assert_eq!(
            strip_comments("a (b (c)) d \"(e)\"")
                .split_whitespace()
                .collect::<Vec<_>>(),
            ["a", "d", "\"(e)\""]
        );
    }
}
