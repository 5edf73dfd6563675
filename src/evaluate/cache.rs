//! Feeding mail-auth's SPF evaluator from mailshift's resolver, so mail-auth never resolves.
//!
//! mail-auth's `check_host` is async but asks its caches synchronously (`ResolverCache::get`)
//! and, on a miss, asks its own hickory resolver. mailshift must answer every question itself
//! (the `--zone` overlay, the run's cache, the query counters, `--offline`), so evaluation is
//! iterative:
//!
//! 1. run `check_host` with [`LookupCache`] as all five caches (TXT, MX, A, AAAA, PTR), holding
//!    the mailshift [`Answer`]s fetched so far;
//! 2. every question the caches cannot answer falls through to mail-auth's resolver, which is
//!    pointed at a [`FallbackServer`] on loopback. That server answers at once — SERVFAIL for
//!    what nobody fetched yet — and *records the question as a miss*. (The caches cannot record
//!    the names themselves: `ResolverCache::get` receives an opaque `&Q: Hash + Eq`, so a miss
//!    has no name to report; the fallback server sees the name on the wire.)
//! 3. the misses are fetched through mailshift's [`Resolver`], added, and the run is repeated,
//!    until a run has no misses. The result of that run is the verdict; every earlier run was
//!    only a way of discovering which names the evaluation needs.
//!
//! A few outcomes cannot be expressed through the caches at all, and the fallback server is also
//! how they reach mail-auth: a cache can only return a value, not an error, for MX, A, AAAA and
//! PTR, and mail-auth's `exists` treats *any* cached address set — even an empty one — as a
//! match. So a temporary failure of an MX/A/AAAA lookup, and a void answer to the A lookup of
//! `exists`, are left out of the cache, and the fallback server answers them with SERVFAIL or
//! NXDOMAIN/NODATA from mailshift's answer, which hickory and mail-auth turn into exactly the
//! errors they would get from a real server.
//!
//! Where mail-auth departs from RFC 7208 and the cache layer is the natural place to follow the
//! RFC, the translation does so (each case is commented where it happens):
//! * more than one SPF record at a name is a permerror (§4.5); mail-auth takes the first that
//!   parses;
//! * a syntax error anywhere in the record is a permerror (§4.6): records must also pass
//!   mailshift's own RFC 7208 parser (`records::spf`), since mail-auth's accepts much the ABNF
//!   does not; non-ASCII records are syntax errors too (§3.1);
//! * the explanation is taken only from exactly one TXT record of printable ASCII (§6.2);
//! * `exists` looks up A records only, even for an IPv6 client (§5.7); mail-auth also accepts
//!   AAAA;
//! * PTR names are validated before mail-auth sees them, at most 10 of them (§4.6.4, §5.5), so
//!   the `%{p}` macro gets a *validated* name (§7.3); mail-auth takes the first PTR name as is,
//!   and in `exp=` text leaves `%{p}` empty, so the cache fills it in there.
//!
//! The void-lookup limit (§4.6.4) is counted here ([`LookupCache::void_lookups`]) and applied by
//! the caller, since mail-auth does not implement it.

use crate::dns::{Answer, Outcome, QueryType, RecordData, Resolver, Source};
use crate::domain::DomainName;
use crate::records::spf::SpfRecord;
use mail_auth::common::parse::TxtRecordParser;
use mail_auth::hickory_resolver::config::{
    ConnectionConfig, LookupIpStrategy, NameServerConfig, ResolveHosts, ResolverConfig,
    ResolverOpts,
};
use mail_auth::hickory_resolver::net::runtime::TokioRuntimeProvider;
use mail_auth::hickory_resolver::proto::op::{Message, ResponseCode};
use mail_auth::hickory_resolver::proto::rr::{Name, RecordType};
use mail_auth::hickory_resolver::{TlsConfig, TokioResolver};
use mail_auth::spf::{Macro, Spf, Variable, Variables};
use mail_auth::MX;
use mail_auth::{
    DnsError, DnssecStatus, Error, MessageAuthenticator, RecordSet, ResolverCache, Txt,
};
use std::borrow::Borrow;
use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

/// RFC 7208 §4.6.4: at most 10 MX exchanges or PTR names are looked up per mechanism.
pub const MAX_NAMES_PER_MECHANISM: usize = 10;

/// RFC 7208 §4.6.4: more than two void lookups make `check_host` return permerror.
pub const MAX_VOID_LOOKUPS: usize = 2;

/// A question a run needed and nobody had fetched: the type and the name (lower case, no
/// trailing dot, as mailshift's [`DomainName`] spells it).
pub type Miss = (QueryType, String);

/// The answers fetched for one evaluation, served to mail-auth as its five resolver caches.
///
/// Cheap to query from mail-auth's synchronous `get`; all state is behind one mutex.
pub struct LookupCache {
    client: IpAddr,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Keyed as mail-auth asks: lower case, fully qualified with the trailing dot.
    txt: HashMap<Box<str>, Arc<Answer>>,
    mx: HashMap<Box<str>, Arc<Answer>>,
    a: HashMap<Box<str>, Arc<Answer>>,
    aaaa: HashMap<Box<str>, Arc<Answer>>,
    /// The PTR answer for the client address (the only address SPF reverse-resolves).
    ptr: HashMap<IpAddr, Arc<Answer>>,
    misses: BTreeSet<Miss>,
    run: Run,
}

/// What one run of `check_host` did, reset by [`LookupCache::begin_run`].
#[derive(Default)]
struct Run {
    /// TXT questions asked so far in this run.
    txt_gets: usize,
    /// Serve the TXT question with this index as an explanation (`exp=`) instead of a policy.
    explain_at: Option<usize>,
    /// An SPF record with `exp=` was served in this run.
    served_exp: bool,
    void_lookups: usize,
    /// Hash of the name whose A record `exists` just asked for an IPv6 client (see `addresses`).
    exists_pending: Option<u64>,
    /// `<domain>` of the evaluation.
    domain: Option<String>,
    /// Questions the caches could not answer in this run, so mail-auth asked its resolver.
    declined: usize,
}

