//! RFC 7208 `check_host()` for a sending IP, evaluated by mailshift itself.
//!
//! The records are parsed by `records::spf` (the parser `checks` reports with) and every DNS
//! answer comes from mailshift's [`Resolver`], so `--zone`, `--offline`, the run's cache and its
//! counters apply. This module owns the public interface and the initial processing of §4.3
//! (which `<domain>` and `<sender>` are checked); the `check_host` submodule walks the records
//! and [`macros`] expands RFC 7208 §7 macros.

mod check_host;
pub mod macros;

pub use check_host::{MAX_DNS_TERMS, MAX_NAMES_PER_MECHANISM, MAX_VOID_LOOKUPS};

use crate::dns::Resolver;
use check_host::{Client, Stop, Walk};
use std::net::IpAddr;

/// `%{r}` (RFC 7208 §7.3): the receiving host; "unknown" when there is none, as here.
const RECEIVER: &str = "unknown";

/// The SPF results of RFC 7208 §2.6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SpfResult {
    Pass,
    Fail,
    SoftFail,
    Neutral,
    None,
    TempError,
    PermError,
}

impl SpfResult {
    /// The result's name as RFC 7208 §2.6 spells it (`softfail`, `temperror`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            SpfResult::Pass => "pass",
            SpfResult::Fail => "fail",
            SpfResult::SoftFail => "softfail",
            SpfResult::Neutral => "neutral",
            SpfResult::None => "none",
            SpfResult::TempError => "temperror",
            SpfResult::PermError => "permerror",
        }
    }
}

impl std::fmt::Display for SpfResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One evaluation: the connecting IP, the HELO name, and the MAIL FROM (or, when empty, the
/// HELO identity is checked, as RFC 7208 §2.3 says).
#[derive(Debug, Clone)]
pub struct SpfQuery {
    pub ip: IpAddr,
    /// The domain whose record is evaluated (MAIL FROM's domain, or the HELO name).
    pub domain: String,
    /// The full MAIL FROM address (`bounce@em123.example.com`); `postmaster@<domain>` when `None`.
    pub sender: Option<String>,
    pub helo: Option<String>,
}

impl SpfQuery {
    /// The MAIL FROM identity (RFC 7208 §2.4): `<domain>` is the part after the last `@`
    /// (angle brackets are optional). An empty MAIL FROM (a bounce, `<>`) checks the HELO
    /// identity instead, as §2.4 says.
    pub fn mail_from(ip: IpAddr, mail_from: &str, helo: &str) -> SpfQuery {
        let mail_from = mail_from.trim();
        let mail_from = mail_from
            .strip_prefix('<')
            .and_then(|m| m.strip_suffix('>'))
            .unwrap_or(mail_from);
        if mail_from.is_empty() {
            return SpfQuery::helo(ip, helo);
        }
        let domain = mail_from
            .rsplit_once('@')
            .map_or(mail_from, |(_, domain)| domain);
        SpfQuery {
            ip,
            domain: domain.to_string(),
            sender: Some(mail_from.to_string()),
            helo: Some(helo.to_string()),
        }
    }

    /// The HELO identity (RFC 7208 §2.3): `<domain>` is the HELO name, `<sender>` is
    /// `postmaster@<helo>`.
    pub fn helo(ip: IpAddr, helo: &str) -> SpfQuery {
        SpfQuery {
            ip,
            domain: helo.to_string(),
            sender: None,
            helo: Some(helo.to_string()),
        }
    }
}

/// The verdict, with the domain's explanation when the record has `exp=`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpfVerdict {
    pub result: SpfResult,
    pub explanation: Option<String>,
}

/// A verdict with how it was reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpfEvaluation {
    pub verdict: SpfVerdict,
    /// DNS-querying terms evaluated (include, a, mx, ptr, exists, redirect; RFC 7208 §4.6.4
    /// allows 10).
    pub dns_terms: usize,
    /// Distinct questions asked through mailshift's resolver (answered from its cache or not).
    pub questions: usize,
    /// Void lookups (RFC 7208 §4.6.4).
    pub void_lookups: usize,
    /// What caused a temperror or permerror, or why the identity was not checked ("none").
    pub note: Option<String>,
}

