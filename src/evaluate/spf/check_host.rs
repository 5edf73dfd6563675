//! The `check_host()` walk of RFC 7208 §4–§6 over mailshift's parsed records and resolver.
//!
//! One [`Walk`] per evaluation. It owns what spans the whole evaluation: the limits of §4.6.4
//! (10 DNS-querying terms across every `include` and `redirect`, 2 void lookups), the answers
//! asked so far (each question is asked once per evaluation, through mailshift's [`Resolver`],
//! so `--zone`, `--offline`, the run's cache and its counters apply), and the client's validated
//! names, which the `ptr` mechanism and the `%{p}` macro share. Records are parsed by
//! `records::spf`, the parser `checks` reports with, so a record mailshift calls broken is never
//! evaluated as if it were fine.

use super::macros::{self, MacroContext, MacroValues};
use super::SpfResult;
use crate::dns::{Answer, Outcome, QueryType, RecordData, Resolver};
use crate::domain::DomainName;
use crate::records::spf::{parse_shared, DomainSpec, Mechanism, Qualifier, SpfRecord, TermKind};
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

/// RFC 7208 §4.6.4: at most 10 terms that query DNS (include, a, mx, ptr, exists, redirect).
pub const MAX_DNS_TERMS: usize = 10;

/// RFC 7208 §4.6.4: more than two void lookups make `check_host()` return permerror.
pub const MAX_VOID_LOOKUPS: usize = 2;

/// RFC 7208 §4.6.4: at most 10 MX exchanges or PTR names are looked up per mechanism.
pub const MAX_NAMES_PER_MECHANISM: usize = 10;

/// How an evaluation stopped before reaching a result: RFC 7208's two error results, each with
/// what caused it (shown to the user beside the verdict).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    TempError(String),
    PermError(String),
}

/// A result reached by evaluating a record (or by finding none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reached {
    pub result: SpfResult,
    /// The `exp=` text, for a `fail` whose record has one and when it could be fetched.
    pub explanation: Option<String>,
}

impl Reached {
    fn plain(result: SpfResult) -> Reached {
        Reached {
            result,
            explanation: None,
        }
    }
}

/// The client's names from its PTR records, for `ptr` and `%{p}` (RFC 7208 §5.5).
#[derive(Debug, Clone, Default)]
struct ClientNames {
    /// The PTR lookup was void (NXDOMAIN or no records).
    void: bool,
    /// The names (of the first 10) whose addresses include the client, in PTR order.
    validated: Vec<String>,
}

/// The arguments of `check_host()` that stay the same through `include` and `redirect`.
#[derive(Debug, Clone)]
pub struct Client<'a> {
    pub ip: IpAddr,
    pub sender: &'a str,
    pub helo: &'a str,
    pub receiver: &'a str,
}

/// One evaluation of `check_host()` and everything it nests.
pub struct Walk<'a> {
    resolver: &'a Resolver,
    client: Client<'a>,
    timestamp: u64,
    /// DNS-querying terms evaluated so far.
    pub dns_terms: usize,
    /// Void lookups so far.
    pub void_lookups: usize,
    answers: HashMap<(QueryType, String), Arc<Answer>>,
    client_names: Option<Arc<ClientNames>>,
}

