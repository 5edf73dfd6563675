//! The one resolver of a run: cached, counted, bounded, with the `--zone` overlay in front.
//!
//! Every DNS answer mailshift uses comes through [`Resolver::lookup`]. It asks the `--zone`
//! files first, then the network (the system's resolvers, or `--nameserver`s). Each question is
//! sent at most once per run: answers are cached and in-flight questions shared, so an ESP's
//! include chain used by a thousand domains is fetched once. Every question sent is counted.
//! CNAMEs are followed here, with loop detection, so analysers see the final data and the chain.
//! The wire (UDP with EDNS, TCP on truncation, timeouts, retries, fallback between servers) is
//! [`transport`]; message encoding is hickory-proto's, and the system configuration is read with
//! hickory-resolver. DNSSEC questions (`check --dnssec`: DO and CD bits, RRSIGs and proofs kept)
//! take a path of their own, [`Resolver::lookup_dnssec`] in [`secure`].

pub mod answer;
pub mod secure;
pub mod transport;
pub mod zone;

pub use answer::{Answer, LookupError, Outcome, QueryType, Record, RecordData, Source};
pub use secure::{DnssecAnswer, DnssecOutcome};
pub use zone::{ZoneError, ZoneOverlay};

use crate::domain::DomainName;
use hickory_resolver::config::ProtocolConfig;
use hickory_resolver::proto::op::{Message, Query, ResponseCode};
use hickory_resolver::proto::rr::{Name, RecordType};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OnceCell, Semaphore};

/// Resolvers give up on CNAME chains longer than this (BIND uses 16; most stop well before).
const MAX_CNAME_HOPS: usize = 10;

/// How the resolver reaches DNS.
#[derive(Debug, Clone)]
pub struct DnsConfig {
    /// Servers to ask instead of the system's (`--nameserver`); port 53 unless given.
    pub nameservers: Vec<SocketAddr>,
    /// Zone files or directories answered locally (`--zone`).
    pub zones: Vec<PathBuf>,
    /// Never use the network: names outside the zones are inconclusive.
    pub offline: bool,
    /// Per-attempt timeout.
    pub timeout: Duration,
    /// Attempts per question (1 = no retry).
    pub attempts: usize,
    /// Upper bound on questions in flight at once.
    pub max_in_flight: usize,
    /// About how many bytes of answers the cache keeps; past that, the answers least recently
    /// used go first. A long-running inbox, or a bulk run over millions of domains, must not
    /// keep every answer forever.
    pub cache_bytes: usize,
    /// The HTTPS fetches records point at (MTA-STS policies): made through this resolver's
    /// answers, so they see the same DNS as the checks.
    pub web: crate::web::WebConfig,
    /// The port authoritative servers are asked on ([`Resolver::ask_server`]): 53, except for
    /// test servers on loopback.
    pub authoritative_port: u16,
}

/// The default size of the answer cache: far more than the shared answers of a bulk run (the
/// platforms' include trees, the TLDs' DMARC walks) need, and a fraction of what 100,000
/// domains' own answers would take.
pub const DEFAULT_CACHE_BYTES: usize = 32 << 20;

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            nameservers: Vec::new(),
            zones: Vec::new(),
            offline: false,
            timeout: Duration::from_secs(3),
            attempts: 2,
            max_in_flight: 256,
            cache_bytes: DEFAULT_CACHE_BYTES,
            web: crate::web::WebConfig::default(),
            authoritative_port: 53,
        }
    }
}

/// Authoritative servers the run keeps sockets open to, at most; past that, each question
/// opens its own.
const MAX_AUTHORITATIVE_TRANSPORTS: usize = 64;

/// What one server answered to one question, with nothing followed or cached: how
/// [`Resolver::ask_server`] compares the copies a zone's authoritative servers hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectAnswer {
    /// The server answered as authoritative for the name (the AA bit); a server that is not
    /// (a lame delegation) answers with a referral or not at all.
    pub authoritative: bool,
    /// The records of the asked type at the name, or the CNAME there; NXDOMAIN; NODATA; or
    /// why there was no answer.
    pub outcome: Outcome,
}