impl LookupCache {
    /// An empty cache for evaluating mail from `client`.
    pub fn new(client: IpAddr) -> LookupCache {
        LookupCache {
            client,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts a run of `check_host`. With `explain_at`, the TXT question with that index (0-based,
    /// in the order mail-auth asks them) is answered as an `exp=` explanation rather than as a
    /// policy: mail-auth asks both through the same TXT cache, and a cache cannot tell which one
    /// is being asked for. See `spf::evaluate` for how the index is found.
    /// `domain` is the `<domain>` of the evaluation (preferred for `%{p}`, RFC 7208 §7.3).
    pub fn begin_run(&self, domain: &str, explain_at: Option<usize>) {
        self.state().run = Run {
            explain_at,
            domain: Some(plain(domain)),
            ..Run::default()
        };
    }

    /// Whether the last run needed a question nobody had fetched.
    pub fn has_misses(&self) -> bool {
        !self.state().misses.is_empty()
    }

    /// The questions the last run needed that nobody had fetched, clearing the list.
    pub fn take_misses(&self) -> BTreeSet<Miss> {
        std::mem::take(&mut self.state().misses)
    }

    /// Records a miss (the fallback server does, for the questions it is asked).
    pub fn record_miss(&self, qtype: QueryType, name: &str) {
        let name = plain(name);
        self.state().misses.insert((qtype, name));
    }

    /// Void lookups (NXDOMAIN or NODATA) served in this run to the DNS-querying mechanisms: A/AAAA
    /// lookups of `a`, `mx` exchanges and `exists`, and MX lookups. The initial TXT lookup,
    /// `include`/`redirect` targets (void there is a permerror anyway) and the `exp=` lookup
    /// (which RFC 7208 §4.6.4 says must not count) are not counted.
    pub fn void_lookups(&self) -> usize {
        self.state().run.void_lookups
    }

    /// Questions of this run the caches did not answer, so that mail-auth asked its own
    /// resolver: unknown names, and the outcomes only the fallback server can express. A run
    /// with none never left the caches, whatever resolver its evaluator was given.
    pub fn declined(&self) -> usize {
        self.state().run.declined
    }

    fn note<T>(&self, served: Option<T>) -> Option<T> {
        if served.is_none() {
            self.state().run.declined += 1;
        }
        served
    }

    /// TXT questions asked in this run.
    pub fn txt_questions(&self) -> usize {
        self.state().run.txt_gets
    }

    /// Whether an SPF record with an `exp=` modifier was served in this run.
    pub fn served_exp(&self) -> bool {
        self.state().run.served_exp
    }

    /// Adds an answer fetched through mailshift. `name` in any case, with or without the dot.
    pub fn insert_answer(&self, qtype: QueryType, name: &str, answer: Arc<Answer>) {
        let key = fqdn(name);
        let mut state = self.state();
        match qtype {
            QueryType::Txt => {
                state.txt.insert(key, answer);
            }
            QueryType::Mx => {
                state.mx.insert(key, answer);
            }
            QueryType::A => {
                state.a.insert(key, answer);
            }
            QueryType::Aaaa => {
                state.aaaa.insert(key, answer);
            }
            QueryType::Ptr if plain(name) == reverse_name(self.client) => {
                state.ptr.insert(self.client, answer);
            }
            _ => {}
        }
    }

    fn known(&self, qtype: QueryType, name: &str) -> Option<Arc<Answer>> {
        let key = fqdn(name);
        let state = self.state();
        let map = match qtype {
            QueryType::Txt => &state.txt,
            QueryType::Mx => &state.mx,
            QueryType::A => &state.a,
            QueryType::Aaaa => &state.aaaa,
            QueryType::Ptr if plain(name) == reverse_name(self.client) => {
                return state.ptr.get(&self.client).cloned()
            }
            _ => return None,
        };
        map.get(&*key).cloned()
    }

    /// The address type SPF looks up for this client (`a`, `mx`, `ptr` validation).
    fn family(&self) -> QueryType {
        match self.client {
            IpAddr::V4(_) => QueryType::A,
            IpAddr::V6(_) => QueryType::Aaaa,
        }
    }

    /// Fetches the recorded misses through mailshift's resolver (concurrently), then the
    /// addresses the next run will need for the MX exchanges and PTR names among them (at most
    /// 10 each, RFC 7208 §4.6.4), which saves a run per exchange. Returns how many questions
    /// were asked.
    pub async fn fetch_misses(&self, resolver: &Resolver) -> usize {
        let misses: Vec<Miss> = self.take_misses().into_iter().collect();
        let mut asked = misses.len();
        let fetched = fetch_all(resolver, &misses).await;
        let mut follow_up: BTreeSet<Miss> = BTreeSet::new();
        for ((qtype, name), answer) in misses.iter().zip(fetched) {
            if matches!(qtype, QueryType::Mx | QueryType::Ptr) {
                for host in hosts_to_validate(&answer) {
                    if self.known(self.family(), &host).is_none() {
                        follow_up.insert((self.family(), host));
                    }
                }
            }
            self.insert_answer(*qtype, name, answer);
        }
        let follow_up: Vec<Miss> = follow_up.into_iter().collect();
        asked += follow_up.len();
        for ((qtype, name), answer) in follow_up.iter().zip(fetch_all(resolver, &follow_up).await) {
            self.insert_answer(*qtype, name, answer);
        }
        asked
    }

    /// How the fallback server answers a question mail-auth could not get from the caches.
    /// Unknown names are recorded as misses. Only the outcomes the caches cannot express get an
    /// answer that means something (void → NXDOMAIN/NOERROR, failure → SERVFAIL).
    pub fn fallback_rcode(&self, qtype: QueryType, name: &str) -> ResponseCode {
        match self.known(qtype, name) {
            None => {
                self.record_miss(qtype, name);
                ResponseCode::ServFail
            }
            Some(answer) => match &answer.outcome {
                Outcome::NxDomain => ResponseCode::NXDomain,
                Outcome::NoData => ResponseCode::NoError,
                // Records are always served from the caches; if mail-auth still asks, failing
                // is the conservative answer (temperror rather than an invented result).
                Outcome::Records(_) | Outcome::CnameLoop | Outcome::Failed(_) => {
                    ResponseCode::ServFail
                }
            },
        }
    }

    /// The A/AAAA cache. `family` is the type of the cache being asked.
    ///
    /// mail-auth asks the address caches from two places, and the cache has to tell them apart:
    /// * address matching (`a`, `mx` exchanges, `ptr` validation) asks only the client's family,
    ///   and reads an empty set as "no match";
    /// * `exists` asks A, then (if A gave nothing) AAAA, and reads *any* set, even an empty one,
    ///   as a match; otherwise it asks its resolver (A records only here, see
    ///   [`FallbackServer::authenticator`]) and reads NXDOMAIN/NODATA as "no match".
    ///
    /// So void answers are not served from the cache: the fallback server answers them with
    /// NXDOMAIN/NODATA, which both callers read correctly. The other family's cache is only
    /// ever asked by `exists`, and RFC 7208 §5.7 says `exists` uses A records only: AAAA is never
    /// served to it, and for an IPv6 client the AAAA question that follows an empty A answer is
    /// recognised as coming from `exists` (it is the very next question, for the same name).
    fn addresses<Q, T>(
        &self,
        family: QueryType,
        name: &Q,
        extract: fn(&RecordData) -> Option<T>,
    ) -> Option<RecordSet<T>>
    where
        Q: Hash + Eq + ?Sized,
        Box<str>: Borrow<Q>,
    {
        let hash = hash_of(name);
        let client_family = self.family();
        let mut state = self.state();
        let pending = state.run.exists_pending.take();
        if family == QueryType::Aaaa && client_family == QueryType::A {
            // Only `exists` asks the AAAA cache for an IPv4 client.
            return None;
        }
        if family == QueryType::Aaaa && pending == Some(hash) {
            // The second half of `exists` for an IPv6 client: A only (RFC 7208 §5.7).
            return None;
        }
        let map = match family {
            QueryType::A => &state.a,
            _ => &state.aaaa,
        };
        let answer = map.get(name).cloned();
        let from_exists = family != client_family;
        let served = answer.as_deref().and_then(|a| address_set(a, extract));
        if answer.as_deref().is_some_and(Answer::is_void) {
            state.run.void_lookups += 1;
        }
        if from_exists && served.is_none() {
            state.run.exists_pending = Some(hash);
        }
        served
    }

    fn txt<Q>(&self, name: &Q) -> Option<Txt>
    where
        Q: Hash + Eq + ?Sized,
        Box<str>: Borrow<Q>,
    {
        let mut state = self.state();
        state.run.exists_pending = None;
        let index = state.run.txt_gets;
        state.run.txt_gets += 1;
        let answer = state.txt.get(name).cloned()?;
        if state.run.explain_at == Some(index) {
            return Some(self.explanation(&mut state, &answer));
        }
        let txt = policy_txt(&answer);
        if matches!(&txt, Txt::Spf(spf) if spf.exp.is_some()) {
            state.run.served_exp = true;
        }
        Some(txt)
    }

    fn mx<Q>(&self, name: &Q) -> Option<RecordSet<MX>>
    where
        Q: Hash + Eq + ?Sized,
        Box<str>: Borrow<Q>,
    {
        let mut state = self.state();
        state.run.exists_pending = None;
        let answer = state.mx.get(name).cloned()?;
        if answer.is_void() {
            state.run.void_lookups += 1;
        }
        mx_set(&answer)
    }

    fn ptr(&self, ip: &IpAddr) -> Option<RecordSet<Box<str>>> {
        let mut state = self.state();
        state.run.exists_pending = None;
        state.ptr.get(ip)?;
        self.validated_names(&mut state).map(record_set)
    }

    /// The client's validated domain names (RFC 7208 §5.5): the first 10 PTR names whose
    /// address records include the client, in the order returned. `None` (with the missing
    /// questions recorded as misses) until the PTR answer and every address answer are known.
    fn validated_names(&self, state: &mut State) -> Option<Vec<Box<str>>> {
        let family = self.family();
        let Some(answer) = state.ptr.get(&self.client).cloned() else {
            state
                .misses
                .insert((QueryType::Ptr, reverse_name(self.client)));
            return None;
        };
        let addresses = match family {
            QueryType::A => &state.a,
            _ => &state.aaaa,
        };
        let mut validated: Vec<Box<str>> = Vec::new();
        let mut missing: Vec<String> = Vec::new();
        for name in hosts_to_validate(&answer) {
            match addresses.get(&*fqdn(&name)) {
                Some(a) if resolves_to(a, self.client) => validated.push(name.into_boxed_str()),
                // RFC 7208 §5.5: a DNS error on the A/AAAA lookup skips the name.
                Some(_) => {}
                None => missing.push(name),
            }
        }
        if !missing.is_empty() {
            for name in missing {
                state.misses.insert((family, name));
            }
            return None;
        }
        Some(validated)
    }

    /// RFC 7208 §7.3: `%{p}` in explanation text is the client's validated domain name, or
    /// "unknown". mail-auth looks the name up only when a *mechanism* uses `%{p}`, so in `exp=`
    /// text it would expand to nothing; the cache fills it in (a name ending in the checked
    /// domain preferred, as §7.3 says) before mail-auth expands the rest.
    fn explanation(&self, state: &mut State, answer: &Answer) -> Txt {
        let txt = explanation_txt(answer);
        let Txt::SpfMacro(text) = &txt else {
            return txt;
        };
        if !text.needs_ptr() {
            return txt;
        }
        let Some(names) = self.validated_names(state) else {
            // Missing answers: this run does not count (see `take_misses`).
            return txt;
        };
        let domain = state.run.domain.clone();
        let chosen = names
            .iter()
            .find(|n| domain.as_deref() == Some(&**n))
            .or_else(|| {
                names.iter().find(|n| {
                    domain
                        .as_deref()
                        .is_some_and(|d| n.ends_with(d) && n[..n.len() - d.len()].ends_with('.'))
                })
            })
            .or(names.first())
            .map_or("unknown", |n| &**n);
        Txt::SpfMacro(Arc::new(with_validated_domain(text, chosen)))
    }
}

/// `text` with every `%{p…}` replaced by its expansion for `name` (transformers applied by
/// mail-auth's own macro code).
fn with_validated_domain(text: &Macro, name: &str) -> Macro {
    let mut vars = Variables::new();
    vars.set_validated_domain(name.as_bytes().to_vec());
    let fill = |item: &Macro| match item {
        Macro::Variable {
            letter: Variable::ValidatedDomain,
            ..
        } => Macro::Literal(item.eval(&vars, "", false).as_bytes().into()),
        other => other.clone(),
    };
    match text {
        Macro::List(items) => Macro::List(items.iter().map(fill).collect()),
        other => fill(other),
    }
}

/// Implements mail-auth's `ResolverCache<$key, $value>` for `$cache` as a read-only view: `get`
/// answers with `$get` (`$this` is the cache, `$name` the key asked for); `remove` finds nothing
/// and `insert` is ignored, since mail-auth's own resolver here resolves nothing worth keeping
/// (at most the fallback server's placeholder answers).
macro_rules! read_only_cache {
    ($cache:ty, $key:ty, $value:ty, |$this:ident, $name:ident| $get:expr) => {
        impl ResolverCache<$key, $value> for $cache {
            fn get<Q>(&self, $name: &Q) -> Option<$value>
            where
                $key: Borrow<Q>,
                Q: Hash + Eq + ?Sized,
            {
                let $this = self;
                $get
            }
            fn remove<Q>(&self, _: &Q) -> Option<$value>
            where
                $key: Borrow<Q>,
                Q: Hash + Eq + ?Sized,
            {
                None
            }
            fn insert(&self, _: $key, _: $value, _: std::time::Instant) {}
        }
    };
}
pub(super) use read_only_cache;

read_only_cache!(LookupCache, Box<str>, Txt, |cache, name| cache
    .note(cache.txt(name)));
read_only_cache!(LookupCache, Box<str>, RecordSet<MX>, |cache, name| cache
    .note(cache.mx(name)));
read_only_cache!(LookupCache, Box<str>, RecordSet<Ipv4Addr>, |cache, name| {
    cache.note(cache.addresses(QueryType::A, name, |d| match d {
        RecordData::A(a) => Some(*a),
        _ => None,
    }))
});
read_only_cache!(LookupCache, Box<str>, RecordSet<Ipv6Addr>, |cache, name| {
    cache.note(cache.addresses(QueryType::Aaaa, name, |d| match d {
        RecordData::Aaaa(a) => Some(*a),
        _ => None,
    }))
});
read_only_cache!(LookupCache, IpAddr, RecordSet<Box<str>>, |cache, ip| {
    // The only address SPF reverse-resolves is the client's; compare through `Borrow`.
    let client: &Q = cache.client.borrow();
    if client != ip {
        return cache.note(None);
    }
    cache.note(cache.ptr(&cache.client))
});

// ---------------------------------------------------------------------------------------------
// Translations from mailshift answers to what mail-auth expects. Pure functions, tested below.
// ---------------------------------------------------------------------------------------------

/// A TXT answer as the SPF policy of a name (initial lookup, `include`, `redirect`).
///
/// * NXDOMAIN / NODATA → `RecordNotFound`, which mail-auth reads as "none" for the initial
///   lookup and permerror for `include`/`redirect` (RFC 7208 §4.3, §5.2, §6.1).
/// * a failed lookup or a CNAME loop → a resolver error: temperror (§4.4, §5.2).
/// * records, none of them SPF → `InvalidRecordType`, what mail-auth's own lookup gives (none /
///   permerror as above, §4.5).
/// * exactly one SPF record → parsed by mail-auth (a syntax error is a permerror, §4.6).
/// * more than one SPF record → permerror (§4.5). mail-auth would take the first that parses.
pub fn policy_txt(answer: &Answer) -> Txt {
    let records = match &answer.outcome {
        Outcome::Records(records) => records,
        Outcome::NxDomain => return not_found(ResponseCode::NXDomain),
        Outcome::NoData => return not_found(ResponseCode::NoError),
        Outcome::CnameLoop => return resolver_error("the CNAME chain loops"),
        Outcome::Failed(e) => return resolver_error(&e.to_string()),
    };
    // RFC 7208 §4.5: records that begin with "v=spf1" (case-insensitively) followed by a space
    // or the end; everything else at the name is none of SPF's business.
    let spf: Vec<Vec<u8>> = records
        .iter()
        .filter_map(|r| txt_bytes(&r.data))
        .filter(|bytes| is_spf_record(bytes))
        .collect();
    match spf.as_slice() {
        [] => Txt::Error(Error::Dns(DnsError::InvalidRecordType)),
        [record] if !record.is_ascii() => {
            // RFC 7208 §3.1/§4.6.1: the record's ABNF is 7-bit ASCII; anything else is a syntax
            // error (permerror). mail-auth's parser skips some non-ASCII bytes silently.
            Txt::Error(Error::ParseError)
        }
        [record] => {
            // RFC 7208 §4.6: "If there are any syntax errors anywhere in the record,
            // check_host() returns immediately with the result "permerror"". mail-auth's parser
            // accepts much that the ABNF does not (`ip4:300.1.1.1`, `a/33`, `=all`, unknown
            // mechanisms, malformed modifiers, control characters, `a:foo-bar`…), so the record
            // must also pass mailshift's own RFC 7208 parser — the one `checks` reports with, so
            // a record mailshift calls broken is never evaluated as if it were fine.
            let text = String::from_utf8_lossy(record);
            if !SpfRecord::parse(&text).errors.is_empty() {
                return Txt::Error(Error::ParseError);
            }
            Spf::parse(record).into()
        }
        // RFC 7208 §4.5: "If the resultant record set includes more than one record,
        // check_host() produces the "permerror" result."
        _ => Txt::Error(Error::ParseError),
    }
}

/// A TXT answer as an `exp=` explanation (RFC 7208 §6.2): exactly one record, its strings
/// joined, 7-bit printable ASCII, parsed as a macro string. Anything else — a DNS error, no
/// record, several records, a syntax error — means "as if there were no `exp=`", which
/// mail-auth does for any error value.
pub fn explanation_txt(answer: &Answer) -> Txt {
    let records = answer.records();
    let [record] = records else {
        return not_found(ResponseCode::NoError);
    };
    let Some(bytes) = txt_bytes(&record.data) else {
        return not_found(ResponseCode::NoError);
    };
    if !bytes.iter().all(|b| (0x20..=0x7e).contains(b)) {
        return Txt::Error(Error::ParseError);
    }
    Macro::parse(&bytes).into()
}

/// An MX answer: the exchanges grouped by preference, in preference order, as mail-auth's own
/// lookup builds them. A void answer is an empty set (mail-auth treats "not found" and "no
/// exchanges" alike: no match). The root exchange of a null MX (RFC 7505) is left out: it has
/// no address. A failure is not expressible as a cache value: `None` leaves it to the fallback
/// server (SERVFAIL → temperror).
pub fn mx_set(answer: &Answer) -> Option<RecordSet<MX>> {
    match &answer.outcome {
        Outcome::Records(records) => {
            let mut groups: Vec<(u16, Vec<Box<str>>)> = Vec::new();
            for record in records.iter() {
                let RecordData::Mx {
                    preference,
                    exchange,
                } = &record.data
                else {
                    continue;
                };
                if exchange.is_empty() {
                    continue;
                }
                let exchange: Box<str> = exchange.as_str().into();
                match groups.iter_mut().find(|(p, _)| p == preference) {
                    Some((_, list)) => list.push(exchange),
                    None => groups.push((*preference, vec![exchange])),
                }
            }
            groups.sort_by_key(|(p, _)| *p);
            Some(record_set(
                groups
                    .into_iter()
                    .filter(|(_, exchanges)| !exchanges.is_empty())
                    .map(|(preference, exchanges)| MX {
                        exchanges: exchanges.into_boxed_slice(),
                        preference,
                    })
                    .collect(),
            ))
        }
        Outcome::NxDomain | Outcome::NoData => Some(record_set(Vec::new())),
        Outcome::CnameLoop | Outcome::Failed(_) => None,
    }
}

/// An A or AAAA answer as a cache value: only an answer with addresses is served (see
/// `LookupCache::addresses` for why void answers are not).
pub fn address_set<T>(
    answer: &Answer,
    extract: fn(&RecordData) -> Option<T>,
) -> Option<RecordSet<T>> {
    match &answer.outcome {
        Outcome::Records(records) => {
            let addresses: Vec<T> = records.iter().filter_map(|r| extract(&r.data)).collect();
            (!addresses.is_empty()).then(|| record_set(addresses))
        }
        _ => None,
    }
}

/// The MX exchanges or PTR names of an answer whose addresses SPF will look up: at most 10
/// (RFC 7208 §4.6.4), lower case, without the trailing dot, without the root.
pub fn hosts_to_validate(answer: &Answer) -> Vec<String> {
    let mut hosts: Vec<String> = Vec::new();
    for record in answer.records() {
        let host = match &record.data {
            RecordData::Mx { exchange, .. } => exchange,
            RecordData::Ptr(name) => name,
            _ => continue,
        };
        let host = plain(host);
        if !host.is_empty() && !hosts.contains(&host) {
            hosts.push(host);
        }
        if hosts.len() == MAX_NAMES_PER_MECHANISM {
            break;
        }
    }
    hosts
}

fn resolves_to(answer: &Answer, ip: IpAddr) -> bool {
    answer.records().iter().any(|r| match (&r.data, ip) {
        (RecordData::A(a), IpAddr::V4(ip)) => *a == ip,
        (RecordData::Aaaa(a), IpAddr::V6(ip)) => *a == ip,
        _ => false,
    })
}

/// RFC 7208 §4.5: "v=spf1" (any case) followed by a space or the end of the record.
pub fn is_spf_record(bytes: &[u8]) -> bool {
    bytes.len() >= 6
        && bytes[..6].eq_ignore_ascii_case(b"v=spf1")
        && bytes.get(6).is_none_or(|b| *b == b' ')
}

fn txt_bytes(data: &RecordData) -> Option<Vec<u8>> {
    match data {
        RecordData::Txt(parts) => Some(parts.concat()),
        _ => None,
    }
}

pub(super) fn not_found(code: ResponseCode) -> Txt {
    Txt::Error(Error::Dns(DnsError::RecordNotFound(code)))
}

pub(super) fn resolver_error(reason: &str) -> Txt {
    Txt::Error(Error::Dns(DnsError::Resolver(reason.to_string())))
}

pub(super) fn record_set<T>(items: Vec<T>) -> RecordSet<T> {
    RecordSet {
        rrset: items.into(),
        dnssec_status: DnssecStatus::Indeterminate,
    }
}

fn hash_of<Q: Hash + ?Sized>(value: &Q) -> u64 {
    let mut hasher = DefaultHasher::new();
    value.hash(&mut hasher);
    hasher.finish()
}

/// `Example.COM.` → `example.com.` (the form mail-auth's `to_fqdn` gives its cache keys).
pub(super) fn fqdn(name: &str) -> Box<str> {
    let mut key = plain(name);
    key.push('.');
    key.into_boxed_str()
}

/// `Example.COM.` → `example.com` (mailshift's form).
pub(crate) fn plain(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_lowercase()
}

/// `192.0.2.1` → `1.2.0.192.in-addr.arpa`; IPv6 nibbles under `ip6.arpa`.
pub fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(ip) => {
            let [a, b, c, d] = ip.octets();
            format!("{d}.{c}.{b}.{a}.in-addr.arpa")
        }
        IpAddr::V6(ip) => {
            let mut name = String::with_capacity(72);
            for byte in ip.octets().iter().rev() {
                name.push_str(&format!("{:x}.{:x}.", byte & 0x0f, byte >> 4));
            }
            name.push_str("ip6.arpa");
            name
        }
    }
}

pub(crate) async fn fetch_all(resolver: &Resolver, questions: &[Miss]) -> Vec<Arc<Answer>> {
    futures::future::join_all(questions.iter().map(|(qtype, name)| async move {
        if name.is_empty() {
            // The root (e.g. `a:.`): nothing to ask; it holds no SPF data or addresses.
            return Arc::new(Answer {
                name: DomainName::from_ascii_unchecked(""),
                qtype: *qtype,
                outcome: Outcome::NoData,
                cname_chain: Vec::new(),
                cname_conflict: false,
                source: Source::Network,
            });
        }
        resolver
            .lookup(&DomainName::from_ascii_unchecked(name.clone()), *qtype)
            .await
    }))
    .await
}

// ---------------------------------------------------------------------------------------------
// The fallback server
// ---------------------------------------------------------------------------------------------

/// How long mail-auth's resolver waits for the fallback server. It answers at once; the timeout
/// only bounds the damage if it somehow could not.
const FALLBACK_TIMEOUT: Duration = Duration::from_secs(2);

/// A DNS responder on a loopback port of its own, where mail-auth's resolver is pointed.
///
/// Why not simply point mail-auth at an address where nothing answers? Because some outcomes can
/// only reach mail-auth as resolver errors (see the module documentation), and because a dead
/// address makes every miss cost a timeout (or, with ICMP port-unreachable, an error whose kind
/// depends on the platform). This responder answers every question immediately, from what
/// mailshift fetched, never forwards anything, and records what it was asked that nobody had
/// fetched. It serves only while [`FallbackServer::serve_during`] runs, on the caller's task, so
/// it needs no runtime of its own and nothing outlives the evaluation.
pub struct FallbackServer {
    socket: tokio::net::UdpSocket,
    addr: SocketAddr,
}

impl FallbackServer {
    /// Binds a UDP socket on 127.0.0.1 with an ephemeral port.
    pub async fn bind() -> std::io::Result<FallbackServer> {
        let socket = tokio::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = socket.local_addr()?;
        Ok(FallbackServer { socket, addr })
    }