impl<'a> Walk<'a> {
    pub fn new(resolver: &'a Resolver, client: Client<'a>) -> Walk<'a> {
        let timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Walk {
            resolver,
            client,
            timestamp,
            dns_terms: 0,
            void_lookups: 0,
            answers: HashMap::new(),
            client_names: None,
        }
    }

    /// Distinct questions asked through the resolver (answered from its cache or not).
    pub fn questions(&self) -> usize {
        self.answers.len()
    }

    /// `check_host(<ip>, domain, <sender>)`. `domain` is a name [`macros::query_name`] accepted.
    /// With `explain`, a `fail` carries the record's `exp=` text (not inside an `include`,
    /// whose fail is only a non-match, §5.2).
    pub fn check_host(
        &mut self,
        domain: String,
        explain: bool,
    ) -> BoxFuture<'_, Result<Reached, Stop>> {
        Box::pin(async move {
            let Some(record) = self.policy(&domain).await? else {
                return Ok(Reached::plain(SpfResult::None));
            };
            let mut prefetched = false;
            for (index, (_, qualifier, mechanism)) in record.directives().enumerate() {
                if mechanism.queries_dns() && !prefetched {
                    prefetched = true;
                    self.prefetch(&record, index, &domain).await;
                }
                if !self.matches(mechanism, &domain).await? {
                    continue;
                }
                let result = qualifier_result(qualifier);
                let explanation = match exp_of(&record) {
                    Some(spec) if explain && result == SpfResult::Fail => {
                        self.explanation(spec, &domain).await
                    }
                    _ => None,
                };
                return Ok(Reached {
                    result,
                    explanation,
                });
            }
            let Some((_, spec)) = record.redirect() else {
                return Ok(Reached::plain(SpfResult::Neutral));
            };
            self.count_term("redirect=")?;
            let Some(target) = self.target_name(Some(spec), &domain).await? else {
                return Err(Stop::PermError(format!(
                    "redirect={spec} in the record at {domain} does not expand to a domain name"
                )));
            };
            let reached = self.check_host(target.clone(), explain).await?;
            if reached.result == SpfResult::None {
                return Err(Stop::PermError(format!(
                    "redirect={target} (from {domain}): no SPF record there (RFC 7208 §6.1)"
                )));
            }
            Ok(reached)
        })
    }

    /// The SPF record at `domain` (RFC 7208 §4.4–§4.6), `None` when there is none.
    async fn policy(&mut self, domain: &str) -> Result<Option<Arc<SpfRecord>>, Stop> {
        // §4.3: a malformed or single-label <domain> has no record ("none").
        if !domain.contains('.') || macros::query_name(domain).is_none() {
            return Ok(None);
        }
        let answer = self.lookup(domain, QueryType::Txt).await;
        let records = match &answer.outcome {
            Outcome::Records(records) => records,
            Outcome::NxDomain | Outcome::NoData => return Ok(None),
            Outcome::CnameLoop => {
                return Err(Stop::TempError(format!(
                    "TXT {domain}: the CNAME chain loops"
                )))
            }
            Outcome::Failed(e) => return Err(Stop::TempError(format!("TXT {domain}: {e}"))),
        };
        let spf: Vec<Vec<u8>> = records
            .iter()
            .filter_map(|r| match &r.data {
                RecordData::Txt(strings) => Some(strings.concat()),
                _ => None,
            })
            .filter(|text| is_spf_record(text))
            .collect();
        let text = match spf.as_slice() {
            [] => return Ok(None),
            [only] => only,
            several => {
                return Err(Stop::PermError(format!(
                    "{} SPF records at {domain}; RFC 7208 §4.5 allows one",
                    several.len()
                )))
            }
        };
        // §3.1: the record is 7-bit ASCII.
        let Some(text) = text.is_ascii().then(|| String::from_utf8_lossy(text)) else {
            return Err(Stop::PermError(format!(
                "the SPF record at {domain} contains non-ASCII bytes (RFC 7208 §3.1)"
            )));
        };
        let record = parse_shared(&text);
        if !record.follows_rfc7208 {
            // §4.6: a syntax error anywhere in the record is a permerror.
            let detail = record
                .errors
                .first()
                .map_or_else(String::new, |e| format!(": `{}`: {}", e.raw, e.reason));
            return Err(Stop::PermError(format!(
                "the SPF record at {domain} has a syntax error{detail}"
            )));
        }
        Ok(Some(record))
    }

    /// Whether `mechanism` of the record at `domain` matches the client (RFC 7208 §5).
    async fn matches(&mut self, mechanism: &Mechanism, domain: &str) -> Result<bool, Stop> {
        if mechanism.queries_dns() {
            self.count_term(mechanism.name())?;
        }
        match mechanism {
            Mechanism::All => Ok(true),
            Mechanism::Ip4 { addr, prefix } => {
                Ok(matches!(self.client.ip, IpAddr::V4(ip) if within_v4(ip, *addr, *prefix)))
            }
            Mechanism::Ip6 { addr, prefix } => {
                Ok(matches!(self.client.ip, IpAddr::V6(ip) if within_v6(ip, *addr, *prefix)))
            }
            Mechanism::A {
                domain: spec,
                cidr4,
                cidr6,
            } => {
                let Some(name) = self.target_name(spec.as_ref(), domain).await? else {
                    return Ok(false);
                };
                let answer = self.lookup(&name, self.address_type()).await;
                fail_on_error(&answer, "a")?;
                self.count_void(&answer)?;
                Ok(has_address_within(&answer, self.client.ip, *cidr4, *cidr6))
            }
            Mechanism::Mx {
                domain: spec,
                cidr4,
                cidr6,
            } => {
                let Some(name) = self.target_name(spec.as_ref(), domain).await? else {
                    return Ok(false);
                };
                let answer = self.lookup(&name, QueryType::Mx).await;
                fail_on_error(&answer, "mx")?;
                self.count_void(&answer)?;
                let (records, exchanges) = mx_exchanges(&answer);
                if records > MAX_NAMES_PER_MECHANISM {
                    return Err(Stop::PermError(format!(
                        "mx:{name} has {records} MX records; RFC 7208 §4.6.4 allows \
                         {MAX_NAMES_PER_MECHANISM}"
                    )));
                }
                let addresses = self.lookup_all(&exchanges, self.address_type()).await;
                if addresses
                    .iter()
                    .any(|a| has_address_within(a, self.client.ip, *cidr4, *cidr6))
                {
                    return Ok(true);
                }
                // No host matched; one that could not be looked up might have.
                for answer in &addresses {
                    fail_on_error(answer, "mx")?;
                }
                Ok(false)
            }
            Mechanism::Ptr(spec) => {
                let Some(target) = self.target_name(spec.as_ref(), domain).await? else {
                    return Ok(false);
                };
                let names = self.client_names().await;
                if names.void {
                    self.note_void()?;
                }
                Ok(names.validated.iter().any(|n| is_within(n, &target)))
            }
            Mechanism::Exists(spec) => {
                let Some(name) = self.target_name(Some(spec), domain).await? else {
                    return Ok(false);
                };
                // §5.7: A records, whatever the client's address family.
                let answer = self.lookup(&name, QueryType::A).await;
                fail_on_error(&answer, "exists")?;
                self.count_void(&answer)?;
                Ok(!answer.records().is_empty())
            }
            Mechanism::Include(spec) => {
                let Some(target) = self.target_name(Some(spec), domain).await? else {
                    return Err(Stop::PermError(format!(
                        "include:{spec} in the record at {domain} does not expand to a domain name"
                    )));
                };
                let reached = self.check_host(target.clone(), false).await?;
                match reached.result {
                    SpfResult::Pass => Ok(true),
                    SpfResult::Fail | SpfResult::SoftFail | SpfResult::Neutral => Ok(false),
                    // §5.2: an include without a record is a permerror (the error results
                    // arrive as `Err`).
                    _ => Err(Stop::PermError(format!(
                        "include:{target} (from {domain}): no SPF record there (RFC 7208 §5.2)"
                    ))),
                }
            }
        }
    }

    /// Counts one DNS-querying term against the limit of RFC 7208 §4.6.4.
    fn count_term(&mut self, term: &str) -> Result<(), Stop> {
        self.dns_terms += 1;
        if self.dns_terms > MAX_DNS_TERMS {
            return Err(Stop::PermError(format!(
                "more than {MAX_DNS_TERMS} DNS-querying terms (include, a, mx, ptr, exists, \
                 redirect) by the {term} term; RFC 7208 §4.6.4 allows {MAX_DNS_TERMS}"
            )));
        }
        Ok(())
    }

    fn count_void(&mut self, answer: &Answer) -> Result<(), Stop> {
        if answer.is_void() {
            self.note_void()?;
        }
        Ok(())
    }

    fn note_void(&mut self) -> Result<(), Stop> {
        self.void_lookups += 1;
        if self.void_lookups > MAX_VOID_LOOKUPS {
            return Err(Stop::PermError(format!(
                "{} void DNS lookups (NXDOMAIN or no records); RFC 7208 §4.6.4 allows \
                 {MAX_VOID_LOOKUPS}",
                self.void_lookups
            )));
        }
        Ok(())
    }

    fn address_type(&self) -> QueryType {
        match self.client.ip {
            IpAddr::V4(_) => QueryType::A,
            IpAddr::V6(_) => QueryType::Aaaa,
        }
    }

    /// The name a term's domain-spec designates: `<domain>` when it has none, the expansion
    /// otherwise; `None` when no DNS question can be composed from it (§4.8: no match).
    async fn target_name(
        &mut self,
        spec: Option<&DomainSpec>,
        domain: &str,
    ) -> Result<Option<String>, Stop> {
        match spec {
            None => Ok(Some(domain.to_string())),
            Some(DomainSpec::Literal(name)) => Ok(macros::query_name(name)),
            Some(DomainSpec::Macro(text)) => {
                let expanded = self
                    .expand(text, domain, MacroContext::DomainSpec)
                    .await
                    .map_err(|e| Stop::PermError(format!("`{text}`: {e}")))?;
                Ok(macros::query_name(&expanded))
            }
        }
    }

    async fn expand(
        &mut self,
        text: &str,
        domain: &str,
        context: MacroContext,
    ) -> Result<String, macros::MacroError> {
        let names = if macros::needs_validated_domain(text) {
            Some(self.client_names().await)
        } else {
            None
        };
        let values = MacroValues {
            sender: self.client.sender,
            domain,
            ip: self.client.ip,
            helo: self.client.helo,
            validated_domain: names
                .as_deref()
                .and_then(|n| validated_domain_for(&n.validated, domain)),
            receiver: self.client.receiver,
            timestamp: self.timestamp,
        };
        macros::expand(text, &values, context)
    }

    /// The `exp=` text (RFC 7208 §6.2). Any problem — the target, a DNS error, no record or
    /// several, bytes outside printable ASCII, a macro error — means no explanation. The
    /// lookup is neither a DNS-querying term nor a void lookup.
    async fn explanation(&mut self, spec: &DomainSpec, domain: &str) -> Option<String> {
        let name = self.target_name(Some(spec), domain).await.ok()??;
        let answer = self.lookup(&name, QueryType::Txt).await;
        let [record] = answer.records() else {
            return None;
        };
        let RecordData::Txt(strings) = &record.data else {
            return None;
        };
        let text = strings.concat();
        if !text.iter().all(|b| (0x20..=0x7e).contains(b)) {
            return None;
        }
        let text = String::from_utf8_lossy(&text);
        self.expand(&text, domain, MacroContext::Explanation)
            .await
            .ok()
    }

    /// The client's validated names, looked up once per evaluation (RFC 7208 §5.5): the PTR
    /// names of its address (the first 10), each kept when one of its addresses is the client.
    /// A DNS error on the PTR lookup leaves no names; one on a name's addresses drops that name.
    async fn client_names(&mut self) -> Arc<ClientNames> {
        if let Some(names) = &self.client_names {
            return names.clone();
        }
        let answer = self
            .lookup(&macros::reverse_name(self.client.ip), QueryType::Ptr)
            .await;
        let mut candidates: Vec<String> = Vec::new();
        for record in answer.records() {
            if let RecordData::Ptr(name) = &record.data {
                if let Some(name) = macros::query_name(name) {
                    if !candidates.contains(&name) {
                        candidates.push(name);
                    }
                }
            }
            if candidates.len() == MAX_NAMES_PER_MECHANISM {
                break;
            }
        }
        let addresses = self.lookup_all(&candidates, self.address_type()).await;
        let validated = candidates
            .into_iter()
            .zip(&addresses)
            .filter(|(_, a)| has_address_within(a, self.client.ip, None, None))
            .map(|(name, _)| name)
            .collect();
        let names = Arc::new(ClientNames {
            void: answer.is_void(),
            validated,
        });
        self.client_names = Some(names.clone());
        names
    }

    /// Asks the questions the directives from `from` on will ask, concurrently, so a record's
    /// includes and hosts cost one round trip rather than one each. Only names without macros,
    /// and no more terms than the limit leaves; a branch the evaluation then does not take was
    /// fetched for nothing, which is the price of not waiting for each answer in turn.
    async fn prefetch(&mut self, record: &SpfRecord, from: usize, domain: &str) {
        let mut budget = MAX_DNS_TERMS.saturating_sub(self.dns_terms);
        let address_type = self.address_type();
        let mut questions: Vec<(QueryType, String)> = Vec::new();
        let mut ask = |qtype: QueryType, spec: Option<&DomainSpec>| {
            let name = match spec {
                None => Some(domain.to_string()),
                Some(DomainSpec::Literal(name)) => macros::query_name(name),
                Some(DomainSpec::Macro(_)) => None,
            };
            if let Some(name) = name {
                questions.push((qtype, name));
            }
        };
        for (_, _, mechanism) in record.directives().skip(from) {
            if !mechanism.queries_dns() {
                continue;
            }
            if budget == 0 {
                break;
            }
            budget -= 1;
            match mechanism {
                Mechanism::Include(spec) => ask(QueryType::Txt, Some(spec)),
                Mechanism::A { domain: spec, .. } => ask(address_type, spec.as_ref()),
                Mechanism::Mx { domain: spec, .. } => ask(QueryType::Mx, spec.as_ref()),
                Mechanism::Exists(spec) => ask(QueryType::A, Some(spec)),
                _ => {}
            }
        }
        if let (Some((_, spec)), true) = (record.redirect(), budget > 0) {
            ask(QueryType::Txt, Some(spec));
        }
        questions.retain(|q| !self.answers.contains_key(q));
        questions.sort();
        questions.dedup();
        if questions.len() < 2 {
            // Nothing to overlap: the evaluation asks it when (and if) it gets there.
            return;
        }
        let answers = futures::future::join_all(
            questions
                .iter()
                .map(|(qtype, name)| ask_resolver(self.resolver, name, *qtype)),
        )
        .await;
        self.answers.extend(questions.into_iter().zip(answers));
    }

    async fn lookup(&mut self, name: &str, qtype: QueryType) -> Arc<Answer> {
        let key = (qtype, name.to_string());
        if let Some(answer) = self.answers.get(&key) {
            return answer.clone();
        }
        let answer = ask_resolver(self.resolver, name, qtype).await;
        self.answers.insert(key, answer.clone());
        answer
    }

    /// Looks `names` up concurrently (the exchanges of an MX, the names of a PTR).
    async fn lookup_all(&mut self, names: &[String], qtype: QueryType) -> Vec<Arc<Answer>> {
        let missing: Vec<&String> = names
            .iter()
            .filter(|n| !self.answers.contains_key(&(qtype, (*n).clone())))
            .collect();
        let fetched = futures::future::join_all(
            missing
                .iter()
                .map(|name| ask_resolver(self.resolver, name, qtype)),
        )
        .await;
        for (name, answer) in missing.into_iter().zip(fetched) {
            self.answers.insert((qtype, name.clone()), answer);
        }
        names
            .iter()
            .filter_map(|n| self.answers.get(&(qtype, n.clone())).cloned())
            .collect()
    }
}