/// The resolver could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum DnsSetupError {
    #[error(transparent)]
    Zone(#[from] ZoneError),
    #[error("cannot read the system resolver configuration ({0}); use --nameserver")]
    SystemConfig(String),
}

/// Counters for the run summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct DnsStats {
    /// Questions sent to the network (retransmissions of one question are not counted twice).
    pub queries: u64,
    /// Questions answered from `--zone` files.
    pub zone_answers: u64,
    /// Lookups served from the run's cache.
    pub cache_hits: u64,
}

/// One question's result before CNAME following: what a single response (or zone) said.
#[derive(Debug, Clone)]
struct Step {
    /// CNAME targets found, starting from the question name.
    chain: Vec<String>,
    end: StepEnd,
    conflict: bool,
    source: Source,
}

impl Step {
    /// About how many bytes the step holds (for the cache's budget).
    fn weight(&self) -> usize {
        let chain: usize = self.chain.iter().map(|c| c.len() + 24).sum();
        let records = match &self.end {
            StepEnd::Records(records) => records.iter().map(Record::weight).sum(),
            StepEnd::Failed(_) => 64,
            _ => 0,
        };
        chain + records
    }
}

#[derive(Debug, Clone)]
enum StepEnd {
    Records(Arc<[Record]>),
    NoData,
    NxDomain,
    /// The chain's last target was not answered in this response: ask for it.
    FollowLast,
    Failed(LookupError),
}

type Cell = Arc<OnceCell<Arc<Step>>>;
/// Cached steps, one map per question type so a lookup needs no allocated key.
type Generation = HashMap<QueryType, HashMap<String, Cell>>;

/// The answer cache, bounded by size: two generations. New answers and answers used again go
/// to the young one; when it holds half the budget, the old one is dropped and the young one
/// becomes old. What is used keeps being promoted (an ESP's include tree shared by thousands of
/// domains), what is not ages out after two turns: least-recently-used eviction at the cost of
/// one extra lookup on a miss, with no per-entry bookkeeping.
#[derive(Default)]
struct Cache {
    young: Generation,
    old: Generation,
    /// Estimated bytes in `young` (names, records, overhead).
    young_bytes: usize,
    /// Each generation's budget: half the configured size.
    generation_bytes: usize,
}

/// Bytes one cached name costs beyond its text and records: the map entries, the cell, the step.
const ENTRY_OVERHEAD: usize = 192;

impl Cache {
    fn new(bytes: usize) -> Cache {
        Cache {
            generation_bytes: (bytes / 2).max(64 * 1024),
            ..Cache::default()
        }
    }

    /// The cell for a question: cached (promoted when old), or a new empty one to fill.
    fn cell(&mut self, qtype: QueryType, name: &str) -> Cell {
        if let Some(cell) = self.young.get(&qtype).and_then(|m| m.get(name)) {
            return cell.clone();
        }
        let cell = self
            .old
            .get_mut(&qtype)
            .and_then(|m| m.remove(name))
            .unwrap_or_default();
        let weight = ENTRY_OVERHEAD + name.len() + cell.get().map_or(0, |s| s.weight());
        self.young
            .entry(qtype)
            .or_default()
            .insert(name.to_string(), cell.clone());
        self.add(weight);
        cell
    }

    /// Accounts for bytes added to the young generation; turns generations over when full.
    fn add(&mut self, bytes: usize) {
        self.young_bytes += bytes;
        if self.young_bytes > self.generation_bytes {
            self.old = std::mem::take(&mut self.young);
            self.young_bytes = 0;
        }
    }

    /// Forgets one question (both generations).
    fn forget(&mut self, qtype: QueryType, name: &str) {
        for generation in [&mut self.young, &mut self.old] {
            if let Some(m) = generation.get_mut(&qtype) {
                m.remove(name);
            }
        }
    }

    fn clear(&mut self) {
        self.young.clear();
        self.old.clear();
        self.young_bytes = 0;
    }

    /// Names cached (both generations).
    fn len(&self) -> usize {
        [&self.young, &self.old]
            .iter()
            .flat_map(|g| g.values())
            .map(HashMap::len)
            .sum()
    }
}

