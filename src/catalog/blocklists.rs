//! The DNS blocklists sending IPs and domains are looked up in (`checks/blocklists.toml`).
//!
//! A list is a DNS zone: an IP is asked as its reversed octets (or nibbles, RFC 5782 §2.4)
//! under the zone, a domain as itself under the zone, and an A answer in 127.0.0.0/8 says
//! why it is listed. What each answer means differs between lists, so every list carries its
//! table of codes, the codes that report an error about the *query* (Spamhaus's "public
//! resolver" answer is one: never a listing), and the two RFC 5782 test entries that show the
//! list is answering this resolver at all. The user's `DIR/blocklists.toml` (`--checks-dir`)
//! adds lists, or replaces or disables (`enabled = false`) the embedded ones by id.

use crate::domain::DomainName;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

pub(super) const EMBEDDED: &str = include_str!("../../checks/blocklists.toml");

/// What a list holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Listing {
    /// Sending IPs (`4.3.2.1.zen.spamhaus.org`).
    Ip,
    /// Domains (`example.com.dbl.spamhaus.org`).
    Domain,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BlocklistFile {
    #[serde(default, rename = "list")]
    pub lists: Vec<RawBlocklist>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBlocklist {
    id: String,
    name: Option<String>,
    zone: Option<String>,
    lists: Option<Listing>,
    #[serde(default)]
    ipv6: bool,
    lookup: Option<String>,
    listed_probe: Option<String>,
    clean_probe: Option<String>,
    error_range: Option<String>,
    #[serde(default)]
    codes: BTreeMap<String, String>,
    #[serde(default)]
    errors: BTreeMap<String, String>,
    #[serde(default = "yes")]
    enabled: bool,
}

fn yes() -> bool {
    true
}

/// One blocklist, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocklist {
    pub id: String,
    pub name: String,
    pub zone: DomainName,
    pub lists: Listing,
    /// It answers for IPv6 addresses (nibble format); IPv4-only lists are not asked about them.
    pub ipv6: bool,
    /// Where a listing is looked up and delisting requested.
    pub lookup: Option<String>,
    /// An entry the list must hold (RFC 5782 §5: `127.0.0.2`, or `test` for domain lists).
    pub listed_probe: Option<String>,
    /// An entry the list must not hold (`127.0.0.1`, or `invalid`).
    pub clean_probe: Option<String>,
    /// Answers that report a problem with the query, not a listing.
    pub errors: BTreeMap<Ipv4Addr, String>,
    /// A range of such answers (Spamhaus reserves 127.255.255.0/24).
    pub error_range: Option<(Ipv4Addr, u8)>,
    /// What each listing answer means.
    pub codes: BTreeMap<Ipv4Addr, String>,
}

/// What one A answer from a list means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Code {
    /// Listed, and why.
    Listed(String),
    /// Listed with a code the table does not know (still a listing: RFC 5782 §2.3).
    Unknown,
    /// The list reports a problem with the query itself: this says nothing about the entry.
    Error(String),
    /// Outside 127.0.0.0/8: not a list's answer at all (a resolver that rewrites NXDOMAIN
    /// into an advertising page answers like this).
    NotAList,
}

impl Blocklist {
    /// Interprets one address a list answered.
    pub fn code(&self, answer: Ipv4Addr) -> Code {
        if let Some(why) = self.errors.get(&answer) {
            return Code::Error(why.clone());
        }
        if let Some((net, bits)) = self.error_range {
            if in_range(answer, net, bits) {
                return Code::Error(
                    "an error code the list reserves for problems with the query".into(),
                );
            }
        }
        if answer.octets()[0] != 127 {
            return Code::NotAList;
        }
        match self.codes.get(&answer) {
            Some(why) => Code::Listed(why.clone()),
            None => Code::Unknown,
        }
    }

    /// The name asked for an IP (`2.0.0.127.zen.spamhaus.org`), or `None` when this list does
    /// not hold that kind of address.
    pub fn ip_query(&self, ip: IpAddr) -> Option<DomainName> {
        if self.lists != Listing::Ip {
            return None;
        }
        let reversed = match ip {
            IpAddr::V4(v4) => {
                let [a, b, c, d] = v4.octets();
                format!("{d}.{c}.{b}.{a}")
            }
            IpAddr::V6(v6) if self.ipv6 => {
                let mut nibbles = Vec::with_capacity(32);
                for byte in v6.octets().iter().rev() {
                    nibbles.push(format!("{:x}", byte & 0x0f));
                    nibbles.push(format!("{:x}", byte >> 4));
                }
                nibbles.join(".")
            }
            IpAddr::V6(_) => return None,
        };
        Some(DomainName::from_ascii_unchecked(format!(
            "{reversed}.{}",
            self.zone
        )))
    }

