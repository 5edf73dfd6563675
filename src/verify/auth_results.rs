//! Reading the Authentication-Results fields receivers added (RFC 8601), to show what each
//! receiver concluded beside mailshift's own verdict.
//!
//! The parser is tolerant, as receivers' fields vary: comments are dropped, the field is split
//! on `;` outside quoted strings, the first part is the authserv-id (an optional version
//! follows it), every other part is `method[/version]=result` followed by `reason=` and
//! `ptype.property=value` pairs. Anything that does not fit is skipped, never an error.

use super::headers::{strip_comments, unfold};
use serde::Serialize;
use std::collections::BTreeMap;

/// One Authentication-Results field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReceiverResults {
    /// The receiver that wrote it (authserv-id).
    pub authserv_id: String,
    pub results: Vec<ReceiverMethod>,
}

/// One method's result in an Authentication-Results field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReceiverMethod {
    /// `spf`, `dkim`, `dmarc`, `arc`, `iprev`, `auth`, … (lower case).
    pub method: String,
    /// `pass`, `fail`, `softfail`, `none`, … (lower case).
    pub result: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `ptype.property` → value (`smtp.mailfrom`, `header.d`, `header.from`, `policy.dmarc`…).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, String>,
}

impl ReceiverResults {
    /// Parses one field value (folded or not).
    pub fn parse(value: &[u8]) -> Option<ReceiverResults> {
        let text = strip_comments(&unfold(value));
        let mut parts = split_outside_quotes(&text, ';').into_iter();
        let authserv_id = parts.next()?.split_whitespace().next()?.to_string();
        let mut results = Vec::new();
        for part in parts {
            let tokens = tokens(&part);
            let Some((head, rest)) = tokens.split_first() else {
                continue;
            };
            let Some((method, result)) = head.split_once('=') else {
                continue;
            };
            let method = method
                .split('/')
                .next()
                .unwrap_or(method)
                .trim()
                .to_ascii_lowercase();
            if method.is_empty() || method == "none" {
                continue;
            }
            let mut entry = ReceiverMethod {
                method,
                result: result.trim().to_ascii_lowercase(),
                reason: None,
                properties: BTreeMap::new(),
            };
            for token in rest {
                let Some((key, val)) = token.split_once('=') else {
                    continue;
                };
                let val = val.trim().trim_matches('"').to_string();
                let key = key.trim().to_ascii_lowercase();
                if key == "reason" {
                    entry.reason = Some(val);
                } else if key.contains('.') {
                    entry.properties.insert(key, val);
                }
            }
            results.push(entry);
        }
        Some(ReceiverResults {
            authserv_id,
            results,
        })
    }

    /// `mx.google.com: dkim=pass (example.com) spf=pass dmarc=pass`.
    pub fn summary(&self) -> String {
        let mut out = format!("{}:", self.authserv_id);
        if self.results.is_empty() {
            out.push_str(" none");
        }
        for r in &self.results {
            out.push_str(&format!(" {}={}", r.method, r.result));
            if r.method == "dkim" {
                if let Some(d) = r
                    .properties
                    .get("header.d")
                    .or_else(|| r.properties.get("header.i"))
                {
                    out.push_str(&format!(" ({})", d.trim_start_matches('@')));
                }
            }
        }
        out
    }

    /// The result this receiver gave for `method` (the first, for DKIM: the best of its
    /// signatures: any pass).
    pub fn result_of(&self, method: &str) -> Option<&str> {
        let mut found = self.results.iter().filter(|r| r.method == method);
        let first = found.next()?;
        if first.result == "pass" {
            return Some("pass");
        }
        Some(
            found
                .find(|r| r.result == "pass")
                .map_or(first.result.as_str(), |r| r.result.as_str()),
        )
    }
}

/// Splits `text` on `sep` outside double-quoted strings.
fn split_outside_quotes(text: &str, sep: char) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut escaped = false;
    for c in text.chars() {
        if escaped {
            escaped = false;
            current.push(c);
            continue;
        }
        match c {
            '\\' if quoted => {
                escaped = true;
                current.push(c);
            }
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            c if c == sep && !quoted => parts.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    parts.push(current);
    parts
}

/// Whitespace-separated tokens, quoted strings kept whole, `a = b` joined to `a=b`.
fn tokens(text: &str) -> Vec<String> {
    let mut raw: Vec<String> = Vec::new();
    for piece in split_outside_quotes(text, ' ') {
        for p in piece.split(['\t', '\r', '\n']) {
            if !p.is_empty() {
                raw.push(p.to_string());
            }
        }
    }
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < raw.len() {
        let mut token = raw[i].clone();
        while (token.ends_with('=') || raw.get(i + 1).is_some_and(|n| n.starts_with('=')))
            && i + 1 < raw.len()
        {
            i += 1;
            token.push_str(&raw[i]);
        }
        out.push(token);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gmail_style_field() {
        let r = ReceiverResults::parse(
            b" mx.google.com;\r\n       dkim=pass header.i=@example.com header.s=s1 header.b=AbCd;\r\n       spf=pass (google.com: domain of bounce@example.com designates 203.0.113.5 as permitted sender) smtp.mailfrom=bounce@example.com;\r\n       dmarc=pass (p=REJECT sp=REJECT dis=NONE) header.from=example.com\r\n",
        )
        .unwrap();
        assert_eq!(r.authserv_id, "mx.google.com");
        assert_eq!(
            r.results
                .iter()
                .map(|m| (m.method.as_str(), m.result.as_str()))
                .collect::<Vec<_>>(),
            [("dkim", "pass"), ("spf", "pass"), ("dmarc", "pass")]
        );
        assert_eq!(
            r.results[1].properties["smtp.mailfrom"],
            "bounce@example.com"
        );
        assert_eq!(
            r.summary(),
            "mx.google.com: dkim=pass (example.com) spf=pass dmarc=pass"
        );
        assert_eq!(r.result_of("dmarc"), Some("pass"));
        assert_eq!(r.result_of("arc"), None);
    }

    #[test]
    fn versions_reasons_none_and_junk() {
        let r = ReceiverResults::parse(
            b" example.net 1; spf/1 = fail reason=\"not; permitted\" smtp.mailfrom=x@example.com; dkim=fail header.d=a.example; dkim=pass header.d=b.example",
        )
        .unwrap();
        assert_eq!(r.authserv_id, "example.net");
        assert_eq!(r.results[0].method, "spf");
        assert_eq!(r.results[0].result, "fail");
        assert_eq!(r.results[0].reason.as_deref(), Some("not; permitted"));
        assert_eq!(r.result_of("dkim"), Some("pass"));
        let none = ReceiverResults::parse(b" mail.example.org; none\r\n").unwrap();
        assert!(none.results.is_empty());
        assert_eq!(none.summary(), "mail.example.org: none");
        assert!(ReceiverResults::parse(b"").is_none());
        assert!(ReceiverResults::parse(b" x;;;= =;").is_none_or(|r| r.results.is_empty()));
    }
}