struct Inner {
    zones: ZoneOverlay,
    /// The servers to ask; `Err` explains why there are none.
    servers: Result<Vec<SocketAddr>, String>,
    /// Opened on the first network question, so zone-only runs open no sockets.
    transport: OnceCell<Result<transport::Transport, String>>,
    timeout: Duration,
    attempts: usize,
    offline: bool,
    cache: Mutex<Cache>,
    in_flight: Semaphore,
    queries: AtomicU64,
    zone_answers: AtomicU64,
    cache_hits: AtomicU64,
    web: crate::web::Web,
    authoritative_port: u16,
    /// Sockets to the authoritative servers asked directly, by address.
    authoritative: Mutex<HashMap<SocketAddr, Arc<transport::Transport>>>,
    /// Sockets for DNSSEC questions (DO and CD set), opened on the first one.
    secure_transport: OnceCell<Result<transport::Transport, String>>,
    /// DNSSEC answers ([`Resolver::lookup_dnssec`]).
    secure_cache: Mutex<secure::SecureCache>,
}

/// The run's resolver. Cheap to clone; clones share the cache and counters.
#[derive(Clone)]
pub struct Resolver {
    inner: Arc<Inner>,
    /// When set, the questions asked through this handle about names at or below one domain
    /// are noted, so the answers that belong to that domain can be let go once it is reported
    /// ([`Resolver::scoped`]).
    scope: Option<Arc<Scope>>,
}

/// One checked domain, and the questions asked about names at or below it.
struct Scope {
    domain: String,
    asked: Mutex<Vec<(QueryType, String)>>,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver").finish_non_exhaustive()
    }
}

impl Resolver {
    /// Builds the resolver: loads the zone files, reads the system configuration unless
    /// nameservers are given. Must be called inside a Tokio runtime.
    pub fn new(config: &DnsConfig) -> Result<Resolver, DnsSetupError> {
        let zones = ZoneOverlay::load(&config.zones)?;
        let servers = if config.offline {
            Err("--offline".to_string())
        } else {
            match nameservers(config) {
                Ok(servers) => Ok(servers),
                // Without a system configuration, zone-only runs still work; network lookups
                // then report the reason as an inconclusive result.
                Err(e) if !zones.is_empty() => Err(e.to_string()),
                Err(e) => return Err(e),
            }
        };
        Ok(Resolver {
            inner: Arc::new(Inner {
                zones,
                servers,
                transport: OnceCell::new(),
                timeout: config.timeout,
                attempts: config.attempts.max(1),
                offline: config.offline,
                cache: Mutex::new(Cache::new(config.cache_bytes)),
                in_flight: Semaphore::new(config.max_in_flight.max(1)),
                queries: AtomicU64::new(0),
                zone_answers: AtomicU64::new(0),
                cache_hits: AtomicU64::new(0),
                web: crate::web::Web::new(crate::web::WebConfig {
                    offline: config.offline || config.web.offline,
                    ..config.web.clone()
                }),
                authoritative_port: config.authoritative_port,
                authoritative: Mutex::default(),
                secure_transport: OnceCell::new(),
                secure_cache: Mutex::new(secure::SecureCache::new(config.cache_bytes / 4)),
            }),
            scope: None,
        })
    }

    /// A handle on the same resolver that notes the questions asked through it about names at
    /// or below `domain`: a bulk run checks each domain through its own scoped handle, then
    /// calls [`release`](Self::release) so the domain's own answers leave the cache while
    /// answers shared with other domains (an ESP's include tree) stay.
    pub fn scoped(&self, domain: &DomainName) -> Resolver {
        Resolver {
            inner: self.inner.clone(),
            scope: Some(Arc::new(Scope {
                domain: domain.as_str().to_string(),
                asked: Mutex::default(),
            })),
        }
    }

    /// Forgets the answers this scoped handle asked for about its domain.
    pub fn release(&self) {
        let Some(scope) = &self.scope else {
            return;
        };
        let asked = std::mem::take(&mut *scope.asked.lock().unwrap_or_else(|p| p.into_inner()));
        let mut cache = self.cache();
        for (qtype, name) in asked {
            cache.forget(qtype, &name);
        }
    }

