//! What a lookup returns: the records, or exactly why there are none.
//!
//! Email-authentication verdicts hinge on the difference between "this name does not exist"
//! (NXDOMAIN), "it exists but has no record of this type" (NODATA) and "the question could not be
//! answered" (timeout, SERVFAIL). Checkers that fold these together report healthy domains as
//! broken when a server hiccups. [`Outcome`] keeps them apart; analysers must match on it.

use crate::domain::DomainName;
use serde::Serialize;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::sync::Arc;

/// The record types mailshift asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum QueryType {
    A,
    #[serde(rename = "AAAA")]
    Aaaa,
    #[serde(rename = "TXT")]
    Txt,
    #[serde(rename = "MX")]
    Mx,
    #[serde(rename = "CNAME")]
    Cname,
    #[serde(rename = "PTR")]
    Ptr,
    #[serde(rename = "NS")]
    Ns,
    #[serde(rename = "SOA")]
    Soa,
}

impl QueryType {
    pub fn as_str(self) -> &'static str {
        match self {
            QueryType::A => "A",
            QueryType::Aaaa => "AAAA",
            QueryType::Txt => "TXT",
            QueryType::Mx => "MX",
            QueryType::Cname => "CNAME",
            QueryType::Ptr => "PTR",
            QueryType::Ns => "NS",
            QueryType::Soa => "SOA",
        }
    }
}

impl fmt::Display for QueryType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The data of one resource record, in the form analysers need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordData {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    /// The character-strings of one TXT record, kept separate: one record split into several
    /// strings is still one record, and the strings are joined with no separator (RFC 7208 §3.3).
    Txt(Vec<Vec<u8>>),
    Mx {
        preference: u16,
        /// The exchange host, lower case, without the trailing dot; `""` for the root (null MX).
        exchange: String,
    },
    Cname(String),
    Ptr(String),
    Ns(String),
    Soa {
        mname: String,
        rname: String,
        serial: u32,
    },
}

impl Record {
    /// About how many bytes the record holds in memory.
    pub fn weight(&self) -> usize {
        32 + match &self.data {
            RecordData::A(_) | RecordData::Aaaa(_) => 16,
            RecordData::Txt(parts) => parts.iter().map(|p| p.len() + 24).sum(),
            RecordData::Mx { exchange, .. } => exchange.len() + 8,
            RecordData::Cname(t) | RecordData::Ptr(t) | RecordData::Ns(t) => t.len(),
            RecordData::Soa { mname, rname, .. } => mname.len() + rname.len() + 8,
        }
    }
}

impl RecordData {
    /// For TXT records: the character-strings joined, as RFC 7208 §3.3 and RFC 9989 require.
    pub fn txt_joined(&self) -> Option<String> {
        match self {
            RecordData::Txt(parts) => {
                let bytes: Vec<u8> = parts.iter().flatten().copied().collect();
                Some(String::from_utf8_lossy(&bytes).into_owned())
            }
            _ => None,
        }
    }

    /// Zone-file presentation of the data (what a user would publish).
    pub fn presentation(&self) -> String {
        match self {
            RecordData::A(ip) => ip.to_string(),
            RecordData::Aaaa(ip) => ip.to_string(),
            RecordData::Txt(parts) => parts
                .iter()
                .map(|p| quote_character_string(p))
                .collect::<Vec<_>>()
                .join(" "),
            RecordData::Mx {
                preference,
                exchange,
            } => format!("{preference} {exchange}."),
            RecordData::Cname(t) | RecordData::Ptr(t) | RecordData::Ns(t) => format!("{t}."),
            RecordData::Soa {
                mname,
                rname,
                serial,
            } => format!("{mname}. {rname}. {serial}"),
        }
    }
}

/// Quotes one character-string for a zone file or evidence line, escaping `"`, `\` and
/// non-printable bytes as `\DDD`.
pub fn quote_character_string(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    for &b in bytes {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\{b:03}")),
        }
    }
    out.push('"');
    out
}

/// One record with its TTL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub ttl: u32,
    pub data: RecordData,
}

