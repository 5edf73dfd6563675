//! DMARC policy records (RFC 9989, which obsoletes RFC 7489).
//!
//! RFC 9989 removed `pct`, `rf` and `ri`, added `np`, `psd` and `t`, and says unknown tags are
//! ignored. Tag names are matched case-insensitively, as real records use `P=Reject`, and stray
//! whitespace is accepted where the tag-list grammar allows it.

use super::tags::{split_tags, Tag};
use crate::domain::DomainName;
use mail_auth::common::parse::TxtRecordParser;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    None,
    Quarantine,
    Reject,
}

impl Policy {
    fn parse(value: &str) -> Option<Policy> {
        match value.to_ascii_lowercase().as_str() {
            "none" => Some(Policy::None),
            "quarantine" => Some(Policy::Quarantine),
            "reject" => Some(Policy::Reject),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Policy::None => "none",
            Policy::Quarantine => "quarantine",
            Policy::Reject => "reject",
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `rua`/`ruf` destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportUri {
    pub raw: String,
    /// The mailbox of a `mailto:` URI.
    pub address: String,
    /// The domain reports are sent to.
    pub domain: DomainName,
}

/// A problem with one tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DmarcProblem {
    /// The tag as written (`p=rejct`), or the whole record for record-level problems.
    pub raw: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DmarcRecord {
    pub text: String,
    pub tags: Vec<Tag>,
    /// Problems that make receivers ignore or misread the record (`dmarc.syntax`).
    pub errors: Vec<DmarcProblem>,
    /// Tags that RFC 9989 removed or that are unknown: ignored by receivers.
    pub ignored: Vec<String>,
    pub p: Option<Policy>,
    pub sp: Option<Policy>,
    pub np: Option<Policy>,
    pub adkim_strict: bool,
    pub aspf_strict: bool,
    /// `t=y`: testing mode, receivers apply one step less than the policy (RFC 9989 §4.7).
    pub testing: bool,
    /// `psd=y|n|u`.
    pub psd: Option<char>,
    /// `pct=` (0–100): removed by RFC 9989, still honoured by receivers on RFC 7489.
    pub pct: Option<u8>,
    pub rua: Vec<ReportUri>,
    pub ruf: Vec<ReportUri>,
}

/// True for TXT strings that claim to be DMARC records (`v=DMARC1` first, any case).
/// Exact-case checking is left to [`DmarcRecord::parse`], which reports it.
pub fn is_dmarc_candidate(txt: &str) -> bool {
    let t = txt.trim_start();
    let Some(rest) = t
        .get(..1)
        .filter(|v| v.eq_ignore_ascii_case("v"))
        .map(|_| &t[1..])
    else {
        return false;
    };
    let rest = rest.trim_start();
    let Some(rest) = rest.strip_prefix('=') else {
        return false;
    };
    rest.trim_start()
        .get(..6)
        .is_some_and(|v| v.eq_ignore_ascii_case("dmarc1"))
}

impl DmarcRecord {
    pub fn parse(text: &str) -> DmarcRecord {
        let (tags, tag_errors) = split_tags(text);
        let mut rec = DmarcRecord {
            text: text.to_string(),
            ..Default::default()
        };
        for e in tag_errors {
            rec.errors.push(DmarcProblem {
                raw: e.raw,
                reason: e.reason,
            });
        }
        if text.starts_with(|c: char| c.is_ascii_whitespace()) {
            rec.errors.push(DmarcProblem {
                raw: text.to_string(),
                reason: "the record starts with whitespace; it must begin with `v=DMARC1` \
                         (RFC 9989 §4.8), and receivers discard it (§4.10)"
                    .into(),
            });
        }
        match tags.first() {
            Some(t) if t.name.eq_ignore_ascii_case("v") && t.position == 1 => {
                if t.value != "DMARC1" {
                    rec.errors.push(DmarcProblem {
                        raw: format!("{}={}", t.name, t.value),
                        reason: format!(
                            "the version must be exactly `DMARC1` (found `{}`); receivers ignore \
                             the whole record otherwise",
                            t.value
                        ),
                    });
                }
            }
            _ => rec.errors.push(DmarcProblem {
                raw: text.to_string(),
                reason: "the record must start with `v=DMARC1`".into(),
            }),
        }
        let mut seen: Vec<String> = Vec::new();
        for tag in tags.iter().skip(1) {
            let name = tag.name.to_ascii_lowercase();
            let raw = format!("{}={}", tag.name, tag.value);
            if seen.contains(&name) {
                rec.errors.push(DmarcProblem {
                    raw: raw.clone(),
                    reason: format!("`{name}` appears more than once; receivers may use either"),
                });
                continue;
            }
            seen.push(name.clone());
            let mut bad = |reason: String| {
                rec.errors.push(DmarcProblem {
                    raw: raw.clone(),
                    reason,
                })
            };
            match name.as_str() {
                "v" => bad("`v` must be the first tag and appear once".into()),
                "p" | "sp" | "np" => match Policy::parse(&tag.value) {
                    Some(p) => match name.as_str() {
                        "p" => rec.p = Some(p),
                        "sp" => rec.sp = Some(p),
                        _ => rec.np = Some(p),
                    },
                    None => bad(format!(
                        "`{}` is not a policy: use none, quarantine or reject",
                        tag.value
                    )),
                },
                "adkim" | "aspf" => match tag.value.to_ascii_lowercase().as_str() {
                    "r" => {}
                    "s" => {
                        if name == "adkim" {
                            rec.adkim_strict = true
                        } else {
                            rec.aspf_strict = true
                        }
                    }
                    _ => bad(format!(
                        "`{}` must be `r` (relaxed) or `s` (strict)",
                        tag.value
                    )),
                },
                "t" => match tag.value.to_ascii_lowercase().as_str() {
                    "y" => rec.testing = true,
                    "n" => {}
                    _ => bad("`t` must be `y` or `n`".into()),
                },
                "psd" => match tag.value.to_ascii_lowercase().as_str() {
                    v @ ("y" | "n" | "u") => rec.psd = v.chars().next(),
                    _ => bad("`psd` must be `y`, `n` or `u`".into()),
                },
                "fo" => {
                    let ok = tag.value.split(':').all(|o| {
                        matches!(
                            o.trim().to_ascii_lowercase().as_str(),
                            "0" | "1" | "d" | "s"
                        )
                    });
                    if !ok {
                        bad(format!(
                            "`fo={}` must be a colon-separated list of 0, 1, d, s",
                            tag.value
                        ));
                    }
                }
                "rua" | "ruf" => match parse_uris(&tag.value) {
                    Ok(uris) => {
                        if name == "rua" {
                            rec.rua = uris
                        } else {
                            rec.ruf = uris
                        }
                    }
                    Err(reason) => bad(reason),
                },
                "pct" => match tag.value.parse::<u8>() {
                    Ok(n) if n <= 100 => {
                        rec.pct = Some(n);
                        if n == 100 {
                            rec.ignored.push(format!(
                                "`{raw}` was removed in RFC 9989; at 100 it changes nothing anywhere"
                            ));
                        }
                    }
                    _ => rec.ignored.push(format!(
                        "`{raw}` is not a percentage, and pct was removed in RFC 9989: ignored"
                    )),
                },
                "rf" | "ri" => rec
                    .ignored
                    .push(format!("`{raw}` was removed in RFC 9989 and is ignored")),
                _ => rec
                    .ignored
                    .push(format!("`{raw}` is not a DMARC tag; receivers ignore it")),
            }
        }
        // Receivers running mail-auth must accept what we accept.
        if rec.errors.is_empty() && mail_auth::dmarc::Dmarc::parse(text.as_bytes()).is_err() {
            rec.errors.push(DmarcProblem {
                raw: text.to_string(),
                reason: "receivers' DMARC parsers (mail-auth) reject this record".into(),
            });
        }
        rec
    }

    /// The record with tag `name` set to `value` (replacing it where it is, else added after
    /// `p=`), or removed when `value` is `None`: the exact record to publish for a fix. Other
    /// tags are kept as written.
    pub fn with_tag(&self, name: &str, value: Option<&str>) -> String {
        let (tags, _) = split_tags(&self.text);
        let mut parts: Vec<String> = Vec::new();
        let mut done = false;
        for t in &tags {
            if t.name.eq_ignore_ascii_case(name) {
                if let (Some(v), false) = (value, done) {
                    parts.push(format!("{name}={v}"));
                }
                done = true;
                continue;
            }
            parts.push(format!("{}={}", t.name, t.value));
            if !done && t.name.eq_ignore_ascii_case("p") {
                if let Some(v) = value {
                    if !tags.iter().any(|o| o.name.eq_ignore_ascii_case(name)) {
                        parts.push(format!("{name}={v}"));
                        done = true;
                    }
                }
            }
        }
        if let (Some(v), false) = (value, done) {
            parts.push(format!("{name}={v}"));
        }
        parts.join("; ")
    }

    /// The policy for the domain itself (`p`), for existing subdomains (`sp`, defaulting to `p`)
    /// and for non-existent subdomains (`np`, defaulting to `sp`).
    pub fn effective(&self) -> (Policy, Policy, Policy) {
        let p = self.p.unwrap_or(Policy::None);
        let sp = self.sp.unwrap_or(p);
        let np = self.np.unwrap_or(sp);
        (p, sp, np)
    }
}

fn parse_uris(value: &str) -> Result<Vec<ReportUri>, String> {
    let mut out = Vec::new();
    for raw in value.split(',') {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err("an empty address in the list (doubled or trailing comma)".into());
        }
        let Some(rest) = raw
            .get(..7)
            .filter(|s| s.eq_ignore_ascii_case("mailto:"))
            .map(|_| &raw[7..])
        else {
            return Err(format!(
                "`{raw}` is not a `mailto:` URI; reports are only sent by email \
                 (write `mailto:dmarc@example.com`)"
            ));
        };
        // `!size` is obsolete in RFC 9989 but legal; drop it.
        let address = rest.split('!').next().unwrap_or_default();
        let address = percent_decode(address);
        let Some((local, domain)) = address.rsplit_once('@') else {
            return Err(format!("`{raw}` has no `@`: it needs a full email address"));
        };
        if local.is_empty() {
            return Err(format!("`{raw}` has an empty mailbox before the `@`"));
        }
        let domain = DomainName::parse(domain)
            .map_err(|e| format!("`{raw}`: the report domain is invalid ({})", e.reason))?;
        out.push(ReportUri {
            raw: raw.to_string(),
            address: address.to_string(),
            domain,
        });
    }
    Ok(out)
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
            if let Ok(v) = u8::from_str_radix(hex, 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod with_tag_tests {
    use super::*;

    #[test]
    fn a_tag_is_replaced_in_place_added_after_p_or_removed() {
        let r = DmarcRecord::parse("v=DMARC1; p=reject; sp=none; rua=mailto:d@example.co.uk");
        assert_eq!(
            r.with_tag("sp", Some("reject")),
            "v=DMARC1; p=reject; sp=reject; rua=mailto:d@example.co.uk"
        );
        assert_eq!(
            r.with_tag("sp", None),
            "v=DMARC1; p=reject; rua=mailto:d@example.co.uk"
        );
        assert_eq!(
            r.with_tag("np", Some("reject")),
            "v=DMARC1; p=reject; np=reject; sp=none; rua=mailto:d@example.co.uk"
        );
        let r = DmarcRecord::parse("v=DMARC1; p=quarantine; pct=25");
        assert_eq!(r.pct, Some(25));
        assert!(r.ignored.is_empty(), "{:?}", r.ignored);
        assert_eq!(r.with_tag("pct", None), "v=DMARC1; p=quarantine");
        assert_eq!(
            DmarcRecord::parse("v=DMARC1").with_tag("rua", Some("mailto:x@example.de")),
            "v=DMARC1; rua=mailto:x@example.de"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rfc9989_record() {
        let r = DmarcRecord::parse(
            "v=DMARC1; p=reject; sp=quarantine; np=reject; adkim=s; t=y; psd=n; \
             rua=mailto:dmarc@example.com,mailto:agg@reports.example.net!10m; fo=1:d",
        );
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        assert_eq!(
            r.effective(),
            (Policy::Reject, Policy::Quarantine, Policy::Reject)
        );
        assert!(r.adkim_strict && !r.aspf_strict && r.testing);
        assert_eq!(r.rua.len(), 2);
        assert_eq!(r.rua[1].domain.as_str(), "reports.example.net");
    }

    #[test]
    fn accepts_uppercase_tags_and_whitespace() {
        let r = DmarcRecord::parse("v=DMARC1 ; P = Reject ; RUA = mailto:d@example.com");
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        assert_eq!(r.p, Some(Policy::Reject));
        assert_eq!(r.rua.len(), 1);
    }

    #[test]
    fn removed_and_unknown_tags_are_ignored_not_errors() {
        let r = DmarcRecord::parse("v=DMARC1; p=none; pct=50; ri=3600; foo=bar");
        assert!(r.errors.is_empty());
        // pct is kept apart: receivers on RFC 7489 still honour it (`dmarc.pct-partial`).
        assert_eq!(r.ignored.len(), 2);
        assert_eq!(r.pct, Some(50));
    }

    #[test]
    fn explains_errors() {
        let cases = [
            ("v=DMARC1; p=rejct", "not a policy"),
            ("v=dmarc1; p=reject", "exactly `DMARC1`"),
            ("p=reject; v=DMARC1", "must start with"),
            ("v=DMARC1; p=none; rua=dmarc@example.com", "not a `mailto:`"),
            ("v=DMARC1; p=none; rua=mailto:example.com", "no `@`"),
            ("v=DMARC1; p=none; adkim=x", "relaxed"),
            ("v=DMARC1; p=none; p=reject", "more than once"),
        ];
        for (text, expect) in cases {
            let r = DmarcRecord::parse(text);
            assert!(
                r.errors.iter().any(|e| e.reason.contains(expect)),
                "{text}: {:?}",
                r.errors
            );
        }
    }

    #[test]
    fn leading_whitespace_is_an_error() {
        let r = DmarcRecord::parse(" v=DMARC1; p=reject");
        assert!(r
            .errors
            .iter()
            .any(|e| e.reason.contains("starts with whitespace")));
    }

    #[test]
    fn missing_p_means_none() {
        let r = DmarcRecord::parse("v=DMARC1; rua=mailto:d@example.com");
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        assert_eq!(r.effective().0, Policy::None);
    }

    #[test]
    fn candidates() {
        assert!(is_dmarc_candidate("v=DMARC1; p=none"));
        assert!(is_dmarc_candidate("v = dmarc1"));
        assert!(!is_dmarc_candidate("v=spf1 -all"));
    }
}