    /// Forgets every cached answer (zone-file answers are re-read from the overlay, which is
    /// kept). Long-running users such as the seed inbox call it periodically so a rotated key or
    /// a changed record is seen, and so the cache does not grow without bound; lookups in
    /// flight finish with the answers they already share.
    pub fn clear_cache(&self) {
        self.cache().clear();
    }

    /// Names in the cache now (both generations), for measuring.
    pub fn cached_names(&self) -> usize {
        self.inner.cache.lock().map_or(0, |c| c.len())
    }

    /// The run's HTTPS fetcher.
    pub fn web(&self) -> &crate::web::Web {
        &self.inner.web
    }

    pub fn stats(&self) -> DnsStats {
        DnsStats {
            queries: self.inner.queries.load(Ordering::Relaxed),
            zone_answers: self.inner.zone_answers.load(Ordering::Relaxed),
            cache_hits: self.inner.cache_hits.load(Ordering::Relaxed),
        }
    }

    /// Looks up `name`/`qtype`, following CNAMEs. Never fails: failures are in the outcome.
    pub async fn lookup(&self, name: &DomainName, qtype: QueryType) -> Arc<Answer> {
        let mut current = name.as_str().to_string();
        let mut chain: Vec<DomainName> = Vec::new();
        let mut conflict = false;
        let mut source;
        let outcome = loop {
            let step = self.step(&current, qtype).await;
            conflict |= step.conflict;
            source = step.source.clone();
            let mut looped = false;
            for target in &step.chain {
                if target == name.as_str() || chain.iter().any(|c| c.as_str() == target) {
                    looped = true;
                }
                chain.push(DomainName::from_ascii_unchecked(target.clone()));
            }
            if looped || chain.len() > MAX_CNAME_HOPS {
                break Outcome::CnameLoop;
            }
            match &step.end {
                StepEnd::Records(r) => break Outcome::Records(r.clone()),
                StepEnd::NoData => break Outcome::NoData,
                StepEnd::NxDomain => break Outcome::NxDomain,
                StepEnd::Failed(e) => break Outcome::Failed(e.clone()),
                StepEnd::FollowLast => match step.chain.last() {
                    Some(last) => current = last.clone(),
                    None => {
                        break Outcome::Failed(LookupError::Network("empty CNAME chain".into()))
                    }
                },
            }
        };
        Arc::new(Answer {
            name: name.clone(),
            qtype,
            outcome,
            cname_chain: chain,
            cname_conflict: conflict,
            source,
        })
    }

