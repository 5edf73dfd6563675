//! Feeding mail-auth's DKIM, ARC and DMARC evaluators from mailshift's resolver.
//!
//! These evaluators ask almost only TXT questions, and every TXT outcome (records, NXDOMAIN,
//! NODATA, a failure) can be handed to mail-auth as a cache value:
//!
//! 1. the names an evaluation will ask are fetched first through mailshift's [`Resolver`] (the
//!    callers know them from the message: `s._domainkey.d` of every DKIM-Signature and ARC set,
//!    the `_dmarc` names of the RFC 9989 tree walks) and converted to mail-auth's values;
//! 2. mail-auth runs with [`RecordCache`] as its caches and [`super::cache::null_authenticator`] as its
//!    resolver, which resolves nothing;
//! 3. a question the cache cannot answer is recorded *by name* and the run does not count: the
//!    name is fetched and the evaluation repeated (rare: an ATPS or DKIM report record, the
//!    existence check of DMARC's `np`). The name comes from the key itself: mail-auth asks with a
//!    `&str`, and a `str` hashes as its bytes followed by `0xff` (see [`name_of`]).
//!
//! One outcome has no cache value: DMARC's existence test (RFC 9989 `np`) reads an A lookup, and
//! only a resolver can say NXDOMAIN. The cache answers "exists" (records or NODATA) itself and
//! leaves NXDOMAIN to the caller ([`RecordCache::nxdomain`]), which corrects the policy.

use super::cache::{
    fetch_all, fqdn, not_found, plain, read_only_cache, record_set, resolver_error,
};
use crate::dns::{Answer, Outcome, QueryType, RecordData, Resolver};
use mail_auth::common::parse::TxtRecordParser;
use mail_auth::common::verify::DomainKey;
use mail_auth::dkim::{Atps, DomainKeyReport};
use mail_auth::dmarc::Dmarc;
use mail_auth::hickory_resolver::proto::op::ResponseCode;
use mail_auth::{DnsError, Error, RecordSet, ResolverCache, Txt};
use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex, MutexGuard};

/// Upper bound on runs of one mail-auth evaluation (each further run needs a name the previous
/// one could not foresee).
pub const MAX_ROUNDS: usize = 4;

/// What a TXT name is asked for, which decides how its records are parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TxtKind {
    /// A DKIM (or ARC) public key, `selector._domainkey.domain`.
    DomainKey,
    /// RFC 6651 DKIM failure reporting, `_report._domainkey.domain`.
    DomainKeyReport,
    /// RFC 6541 third-party signature authorisation.
    Atps,
    /// A DMARC policy record, `_dmarc.domain`.
    Dmarc,
}

/// Which mail-auth evaluator is running (decides the kind of a TXT name it could not get).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evaluator {
    Dkim,
    Arc,
    Dmarc,
}

/// A question to fetch: a TXT name of some kind, or an A lookup (DMARC's existence test).
/// Names are lower case without the trailing dot.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Question {
    Txt(TxtKind, String),
    A(String),
}

/// The answers fetched for one message's DKIM, ARC and DMARC evaluations, served to mail-auth
/// as its TXT and A caches.
pub struct RecordCache {
    state: Mutex<State>,
}

struct State {
    evaluator: Evaluator,
    /// mail-auth's values, keyed as mail-auth asks (lower case, trailing dot), per kind.
    keys: HashMap<Box<str>, Txt>,
    reports: HashMap<Box<str>, Txt>,
    atps: HashMap<Box<str>, Txt>,
    dmarc: HashMap<Box<str>, Txt>,
    /// The answers behind the values, for evidence (key records, policy records).
    answers: HashMap<Question, Arc<Answer>>,
    /// A answers (DMARC's existence test), keyed as mail-auth asks.
    a: HashMap<Box<str>, Arc<Answer>>,
    /// Questions the current run needed that nobody had fetched.
    misses: Vec<Question>,
    /// Questions whose name could not be recovered (never expected; the run then ends with
    /// mail-auth's temporary error).
    unnamed: usize,
    /// Questions asked through mailshift's resolver for this message.
    asked: usize,
}

