//! RFC 7208 `check_host()` for a sending IP, through mail-auth, fed by mailshift's resolver.
//!
//! mail-auth evaluates the policy; every DNS answer it uses comes from mailshift's [`Resolver`]
//! (so `--zone`, `--offline`, the run's cache and its counters apply) through the caches of
//! [`super::cache`], which also explains how the evaluation is repeated until it needs no answer
//! that was not fetched. On top of mail-auth, this module applies the parts of RFC 7208 that
//! mail-auth leaves out: the checks on `<domain>` and `<sender>` of §4.3, the void-lookup limit
//! of §4.6.4, and the `exp=` explanation lookup (§6.2), which mail-auth asks for through the same
//! cache as policies and so needs one more run to be served.

use super::cache::{
    fetch_all, hosts_to_validate, null_authenticator, plain, policy_txt, FallbackServer,
    LookupCache, Miss, MAX_VOID_LOOKUPS,
};
use crate::dns::{Answer, QueryType, Resolver};
use mail_auth::spf::verify::SpfParameters;
use mail_auth::spf::{Macro, Mechanism, Variables};
use mail_auth::{MessageAuthenticator, Parameters, SpfOutput, Txt};
use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;

/// Upper bound on runs of mail-auth's `check_host` per evaluation. A run stops at the first
/// policy or address it does not have; with the MX/PTR follow-ups fetched together, a policy at
/// the RFC's limits (10 DNS-querying terms, an `exp=`) needs about 13 runs.
pub const MAX_ROUNDS: usize = 25;

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

impl From<mail_auth::SpfResult> for SpfResult {
    fn from(result: mail_auth::SpfResult) -> Self {
        match result {
            mail_auth::SpfResult::Pass => SpfResult::Pass,
            mail_auth::SpfResult::Fail => SpfResult::Fail,
            mail_auth::SpfResult::SoftFail => SpfResult::SoftFail,
            mail_auth::SpfResult::Neutral => SpfResult::Neutral,
            mail_auth::SpfResult::None => SpfResult::None,
            mail_auth::SpfResult::TempError => SpfResult::TempError,
            mail_auth::SpfResult::PermError => SpfResult::PermError,
        }
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

/// The verdict, with mail-auth's explanation when the record has `exp=`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpfVerdict {
    pub result: SpfResult,
    pub explanation: Option<String>,
}

/// A verdict with how it was reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpfEvaluation {
    pub verdict: SpfVerdict,
    /// Runs of mail-auth's `check_host` (the last one produced the verdict).
    pub rounds: usize,
    /// Questions asked through mailshift's resolver (answered from its cache or not).
    pub questions: usize,
    /// Void lookups (RFC 7208 §4.6.4) in the deciding run.
    pub void_lookups: usize,
    /// Why the verdict is not mail-auth's own, when it is not (void-lookup limit, §4.3 checks,
    /// an evaluation that could not finish).
    pub note: Option<String>,
}

/// Evaluates `check_host(ip, domain, sender)`.
pub async fn check_host(resolver: &Resolver, query: &SpfQuery) -> SpfVerdict {
    evaluate(resolver, query).await.verdict
}