    /// Asks one server, by address, one question without recursion, as a resolver asks an
    /// authoritative server: no cache, no CNAME followed, no other server tried. Counted like
    /// every question sent.
    pub async fn ask_server(
        &self,
        server: std::net::IpAddr,
        name: &DomainName,
        qtype: QueryType,
    ) -> DirectAnswer {
        let failed = |e: LookupError| DirectAnswer {
            authoritative: false,
            outcome: Outcome::Failed(e),
        };
        if self.inner.offline {
            return failed(LookupError::Offline);
        }
        let address = SocketAddr::new(server, self.inner.authoritative_port);
        let known = self
            .inner
            .authoritative
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&address)
            .cloned();
        let transport = match known {
            Some(t) => t,
            None => {
                let opened = match transport::Transport::authoritative(
                    address,
                    self.inner.timeout,
                    self.inner.attempts,
                ) {
                    Ok(t) => Arc::new(t),
                    Err(e) => {
                        return failed(LookupError::Network(format!("cannot open a socket: {e}")))
                    }
                };
                let mut open = self
                    .inner
                    .authoritative
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                if open.len() < MAX_AUTHORITATIVE_TRANSPORTS {
                    open.entry(address).or_insert(opened).clone()
                } else {
                    opened
                }
            }
        };
        match self
            .send(&transport, name.as_str(), record_type(qtype))
            .await
        {
            Ok(message) => direct_answer(name.as_str(), qtype, &message),
            Err(e) => failed(e),
        }
    }

    /// Sends one question over `transport`, within the in-flight bound, and counts it.
    pub(super) async fn send(
        &self,
        transport: &transport::Transport,
        name: &str,
        rtype: RecordType,
    ) -> Result<Message, LookupError> {
        let qname = wire_name(name).ok_or_else(|| {
            LookupError::Network(format!(
                "`{name}` cannot be asked: an empty label, or one over 63 bytes"
            ))
        })?;
        let _permit = self
            .inner
            .in_flight
            .acquire()
            .await
            .map_err(|_| LookupError::Network("resolver shut down".into()))?;
        self.inner.queries.fetch_add(1, Ordering::Relaxed);
        transport.exchange(&Query::query(qname, rtype)).await
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.inner
            .cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// One question, cached and shared with concurrent askers.
    async fn step(&self, name: &str, qtype: QueryType) -> Arc<Step> {
        if let Some(scope) = &self.scope {
            if zone::is_within(name, &scope.domain) {
                scope
                    .asked
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((qtype, name.to_string()));
            }
        }
        let cell = self.cache().cell(qtype, name);
        if let Some(step) = cell.get() {
            self.inner.cache_hits.fetch_add(1, Ordering::Relaxed);
            return step.clone();
        }
        let mut asked = false;
        let step = cell
            .get_or_init(|| async {
                asked = true;
                Arc::new(self.ask(name, qtype).await)
            })
            .await
            .clone();
        if asked {
            // The answer's own size counts against the budget once it is known.
            self.cache().add(step.weight());
        }
        step
    }

    /// Forgets cached answers for these questions (a bulk run drops a domain's own answers once
    /// the domain is reported; answers shared with other domains stay).
    pub fn forget<'a>(&self, questions: impl IntoIterator<Item = (QueryType, &'a str)>) {
        let mut cache = self.cache();
        for (qtype, name) in questions {
            cache.forget(qtype, name);
        }
    }

    async fn ask(&self, name: &str, qtype: QueryType) -> Step {
        if let Some(file) = self.inner.zones.covering_file(name) {
            self.inner.zone_answers.fetch_add(1, Ordering::Relaxed);
            let source = Source::Zone(file.to_path_buf());
            let conflict = self.inner.zones.has_cname_conflict(name);
            let (chain, end) = match self.inner.zones.lookup(name, qtype) {
                zone::ZoneAnswer::Records(r) => (vec![], StepEnd::Records(r.into())),
                zone::ZoneAnswer::NoData => (vec![], StepEnd::NoData),
                zone::ZoneAnswer::NxDomain => (vec![], StepEnd::NxDomain),
                zone::ZoneAnswer::Cname { target, .. } => (vec![target], StepEnd::FollowLast),
            };
            return Step {
                chain,
                end,
                conflict,
                source,
            };
        }
        let failed = |e: LookupError| Step {
            chain: vec![],
            end: StepEnd::Failed(e),
            conflict: false,
            source: Source::Network,
        };
        if self.inner.offline {
            return failed(LookupError::Offline);
        }
        let servers = match &self.inner.servers {
            Ok(servers) => servers.clone(),
            Err(reason) => return failed(LookupError::Network(reason.clone())),
        };
        let transport = self
            .inner
            .transport
            .get_or_init(|| async {
                transport::Transport::new(servers, self.inner.timeout, self.inner.attempts)
                    .map_err(|e| format!("cannot open a socket: {e}"))
            })
            .await;
        let transport = match transport {
            Ok(t) => t,
            Err(e) => return failed(LookupError::Network(e.clone())),
        };
        match self.send(transport, name, record_type(qtype)).await {
            Ok(message) => interpret_response(name, qtype, &message),
            Err(e) => failed(e),
        }
    }
}

/// Reads one authoritative server's response: the records of the type at the name itself (or
/// its CNAME), nothing followed.
fn direct_answer(name: &str, qtype: QueryType, response: &Message) -> DirectAnswer {
    let wanted = record_type(qtype);
    let records: Vec<Record> = response
        .answers
        .iter()
        .filter(|r| {
            (r.record_type() == wanted || r.record_type() == RecordType::CNAME)
                && zone::name_text(&r.name) == name
        })
        .filter_map(|r| {
            zone::convert_wire_rdata(&r.data).map(|(_, data)| Record { ttl: r.ttl, data })
        })
        .collect();
    let outcome = if !records.is_empty() {
        Outcome::Records(records.into())
    } else if response.metadata.response_code == ResponseCode::NXDomain {
        Outcome::NxDomain
    } else {
        Outcome::NoData
    };
    DirectAnswer {
        authoritative: response.metadata.authoritative,
        outcome,
    }
}

