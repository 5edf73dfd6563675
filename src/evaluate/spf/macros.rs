//! RFC 7208 §7 macro expansion, and the names it produces for DNS questions.
//!
//! Pure functions: the values a macro stands for are gathered by the evaluation
//! ([`MacroValues`]), including the one that needs DNS (`%{p}`, the validated name of the
//! client), so everything here can be tested without a resolver. The record parser
//! (`records::spf`) has already checked the syntax of domain-specs; explanation text fetched by
//! `exp=` has not, so [`expand`] checks as it goes and reports what is wrong.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv6Addr};

/// RFC 7208 §7.3: expanded names are cut from the left to this length (without the trailing
/// dot) before they are looked up.
pub const MAX_NAME_LENGTH: usize = 253;

/// RFC 1035 §2.3.4: the longest label a DNS question can carry.
const MAX_LABEL_LENGTH: usize = 63;

/// The values of the macro letters for one expansion (RFC 7208 §7.2).
#[derive(Debug, Clone, Copy)]
pub struct MacroValues<'a> {
    /// `%{s}`: `<sender>`, always with a local-part (`postmaster` when it had none).
    pub sender: &'a str,
    /// `%{d}`: the `<domain>` of the `check_host()` call being evaluated.
    pub domain: &'a str,
    /// `%{i}`, `%{c}`, `%{v}`: the client; an IPv4-mapped IPv6 address is already its IPv4 form.
    pub ip: IpAddr,
    /// `%{h}`: the HELO/EHLO name as the client gave it.
    pub helo: &'a str,
    /// `%{p}`: the validated domain name of the client, `None` when there is none ("unknown").
    pub validated_domain: Option<&'a str>,
    /// `%{r}`: the name of the host performing the check.
    pub receiver: &'a str,
    /// `%{t}`: seconds since the epoch.
    pub timestamp: u64,
}

/// Where a macro-string is used: `c`, `r` and `t` are allowed only in explanation text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MacroContext {
    /// A domain-spec: the target of a mechanism or of `redirect=` / `exp=`.
    DomainSpec,
    /// The TXT string an `exp=` points to (RFC 7208 §6.2).
    Explanation,
}

/// Why a macro-string cannot be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MacroError {
    #[error("`%` must start a macro (`%{{…}}`, `%%`, `%_` or `%-`)")]
    StrayPercent,
    #[error("a macro is not closed with `}}`")]
    Unterminated,
    #[error("`%{{}}` names no macro letter")]
    NoLetter,
    #[error("`{0}` is not a macro letter")]
    UnknownLetter(char),
    #[error("`%{{{0}}}` is allowed only in explanation text")]
    ExplanationOnly(char),
    #[error("`{0}` is not a valid macro transformer (digits, `r`, then delimiters)")]
    BadTransformer(String),
}

/// True when `text` uses `%{p}`, which needs the client's validated name (DNS lookups).
pub fn needs_validated_domain(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut at = 0;
    while at < bytes.len() {
        if bytes.get(at) != Some(&b'%') {
            at += 1;
            continue;
        }
        match bytes.get(at + 1) {
            Some(b'{')
                if bytes
                    .get(at + 2)
                    .is_some_and(|b| b.eq_ignore_ascii_case(&b'p')) =>
            {
                return true
            }
            // `%%{p}` is a literal `%` followed by the text `{p}`.
            Some(b'%') => at += 2,
            _ => at += 1,
        }
    }
    false
}

