//! What the adapters feeding mail-auth's DKIM, ARC and DMARC evaluators from mailshift's
//! resolver share ([`super::records`] is the adapter itself): the evaluator that resolves
//! nothing ([`null_authenticator`]), a read-only cache for mail-auth's `ResolverCache`, the
//! cache values for "not found" and resolver errors, the spelling of cache keys, and fetching a
//! batch of questions through mailshift's [`Resolver`] at once.
//!
//! SPF does not go through mail-auth: `evaluate::spf` evaluates RFC 7208 itself.

use crate::dns::{Answer, Outcome, QueryType, Resolver, Source};
use crate::domain::DomainName;
use mail_auth::hickory_resolver::config::{ResolveHosts, ResolverConfig, ResolverOpts};
use mail_auth::hickory_resolver::net::runtime::TokioRuntimeProvider;
use mail_auth::hickory_resolver::proto::op::ResponseCode;
use mail_auth::hickory_resolver::{TlsConfig, TokioResolver};
use mail_auth::{DnsError, DnssecStatus, Error, MessageAuthenticator, RecordSet, Txt};
use std::sync::{Arc, OnceLock};

/// A question: the type and the name (lower case, no trailing dot, as mailshift's
/// [`DomainName`] spells it).
pub type Question = (QueryType, String);

/// Implements mail-auth's `ResolverCache<$key, $value>` for `$cache` as a read-only view: `get`
/// answers with `$get` (`$this` is the cache, `$name` the key asked for); `remove` finds nothing
/// and `insert` is ignored, since mail-auth's own resolver here ([`null_authenticator`])
/// resolves nothing worth keeping.
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

pub(crate) async fn fetch_all(resolver: &Resolver, questions: &[Question]) -> Vec<Arc<Answer>> {
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
/// Evaluations whose caches answer every question ([`super::records::RecordCache`]) use it: mail-auth then never reaches its resolver, and if it
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