async fn ask_resolver(resolver: &Resolver, name: &str, qtype: QueryType) -> Arc<Answer> {
    resolver
        .lookup(&DomainName::from_ascii_unchecked(name), qtype)
        .await
}

fn qualifier_result(qualifier: Qualifier) -> SpfResult {
    match qualifier {
        Qualifier::Pass => SpfResult::Pass,
        Qualifier::Fail => SpfResult::Fail,
        Qualifier::SoftFail => SpfResult::SoftFail,
        Qualifier::Neutral => SpfResult::Neutral,
    }
}

fn exp_of(record: &SpfRecord) -> Option<&DomainSpec> {
    record.terms.iter().find_map(|t| match &t.kind {
        TermKind::Exp(spec) => Some(spec),
        _ => None,
    })
}

/// RFC 7208 §4.5: "v=spf1" (any case) followed by a space or the end of the record.
pub fn is_spf_record(text: &[u8]) -> bool {
    text.get(..6)
        .is_some_and(|version| version.eq_ignore_ascii_case(b"v=spf1"))
        && text.get(6).is_none_or(|b| *b == b' ')
}

/// §5: a DNS error while a mechanism looks something up is a temperror. A CNAME chain that
/// loops is one too: a recursive resolver answers it with SERVFAIL.
fn fail_on_error(answer: &Answer, term: &str) -> Result<(), Stop> {
    match &answer.outcome {
        Outcome::Failed(e) => Err(Stop::TempError(format!(
            "{term}: {} {}: {e}",
            answer.qtype, answer.name
        ))),
        Outcome::CnameLoop => Err(Stop::TempError(format!(
            "{term}: {} {}: the CNAME chain loops",
            answer.qtype, answer.name
        ))),
        _ => Ok(()),
    }
}