/// `check_host` with the details of the evaluation.
///
/// The names the policy needs are fetched first (`prefetch`: the record, its includes and
/// redirects, the hosts of `a`, `mx` and `exists`, the `exp=` text, with their macros expanded
/// as mail-auth expands them), and mail-auth runs once on the caches with
/// [`null_authenticator`], which resolves nothing. When that run never needed its resolver
/// ([`LookupCache::declined`] is zero), it is the verdict: no socket, no second run. Otherwise
/// (a name the prefetch did not foresee, a `ptr` mechanism, a void answer only the fallback
/// server can express) the evaluation continues the iterative way of [`super::cache`], with the
/// answers fetched so far.
pub async fn evaluate(resolver: &Resolver, query: &SpfQuery) -> SpfEvaluation {
    let identity = match Identity::new(query) {
        Ok(identity) => identity,
        Err(note) => return early(SpfResult::None, note),
    };
    let cache = LookupCache::new(identity.ip);
    let mut questions = prefetch(resolver, &cache, &identity).await;
    let mut evaluator = match null_authenticator() {
        Ok(null) => Evaluator::Cached(null),
        Err(_) => match Evaluator::with_fallback().await {
            Ok(evaluator) => evaluator,
            Err(note) => return early(SpfResult::TempError, note),
        },
    };
    let mut round = 0;
    while round < MAX_ROUNDS {
        round += 1;
        let output = evaluator.run(&cache, &identity, None).await;
        if evaluator.needs_fallback(&cache) {
            evaluator = match Evaluator::with_fallback().await {
                Ok(evaluator) => evaluator,
                Err(note) => return early(SpfResult::TempError, note),
            };
            continue;
        }
        if cache.has_misses() {
            questions += cache.fetch_misses(resolver).await;
            continue;
        }
        let void_lookups = cache.void_lookups();
        let mut evaluation = SpfEvaluation {
            verdict: SpfVerdict {
                result: output.result().into(),
                explanation: output.explanation().map(str::to_string),
            },
            rounds: round,
            questions,
            void_lookups,
            note: None,
        };
        if void_lookups > MAX_VOID_LOOKUPS {
            // RFC 7208 §4.6.4: more than two void lookups is a permerror. The deciding run made
            // them all before it stopped, so the RFC's evaluation would have stopped at the third
            // one, whatever mail-auth concluded afterwards.
            evaluation.verdict = SpfVerdict {
                result: SpfResult::PermError,
                explanation: None,
            };
            evaluation.note = Some(format!(
                "{void_lookups} void DNS lookups (NXDOMAIN or no records); RFC 7208 §4.6.4 \
                 allows {MAX_VOID_LOOKUPS}"
            ));
        } else if evaluation.verdict.result == SpfResult::Fail
            && evaluation.verdict.explanation.is_none()
            && cache.served_exp()
            && cache.txt_questions() > 0
        {
            // mail-auth looks the `exp=` target up last, through the TXT cache, which served it
            // as a policy. Serve that last TXT question as an explanation and run once more. If
            // it was not the `exp=` lookup (but an include or redirect), mail-auth gets a value of
            // the wrong kind there and does not fail with an explanation: nothing is taken.
            let last = cache.txt_questions() - 1;
            loop {
                let explained = evaluator.run(&cache, &identity, Some(last)).await;
                evaluation.rounds += 1;
                if evaluator.needs_fallback(&cache) && evaluation.rounds < MAX_ROUNDS {
                    match Evaluator::with_fallback().await {
                        Ok(fallback) => evaluator = fallback,
                        Err(_) => break,
                    }
                    continue;
                }
                if cache.has_misses() && evaluation.rounds < MAX_ROUNDS {
                    // `%{p}` in the explanation needs the PTR names and their addresses.
                    evaluation.questions += cache.fetch_misses(resolver).await;
                    continue;
                }
                if !cache.has_misses() && explained.result() == mail_auth::SpfResult::Fail {
                    evaluation.verdict.explanation = explained.explanation().map(str::to_string);
                }
                cache.take_misses();
                break;
            }
        }
        return evaluation;
    }
    SpfEvaluation {
        verdict: SpfVerdict {
            result: SpfResult::TempError,
            explanation: None,
        },
        rounds: MAX_ROUNDS,
        questions,
        void_lookups: 0,
        note: Some(format!(
            "the evaluation still needed new DNS answers after {MAX_ROUNDS} rounds"
        )),
    }
}

/// The mail-auth evaluator of one evaluation.
enum Evaluator {
    /// The shared evaluator that resolves nothing: runs count only when the caches answered
    /// everything.
    Cached(&'static MessageAuthenticator),
    /// An evaluator pointed at a fallback server of this evaluation, which records misses and
    /// answers what the caches cannot express.
    Fallback(Box<(FallbackServer, MessageAuthenticator)>),
}

impl Evaluator {
    async fn with_fallback() -> Result<Evaluator, String> {
        let server = FallbackServer::bind()
            .await
            .map_err(|e| format!("cannot open a loopback socket for the evaluator: {e}"))?;
        let authenticator = server
            .authenticator()
            .map_err(|e| format!("cannot set up the evaluator: {e}"))?;
        Ok(Evaluator::Fallback(Box::new((server, authenticator))))
    }

    /// True when the run just made with the cached evaluator asked its resolver, so it does not
    /// count and the evaluation must go on with a fallback server. Clears what the run recorded.
    fn needs_fallback(&self, cache: &LookupCache) -> bool {
        if matches!(self, Evaluator::Cached(_)) && cache.declined() > 0 {
            cache.take_misses();
            true
        } else {
            false
        }
    }

