//! DNSSEC questions: the records a validator needs, as the server sent them.
//!
//! [`Resolver::lookup_dnssec`] asks one question with EDNS's DO bit and the CD bit set (on
//! sockets of their own, [`super::transport::Transport::dnssec`]) and keeps the response's
//! rcode, answer section and authority section as hickory records, RRSIG, NSEC, NSEC3, DS,
//! DNSKEY and TLSA included: what [`crate::dnssec::validate`] reads. Nothing is followed or
//! converted. Answers are cached for the run (in-flight questions shared, like
//! [`Resolver::lookup`]'s, in a cache of their own bounded by size), counted like every question
//! sent, and refused past [`MAX_DNSSEC_RECORDS`] records. Names inside `--zone` files are not
//! asked: a zone file carries no signatures, so DNSSEC does not apply to its answers.
//!
//! The path is separate from [`Resolver::lookup`] on purpose: a run that does not ask for
//! DNSSEC (`check --dnssec`) sends no DO bit, and its answers stay as small as before.

use super::{transport, zone, LookupError, Resolver};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{Name, Record, RecordType};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::OnceCell;

/// Records read from one DNSSEC response (answer and authority sections together): the
/// validator's own bound on one input set.
pub const MAX_DNSSEC_RECORDS: usize = crate::dnssec::MAX_RECORDS;

/// One DNSSEC question and what came back.
#[derive(Debug, Clone)]
pub struct DnssecAnswer {
    /// The question name, fully qualified.
    pub name: Name,
    pub record_type: RecordType,
    pub outcome: DnssecOutcome,
}

/// What a DNSSEC question gave.
#[derive(Debug, Clone)]
pub enum DnssecOutcome {
    /// The server's response (NOERROR or NXDOMAIN; SERVFAIL and REFUSED are failures).
    Response {
        rcode: ResponseCode,
        /// The answer section, RRSIGs included.
        answers: Vec<Record>,
        /// The authority section: the SOA and NSEC/NSEC3 proofs of a negative answer, with
        /// their RRSIGs.
        authorities: Vec<Record>,
    },
    /// The name is inside this `--zone` file: not asked.
    ZoneFile(PathBuf),
    Failed(LookupError),
}

impl DnssecAnswer {
    /// The records of the answer section (none when the question failed).
    pub fn answers(&self) -> &[Record] {
        match &self.outcome {
            DnssecOutcome::Response { answers, .. } => answers,
            _ => &[],
        }
    }

    /// The records of the authority section (none when the question failed).
    pub fn authorities(&self) -> &[Record] {
        match &self.outcome {
            DnssecOutcome::Response { authorities, .. } => authorities,
            _ => &[],
        }
    }

    /// About how many bytes the answer holds (for the cache's budget).
    fn weight(&self) -> usize {
        let records = self.answers().len() + self.authorities().len();
        ENTRY_OVERHEAD + self.name.len() + records * RECORD_WEIGHT
    }
}

/// Bytes one cached question costs beyond its records.
const ENTRY_OVERHEAD: usize = 192;
/// Bytes one DNSSEC record is taken to hold: RRSIGs and DNSKEYs are 100–300 bytes, NSEC
/// records less.
const RECORD_WEIGHT: usize = 256;

type Cell = Arc<OnceCell<Arc<DnssecAnswer>>>;
type Key = (String, u16);

/// The DNSSEC answers of a run, bounded by size like the main cache: two generations, what is
/// used again promoted, the rest dropped after two turns.
#[derive(Default)]
pub(super) struct SecureCache {
    young: HashMap<Key, Cell>,
    old: HashMap<Key, Cell>,
    young_bytes: usize,
    generation_bytes: usize,
}

impl SecureCache {
    pub(super) fn new(bytes: usize) -> SecureCache {
        SecureCache {
            generation_bytes: (bytes / 2).max(64 * 1024),
            ..SecureCache::default()
        }
    }

    fn cell(&mut self, key: &Key) -> Cell {
        if let Some(cell) = self.young.get(key) {
            return cell.clone();
        }
        let cell = self.old.remove(key).unwrap_or_default();
        let weight = cell.get().map_or(ENTRY_OVERHEAD, |a| a.weight());
        self.young.insert(key.clone(), cell.clone());
        self.add(weight);
        cell
    }

    fn add(&mut self, bytes: usize) {
        self.young_bytes += bytes;
        if self.young_bytes > self.generation_bytes {
            self.old = std::mem::take(&mut self.young);
            self.young_bytes = 0;
        }
    }
}