/// Evaluates `check_host(ip, domain, sender)`.
pub async fn check_host(resolver: &Resolver, query: &SpfQuery) -> SpfVerdict {
    evaluate(resolver, query).await.verdict
}

/// `check_host` with the details of the evaluation.
pub async fn evaluate(resolver: &Resolver, query: &SpfQuery) -> SpfEvaluation {
    let identity = match Identity::new(query) {
        Ok(identity) => identity,
        Err(note) => {
            return SpfEvaluation {
                verdict: SpfVerdict {
                    result: SpfResult::None,
                    explanation: None,
                },
                dns_terms: 0,
                questions: 0,
                void_lookups: 0,
                note: Some(note),
            }
        }
    };
    let mut walk = Walk::new(
        resolver,
        Client {
            ip: identity.ip,
            sender: &identity.sender,
            helo: &identity.helo,
            receiver: RECEIVER,
        },
    );
    let outcome = walk.check_host(identity.domain.clone(), true).await;
    let (verdict, note) = match outcome {
        Ok(reached) => (
            SpfVerdict {
                result: reached.result,
                explanation: reached.explanation,
            },
            None,
        ),
        Err(Stop::TempError(note)) => (
            SpfVerdict {
                result: SpfResult::TempError,
                explanation: None,
            },
            Some(note),
        ),
        Err(Stop::PermError(note)) => (
            SpfVerdict {
                result: SpfResult::PermError,
                explanation: None,
            },
            Some(note),
        ),
    };
    SpfEvaluation {
        verdict,
        dns_terms: walk.dns_terms,
        questions: walk.questions(),
        void_lookups: walk.void_lookups,
        note,
    }
}

/// The arguments of `check_host()` after RFC 7208 §4.3's initial processing.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Identity {
    ip: IpAddr,
    domain: String,
    sender: String,
    helo: String,
}

impl Identity {
    /// `Err` with the reason when §4.3 says the result is "none" without any lookup.
    fn new(query: &SpfQuery) -> Result<Identity, String> {
        // An IPv4-mapped IPv6 address is the IPv4 client it stands for.
        let ip = match query.ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(query.ip, IpAddr::V4),
            v4 => v4,
        };
        let domain = query.domain.trim();
        let domain = domain
            .strip_suffix('.')
            .unwrap_or(domain)
            .to_ascii_lowercase();
        if let Err(reason) = check_domain(&domain) {
            return Err(format!(
                "`{}` is not a domain SPF can check: {reason}",
                query.domain
            ));
        }
        // §4.3: a <sender> without a local-part gets "postmaster".
        let sender = match query.sender.as_deref().map(str::trim) {
            None | Some("") => format!("postmaster@{domain}"),
            Some(sender) => match sender.rsplit_once('@') {
                Some(("", at)) => format!("postmaster@{at}"),
                Some(_) => sender.to_string(),
                None => format!("{sender}@{domain}"),
            },
        };
        let helo = query
            .helo
            .as_deref()
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .unwrap_or(&domain)
            .to_string();
        Ok(Identity {
            ip,
            domain,
            sender,
            helo,
        })
    }
}