/// The MX records that name a host (all but the root of a null MX, RFC 7505), which the limit
/// of §4.6.4 counts, and the hosts to look up, once each.
fn mx_exchanges(answer: &Answer) -> (usize, Vec<String>) {
    let mut records = 0;
    let mut hosts: Vec<String> = Vec::new();
    for record in answer.records() {
        if let RecordData::Mx { exchange, .. } = &record.data {
            if let Some(host) = macros::query_name(exchange) {
                records += 1;
                if !hosts.contains(&host) {
                    hosts.push(host);
                }
            }
        }
    }
    (records, hosts)
}

/// True when one of the answer's addresses is in the client's network: the `/cidr4` network
/// for an IPv4 client, `/cidr6` for an IPv6 one (RFC 7208 §5.3, §5.6).
fn has_address_within(
    answer: &Answer,
    client: IpAddr,
    cidr4: Option<u8>,
    cidr6: Option<u8>,
) -> bool {
    answer.records().iter().any(|r| match (&r.data, client) {
        (RecordData::A(a), IpAddr::V4(ip)) => within_v4(ip, *a, cidr4.unwrap_or(32)),
        (RecordData::Aaaa(a), IpAddr::V6(ip)) => within_v6(ip, *a, cidr6.unwrap_or(128)),
        _ => false,
    })
}