impl Resolver {
    /// Asks `name`/`record_type` with the DO and CD bits set, once per run (cached, shared
    /// with concurrent askers). Never fails: failures are in the outcome.
    pub async fn lookup_dnssec(&self, name: &Name, record_type: RecordType) -> Arc<DnssecAnswer> {
        let text = zone::name_text(name);
        let key = (text, u16::from(record_type));
        let cell = self.secure_cache().cell(&key);
        if let Some(answer) = cell.get() {
            self.inner.cache_hits.fetch_add(1, Ordering::Relaxed);
            return answer.clone();
        }
        let mut asked = false;
        let answer = cell
            .get_or_init(|| async {
                asked = true;
                let mut fqdn = name.clone();
                fqdn.set_fqdn(true);
                Arc::new(DnssecAnswer {
                    name: fqdn,
                    record_type,
                    outcome: self.ask_dnssec(&key.0, record_type).await,
                })
            })
            .await
            .clone();
        if asked {
            self.secure_cache().add(answer.weight());
        }
        answer
    }

    /// The `--zone` file whose zone holds `name` (mailshift's form: no trailing dot), if any.
    pub fn zone_file_for(&self, name: &str) -> Option<PathBuf> {
        self.inner
            .zones
            .covering_file(name)
            .map(std::path::Path::to_path_buf)
    }

    /// True when the run may not use the network (`--offline`).
    pub fn is_offline(&self) -> bool {
        self.inner.offline
    }

    fn secure_cache(&self) -> std::sync::MutexGuard<'_, SecureCache> {
        self.inner
            .secure_cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn ask_dnssec(&self, name: &str, record_type: RecordType) -> DnssecOutcome {
        if let Some(file) = self.inner.zones.covering_file(name) {
            return DnssecOutcome::ZoneFile(file.to_path_buf());
        }
        if self.inner.offline {
            return DnssecOutcome::Failed(LookupError::Offline);
        }
        let servers = match &self.inner.servers {
            Ok(servers) => servers.clone(),
            Err(reason) => return DnssecOutcome::Failed(LookupError::Network(reason.clone())),
        };
        let transport = self
            .inner
            .secure_transport
            .get_or_init(|| async {
                transport::Transport::dnssec(servers, self.inner.timeout, self.inner.attempts)
                    .map_err(|e| format!("cannot open a socket: {e}"))
            })
            .await;
        let transport = match transport {
            Ok(t) => t,
            Err(e) => return DnssecOutcome::Failed(LookupError::Network(e.clone())),
        };
        match self.send(transport, name, record_type).await {
            Ok(message) => {
                let rcode = message.metadata.response_code;
                if !matches!(rcode, ResponseCode::NoError | ResponseCode::NXDomain) {
                    return DnssecOutcome::Failed(LookupError::Network(format!(
                        "the server answered {rcode}"
                    )));
                }
                let count = message.answers.len() + message.authorities.len();
                if count > MAX_DNSSEC_RECORDS {
                    return DnssecOutcome::Failed(LookupError::Network(format!(
                        "the answer to {name} {record_type} holds {count} records; at most \
                         {MAX_DNSSEC_RECORDS} are read"
                    )));
                }
                DnssecOutcome::Response {
                    rcode,
                    answers: message.answers,
                    authorities: message.authorities,
                }
            }
            Err(e) => DnssecOutcome::Failed(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::DnsConfig;

    #[tokio::test]
    async fn names_in_zone_files_and_offline_runs_are_not_asked() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("draft.test.zone"),
            "$TTL 60\n@ IN SOA ns hm 1 1 1 1 1\n@ IN TXT \"v=spf1 -all\"\n",
        )
        .unwrap();
        let resolver = Resolver::new(&DnsConfig {
            zones: vec![dir.path().to_path_buf()],
            offline: true,
            ..DnsConfig::default()
        })
        .unwrap();
        let inside = Name::from_ascii("www.draft.test.").unwrap();
        let answer = resolver.lookup_dnssec(&inside, RecordType::TXT).await;
        assert!(
            matches!(&answer.outcome, DnssecOutcome::ZoneFile(path) if path.ends_with("draft.test.zone")),
            "{answer:?}"
        );
        let outside = Name::from_ascii("example.com.").unwrap();
        let answer = resolver.lookup_dnssec(&outside, RecordType::DS).await;
        assert!(matches!(
            answer.outcome,
            DnssecOutcome::Failed(LookupError::Offline)
        ));
        assert!(answer.answers().is_empty() && answer.authorities().is_empty());
        // Asked once: the second time comes from the cache.
        resolver.lookup_dnssec(&outside, RecordType::DS).await;
        assert_eq!(resolver.stats().queries, 0);
        assert!(resolver.stats().cache_hits >= 1);
        assert!(resolver.zone_file_for("draft.test").is_some());
        assert!(resolver.zone_file_for("example.com").is_none());
        assert!(resolver.is_offline());
    }

    #[test]
    fn the_cache_turns_its_generations_over() {
        let mut cache = SecureCache::new(0);
        for i in 0..2_000 {
            cache.cell(&(format!("n{i}.example"), 1));
        }
        assert!(cache.young.len() + cache.old.len() < 2_000);
    }
}