/// Reads one response: the data for the name, or the CNAME chain from it, or what is missing.
fn interpret_response(name: &str, qtype: QueryType, response: &Message) -> Step {
    let wanted = record_type(qtype);
    let owner_is = |record_name: &Name, current: &str| zone::name_text(record_name) == current;
    let mut current = name.to_string();
    let mut chain: Vec<String> = Vec::new();
    let conflict = false;
    loop {
        let data: Vec<Record> = response
            .answers
            .iter()
            .filter(|r| r.record_type() == wanted && owner_is(&r.name, &current))
            .filter_map(|r| {
                zone::convert_wire_rdata(&r.data).map(|(_, data)| Record { ttl: r.ttl, data })
            })
            .collect();
        let cname = response
            .answers
            .iter()
            .filter(|r| r.record_type() == RecordType::CNAME && owner_is(&r.name, &current))
            .find_map(|r| match zone::convert_wire_rdata(&r.data) {
                Some((_, RecordData::Cname(target))) => Some(target),
                _ => None,
            });
        match (cname, data.is_empty()) {
            (Some(_), false) if qtype != QueryType::Cname => {
                // CNAME and other data at one name: report it, use the data as most resolvers do.
                return Step {
                    chain,
                    end: StepEnd::Records(data.into()),
                    conflict: true,
                    source: Source::Network,
                };
            }
            (_, false) => {
                return Step {
                    chain,
                    end: StepEnd::Records(data.into()),
                    conflict,
                    source: Source::Network,
                }
            }
            (Some(target), true) => {
                let seen = target == name || chain.contains(&target);
                chain.push(target.clone());
                if seen || chain.len() > MAX_CNAME_HOPS {
                    // The caller detects the loop from the chain.
                    return Step {
                        chain,
                        end: StepEnd::FollowLast,
                        conflict,
                        source: Source::Network,
                    };
                }
                current = target;
            }
            (None, true) => break,
        }
    }
    let end = if response.metadata.response_code == ResponseCode::NXDomain {
        // With a chain, the rcode describes its last name.
        StepEnd::NxDomain
    } else if chain.is_empty() {
        // NOERROR without data for the name: the name exists, the type does not.
        StepEnd::NoData
    } else {
        StepEnd::FollowLast
    };
    Step {
        chain,
        end,
        conflict,
        source: Source::Network,
    }
}

/// The question name for `name` (mailshift's form: labels joined with dots, no trailing dot):
/// each label's bytes as they are. DNS labels may hold any byte (RFC 2181 §11), and SPF macros
/// make names with spaces, `%` or `:` in them; `Name::from_ascii` would refuse those. `None`
/// for what no question can carry: an empty label, a label over 63 bytes, over 255 in all.
fn wire_name(name: &str) -> Option<Name> {
    if name.is_empty() {
        return Some(Name::root());
    }
    Name::from_labels(name.split('.').map(str::as_bytes)).ok()
}

fn record_type(qtype: QueryType) -> RecordType {
    match qtype {
        QueryType::A => RecordType::A,
        QueryType::Aaaa => RecordType::AAAA,
        QueryType::Txt => RecordType::TXT,
        QueryType::Mx => RecordType::MX,
        QueryType::Cname => RecordType::CNAME,
        QueryType::Ptr => RecordType::PTR,
        QueryType::Ns => RecordType::NS,
        QueryType::Soa => RecordType::SOA,
    }
}