impl Default for RecordCache {
    fn default() -> Self {
        RecordCache::new()
    }
}

impl RecordCache {
    pub fn new() -> RecordCache {
        RecordCache {
            state: Mutex::new(State {
                evaluator: Evaluator::Dkim,
                keys: HashMap::new(),
                reports: HashMap::new(),
                atps: HashMap::new(),
                dmarc: HashMap::new(),
                answers: HashMap::new(),
                a: HashMap::new(),
                misses: Vec::new(),
                unnamed: 0,
                asked: 0,
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts a run of `evaluator`.
    pub fn begin_run(&self, evaluator: Evaluator) {
        let mut state = self.state();
        state.evaluator = evaluator;
        state.misses.clear();
        state.unnamed = 0;
    }

    /// The questions the last run needed that nobody had fetched (clearing the list), and
    /// whether some question could not even be named.
    pub fn take_misses(&self) -> (Vec<Question>, bool) {
        let mut state = self.state();
        let mut misses = std::mem::take(&mut state.misses);
        misses.sort();
        misses.dedup();
        (misses, state.unnamed > 0)
    }

    /// Questions asked through mailshift's resolver so far.
    pub fn questions(&self) -> usize {
        self.state().asked
    }

    /// Whether `question` has been fetched.
    pub fn knows(&self, question: &Question) -> bool {
        self.state().answers.contains_key(question)
    }

    /// The answer fetched for `question`.
    pub fn answer(&self, question: &Question) -> Option<Arc<Answer>> {
        self.state().answers.get(question).cloned()
    }

    /// The DMARC value served for `name` (lower case, no trailing dot), once fetched.
    pub fn dmarc(&self, name: &str) -> Option<Txt> {
        self.state().dmarc.get(&*fqdn(name)).cloned()
    }

    /// The DKIM key fetched for `name` (lower case, no trailing dot), when it parsed.
    pub fn domain_key(&self, name: &str) -> Option<Arc<DomainKey>> {
        match self.state().keys.get(&*fqdn(name)) {
            Some(Txt::DomainKey(key)) => Some(key.clone()),
            _ => None,
        }
    }

    /// Whether the A lookup of `name` answered NXDOMAIN (which the cache cannot tell mail-auth).
    pub fn nxdomain(&self, name: &str) -> bool {
        self.answer(&Question::A(plain(name)))
            .is_some_and(|a| a.outcome == Outcome::NxDomain)
    }

    /// Adds an answer fetched through mailshift.
    pub fn insert(&self, question: &Question, answer: Arc<Answer>) {
        let mut state = self.state();
        match question {
            Question::Txt(kind, name) => {
                let key = fqdn(name);
                let value = match kind {
                    TxtKind::DomainKey => parsed_txt::<DomainKey>(&answer),
                    TxtKind::DomainKeyReport => parsed_txt::<DomainKeyReport>(&answer),
                    TxtKind::Atps => parsed_txt::<Atps>(&answer),
                    // A failed lookup at the top-level domain (`_dmarc.test` with `--offline`
                    // and a zone for `shop.test`) is read as "no record there", as `check`
                    // does: it says nothing about the domain's own policy, and TLD operators
                    // publish none in practice. Below the TLD a failure stays a failure.
                    TxtKind::Dmarc
                        if name.split('.').count() == 2
                            && matches!(answer.outcome, Outcome::Failed(_)) =>
                    {
                        not_found(ResponseCode::NXDomain)
                    }
                    TxtKind::Dmarc => dmarc_txt(&answer),
                };
                let map = match kind {
                    TxtKind::DomainKey => &mut state.keys,
                    TxtKind::DomainKeyReport => &mut state.reports,
                    TxtKind::Atps => &mut state.atps,
                    TxtKind::Dmarc => &mut state.dmarc,
                };
                map.insert(key, value);
            }
            Question::A(name) => {
                state.a.insert(fqdn(name), answer.clone());
            }
        }
        state.answers.insert(question.clone(), answer);
    }

    /// Fetches the questions not fetched yet, concurrently, and adds the answers.
    pub async fn fetch(&self, resolver: &Resolver, questions: &[Question]) {
        let mut wanted: Vec<Question> = {
            let state = self.state();
            questions
                .iter()
                .filter(|q| !state.answers.contains_key(*q))
                .cloned()
                .collect()
        };
        wanted.sort();
        wanted.dedup();
        if wanted.is_empty() {
            return;
        }
        let lookups: Vec<(QueryType, String)> = wanted
            .iter()
            .map(|q| match q {
                Question::Txt(_, name) => (QueryType::Txt, name.clone()),
                Question::A(name) => (QueryType::A, name.clone()),
            })
            .collect();
        // Names that are not domain names (a `d=` of `***`) exist nowhere: they are answered
        // NXDOMAIN here rather than sent to a resolver, which could only fail on them.
        let (valid, invalid): (Vec<usize>, Vec<usize>) =
            (0..lookups.len()).partition(|&i| super::dkim::is_domain_name(&lookups[i].1));
        let asked: Vec<(QueryType, String)> = valid.iter().map(|&i| lookups[i].clone()).collect();
        let mut fetched = fetch_all(resolver, &asked).await.into_iter();
        let mut answers: Vec<Arc<Answer>> = Vec::with_capacity(lookups.len());
        for (i, (qtype, name)) in lookups.iter().enumerate() {
            if invalid.contains(&i) {
                answers.push(Arc::new(Answer {
                    name: crate::domain::DomainName::from_ascii_unchecked(name.clone()),
                    qtype: *qtype,
                    outcome: Outcome::NxDomain,
                    cname_chain: Vec::new(),
                    cname_conflict: false,
                    source: crate::dns::Source::Network,
                }));
            } else if let Some(answer) = fetched.next() {
                answers.push(answer);
            }
        }
        self.state().asked += asked.len();
        for (question, answer) in wanted.iter().zip(answers) {
            self.insert(question, answer);
        }
    }

    /// Ends a run: fetches what it needed and nobody had fetched, and returns `true` when it
    /// must be repeated. A run stands when it needed nothing new, or after [`MAX_ROUNDS`] runs
    /// (with mail-auth's temporary errors for what is still missing).
    pub async fn repeat(&self, resolver: &Resolver, round: usize) -> bool {
        let (misses, _) = self.take_misses();
        if misses.is_empty() || round >= MAX_ROUNDS {
            return false;
        }
        self.fetch(resolver, &misses).await;
        true
    }

    fn txt<Q>(&self, name: &Q) -> Option<Txt>
    where
        Box<str>: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let mut state = self.state();
        let found = match state.evaluator {
            Evaluator::Dkim => state
                .keys
                .get(name)
                .or_else(|| state.reports.get(name))
                .or_else(|| state.atps.get(name)),
            Evaluator::Arc => state.keys.get(name),
            Evaluator::Dmarc => state.dmarc.get(name),
        }
        .cloned();
        if found.is_none() {
            match name_of(name) {
                Some(text) => {
                    let kind = kind_of(state.evaluator, &text);
                    state.misses.push(Question::Txt(kind, plain(&text)));
                }
                None => state.unnamed += 1,
            }
        }
        found
    }

    fn ipv4<Q>(&self, name: &Q) -> Option<RecordSet<Ipv4Addr>>
    where
        Box<str>: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let mut state = self.state();
        let Some(answer) = state.a.get(name).cloned() else {
            match name_of(name) {
                Some(text) => state.misses.push(Question::A(plain(&text))),
                None => state.unnamed += 1,
            }
            return None;
        };
        match &answer.outcome {
            // The name exists: with addresses, or without (NODATA). mail-auth only asks whether
            // the lookup succeeded.
            Outcome::Records(records) => Some(record_set(
                records
                    .iter()
                    .filter_map(|r| match r.data {
                        RecordData::A(a) => Some(a),
                        _ => None,
                    })
                    .collect(),
            )),
            Outcome::NoData => Some(record_set(Vec::new())),
            // NXDOMAIN, or no answer: mail-auth asks its resolver, which fails; the caller
            // corrects the NXDOMAIN case (`nxdomain`).
            _ => None,
        }
    }
}

/// The kind of TXT record `evaluator` wants at `name` (`name` as mail-auth asked it).
fn kind_of(evaluator: Evaluator, name: &str) -> TxtKind {
    let lower = name.to_ascii_lowercase();
    match evaluator {
        Evaluator::Dmarc => TxtKind::Dmarc,
        Evaluator::Arc => TxtKind::DomainKey,
        Evaluator::Dkim if lower.starts_with("_report._domainkey.") => TxtKind::DomainKeyReport,
        Evaluator::Dkim if lower.contains("._atps.") => TxtKind::Atps,
        Evaluator::Dkim => TxtKind::DomainKey,
    }
}

/// Records the bytes a value hashes as. `str` (and `String`, `Box<str>`) hash as their UTF-8
/// bytes followed by the byte `0xff` (`Hasher::write_str`'s definition), which is never part of
/// UTF-8 text.
struct NameRecorder(Vec<u8>);

impl Hasher for NameRecorder {
    fn finish(&self) -> u64 {
        0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
    }
}

/// The text of a cache key mail-auth asked with (it asks with `&str`), or `None` if the key did
/// not hash like a string.
pub fn name_of<Q: Hash + ?Sized>(key: &Q) -> Option<String> {
    let mut recorder = NameRecorder(Vec::with_capacity(64));
    key.hash(&mut recorder);
    let bytes = recorder.0.strip_suffix(&[0xff])?;
    String::from_utf8(bytes.to_vec()).ok()
}

// ---------------------------------------------------------------------------------------------
// Translations from mailshift answers to what mail-auth expects. Pure functions, tested below.
// ---------------------------------------------------------------------------------------------

/// A TXT answer as mail-auth's own lookup would give it for a record type `T`: the first record
/// (strings joined) that parses, else the last parse error; `InvalidRecordType` without
/// records; `RecordNotFound` for NXDOMAIN / NODATA; a resolver error (temporary) for a failure.
pub fn parsed_txt<T: TxtRecordParser + Into<Txt>>(answer: &Answer) -> Txt {
    let records = match &answer.outcome {
        Outcome::Records(records) => records,
        Outcome::NxDomain => return not_found(ResponseCode::NXDomain),
        Outcome::NoData => return not_found(ResponseCode::NoError),
        Outcome::CnameLoop => return resolver_error("the CNAME chain loops"),
        Outcome::Failed(e) => return resolver_error(&e.to_string()),
    };
    let mut result: mail_auth::Result<T> = Err(Error::Dns(DnsError::InvalidRecordType));
    for record in records.iter() {
        let RecordData::Txt(parts) = &record.data else {
            continue;
        };
        result = T::parse(&parts.concat());
        if result.is_ok() {
            break;
        }
    }
    result.into()
}

/// The marker error for "more than one DMARC record at a name" (see [`dmarc_txt`]).
pub const MULTIPLE_DMARC_RECORDS: &str = "more than one DMARC record";

/// A `_dmarc` TXT answer. As [`parsed_txt`], except that RFC 9989 §4.10 discards a record set
/// with more than one DMARC record (records beginning with `v=DMARC1`) and ends policy discovery
/// ("DMARC does not apply"); mail-auth would take the first that parses. That outcome is handed
/// to mail-auth as an error it does not treat as "no record here", so its walk stops, and is
/// recognised by the caller ([`MULTIPLE_DMARC_RECORDS`]).
pub fn dmarc_txt(answer: &Answer) -> Txt {
    if let Outcome::Records(_) = &answer.outcome {
        // RFC 9989 §4.7: "v" must be exactly "DMARC1", or the record is ignored; mail-auth
        // also accepts other cases (`v=dmarc1`).
        let records: Vec<String> = answer
            .txt_strings()
            .into_iter()
            .filter(|t| exact_dmarc_version(t))
            .collect();
        return match records.as_slice() {
            [] => Txt::Error(Error::Dns(DnsError::InvalidRecordType)),
            [one] => Dmarc::parse(one.as_bytes()).into(),
            _ => Txt::Error(Error::Io(MULTIPLE_DMARC_RECORDS.into())),
        };
    }
    parsed_txt::<Dmarc>(answer)
}

/// The record starts with the version tag `v=DMARC1` (exact case; whitespace allowed around
/// `=`, RFC 9989 §4.7), followed by `;`, whitespace or the end.
pub fn exact_dmarc_version(text: &str) -> bool {
    let Some(rest) = text.strip_prefix('v') else {
        return false;
    };
    let Some(rest) = rest.trim_start_matches([' ', '\t']).strip_prefix('=') else {
        return false;
    };
    let Some(rest) = rest.trim_start_matches([' ', '\t']).strip_prefix("DMARC1") else {
        return false;
    };
    rest.is_empty() || rest.starts_with([';', ' ', '\t'])
}

// mail-auth's caches for TXT and A: read-only views, as for SPF.
read_only_cache!(RecordCache, Box<str>, Txt, |cache, name| cache.txt(name));
read_only_cache!(RecordCache, Box<str>, RecordSet<Ipv4Addr>, |cache, name| {
    cache.ipv4(name)
});

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::{LookupError, Record, Source};
    use crate::domain::DomainName;

    fn answer(outcome: Outcome) -> Arc<Answer> {
        Arc::new(Answer {
            name: DomainName::from_ascii_unchecked("example.test"),
            qtype: QueryType::Txt,
            outcome,
            cname_chain: Vec::new(),
            cname_conflict: false,
            source: Source::Network,
        })
    }

    fn txt(records: &[&[&str]]) -> Arc<Answer> {
        answer(Outcome::Records(
            records
                .iter()
                .map(|strings| Record {
                    ttl: 300,
                    data: RecordData::Txt(strings.iter().map(|s| s.as_bytes().to_vec()).collect()),
                })
                .collect::<Vec<_>>()
                .into(),
        ))
    }

    #[test]
    fn names_are_recovered_from_string_keys() {
        assert_eq!(
            name_of("sel._domainkey.example.com.").as_deref(),
            Some("sel._domainkey.example.com.")
        );
        let boxed: Box<str> = "x.test.".into();
        assert_eq!(name_of(&boxed).as_deref(), Some("x.test."));
        assert_eq!(name_of(&String::from("")).as_deref(), Some(""));
        // Not a string: no name.
        assert_eq!(name_of(&42u64), None);
    }

    #[test]
    fn txt_outcomes_become_mail_auth_values() {
        assert!(matches!(
            parsed_txt::<DomainKey>(&answer(Outcome::NxDomain)),
            Txt::Error(Error::Dns(DnsError::RecordNotFound(ResponseCode::NXDomain)))
        ));
        assert!(matches!(
            parsed_txt::<DomainKey>(&answer(Outcome::NoData)),
            Txt::Error(Error::Dns(DnsError::RecordNotFound(ResponseCode::NoError)))
        ));
        assert!(matches!(
            parsed_txt::<DomainKey>(&answer(Outcome::Failed(LookupError::Timeout))),
            Txt::Error(Error::Dns(DnsError::Resolver(_)))
        ));
        // The first record that parses, strings joined.
        let key = txt(&[
            &["unrelated"],
            &[
                "v=DKIM1; k=ed25519; ",
                "p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
            ],
        ]);
        assert!(matches!(parsed_txt::<DomainKey>(&key), Txt::DomainKey(_)));
        assert!(matches!(
            parsed_txt::<DomainKey>(&txt(&[&["v=DKIM1; k=rsa; p="]])),
            Txt::Error(Error::Dkim(_))
        ));
    }

    #[test]
    fn several_dmarc_records_end_discovery() {
        assert!(matches!(
            dmarc_txt(&txt(&[&["v=DMARC1; p=reject"]])),
            Txt::Dmarc(_)
        ));
        assert!(matches!(
            dmarc_txt(&txt(&[&["v=DMARC1; p=reject"], &["v=DMARC1; p=none"]])),
            Txt::Error(Error::Io(m)) if m == MULTIPLE_DMARC_RECORDS
        ));
        // Other TXT records beside one DMARC record are ignored.
        assert!(matches!(
            dmarc_txt(&txt(&[&["v=spf1 -all"], &["v=DMARC1; p=none"]])),
            Txt::Dmarc(_)
        ));
        // Not exactly `v=DMARC1`: ignored.
        assert!(matches!(
            dmarc_txt(&txt(&[&["v=dmarc1; p=reject"]])),
            Txt::Error(Error::Dns(DnsError::InvalidRecordType))
        ));
        assert!(matches!(
            dmarc_txt(&txt(&[&["v = DMARC1; p=reject"]])),
            Txt::Dmarc(_)
        ));
        assert!(!exact_dmarc_version("v=DMARC1x; p=none"));
        // Only non-DMARC records: no record here (the walk goes on).
        assert!(matches!(
            dmarc_txt(&txt(&[&["some other txt record"]])),
            Txt::Error(Error::Dns(DnsError::InvalidRecordType))
        ));
    }

    #[test]
    fn misses_are_recorded_by_name_and_kind() {
        let cache = RecordCache::new();
        cache.begin_run(Evaluator::Dkim);
        let get = |name: &str| <RecordCache as ResolverCache<Box<str>, Txt>>::get(&cache, name);
        assert!(get("s1._domainkey.Example.com.").is_none());
        assert!(get("_report._domainkey.example.com.").is_none());
        let (misses, unnamed) = cache.take_misses();
        assert!(!unnamed);
        assert_eq!(
            misses,
            [
                Question::Txt(TxtKind::DomainKey, "s1._domainkey.example.com".into()),
                Question::Txt(
                    TxtKind::DomainKeyReport,
                    "_report._domainkey.example.com".into()
                ),
            ]
        );
        cache.insert(
            &Question::Txt(TxtKind::DomainKey, "s1._domainkey.example.com".into()),
            txt(&[&["v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="]]),
        );
        cache.begin_run(Evaluator::Dkim);
        assert!(matches!(
            <RecordCache as ResolverCache<Box<str>, Txt>>::get(
                &cache,
                "s1._domainkey.example.com."
            ),
            Some(Txt::DomainKey(_))
        ));
        // A DMARC run does not see DKIM keys.
        cache.begin_run(Evaluator::Dmarc);
        assert!(<RecordCache as ResolverCache<Box<str>, Txt>>::get(
            &cache,
            "s1._domainkey.example.com."
        )
        .is_none());
    }

    #[test]
    fn existence_is_served_except_nxdomain() {
        let cache = RecordCache::new();
        let a = |outcome| {
            Arc::new(Answer {
                qtype: QueryType::A,
                ..(*answer(outcome)).clone()
            })
        };
        cache.insert(&Question::A("nodata.test".into()), a(Outcome::NoData));
        cache.insert(&Question::A("nx.test".into()), a(Outcome::NxDomain));
        cache.begin_run(Evaluator::Dmarc);
        let get = |name: &str| {
            <RecordCache as ResolverCache<Box<str>, RecordSet<Ipv4Addr>>>::get(&cache, name)
        };
        assert!(get("nodata.test.").is_some());
        assert!(get("nx.test.").is_none());
        assert!(cache.nxdomain("nx.test"));
        assert!(!cache.nxdomain("nodata.test"));
        assert!(get("unknown.test.").is_none());
        assert_eq!(cache.take_misses().0, [Question::A("unknown.test".into())]);
    }
}