/// Expands a macro-string (RFC 7208 §7.1–7.3).
pub fn expand(
    text: &str,
    values: &MacroValues<'_>,
    context: MacroContext,
) -> Result<String, MacroError> {
    let mut out = String::with_capacity(text.len() + 32);
    let mut rest = text;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        match after.as_bytes().first() {
            Some(b'%') => {
                out.push('%');
                rest = &after[1..];
            }
            Some(b'_') => {
                out.push(' ');
                rest = &after[1..];
            }
            Some(b'-') => {
                out.push_str("%20");
                rest = &after[1..];
            }
            Some(b'{') => {
                let close = after.find('}').ok_or(MacroError::Unterminated)?;
                expand_one(&after[1..close], values, context, &mut out)?;
                rest = &after[close + 1..];
            }
            _ => return Err(MacroError::StrayPercent),
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Appends the expansion of one `%{…}` body (`letter digits r delimiters`) to `out`.
fn expand_one(
    body: &str,
    values: &MacroValues<'_>,
    context: MacroContext,
    out: &mut String,
) -> Result<(), MacroError> {
    let mut chars = body.chars();
    let letter = chars.next().ok_or(MacroError::NoLetter)?;
    let transformers = chars.as_str();
    let value = letter_value(letter.to_ascii_lowercase(), values, context)?;
    let transformed = transform(&value, transformers)?;
    if letter.is_ascii_uppercase() {
        url_escape_into(&transformed, out);
    } else {
        out.push_str(&transformed);
    }
    Ok(())
}

fn letter_value(
    letter: char,
    values: &MacroValues<'_>,
    context: MacroContext,
) -> Result<String, MacroError> {
    let (local, sender_domain) = values
        .sender
        .rsplit_once('@')
        .unwrap_or(("postmaster", values.sender));
    Ok(match letter {
        's' => values.sender.to_string(),
        'l' => local.to_string(),
        'o' => sender_domain.to_string(),
        'd' => values.domain.to_string(),
        'i' => match values.ip {
            IpAddr::V4(v4) => v4.to_string(),
            // RFC 7208 leaves the case of the nibbles open and DNS ignores it; upper case is
            // what the RFC's test suite (and pyspf, which wrote it) expects in `exp=` text.
            IpAddr::V6(v6) => dotted_nibbles(v6).to_ascii_uppercase(),
        },
        'p' => values.validated_domain.unwrap_or("unknown").to_string(),
        'v' => match values.ip {
            IpAddr::V4(_) => "in-addr".to_string(),
            IpAddr::V6(_) => "ip6".to_string(),
        },
        'h' => values.helo.to_string(),
        'c' | 'r' | 't' if context == MacroContext::DomainSpec => {
            return Err(MacroError::ExplanationOnly(letter))
        }
        // RFC 5952 text for IPv6, as Rust writes it.
        'c' => values.ip.to_string(),
        'r' => values.receiver.to_string(),
        't' => values.timestamp.to_string(),
        other => return Err(MacroError::UnknownLetter(other)),
    })
}

/// Applies `transformers` (RFC 7208 §7.3): split on the delimiters (`.` by default), reverse
/// with `r`, keep the rightmost DIGIT parts, join with `.`.
fn transform(value: &str, transformers: &str) -> Result<String, MacroError> {
    let bad = || MacroError::BadTransformer(transformers.to_string());
    let digits_end = transformers
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(transformers.len());
    let (digits, after) = transformers.split_at(digits_end);
    let keep = if digits.is_empty() {
        None
    } else {
        match digits.parse::<usize>() {
            Ok(0) | Err(_) => return Err(bad()),
            Ok(n) => Some(n),
        }
    };
    let (reverse, delimiters) = match after.strip_prefix(['r', 'R']) {
        Some(delimiters) => (true, delimiters),
        None => (false, after),
    };
    if !delimiters
        .chars()
        .all(|c| matches!(c, '.' | '-' | '+' | ',' | '/' | '_' | '='))
    {
        return Err(bad());
    }
    if keep.is_none() && !reverse && delimiters.is_empty() {
        return Ok(value.to_string());
    }
    let delimiters = if delimiters.is_empty() {
        "."
    } else {
        delimiters
    };
    let mut parts: Vec<&str> = value.split(|c| delimiters.contains(c)).collect();
    if reverse {
        parts.reverse();
    }
    let skip = keep.map_or(0, |n| parts.len().saturating_sub(n));
    Ok(parts.get(skip..).unwrap_or_default().join("."))
}

/// URL escaping of upper-case macros (RFC 7208 §7.3): every byte outside RFC 3986's
/// "unreserved" set becomes `%XX`, with upper-case hex digits as RFC 3986 §2.1 asks.
fn url_escape_into(value: &str, out: &mut String) {
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
}

/// The IPv6 "dot-format" of `%{i}` (RFC 7208 §7.3): 32 nibbles, most significant first,
/// lower case as in the RFC's own example (`%{ir}` reverses them for `ip6.arpa`-style names).
pub fn dotted_nibbles(ip: Ipv6Addr) -> String {
    let mut out = String::with_capacity(63);
    for byte in ip.octets() {
        let _ = write!(out, "{:x}.{:x}.", byte >> 4, byte & 0x0f);
    }
    out.pop();
    out
}

/// The reverse-mapping name of an address (`192.0.2.1` → `1.2.0.192.in-addr.arpa`; IPv6
/// nibbles under `ip6.arpa`), where the `ptr` mechanism and `%{p}` look up its names.
pub fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}.in-addr.arpa")
        }
        IpAddr::V6(v6) => {
            let mut name = String::with_capacity(72);
            for byte in v6.octets().iter().rev() {
                let _ = write!(name, "{:x}.{:x}.", byte & 0x0f, byte >> 4);
            }
            name.push_str("ip6.arpa");
            name
        }
    }
}