/// The servers to ask: `--nameserver`s, or the system's resolvers.
fn nameservers(config: &DnsConfig) -> Result<Vec<SocketAddr>, DnsSetupError> {
    if !config.nameservers.is_empty() {
        return Ok(config.nameservers.clone());
    }
    let (system, _) = hickory_resolver::system_conf::read_system_conf()
        .map_err(|e| DnsSetupError::SystemConfig(e.to_string()))?;
    let servers: Vec<SocketAddr> = system
        .name_servers()
        .iter()
        .map(|ns| {
            let port = ns
                .connections
                .iter()
                .find(|c| matches!(c.protocol, ProtocolConfig::Udp))
                .map_or(53, |c| c.port);
            SocketAddr::new(ns.ip, port)
        })
        .collect();
    if servers.is_empty() {
        return Err(DnsSetupError::SystemConfig(
            "no nameserver in the system configuration".into(),
        ));
    }
    Ok(servers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_resolver::proto::op::{Message, OpCode};
    use hickory_resolver::proto::rr::rdata::{CNAME, TXT};
    use hickory_resolver::proto::rr::{RData, Record as WireRecord};

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    fn response(rcode: ResponseCode, answers: Vec<WireRecord>) -> Message {
        let mut m = Message::response(1, OpCode::Query);
        m.metadata.response_code = rcode;
        for a in answers {
            m.add_answer(a);
        }
        m
    }

    fn cname(from: &str, to: &str) -> WireRecord {
        WireRecord::from_rdata(name(from), 300, RData::CNAME(CNAME(name(to))))
    }

    fn txt(owner: &str, text: &str) -> WireRecord {
        WireRecord::from_rdata(
            owner.parse().unwrap(),
            300,
            RData::TXT(TXT::new(vec![text.into()])),
        )
    }

    #[test]
    fn follows_a_chain_inside_one_response() {
        let r = response(
            ResponseCode::NoError,
            vec![
                cname("a.example.", "b.example."),
                cname("b.example.", "c.example."),
                txt("c.example.", "v=spf1 -all"),
            ],
        );
        let step = interpret_response("a.example", QueryType::Txt, &r);
        assert_eq!(step.chain, ["b.example", "c.example"]);
        assert!(matches!(step.end, StepEnd::Records(ref r) if r.len() == 1));
        assert!(!step.conflict);
    }

    #[test]
    fn chain_without_data_asks_for_the_target_and_nxdomain_applies_to_it() {
        let r = response(
            ResponseCode::NoError,
            vec![cname("a.example.", "b.example.")],
        );
        let step = interpret_response("a.example", QueryType::Txt, &r);
        assert!(matches!(step.end, StepEnd::FollowLast));
        let r = response(
            ResponseCode::NXDomain,
            vec![cname("a.example.", "b.example.")],
        );
        let step = interpret_response("a.example", QueryType::Txt, &r);
        assert!(matches!(step.end, StepEnd::NxDomain));
        assert_eq!(step.chain, ["b.example"]);
    }

    #[test]
    fn cname_beside_data_is_flagged() {
        let r = response(
            ResponseCode::NoError,
            vec![
                cname("a.example.", "b.example."),
                txt("a.example.", "v=DMARC1; p=none"),
            ],
        );
        let step = interpret_response("a.example", QueryType::Txt, &r);
        assert!(step.conflict);
        assert!(matches!(step.end, StepEnd::Records(_)));
    }

    /// Former failure: names SPF macros make (spaces, `%`, `:`, `/`) are asked byte for byte,
    /// and answers about them are recognised as such.
    #[test]
    fn names_with_any_bytes_are_asked_and_read_back_as_they_are() {
        for text in [
            "macro%percent  space%20url-space.example.com",
            "foo:bar/baz.example.com",
            "jumpin%27%20jupiter",
            "%5b192.168.218.40%5d",
        ] {
            let wire = wire_name(text).unwrap();
            assert_eq!(wire.iter().count(), text.split('.').count(), "{text}");
            assert_eq!(zone::name_text(&wire), text);
            let mut r = response(
                ResponseCode::NoError,
                vec![WireRecord::from_rdata(
                    wire.clone(),
                    300,
                    RData::TXT(TXT::new(vec!["x".into()])),
                )],
            );
            r.add_query(Query::query(wire, RecordType::TXT));
            let step = interpret_response(text, QueryType::Txt, &r);
            assert!(
                matches!(step.end, StepEnd::Records(ref r) if r.len() == 1),
                "{text}"
            );
        }
        assert_eq!(wire_name(""), Some(Name::root()));
        assert_eq!(wire_name("a..example"), None);
        assert_eq!(wire_name(&format!("{}.example", "x".repeat(64))), None);
        assert_eq!(wire_name(&format!("{}com", "abcdefgh.".repeat(40))), None);
    }

    #[test]
    fn a_txt_record_with_no_strings_is_a_record() {
        let mut r = response(
            ResponseCode::NoError,
            vec![txt("null.example.", "v=spf1 -all")],
        );
        let mut empty = txt("null.example.", "");
        empty.data = RData::Update0(RecordType::TXT);
        r.add_answer(empty);
        let step = interpret_response("null.example", QueryType::Txt, &r);
        let StepEnd::Records(records) = step.end else {
            panic!("{:?}", step.end)
        };
        assert_eq!(records.len(), 2);
        assert_eq!(records[1].data, RecordData::Txt(Vec::new()));
    }

    #[test]
    fn a_looping_chain_stops() {
        let r = response(
            ResponseCode::NoError,
            vec![
                cname("a.example.", "b.example."),
                cname("b.example.", "a.example."),
            ],
        );
        let step = interpret_response("a.example", QueryType::Txt, &r);
        assert_eq!(step.chain, ["b.example", "a.example"]);
    }

    #[tokio::test]
    async fn loops_through_zone_files_become_cname_loop() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("loop.test.zone"),
            "$TTL 60\n@ IN SOA ns hm 1 1 1 1 1\na IN CNAME b\nb IN CNAME a\n",
        )
        .unwrap();
        let resolver = Resolver::new(&DnsConfig {
            zones: vec![dir.path().to_path_buf()],
            offline: true,
            ..DnsConfig::default()
        })
        .unwrap();
        let answer = resolver
            .lookup(
                &DomainName::from_ascii_unchecked("a.loop.test"),
                QueryType::Txt,
            )
            .await;
        assert_eq!(answer.outcome, Outcome::CnameLoop);
        // Repeated questions are answered from the cache.
        resolver
            .lookup(
                &DomainName::from_ascii_unchecked("a.loop.test"),
                QueryType::Txt,
            )
            .await;
        assert!(resolver.stats().cache_hits > 0);
        assert_eq!(resolver.stats().queries, 0);
    }

    #[tokio::test]
    async fn the_cache_stays_within_its_budget_and_keeps_what_is_used() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("many.test.zone"),
            "$TTL 60\n@ IN SOA ns hm 1 1 1 1 1\nshared IN TXT \"v=spf1 -all\"\n*.rnd IN TXT \"x\"\n",
        )
        .unwrap();
        let resolver = Resolver::new(&DnsConfig {
            zones: vec![dir.path().to_path_buf()],
            offline: true,
            cache_bytes: 256 * 1024,
            ..DnsConfig::default()
        })
        .unwrap();
        let shared = DomainName::from_ascii_unchecked("shared.many.test");
        let mut most = 0;
        for i in 0..20_000 {
            // A stranger's random name (as a message with random d= would make us ask)...
            let name = DomainName::from_ascii_unchecked(format!("r{i}.rnd.many.test"));
            resolver.lookup(&name, QueryType::Txt).await;
            // ...and the shared include every domain uses.
            resolver.lookup(&shared, QueryType::Txt).await;
            most = most.max(resolver.cached_names());
        }
        // 256 KiB at about 220 bytes a name: never more than some 1,200 names, not 20,000.
        assert!(most < 1_500, "the cache grew to {most} names");
        let before = resolver.stats();
        resolver.lookup(&shared, QueryType::Txt).await;
        assert_eq!(
            resolver.stats().cache_hits,
            before.cache_hits + 1,
            "what is used stays cached"
        );
        resolver.forget([(QueryType::Txt, "shared.many.test")]);
        resolver.lookup(&shared, QueryType::Txt).await;
        assert_eq!(
            resolver.stats().cache_hits,
            before.cache_hits + 1,
            "forgotten"
        );
    }
}