/// Why a question got no usable answer. All of these make a check *inconclusive*: they say
/// nothing about the records the user published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookupError {
    /// No answer within the timeout, after retries.
    Timeout,
    /// The server answered SERVFAIL.
    ServFail,
    /// The server refused to answer (not authoritative, or access control).
    Refused,
    /// Any other failure (network unreachable, malformed answer, other rcode).
    Network(String),
    /// `--offline` is set and the name is outside the `--zone` files.
    Offline,
}

impl fmt::Display for LookupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LookupError::Timeout => f.write_str("timed out"),
            LookupError::ServFail => f.write_str("the server answered SERVFAIL"),
            LookupError::Refused => f.write_str("the server refused the query (REFUSED)"),
            LookupError::Network(e) => write!(f, "lookup failed: {e}"),
            LookupError::Offline => {
                f.write_str("not in the --zone files, and --offline forbids the network")
            }
        }
    }
}

/// The result of one question after following CNAMEs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// At least one record of the asked type (shared with the run's cache, so cheap to clone).
    Records(Arc<[Record]>),
    /// The name exists but has no record of this type (NOERROR, empty answer).
    NoData,
    /// The name does not exist.
    NxDomain,
    /// The CNAME chain loops or is longer than resolvers follow. This is a fault in the
    /// published records, not a transient error: every resolver will fail on it.
    CnameLoop,
    /// The question could not be answered.
    Failed(LookupError),
}

/// Where an answer came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Network,
    Zone(PathBuf),
}

/// A question, its outcome, and the CNAMEs followed to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub name: DomainName,
    pub qtype: QueryType,
    pub outcome: Outcome,
    /// CNAME targets followed from `name`, in order; empty when `name` holds the data itself.
    pub cname_chain: Vec<DomainName>,
    /// The name answered a CNAME *and* other data (broken DNS: which wins depends on the resolver).
    pub cname_conflict: bool,
    pub source: Source,
}

impl Answer {
    pub fn records(&self) -> &[Record] {
        match &self.outcome {
            Outcome::Records(r) => r,
            _ => &[],
        }
    }

    /// True when the lookup could not be answered (the check that needed it is inconclusive).
    pub fn failed(&self) -> Option<&LookupError> {
        match &self.outcome {
            Outcome::Failed(e) => Some(e),
            _ => None,
        }
    }

    /// NXDOMAIN or NODATA: the void lookup of RFC 7208 §4.6.4.
    pub fn is_void(&self) -> bool {
        matches!(self.outcome, Outcome::NoData | Outcome::NxDomain)
    }

    /// The TXT records, each with its strings joined.
    pub fn txt_strings(&self) -> Vec<String> {
        self.records()
            .iter()
            .filter_map(|r| r.data.txt_joined())
            .collect()
    }

    /// A one-line description for evidence: `TXT example.com → "v=spf1 …"`.
    pub fn describe(&self) -> String {
        let mut s = format!("{} {}", self.qtype, self.name);
        for hop in &self.cname_chain {
            s.push_str(&format!(" → CNAME {hop}"));
        }
        match &self.outcome {
            Outcome::Records(records) => {
                let shown: Vec<String> = records.iter().map(|r| r.data.presentation()).collect();
                s.push_str(" → ");
                s.push_str(&shown.join(" | "));
            }
            Outcome::NoData => s.push_str(" → no record (NODATA)"),
            Outcome::NxDomain => s.push_str(" → name does not exist (NXDOMAIN)"),
            Outcome::CnameLoop => s.push_str(" → CNAME chain loops"),
            Outcome::Failed(e) => s.push_str(&format!(" → {e}")),
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn txt_strings_join_without_separator() {
        let data = RecordData::Txt(vec![b"v=spf1 ip4:192.0.2.1 ".to_vec(), b"-all".to_vec()]);
        assert_eq!(data.txt_joined().unwrap(), "v=spf1 ip4:192.0.2.1 -all");
        assert_eq!(data.presentation(), r#""v=spf1 ip4:192.0.2.1 " "-all""#);
    }

    #[test]
    fn quoting_escapes_hostile_bytes() {
        assert_eq!(quote_character_string(b"a\"b\\c\x07"), r#""a\"b\\c\007""#);
    }
}