    /// A mail-auth evaluator whose resolver asks only this server: UDP only (no TCP fallback),
    /// one attempt, no resolver cache (answers change between runs), no hosts file, no search
    /// domains, and `lookup_ip` (used by `exists`) asking for A records only (RFC 7208 §5.7).
    pub fn authenticator(&self) -> Result<MessageAuthenticator, String> {
        let mut udp = ConnectionConfig::udp();
        udp.port = self.addr.port();
        let mut server = NameServerConfig::udp(self.addr.ip());
        server.connections = vec![udp];
        server.trust_negative_responses = true;
        let config = ResolverConfig::from_name_servers(vec![server]);
        let mut opts = ResolverOpts::default();
        opts.timeout = FALLBACK_TIMEOUT;
        opts.attempts = 1;
        opts.cache_size = 0;
        opts.ndots = 0;
        opts.use_hosts_file = ResolveHosts::Never;
        opts.ip_strategy = LookupIpStrategy::Ipv4Only;
        opts.try_tcp_on_error = false;
        opts.edns0 = false;
        opts.num_concurrent_reqs = 1;
        let tls = tls_config()?;
        let resolver = TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
            .with_options(opts)
            .with_tls_config(tls.config.clone())
            .build()
            .map_err(|e| e.to_string())?;
        Ok(MessageAuthenticator(resolver))
    }