/// `ip` is in `network/prefix`. The `ip4` mechanism matches IPv4 clients only, `ip6` IPv6
/// clients only (§5.6): an IPv4-mapped client was turned into its IPv4 address before.
fn within_v4(ip: Ipv4Addr, network: Ipv4Addr, prefix: u8) -> bool {
    let mask = u32::MAX
        .checked_shl(32 - u32::from(prefix.min(32)))
        .unwrap_or(0);
    u32::from(ip) & mask == u32::from(network) & mask
}

fn within_v6(ip: Ipv6Addr, network: Ipv6Addr, prefix: u8) -> bool {
    let mask = u128::MAX
        .checked_shl(128 - u32::from(prefix.min(128)))
        .unwrap_or(0);
    u128::from(ip) & mask == u128::from(network) & mask
}

/// `name` is `target` or lies below it (the `ptr` match of §5.5).
fn is_within(name: &str, target: &str) -> bool {
    name.strip_suffix(target)
        .is_some_and(|head| head.is_empty() || head.ends_with('.'))
}

/// RFC 7208 §7.3 on `%{p}`: `<domain>` itself when validated, else a validated subdomain of
/// it, else any validated name.
fn validated_domain_for<'n>(validated: &'n [String], domain: &str) -> Option<&'n str> {
    validated
        .iter()
        .find(|n| *n == domain)
        .or_else(|| validated.iter().find(|n| is_within(n, domain)))
        .or_else(|| validated.first())
        .map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::{Record, Source};

    fn answer(outcome: Outcome) -> Answer {
        Answer {
            name: DomainName::from_ascii_unchecked("host.example"),
            qtype: QueryType::A,
            outcome,
            cname_chain: Vec::new(),
            cname_conflict: false,
            source: Source::Network,
        }
    }

    fn addresses(ips: &[&str]) -> Answer {
        let records: Vec<Record> = ips
            .iter()
            .map(|ip| Record {
                ttl: 300,
                data: match ip.parse::<IpAddr>().unwrap() {
                    IpAddr::V4(v4) => RecordData::A(v4),
                    IpAddr::V6(v6) => RecordData::Aaaa(v6),
                },
            })
            .collect();
        answer(Outcome::Records(records.into()))
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// Former failure: mail-auth let `ip6` match an IPv4 client through its mapped form.
    #[test]
    fn ip_mechanisms_match_their_own_family_only() {
        let v4 = "1.2.3.4".parse::<Ipv4Addr>().unwrap();
        assert!(within_v4(v4, "1.1.1.1".parse().unwrap(), 0));
        assert!(within_v4(v4, "1.2.3.0".parse().unwrap(), 24));
        assert!(!within_v4(v4, "1.2.3.5".parse().unwrap(), 32));
        let v6 = "cafe:babe:8000::".parse::<Ipv6Addr>().unwrap();
        assert!(within_v6(v6, "cafe:babe:8000::".parse().unwrap(), 33));
        assert!(!within_v6(v6, "cafe:babe::".parse().unwrap(), 33));
        assert!(within_v6(v6, "::1.1.1.1".parse().unwrap(), 0));
        // `a`/`mx` addresses: only the client's family, each with its own prefix.
        let both = addresses(&["1.2.3.5", "2001:db8:1234::dead:beef"]);
        assert!(has_address_within(&both, ip("1.2.3.4"), Some(24), None));
        assert!(!has_address_within(&both, ip("1.2.3.4"), None, Some(64)));
        assert!(has_address_within(
            &both,
            ip("2001:db8:1234::cafe:babe"),
            None,
            Some(64)
        ));
        assert!(!has_address_within(
            &addresses(&["::ffff:1.2.3.4"]),
            ip("1.2.3.4"),
            None,
            Some(0)
        ));
    }

    #[test]
    fn spf_version_needs_a_space_or_the_end() {
        assert!(is_spf_record(b"v=spf1"));
        assert!(is_spf_record(b"V=SpF1 -all"));
        assert!(!is_spf_record(b"v=spf10"));
        assert!(!is_spf_record(b"v=spf1mx"));
        assert!(!is_spf_record(b"v=spf"));
        assert!(!is_spf_record(b""));
    }

    #[test]
    fn ptr_matches_the_name_or_below() {
        assert!(is_within("mail.example.com", "example.com"));
        assert!(is_within("example.com", "example.com"));
        assert!(!is_within("badexample.com", "example.com"));
        let validated = [
            "mx.example.com".to_string(),
            "mx.e7.example.com".to_string(),
        ];
        assert_eq!(
            validated_domain_for(&validated, "e7.example.com"),
            Some("mx.e7.example.com")
        );
        assert_eq!(
            validated_domain_for(&validated, "mx.example.com"),
            Some("mx.example.com")
        );
        assert_eq!(
            validated_domain_for(&validated, "other.test"),
            Some("mx.example.com")
        );
        assert_eq!(validated_domain_for(&[], "other.test"), None);
    }

    #[test]
    fn mx_hosts_skip_the_null_mx_and_repeats() {
        let mx = |exchange: &str| Record {
            ttl: 300,
            data: RecordData::Mx {
                preference: 10,
                exchange: exchange.into(),
            },
        };
        let a = answer(Outcome::Records(
            vec![mx(""), mx("a.example"), mx("a.example"), mx("B.example")].into(),
        ));
        let (records, hosts) = mx_exchanges(&a);
        assert_eq!(records, 3);
        assert_eq!(hosts, ["a.example", "b.example"]);
    }

    #[test]
    fn lookup_errors_are_temperrors_void_answers_are_not() {
        let failed = answer(Outcome::Failed(crate::dns::LookupError::Timeout));
        assert!(matches!(
            fail_on_error(&failed, "a"),
            Err(Stop::TempError(_))
        ));
        assert!(matches!(
            fail_on_error(&answer(Outcome::CnameLoop), "a"),
            Err(Stop::TempError(_))
        ));
        assert_eq!(fail_on_error(&answer(Outcome::NxDomain), "a"), Ok(()));
        assert_eq!(fail_on_error(&answer(Outcome::NoData), "a"), Ok(()));
    }
}