/// The DNS question name for an expanded domain-spec, or `None` when no question can be
/// composed from it (an empty label, a label over 63 octets): RFC 7208 treats such a target
/// as a name that does not exist (§4.3, §4.8). The trailing dot is dropped, and a name longer
/// than 253 characters loses labels from the left until it fits (§7.3). ASCII letters are
/// lower-cased, as mailshift's resolver keys its cache.
pub fn query_name(expanded: &str) -> Option<String> {
    let name = expanded.strip_suffix('.').unwrap_or(expanded);
    let name = truncate_left(name);
    if name.is_empty()
        || name
            .split('.')
            .any(|label| label.is_empty() || label.len() > MAX_LABEL_LENGTH)
    {
        return None;
    }
    Some(name.to_ascii_lowercase())
}

/// RFC 7208 §7.3: "the left side is truncated to fit, by removing successive domain labels
/// (and their following dots) until the total length does not exceed 253 characters".
pub fn truncate_left(mut name: &str) -> &str {
    while name.len() > MAX_NAME_LENGTH {
        match name.split_once('.') {
            Some((_, rest)) => name = rest,
            // One label longer than a name may be: nothing left to remove.
            None => break,
        }
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values<'a>(sender: &'a str, domain: &'a str, ip: &str) -> MacroValues<'a> {
        MacroValues {
            sender,
            domain,
            ip: ip.parse().unwrap(),
            helo: "mx.example.org",
            validated_domain: None,
            receiver: "receiver.example",
            timestamp: 1_700_000_000,
        }
    }

    fn spec(text: &str, v: &MacroValues<'_>) -> String {
        expand(text, v, MacroContext::DomainSpec).unwrap()
    }

    /// The examples of RFC 7208 §7.4, sender strong-bad@email.example.com, IP 192.0.2.3.
    #[test]
    fn expands_the_rfc_examples() {
        let v = values(
            "strong-bad@email.example.com",
            "email.example.com",
            "192.0.2.3",
        );
        for (macro_string, expected) in [
            ("%{s}", "strong-bad@email.example.com"),
            ("%{o}", "email.example.com"),
            ("%{d}", "email.example.com"),
            ("%{d4}", "email.example.com"),
            ("%{d3}", "email.example.com"),
            ("%{d2}", "example.com"),
            ("%{d1}", "com"),
            ("%{dr}", "com.example.email"),
            ("%{d2r}", "example.email"),
            ("%{l}", "strong-bad"),
            ("%{l-}", "strong.bad"),
            ("%{lr}", "strong-bad"),
            ("%{lr-}", "bad.strong"),
            ("%{l1r-}", "strong"),
            (
                "%{ir}.%{v}._spf.%{d2}",
                "3.2.0.192.in-addr._spf.example.com",
            ),
            ("%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com"),
            (
                "%{lr-}.lp.%{ir}.%{v}._spf.%{d2}",
                "bad.strong.lp.3.2.0.192.in-addr._spf.example.com",
            ),
            (
                "%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}",
                "3.2.0.192.in-addr.strong.lp._spf.example.com",
            ),
            (
                "%{d2}.trusted-domains.example.net",
                "example.com.trusted-domains.example.net",
            ),
        ] {
            assert_eq!(spec(macro_string, &v), expected, "{macro_string}");
        }
        let v6 = values(
            "strong-bad@email.example.com",
            "email.example.com",
            "2001:db8::cb01",
        );
        // The RFC writes the nibbles in lower case and leaves the case open; mailshift writes
        // them in upper case, as the RFC's test suite expects (DNS ignores the difference).
        assert_eq!(
            spec("%{ir}.%{v}._spf.%{d2}", &v6),
            "1.0.B.C.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.B.D.0.1.0.0.2.ip6._spf.example.com"
        );
    }

    #[test]
    fn escapes_and_literals() {
        let v = values("a@b.example", "b.example", "192.0.2.3");
        assert_eq!(spec("x%%y%_z%-w", &v), "x%y z%20w");
        assert_eq!(
            spec("macro%%percent%_%_space%-url-space.example.com", &v),
            "macro%percent  space%20url-space.example.com"
        );
        for (bad, error) in [
            ("foo%.example.com", MacroError::StrayPercent),
            ("%(ir).example.com", MacroError::StrayPercent),
            ("trailing%", MacroError::StrayPercent),
            ("%{i.example.com", MacroError::Unterminated),
            ("%{a}.example.com", MacroError::UnknownLetter('a')),
            ("%{}", MacroError::NoLetter),
            ("%{c}.example.com", MacroError::ExplanationOnly('c')),
            ("%{r}.example.com", MacroError::ExplanationOnly('r')),
            ("%{d0}", MacroError::BadTransformer("0".into())),
            ("%{d2x}", MacroError::BadTransformer("2x".into())),
        ] {
            assert_eq!(
                expand(bad, &v, MacroContext::DomainSpec),
                Err(error),
                "{bad}"
            );
        }
    }

    #[test]
    fn transformers_split_on_any_listed_delimiter() {
        let v = values(
            "philip-gladstone-test@e11.example.com",
            "e11.example.com",
            "1.2.3.4",
        );
        assert_eq!(spec("%{l2r-}", &v), "gladstone.philip");
        let v = values(
            "foo-bar+zip+quux@e12.example.com",
            "e12.example.com",
            "1.2.3.4",
        );
        assert_eq!(spec("%{l2r+-}", &v), "bar.foo");
        assert_eq!(spec("%{l+}", &v), "foo-bar.zip.quux");
        // More parts asked for than there are: all of them.
        assert_eq!(spec("%{d99}", &v), "e12.example.com");
        assert_eq!(spec("%{dR}", &v), "com.example.e12");
    }

    /// Former failure: mail-auth escaped with lower-case hex (`%3d`).
    #[test]
    fn upper_case_macros_are_url_escaped_with_upper_case_hex() {
        let v = values(
            "~jack&jill=up-a_b3.c@e8.example.com",
            "e8.example.com",
            "1.2.3.4",
        );
        assert_eq!(
            expand(
                "http://example.com/why.html?l=%{L}",
                &v,
                MacroContext::Explanation
            )
            .unwrap(),
            "http://example.com/why.html?l=~jack%26jill%3Dup-a_b3.c"
        );
        let v = MacroValues {
            helo: "JUMPIN' JUPITER",
            ..v
        };
        assert_eq!(spec("%{H}", &v), "JUMPIN%27%20JUPITER");
        // Escaping comes after the transformers.
        assert_eq!(spec("%{D2}", &v), "example.com");
        let v = MacroValues {
            sender: "é@e8.example.com",
            ..v
        };
        assert_eq!(spec("%{L}", &v), "%C3%A9");
    }

    /// The suite's `v-macro-ip6`: the `%{i}` nibbles in upper case (RFC 7208 leaves the case
    /// open; the suite expects upper), `%{c}` as RFC 5952 text; reverse-DNS names stay lower.
    #[test]
    fn ipv6_macros() {
        let v = values("test@e4.example.com", "e4.example.com", "cafe:babe::1");
        assert_eq!(
            expand(
                "%{c} is queried as %{ir}.%{v}.arpa",
                &v,
                MacroContext::Explanation
            )
            .unwrap(),
            "cafe:babe::1 is queried as \
             1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.E.B.A.B.E.F.A.C.ip6.arpa"
        );
        assert_eq!(
            reverse_name("2001:db8::1".parse().unwrap()),
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"
        );
        assert_eq!(
            reverse_name("192.0.2.1".parse().unwrap()),
            "1.2.0.192.in-addr.arpa"
        );
    }

    #[test]
    fn explanation_only_letters_and_p() {
        let v = MacroValues {
            validated_domain: Some("mx.example.com"),
            ..values("test@e6.example.com", "e6.example.com", "192.168.218.41")
        };
        assert_eq!(
            expand(
                "connect from %{p} (%{c}) to %{r} at %{t}",
                &v,
                MacroContext::Explanation
            )
            .unwrap(),
            "connect from mx.example.com (192.168.218.41) to receiver.example at 1700000000"
        );
        let v = MacroValues {
            validated_domain: None,
            ..v
        };
        assert_eq!(spec("%{p}", &v), "unknown");
        assert!(needs_validated_domain("exists:%{p}.x"));
        assert!(needs_validated_domain("%{P2}"));
        assert!(!needs_validated_domain("%%{p}"));
        assert!(needs_validated_domain("%%%{p}"));
        assert!(!needs_validated_domain("%{d}.p"));
    }

    /// Former failure: mail-auth did not shorten long expansions, so the `exp=` lookup failed.
    #[test]
    fn long_names_lose_labels_from_the_left() {
        let long = format!(
            "foobar.{}example.com",
            "somewhat.long.exp.example.com.".repeat(8)
        );
        assert_eq!(long.len(), 258);
        let name = query_name(&long).unwrap();
        assert_eq!(name.len(), 251);
        assert!(name.starts_with("somewhat.long"));
        assert_eq!(truncate_left("a.example.com"), "a.example.com");
        let single = "x".repeat(300);
        assert_eq!(truncate_left(&single), single);
        assert_eq!(query_name(&single), None);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]
        /// Records and explanation text are hostile input: any text expands or is refused.
        #[test]
        fn any_text_expands_or_is_refused(
            text in "([%{}a-zA-Z0-9._/=+,-]|%\\{[a-zA-Z][0-9]{0,3}[rR]?[-.+,/_=]{0,3}\\}|.){0,40}",
            local in ".{0,12}",
        ) {
            let sender = format!("{local}@example.com");
            for ip in ["192.0.2.1", "2001:db8::1"] {
                let v = values(&sender, "example.com", ip);
                let expanded = expand(&text, &v, MacroContext::Explanation);
                let _ = expand(&text, &v, MacroContext::DomainSpec);
                let _ = needs_validated_domain(&text);
                if let Ok(name) = expanded {
                    let _ = query_name(&name);
                }
            }
        }
    }

    /// Former failure: targets no DNS question can carry are names that do not exist, not
    /// temporary errors; any other byte is a label byte.
    #[test]
    fn names_that_cannot_be_asked_are_none() {
        let label_of_66 = format!("{}.bar", "%25".repeat(22));
        assert_eq!(query_name(&label_of_66), None);
        assert_eq!(query_name("mail.example...com"), None);
        assert_eq!(query_name(""), None);
        assert_eq!(query_name("."), None);
        assert_eq!(query_name("Example.COM."), Some("example.com".into()));
        assert_eq!(
            query_name("macro%percent  space%20url-space.example.com"),
            Some("macro%percent  space%20url-space.example.com".into())
        );
        assert_eq!(
            query_name("foo:bar/baz.example.com"),
            Some("foo:bar/baz.example.com".into())
        );
        assert_eq!(
            query_name("%5B192.168.218.40%5D"),
            Some("%5b192.168.218.40%5d".into())
        );
    }
}