    /// Drives `work` (a mail-auth evaluation) while answering its resolver's questions.
    pub async fn serve_during<F: std::future::Future>(
        &self,
        cache: &LookupCache,
        work: F,
    ) -> F::Output {
        tokio::select! {
            biased;
            output = work => output,
            never = self.serve(cache) => match never {},
        }
    }

    async fn serve(&self, cache: &LookupCache) -> std::convert::Infallible {
        let mut buf = vec![0u8; 4096];
        loop {
            let Ok((len, from)) = self.socket.recv_from(&mut buf).await else {
                // Cannot receive any more: stop answering (mail-auth's questions then time out
                // after FALLBACK_TIMEOUT and count as temporary errors).
                return std::future::pending().await;
            };
            if let Some(response) = respond(cache, &buf[..len]) {
                let _ = self.socket.send_to(&response, from).await;
            }
        }
    }
}

/// The TLS client configuration hickory insists on building for every resolver.
///
/// `MessageAuthenticator::new` would build one every time, which loads and parses the system's
/// root certificates (milliseconds; most of the cost of an evaluation). mailshift's evaluators
/// never use TLS, but hickory builds the configuration anyway, so it is built once per process
/// and cloned.
fn tls_config() -> Result<&'static TlsConfig, String> {
    static TLS: OnceLock<Result<TlsConfig, String>> = OnceLock::new();
    TLS.get_or_init(|| TlsConfig::new().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(Clone::clone)
}

/// A mail-auth evaluator that cannot resolve anything: its resolver has no name server, so every
/// question it is asked fails at once ("no connections available", a temporary error), without
/// a socket or a task. Shared by the whole process.
///
/// Evaluations whose caches answer every question (see [`LookupCache::declined`] and
/// [`super::records::RecordCache`]) use it: mail-auth then never reaches its resolver, and if it
/// does, the run is known not to count.
pub fn null_authenticator() -> Result<&'static MessageAuthenticator, String> {
    static NULL: OnceLock<Result<MessageAuthenticator, String>> = OnceLock::new();
    NULL.get_or_init(|| {
        let mut opts = ResolverOpts::default();
        opts.cache_size = 0;
        opts.attempts = 1;
        opts.use_hosts_file = ResolveHosts::Never;
        opts.try_tcp_on_error = false;
        let resolver = TokioResolver::builder_with_config(
            ResolverConfig::from_name_servers(Vec::new()),
            TokioRuntimeProvider::default(),
        )
        .with_options(opts)
        .with_tls_config(tls_config()?.config.clone())
        .build()
        .map_err(|e| e.to_string())?;
        Ok(MessageAuthenticator(resolver))
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// A name from the wire as mail-auth spelled it in its cache key: the labels' bytes joined with
/// dots, without presentation-format escapes (`Name::to_ascii` would write `\\032` for a space).
fn name_text(name: &Name) -> String {
    name.iter()
        .map(|label| String::from_utf8_lossy(label).into_owned())
        .collect::<Vec<_>>()
        .join(".")
}

/// Builds the fallback server's response to one query.
fn respond(cache: &LookupCache, query: &[u8]) -> Option<Vec<u8>> {
    let request = Message::from_vec(query).ok()?;
    let mut rcode = ResponseCode::ServFail;
    for q in &request.queries {
        let qtype = match q.query_type() {
            RecordType::A => QueryType::A,
            RecordType::AAAA => QueryType::Aaaa,
            RecordType::TXT => QueryType::Txt,
            RecordType::MX => QueryType::Mx,
            RecordType::PTR => QueryType::Ptr,
            _ => continue,
        };
        rcode = cache.fallback_rcode(qtype, &name_text(q.name()));
    }
    let mut response = Message::error_msg(request.metadata.id, request.metadata.op_code, rcode);
    response.metadata.recursion_desired = request.metadata.recursion_desired;
    response.metadata.recursion_available = true;
    response.queries = request.queries.clone();
    response.to_vec().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::{LookupError, Record};
    use mail_auth::SpfResult;

    fn answer(qtype: QueryType, outcome: Outcome) -> Arc<Answer> {
        Arc::new(Answer {
            name: DomainName::from_ascii_unchecked("example.test"),
            qtype,
            outcome,
            cname_chain: Vec::new(),
            cname_conflict: false,
            source: Source::Network,
        })
    }

    fn records(data: Vec<RecordData>) -> Outcome {
        Outcome::Records(
            data.into_iter()
                .map(|data| Record { ttl: 300, data })
                .collect::<Vec<_>>()
                .into(),
        )
    }

    fn txt(strings: &[&str]) -> RecordData {
        RecordData::Txt(strings.iter().map(|s| s.as_bytes().to_vec()).collect())
    }

    fn txt_answer(strings: &[&[&str]]) -> Arc<Answer> {
        answer(
            QueryType::Txt,
            records(strings.iter().map(|s| txt(s)).collect()),
        )
    }

    /// What mail-auth makes of a TXT cache value for the initial lookup (`SpfResult` from an
    /// error is mail-auth's own conversion).
    fn initial_result(txt: Txt) -> Option<SpfResult> {
        match txt {
            Txt::Spf(_) => None,
            Txt::Error(e) => Some(e.into()),
            _ => Some(SpfResult::TempError),
        }
    }

    #[test]
    fn txt_outcomes_map_to_none_permerror_and_temperror() {
        let nx = policy_txt(&answer(QueryType::Txt, Outcome::NxDomain));
        assert!(matches!(
            nx,
            Txt::Error(Error::Dns(DnsError::RecordNotFound(ResponseCode::NXDomain)))
        ));
        assert_eq!(initial_result(nx), Some(SpfResult::None));
        let nodata = policy_txt(&answer(QueryType::Txt, Outcome::NoData));
        assert!(matches!(
            nodata,
            Txt::Error(Error::Dns(DnsError::RecordNotFound(ResponseCode::NoError)))
        ));
        assert_eq!(initial_result(nodata), Some(SpfResult::None));
        for failure in [
            Outcome::Failed(LookupError::Timeout),
            Outcome::Failed(LookupError::ServFail),
            Outcome::Failed(LookupError::Offline),
            Outcome::CnameLoop,
        ] {
            let t = policy_txt(&answer(QueryType::Txt, failure.clone()));
            assert!(matches!(t, Txt::Error(Error::Dns(DnsError::Resolver(_)))));
            assert_eq!(initial_result(t), Some(SpfResult::TempError), "{failure:?}");
        }
        // TXT records, none of them SPF: none (what mail-auth's own lookup gives).
        let other = policy_txt(&txt_answer(&[
            &["google-site-verification=x"],
            &["v=spf10"],
        ]));
        assert_eq!(initial_result(other), Some(SpfResult::None));
    }

    #[test]
    fn one_spf_record_is_parsed_with_strings_joined() {
        let t = policy_txt(&txt_answer(&[
            &["unrelated"],
            &["v=spf1 ip4:192.0.2.1 ", "-all"],
        ]));
        let Txt::Spf(spf) = t else {
            panic!("not parsed")
        };
        assert_eq!(spf.directives.len(), 2);
        // Case-insensitive version tag.
        assert!(matches!(
            policy_txt(&txt_answer(&[&["V=SpF1 -all"]])),
            Txt::Spf(_)
        ));
        // A syntax error is a permerror.
        let bad = policy_txt(&txt_answer(&[&["v=spf1 ip4:300.1.1.1 -all"]]));
        assert_eq!(initial_result(bad), Some(SpfResult::PermError));
    }

    #[test]
    fn two_spf_records_are_a_permerror_even_when_one_is_broken() {
        // RFC 7208 §4.5; mail-auth alone would take the first that parses.
        let t = policy_txt(&txt_answer(&[&["v=spf1 -all"], &["v=spf1 +all"]]));
        assert_eq!(initial_result(t), Some(SpfResult::PermError));
        let t = policy_txt(&txt_answer(&[&["v=spf1 ip4:x"], &["v=spf1 +all"]]));
        assert_eq!(initial_result(t), Some(SpfResult::PermError));
    }

    #[test]
    fn non_ascii_policy_is_a_permerror() {
        let answer = answer(
            QueryType::Txt,
            records(vec![RecordData::Txt(vec![b"v=spf1 \x80a -all".to_vec()])]),
        );
        assert_eq!(
            initial_result(policy_txt(&answer)),
            Some(SpfResult::PermError)
        );
    }

    #[test]
    fn explanations_need_exactly_one_ascii_record() {
        assert!(matches!(
            explanation_txt(&txt_answer(&[&["See ", "%{d}"]])),
            Txt::SpfMacro(_)
        ));
        for bad in [
            txt_answer(&[&["one"], &["two"]]),
            answer(QueryType::Txt, Outcome::NxDomain),
            answer(QueryType::Txt, Outcome::Failed(LookupError::Timeout)),
            answer(
                QueryType::Txt,
                records(vec![RecordData::Txt(vec![b"\xEF\xBB\xBFhi".to_vec()])]),
            ),
        ] {
            assert!(matches!(explanation_txt(&bad), Txt::Error(_)));
        }
    }

    #[test]
    fn mx_groups_by_preference_drops_null_mx_and_leaves_failures_to_the_server() {
        let mx = |preference, exchange: &str| RecordData::Mx {
            preference,
            exchange: exchange.into(),
        };
        let set = mx_set(&answer(
            QueryType::Mx,
            records(vec![
                mx(20, "b.test"),
                mx(10, "a.test"),
                mx(20, "c.test"),
                mx(0, ""),
            ]),
        ))
        .unwrap();
        assert_eq!(set.rrset.len(), 2);
        assert_eq!(set.rrset[0].preference, 10);
        assert_eq!(
            &*set.rrset[1].exchanges,
            &["b.test".into(), "c.test".into()]
        );
        assert!(mx_set(&answer(QueryType::Mx, Outcome::NxDomain))
            .unwrap()
            .rrset
            .is_empty());
        assert!(mx_set(&answer(QueryType::Mx, Outcome::NoData))
            .unwrap()
            .rrset
            .is_empty());
        assert!(mx_set(&answer(
            QueryType::Mx,
            Outcome::Failed(LookupError::Timeout)
        ))
        .is_none());
    }

    fn a_answer(ips: &[&str]) -> Arc<Answer> {
        answer(
            QueryType::A,
            records(
                ips.iter()
                    .map(|ip| RecordData::A(ip.parse().unwrap()))
                    .collect(),
            ),
        )
    }

    fn get_a(cache: &LookupCache, name: &str) -> Option<RecordSet<Ipv4Addr>> {
        <LookupCache as ResolverCache<Box<str>, RecordSet<Ipv4Addr>>>::get(cache, name)
    }

    fn get_aaaa(cache: &LookupCache, name: &str) -> Option<RecordSet<Ipv6Addr>> {
        <LookupCache as ResolverCache<Box<str>, RecordSet<Ipv6Addr>>>::get(cache, name)
    }

    #[test]
    fn addresses_void_and_failures_go_to_the_fallback_server() {
        let cache = LookupCache::new("192.0.2.1".parse().unwrap());
        cache.insert_answer(QueryType::A, "Has.Test", a_answer(&["192.0.2.1"]));
        cache.insert_answer(
            QueryType::A,
            "nx.test",
            answer(QueryType::A, Outcome::NxDomain),
        );
        cache.insert_answer(
            QueryType::A,
            "empty.test",
            answer(QueryType::A, Outcome::NoData),
        );
        cache.insert_answer(
            QueryType::A,
            "down.test",
            answer(QueryType::A, Outcome::Failed(LookupError::Timeout)),
        );
        cache.begin_run("example.test", None);
        assert_eq!(get_a(&cache, "has.test.").unwrap().rrset.len(), 1);
        assert!(get_a(&cache, "nx.test.").is_none());
        assert!(get_a(&cache, "empty.test.").is_none());
        assert!(get_a(&cache, "down.test.").is_none());
        assert!(get_a(&cache, "unknown.test.").is_none());
        assert_eq!(cache.void_lookups(), 2);
        // What the fallback server answers for them.
        assert_eq!(
            cache.fallback_rcode(QueryType::A, "nx.test."),
            ResponseCode::NXDomain
        );
        assert_eq!(
            cache.fallback_rcode(QueryType::A, "empty.test."),
            ResponseCode::NoError
        );
        assert_eq!(
            cache.fallback_rcode(QueryType::A, "down.test."),
            ResponseCode::ServFail
        );
        assert_eq!(
            cache.fallback_rcode(QueryType::A, "Unknown.test."),
            ResponseCode::ServFail
        );
        let misses = cache.take_misses();
        assert_eq!(
            misses.into_iter().collect::<Vec<_>>(),
            [(QueryType::A, "unknown.test".to_string())]
        );
        // An IPv4 client's AAAA cache is only asked by `exists`, which must use A only.
        cache.insert_answer(
            QueryType::Aaaa,
            "v6.test",
            answer(
                QueryType::Aaaa,
                records(vec![RecordData::Aaaa("2001:db8::1".parse().unwrap())]),
            ),
        );
        assert!(get_aaaa(&cache, "v6.test.").is_none());
    }

    #[test]
    fn exists_for_an_ipv6_client_ignores_aaaa() {
        let cache = LookupCache::new("2001:db8::1".parse().unwrap());
        let aaaa = answer(
            QueryType::Aaaa,
            records(vec![RecordData::Aaaa("2001:db8::1".parse().unwrap())]),
        );
        cache.insert_answer(QueryType::Aaaa, "host.test", aaaa);
        cache.insert_answer(
            QueryType::A,
            "host.test",
            answer(QueryType::A, Outcome::NoData),
        );
        cache.begin_run("example.test", None);
        // `a:host.test` asks AAAA only: served.
        assert!(get_aaaa(&cache, "host.test.").is_some());
        // `exists:host.test` asks A (void), then AAAA: not served, so mail-auth asks the
        // fallback server for A, which answers NODATA: no match.
        assert!(get_a(&cache, "host.test.").is_none());
        assert!(get_aaaa(&cache, "host.test.").is_none());
        assert_eq!(
            cache.fallback_rcode(QueryType::A, "host.test."),
            ResponseCode::NoError
        );
        // The next AAAA question is address matching again.
        assert!(get_aaaa(&cache, "host.test.").is_some());
    }

    #[test]
    fn ptr_names_are_validated_and_limited() {
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let cache = LookupCache::new(ip);
        assert_eq!(reverse_name(ip), "1.2.0.192.in-addr.arpa");
        let ptr = answer(
            QueryType::Ptr,
            records(vec![
                RecordData::Ptr("good.test".into()),
                RecordData::Ptr("liar.test".into()),
                RecordData::Ptr("down.test".into()),
            ]),
        );
        cache.insert_answer(QueryType::Ptr, "1.2.0.192.in-addr.arpa.", ptr);
        cache.insert_answer(QueryType::A, "good.test", a_answer(&["192.0.2.1"]));
        cache.insert_answer(QueryType::A, "liar.test", a_answer(&["198.51.100.1"]));
        cache.begin_run("example.test", None);
        let get = |c: &LookupCache| {
            <LookupCache as ResolverCache<IpAddr, RecordSet<Box<str>>>>::get(c, &ip)
        };
        // down.test not fetched yet: a miss, and nothing served.
        assert!(get(&cache).is_none());
        assert_eq!(
            cache.take_misses().into_iter().collect::<Vec<_>>(),
            [(QueryType::A, "down.test".to_string())]
        );
        cache.insert_answer(
            QueryType::A,
            "down.test",
            answer(QueryType::A, Outcome::Failed(LookupError::ServFail)),
        );
        let served = get(&cache).unwrap();
        assert_eq!(&*served.rrset, &["good.test".into()]);
        // Only the first 10 names count.
        let many = answer(
            QueryType::Ptr,
            records(
                (0..12)
                    .map(|i| RecordData::Ptr(format!("h{i}.test")))
                    .collect(),
            ),
        );
        assert_eq!(hosts_to_validate(&many).len(), MAX_NAMES_PER_MECHANISM);
        assert_eq!(
            reverse_name("2001:db8::1".parse().unwrap()),
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"
        );
    }

    #[test]
    fn explanation_index_switches_one_txt_question() {
        let cache = LookupCache::new("192.0.2.1".parse().unwrap());
        cache.insert_answer(
            QueryType::Txt,
            "d.test",
            txt_answer(&[&["v=spf1 -all exp=e.test"]]),
        );
        cache.insert_answer(QueryType::Txt, "e.test", txt_answer(&[&["Go away"]]));
        let get =
            |c: &LookupCache, n: &str| <LookupCache as ResolverCache<Box<str>, Txt>>::get(c, n);
        cache.begin_run("d.test", Some(1));
        assert!(matches!(get(&cache, "d.test."), Some(Txt::Spf(_))));
        assert!(cache.served_exp());
        assert!(matches!(get(&cache, "e.test."), Some(Txt::SpfMacro(_))));
        assert_eq!(cache.txt_questions(), 2);
        cache.begin_run("example.test", None);
        assert!(matches!(get(&cache, "e.test."), Some(Txt::Error(_))));
    }

    #[test]
    fn spf_version_tag_needs_a_space_or_the_end() {
        assert!(is_spf_record(b"v=spf1"));
        assert!(is_spf_record(b"v=spf1 -all"));
        assert!(is_spf_record(b"V=SPF1 -all"));
        assert!(!is_spf_record(b"v=spf10"));
        assert!(!is_spf_record(b"v=spf1\t-all"));
        assert!(!is_spf_record(b"spf2.0/pra"));
    }
}