    /// The name asked for a domain (`example.com.dbl.spamhaus.org`).
    pub fn domain_query(&self, domain: &DomainName) -> Option<DomainName> {
        (self.lists == Listing::Domain)
            .then(|| DomainName::from_ascii_unchecked(format!("{}.{}", domain.as_str(), self.zone)))
    }

    /// The names of the two RFC 5782 test entries: (must be listed, must not be).
    pub fn probes(&self) -> (Option<DomainName>, Option<DomainName>) {
        let name = |probe: &Option<String>| {
            probe.as_deref().and_then(|p| match self.lists {
                Listing::Ip => p.parse::<IpAddr>().ok().and_then(|ip| self.ip_query(ip)),
                Listing::Domain => DomainName::parse(p)
                    .ok()
                    .and_then(|d| self.domain_query(&d))
                    // `invalid` and `test` are single labels, which DomainName refuses.
                    .or_else(|| {
                        Some(DomainName::from_ascii_unchecked(format!(
                            "{}.{}",
                            p.to_ascii_lowercase(),
                            self.zone
                        )))
                    }),
            })
        };
        (name(&self.listed_probe), name(&self.clean_probe))
    }
}

/// True for an address a public list could hold: not private, shared (CGN), loopback,
/// link-local, unspecified or multicast. A list asked about 10.0.0.1 answers nothing useful,
/// and the question tells the list about the user's network.
pub fn listable(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || (a == 100 && (64..128).contains(&b)))
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || first & 0xfe00 == 0xfc00
                || first & 0xffc0 == 0xfe80)
        }
    }
}

fn in_range(ip: Ipv4Addr, net: Ipv4Addr, bits: u8) -> bool {
    let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
    u32::from(ip) & mask == u32::from(net) & mask
}

impl RawBlocklist {
    pub(super) fn id(&self) -> &str {
        &self.id
    }

    pub(super) fn enabled(&self) -> bool {
        self.enabled
    }