/// RFC 7208 §4.3: "If the <domain> is malformed (e.g., label longer than 63 characters,
/// zero-length label not at the end, etc.) or is not a multi-label domain name, [...]
/// check_host() immediately returns the result "none"". Names are LDH labels (underscores
/// allowed, as in `_spf`); a domain literal such as `[192.0.2.1]` is not a domain.
fn check_domain(domain: &str) -> Result<(), &'static str> {
    if domain.is_empty() {
        return Err("empty");
    }
    if domain.len() > 253 {
        return Err("longer than 253 characters");
    }
    let mut labels = 0;
    for label in domain.split('.') {
        labels += 1;
        if label.is_empty() {
            return Err("an empty label");
        }
        if label.len() > 63 {
            return Err("a label longer than 63 characters");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err("characters other than letters, digits, '-' and '_'");
        }
    }
    if labels < 2 {
        return Err("not a multi-label domain name");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn initial_processing_follows_rfc_7208_4_3() {
        let q = SpfQuery::mail_from(ip("192.0.2.1"), "@Example.NET.", "mx.example.net");
        let id = Identity::new(&q).unwrap();
        assert_eq!(id.domain, "example.net");
        assert_eq!(id.sender, "postmaster@Example.NET.");
        let q = SpfQuery::mail_from(ip("192.0.2.1"), "<>", "mail.example.net");
        let id = Identity::new(&q).unwrap();
        assert_eq!(
            (id.domain.as_str(), id.sender.as_str()),
            ("mail.example.net", "postmaster@mail.example.net")
        );
        for bad in [
            "[192.0.2.1]",
            "A2345678",
            "a..example.com",
            &format!("{}.example.com", "a".repeat(64)),
        ] {
            let q = SpfQuery::helo(ip("192.0.2.1"), bad);
            assert!(Identity::new(&q).is_err(), "{bad}");
        }
        assert!(Identity::new(&SpfQuery::helo(
            ip("192.0.2.1"),
            &format!("{}.example.com", "a".repeat(63))
        ))
        .is_ok());
        let mapped = SpfQuery::helo(ip("::ffff:192.0.2.1"), "example.com");
        assert_eq!(Identity::new(&mapped).unwrap().ip, ip("192.0.2.1"));
    }

    const ZONE: &str = "$ORIGIN example.test.\n$TTL 300\n\
@ IN SOA ns hostmaster 1 3600 600 86400 300\n\
@ IN TXT \"v=spf1 a:mail.%{d} exists:%{i}.bl.%{d} ip4:198.51.100.0/24 include:offsite.test \" \"-all exp=why.example.test\"\n\
mail IN A 192.0.2.10\n\
192.0.2.1.bl IN A 127.0.0.2\n\
why IN TXT \"%{i} may not send for %{d}\"\n\
two IN TXT \"v=spf1 +all\"\n\
two IN TXT \"v=spf1 -all\"\n\
voids IN TXT \"v=spf1 a:n1.example.test a:n2.example.test mx:n3.example.test +all\"\n\
two-voids IN TXT \"v=spf1 a:n1.example.test a:n2.example.test +all\"\n\
helo IN TXT \"v=spf1 ip4:203.0.113.5 -all\"\n\
loop IN TXT \"v=spf1 include:loop.example.test -all\"\n\
broken IN TXT \"v=spf1 ip4:192.0.2.1 -all moo\"\n\
outer IN TXT \"v=spf1 include:inner.example.test -all exp=why.example.test\"\n\
inner IN TXT \"v=spf1 -all exp=nope.example.test\"\n\
nope IN TXT \"never shown: an include's fail is only a non-match\"\n";

    async fn verdict(ip_text: &str, mail_from: &str, helo: &str) -> SpfEvaluation {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("example.test.zone"), ZONE).unwrap();
        let resolver = Resolver::new(&crate::dns::DnsConfig {
            zones: vec![dir.path().to_path_buf()],
            offline: true,
            ..crate::dns::DnsConfig::default()
        })
        .unwrap();
        evaluate(
            &resolver,
            &SpfQuery::mail_from(ip(ip_text), mail_from, helo),
        )
        .await
    }

    #[tokio::test]
    async fn evaluates_through_the_zone_overlay() {
        let pass = |r: &SpfEvaluation| r.verdict.result;
        // `a:mail` matches.
        let r = verdict("192.0.2.10", "bounce@example.test", "mx.example.test").await;
        assert_eq!(pass(&r), SpfResult::Pass, "{r:?}");
        // `exists:%{i}.bl` matches (A records only), after `a:mail` did not.
        let r = verdict("192.0.2.1", "bounce@example.test", "mx.example.test").await;
        assert_eq!(pass(&r), SpfResult::Pass, "{r:?}");
        // Nothing before the include matches, and the include is outside the zones with
        // --offline: temperror, not a guess.
        let r = verdict("192.0.2.99", "bounce@example.test", "mx.example.test").await;
        assert_eq!(pass(&r), SpfResult::TempError, "{r:?}");
        // Two SPF records: permerror (RFC 7208 §4.5), whichever would match.
        let r = verdict("192.0.2.99", "x@two.example.test", "mx.example.test").await;
        assert_eq!(pass(&r), SpfResult::PermError, "{r:?}");
        // Three void lookups: permerror although `+all` follows (RFC 7208 §4.6.4); two are fine.
        let r = verdict("192.0.2.99", "x@voids.example.test", "mx.example.test").await;
        assert_eq!(
            (pass(&r), r.void_lookups),
            (SpfResult::PermError, 3),
            "{r:?}"
        );
        let r = verdict("192.0.2.99", "x@two-voids.example.test", "mx.example.test").await;
        assert_eq!(pass(&r), SpfResult::Pass, "{r:?}");
        // An empty MAIL FROM checks the HELO identity.
        let r = verdict("203.0.113.5", "", "helo.example.test").await;
        assert_eq!(pass(&r), SpfResult::Pass, "{r:?}");
        let r = verdict("203.0.113.6", "", "helo.example.test").await;
        assert_eq!(pass(&r), SpfResult::Fail, "{r:?}");
        // No record: none.
        let r = verdict("203.0.113.6", "x@mail.example.test", "helo.example.test").await;
        assert_eq!(pass(&r), SpfResult::None, "{r:?}");
    }

    #[tokio::test]
    async fn errors_say_what_caused_them_and_only_the_outer_record_explains() {
        let r = verdict("192.0.2.99", "x@loop.example.test", "mx.example.test").await;
        assert_eq!(
            (r.verdict.result, r.dns_terms),
            (SpfResult::PermError, MAX_DNS_TERMS + 1),
            "{r:?}"
        );
        assert!(r
            .note
            .as_deref()
            .unwrap_or("")
            .contains("more than 10 DNS-querying terms"));
        let r = verdict("192.0.2.1", "x@broken.example.test", "mx.example.test").await;
        assert_eq!(r.verdict.result, SpfResult::PermError, "{r:?}");
        assert!(r.note.as_deref().unwrap_or("").contains("`moo`"), "{r:?}");
        let r = verdict("192.0.2.99", "x@outer.example.test", "mx.example.test").await;
        assert_eq!(
            r.verdict,
            SpfVerdict {
                result: SpfResult::Fail,
                explanation: Some("192.0.2.99 may not send for outer.example.test".into()),
            }
        );
        assert_eq!(r.note, None);
    }

    #[tokio::test]
    async fn fail_carries_the_explanation() {
        let dir = tempfile::tempdir().unwrap();
        let zone = ZONE.replace(" include:offsite.test", "");
        std::fs::write(dir.path().join("example.test.zone"), zone).unwrap();
        let resolver = Resolver::new(&crate::dns::DnsConfig {
            zones: vec![dir.path().to_path_buf()],
            offline: true,
            ..crate::dns::DnsConfig::default()
        })
        .unwrap();
        let query = SpfQuery::mail_from(ip("192.0.2.99"), "bounce@example.test", "mx.example.test");
        // The evaluation can be spawned onto a multi-threaded runtime.
        fn assert_send<T: Send>(future: T) -> T {
            future
        }
        let verdict = assert_send(check_host(&resolver, &query)).await;
        assert_eq!(
            verdict,
            SpfVerdict {
                result: SpfResult::Fail,
                explanation: Some("192.0.2.99 may not send for example.test".into()),
            }
        );
        // Answers come from the run's cache: a second evaluation asks the zones nothing new.
        let before = resolver.stats();
        check_host(&resolver, &query).await;
        assert_eq!(resolver.stats().zone_answers, before.zone_answers);
    }
}