    /// One run of mail-auth's `check_host` with `cache` as every cache.
    async fn run(
        &self,
        cache: &LookupCache,
        identity: &Identity,
        explain_at: Option<usize>,
    ) -> SpfOutput {
        cache.begin_run(&identity.domain, explain_at);
        let params = Parameters::new(SpfParameters::new(
            identity.ip,
            &identity.domain,
            &identity.helo,
            RECEIVER,
            &identity.sender,
        ))
        .with_txt_cache(cache)
        .with_mx_cache(cache)
        .with_ipv4_cache(cache)
        .with_ipv6_cache(cache)
        .with_ptr_cache(cache);
        match self {
            Evaluator::Cached(authenticator) => authenticator.check_host(params).await,
            Evaluator::Fallback(fallback) => {
                let (server, authenticator) = &**fallback;
                server
                    .serve_during(cache, authenticator.check_host(params))
                    .await
            }
        }
    }
}

/// Upper bound on the names [`prefetch`] fetches for one evaluation (a policy at the RFC's
/// limits needs about 30: 10 DNS-querying terms, 10 MX exchanges, the explanation).
const MAX_PREFETCH: usize = 48;

/// Fetches, through mailshift's resolver, the answers mail-auth's `check_host` will ask for,
/// as far as they can be known without evaluating: the record at `<domain>`, then level by level
/// the targets of `include` and `redirect`, the client-family addresses of `a` and of the
/// exchanges of `mx`, the A records of `exists`, and the `exp=` text. Macros are expanded with
/// mail-auth's own code and the same variables `check_host` sets; names that need `%{p}` (a
/// PTR lookup) are left to the iterative evaluation. Each level's questions are asked
/// concurrently. Names of branches the evaluation does not reach are fetched too (they are
/// never served: the caches answer only what mail-auth asks). Returns how many questions were
/// asked.
async fn prefetch(resolver: &Resolver, cache: &LookupCache, identity: &Identity) -> usize {
    let family = match identity.ip {
        IpAddr::V4(_) => QueryType::A,
        IpAddr::V6(_) => QueryType::Aaaa,
    };
    let mut vars = Variables::new();
    vars.set_ip(&identity.ip);
    vars.set_sender(identity.sender.as_bytes().to_vec());
    vars.set_host_domain(RECEIVER.as_bytes());
    vars.set_helo_domain(identity.helo.as_bytes().to_vec());
    let mut seen: HashSet<Miss> = HashSet::new();
    let mut policies: Vec<String> = vec![identity.domain.clone()];
    let mut asked = 0;
    while !policies.is_empty() && seen.len() < MAX_PREFETCH {
        let level: Vec<Miss> = policies
            .drain(..)
            .map(|name| (QueryType::Txt, plain(&name)))
            .filter(|q| seen.len() < MAX_PREFETCH && seen.insert(q.clone()))
            .collect();
        let answers = fetch(resolver, cache, &level).await;
        asked += level.len();
        let mut hosts: Vec<Miss> = Vec::new();
        for ((_, name), answer) in level.iter().zip(answers) {
            let Txt::Spf(spf) = policy_txt(&answer) else {
                continue;
            };
            vars.set_domain(name.as_bytes().to_vec());
            let expand = |m: &Macro| (!m.needs_ptr()).then(|| plain(&m.eval(&vars, name, true)));
            for directive in spf.directives.iter() {
                match &directive.mechanism {
                    Mechanism::Include { macro_string } => policies.extend(expand(macro_string)),
                    Mechanism::A { macro_string, .. } => {
                        hosts.extend(expand(macro_string).map(|n| (family, n)))
                    }
                    Mechanism::Mx { macro_string, .. } => {
                        hosts.extend(expand(macro_string).map(|n| (QueryType::Mx, n)))
                    }
                    Mechanism::Exists { macro_string } => {
                        hosts.extend(expand(macro_string).map(|n| (QueryType::A, n)))
                    }
                    _ => {}
                }
            }
            policies.extend(spf.redirect.as_ref().and_then(expand));
            hosts.extend(
                spf.exp
                    .as_ref()
                    .and_then(expand)
                    .map(|n| (QueryType::Txt, n)),
            );
        }
        hosts.retain(|q| seen.len() < MAX_PREFETCH && seen.insert(q.clone()));
        let answers = fetch(resolver, cache, &hosts).await;
        asked += hosts.len();
        let exchanges: Vec<Miss> = hosts
            .iter()
            .zip(&answers)
            .filter(|((qtype, _), _)| *qtype == QueryType::Mx)
            .flat_map(|(_, answer)| hosts_to_validate(answer))
            .map(|host| (family, host))
            .filter(|q| seen.len() < MAX_PREFETCH && seen.insert(q.clone()))
            .collect();
        fetch(resolver, cache, &exchanges).await;
        asked += exchanges.len();
    }
    asked
}

/// Asks `questions` concurrently and adds the answers to `cache`.
async fn fetch(resolver: &Resolver, cache: &LookupCache, questions: &[Miss]) -> Vec<Arc<Answer>> {
    let answers = fetch_all(resolver, questions).await;
    for ((qtype, name), answer) in questions.iter().zip(&answers) {
        cache.insert_answer(*qtype, name, answer.clone());
    }
    answers
}

fn early(result: SpfResult, note: String) -> SpfEvaluation {
    SpfEvaluation {
        verdict: SpfVerdict {
            result,
            explanation: None,
        },
        rounds: 0,
        questions: 0,
        void_lookups: 0,
        note: Some(note),
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
helo IN TXT \"v=spf1 ip4:203.0.113.5 -all\"\n";

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

    #[test]
    fn results_map_one_to_one() {
        use mail_auth::SpfResult as M;
        let pairs = [
            (M::Pass, SpfResult::Pass),
            (M::Fail, SpfResult::Fail),
            (M::SoftFail, SpfResult::SoftFail),
            (M::Neutral, SpfResult::Neutral),
            (M::None, SpfResult::None),
            (M::TempError, SpfResult::TempError),
            (M::PermError, SpfResult::PermError),
        ];
        for (theirs, ours) in pairs {
            assert_eq!(SpfResult::from(theirs), ours);
            assert_eq!(M::try_from(ours.to_string().as_str()), Ok(theirs));
        }
    }
}