    /// Validates the list, naming the first field that is wrong.
    pub(super) fn validate(self) -> Result<Blocklist, String> {
        let at = |field: &str| format!("list `{}`: {field}", self.id);
        if self.id.is_empty()
            || !self
                .id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(format!(
                "list id `{}`: use lower-case letters, digits and `-`",
                self.id
            ));
        }
        let zone = self
            .zone
            .as_deref()
            .ok_or_else(|| at("`zone` is missing"))
            .and_then(|z| DomainName::parse(z).map_err(|e| at(&format!("zone `{z}`: {e}"))))?;
        let lists = self
            .lists
            .ok_or_else(|| at("`lists` is missing (\"ip\" or \"domain\")"))?;
        let address = |field: &str, text: &str| -> Result<Ipv4Addr, String> {
            text.parse::<Ipv4Addr>()
                .map_err(|_| at(&format!("{field} `{text}` is not an IPv4 address")))
        };
        let mut codes = BTreeMap::new();
        for (text, why) in &self.codes {
            let ip = address("code", text)?;
            if ip.octets()[0] != 127 {
                return Err(at(&format!(
                    "code `{text}` is outside 127.0.0.0/8, where lists answer (RFC 5782 §2.1)"
                )));
            }
            codes.insert(ip, why.clone());
        }
        if codes.is_empty() {
            return Err(at(
                "`[list.codes]` is empty: say what a listing answer means",
            ));
        }
        let mut errors = BTreeMap::new();
        for (text, why) in &self.errors {
            errors.insert(address("error code", text)?, why.clone());
        }
        let error_range = match &self.error_range {
            None => None,
            Some(text) => {
                let bad = || {
                    at(&format!(
                        "error_range `{text}`: write it as 127.255.255.0/24"
                    ))
                };
                let (net, bits) = text.split_once('/').ok_or_else(bad)?;
                let net = net.parse::<Ipv4Addr>().map_err(|_| bad())?;
                let bits = bits
                    .parse::<u8>()
                    .ok()
                    .filter(|b| *b <= 32)
                    .ok_or_else(bad)?;
                Some((net, bits))
            }
        };
        for (field, probe) in [
            ("listed_probe", &self.listed_probe),
            ("clean_probe", &self.clean_probe),
        ] {
            if let (Some(p), Listing::Ip) = (probe, lists) {
                p.parse::<IpAddr>()
                    .map_err(|_| at(&format!("{field} `{p}` is not an IP address")))?;
            }
        }
        Ok(Blocklist {
            name: self.name.clone().unwrap_or_else(|| zone.to_string()),
            id: self.id,
            zone,
            lists,
            ipv6: self.ipv6,
            lookup: self.lookup,
            listed_probe: self.listed_probe,
            clean_probe: self.clean_probe,
            errors,
            error_range,
            codes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn embedded() -> Vec<Blocklist> {
        let file: BlocklistFile = toml::from_str(EMBEDDED).unwrap();
        file.lists
            .into_iter()
            .map(|l| l.validate().unwrap())
            .collect()
    }

    fn list(id: &str) -> Blocklist {
        embedded().into_iter().find(|l| l.id == id).unwrap()
    }

    #[test]
    fn embedded_lists_are_valid_and_cover_the_usual_four() {
        let ids: Vec<String> = embedded().into_iter().map(|l| l.id).collect();
        assert_eq!(
            ids,
            ["spamhaus-zen", "spamhaus-dbl", "barracuda", "spamcop"]
        );
    }

    #[test]
    fn spamhaus_error_answers_are_never_listings() {
        let zen = list("spamhaus-zen");
        for code in ["127.255.255.254", "127.255.255.255", "127.255.255.252"] {
            assert!(
                matches!(zen.code(code.parse().unwrap()), Code::Error(_)),
                "{code}"
            );
        }
        // Anything else in the reserved range is an error too, not an unknown listing.
        assert!(matches!(
            zen.code("127.255.255.1".parse().unwrap()),
            Code::Error(_)
        ));
        assert!(matches!(
            list("spamhaus-dbl").code("127.0.1.255".parse().unwrap()),
            Code::Error(_)
        ));
        assert_eq!(
            zen.code("127.0.0.4".parse().unwrap()),
            Code::Listed("XBL: an infected or exploited host".into())
        );
        assert_eq!(zen.code("127.0.0.77".parse().unwrap()), Code::Unknown);
        assert_eq!(zen.code("198.51.100.7".parse().unwrap()), Code::NotAList);
        // SpamCop reserves no range: 127.255.255.254 is an unknown listing code there.
        assert_eq!(
            list("spamcop").code("127.255.255.254".parse().unwrap()),
            Code::Unknown
        );
    }

    #[test]
    fn query_names_follow_rfc_5782() {
        let zen = list("spamhaus-zen");
        assert_eq!(
            zen.ip_query("192.0.2.99".parse().unwrap())
                .unwrap()
                .as_str(),
            "99.2.0.192.zen.spamhaus.org"
        );
        assert_eq!(
            zen.ip_query("2001:db8::1".parse().unwrap())
                .unwrap()
                .as_str(),
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.zen.spamhaus.org"
        );
        assert_eq!(
            list("spamcop").ip_query("2001:db8::1".parse().unwrap()),
            None
        );
        let dbl = list("spamhaus-dbl");
        assert_eq!(dbl.ip_query("192.0.2.1".parse().unwrap()), None);
        assert_eq!(
            dbl.domain_query(&DomainName::parse("nordlys-kaffe.no").unwrap())
                .unwrap()
                .as_str(),
            "nordlys-kaffe.no.dbl.spamhaus.org"
        );
        let (listed, clean) = dbl.probes();
        assert_eq!(listed.unwrap().as_str(), "dbltest.com.dbl.spamhaus.org");
        assert_eq!(clean.unwrap().as_str(), "invalid.dbl.spamhaus.org");
        let (listed, clean) = zen.probes();
        assert_eq!(listed.unwrap().as_str(), "2.0.0.127.zen.spamhaus.org");
        assert_eq!(clean.unwrap().as_str(), "1.0.0.127.zen.spamhaus.org");
    }

    #[test]
    fn private_addresses_are_not_asked_about() {
        for ip in [
            "10.1.2.3",
            "192.168.0.1",
            "100.64.0.1",
            "127.0.0.2",
            "fd00::1",
            "fe80::1",
        ] {
            assert!(!listable(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["192.0.2.10", "149.72.1.1", "2a00:1450::1", "100.128.0.1"] {
            assert!(listable(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn bad_lists_name_the_field() {
        let parse = |text: &str| -> String {
            let file: BlocklistFile = toml::from_str(text).unwrap();
            file.lists
                .into_iter()
                .next()
                .unwrap()
                .validate()
                .unwrap_err()
        };
        assert!(
            parse("[[list]]\nid = \"x\"\nlists = \"ip\"\n[list.codes]\n\"127.0.0.2\" = \"a\"")
                .contains("`zone` is missing")
        );
        assert!(parse(
            "[[list]]\nid = \"x\"\nzone = \"bl.example\"\nlists = \"ip\"\n[list.codes]\n\"10.0.0.2\" = \"a\""
        )
        .contains("outside 127.0.0.0/8"));
        assert!(
            parse("[[list]]\nid = \"x\"\nzone = \"bl.example\"\nlists = \"ip\"").contains("empty")
        );
        assert!(parse(
            "[[list]]\nid = \"x\"\nzone = \"bl.example\"\nlists = \"ip\"\nerror_range = \"127.0.0.0\"\n[list.codes]\n\"127.0.0.2\" = \"a\""
        )
        .contains("error_range"));
        assert!(
            parse("[[list]]\nid = \"Bad Id\"\nzone = \"bl.example\"\nlists = \"ip\"")
                .contains("lower-case")
        );
    }
}
