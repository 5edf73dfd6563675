//! The DNSSEC fetch (`check --dnssec`): whether the answers the checks rely on validate, and
//! the TLSA records of the MX hosts (DANE).
//!
//! For each question (the domain's TXT, where SPF is, its MX, `_dmarc.<domain>` TXT and the
//! DMARC record found above it; `_25._tcp.<host>` TLSA for each MX host), the answer is asked
//! again with the DO and CD bits ([`Resolver::lookup_dnssec`]), and the chain of trust is built
//! as [`crate::dnssec`]'s module doc says: the zone holding the name is the owner of the SOA
//! a `NAME SOA` question brings back (in the answer at a zone's apex, in the authority section
//! elsewhere), each zone cut above it up to the trust anchor's zone is found the same way, and
//! each cut's DS (from the parent) and DNSKEY are asked, top down, stopping at the first cut
//! without DS: nothing below an unsigned delegation can be secure. [`crate::dnssec::validate`]
//! then gives the verdict, which is stored with the zones of the chain so the analysers
//! (`checks::dnssec`, `checks::dane`) stay pure. A CNAME is validated in its own zone and
//! followed (at most [`MAX_SECURE_CNAME_HOPS`]); the worst verdict along it counts.
//!
//! Every question goes through the resolver's cache, so the zones above a thousand domains
//! (the root, the TLD) are asked about once. Names inside `--zone` files carry no signatures:
//! they are not asked, and their verdict is "unchecked", as is everything with `--offline`.

use super::{mx_hosts, DomainRecords, MAX_MX_HOSTS};
use crate::dns::{DnssecAnswer, DnssecOutcome, QueryType, Resolver};
use crate::dnssec::anchor::{Anchors, TrustAnchor};
use crate::dnssec::{self, Failure, Insecure, Verdict, ZoneLink, MAX_CHAIN_LINKS};
use crate::domain::DomainName;
use futures::future::join_all;
use hickory_proto::dnssec::rdata::DNSSECRData;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use std::sync::Arc;
use std::time::SystemTime;

/// CNAMEs followed from one question, at most.
pub const MAX_SECURE_CNAME_HOPS: usize = 8;

/// What a run validates against (`check --dnssec`, `--trust-anchor`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnssecRequest {
    pub anchors: Anchors,
}

impl Default for DnssecRequest {
    /// The root's keys.
    fn default() -> Self {
        DnssecRequest {
            anchors: Anchors::root(),
        }
    }
}

/// How far an answer can be trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Security {
    /// Signed all the way from the trust anchor.
    Secure,
    /// Below a delegation its parent proves unsigned.
    Insecure(Insecure),
    /// A link of the chain does not validate.
    Bogus(Failure),
    /// A question the chain needed could not be answered (or no trust anchor covers the name).
    Inconclusive(String),
    /// DNSSEC does not apply: the name comes from a `--zone` file.
    Unchecked(String),
}

impl Security {
    /// Orders verdicts from best to worst, to combine a CNAME chain's.
    fn rank(&self) -> u8 {
        match self {
            Security::Secure => 0,
            Security::Insecure(_) => 1,
            Security::Unchecked(_) => 2,
            Security::Inconclusive(_) => 3,
            Security::Bogus(_) => 4,
        }
    }

    fn worse(self, other: Security) -> Security {
        if other.rank() > self.rank() {
            other
        } else {
            self
        }
    }
}

/// Why a chain could not be built: a question failed, or was not asked.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Stop {
    Inconclusive(String),
    Unchecked(String),
}

impl From<Stop> for Security {
    fn from(stop: Stop) -> Security {
        match stop {
            Stop::Inconclusive(reason) => Security::Inconclusive(reason),
            Stop::Unchecked(reason) => Security::Unchecked(reason),
        }
    }
}

/// One question's DNSSEC verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secured {
    pub name: DomainName,
    pub record_type: RecordType,
    pub security: Security,
    /// The zones of the chain, from the trust anchor's down to the one holding the answer
    /// (the last CNAME target's); shorter when it stops at an unsigned delegation.
    pub chain: Vec<String>,
    /// CNAME targets followed.
    pub cnames: Vec<DomainName>,
    /// The answer holds records of the type asked for (not a denial).
    pub has_records: bool,
}

/// The TLSA records of one MX host, and how far they can be trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaneHost {
    pub host: DomainName,
    /// The `_25._tcp.<host>` TLSA question.
    pub tlsa: Secured,
    /// Each TLSA record's RDATA, as served (read by `records::tlsa`).
    pub records: Vec<Vec<u8>>,
}

/// What `check --dnssec` found for one domain.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DnssecRecords {
    /// Why nothing was validated (the domain's zone comes from a `--zone` file, `--offline`).
    pub unchecked: Option<String>,
    /// The verdicts of the questions the checks rely on: the domain's TXT and MX, then DMARC.
    pub questions: Vec<Secured>,
    /// One entry per MX host (at most [`MAX_MX_HOSTS`]), in preference order.
    pub dane: Vec<DaneHost>,
}

impl DnssecRecords {
    /// The verdict of one question, if it was validated.
    pub fn question(&self, name: &DomainName, record_type: RecordType) -> Option<&Secured> {
        self.questions
            .iter()
            .find(|q| q.name == *name && q.record_type == record_type)
    }
}

/// Validates the answers the checks of `records.domain` rely on, and looks up its MX hosts'
/// TLSA records; stores the verdicts in `records.dnssec`. Call after [`super::fetch_domain`]
/// (the MX hosts and the DMARC walk come from its answers).
pub async fn fetch_dnssec(
    resolver: &Resolver,
    request: &DnssecRequest,
    records: &mut DomainRecords,
) {
    let domain = records.domain.clone();
    if let Some(file) = resolver.zone_file_for(domain.as_str()) {
        records.dnssec = Some(DnssecRecords {
            unchecked: Some(format!(
                "{domain} is answered from the --zone file {}, which carries no signatures",
                file.display()
            )),
            ..DnssecRecords::default()
        });
        return;
    }
    if resolver.is_offline() {
        records.dnssec = Some(DnssecRecords {
            unchecked: Some("--offline: validating needs the network".into()),
            ..DnssecRecords::default()
        });
        return;
    }
    let mut questions = vec![
        (domain.clone(), RecordType::TXT),
        (domain.clone(), RecordType::MX),
        (domain.child("_dmarc"), RecordType::TXT),
    ];
    // The DMARC record that applies, when the walk found it above the domain.
    if let Some(found) = records.dmarc_walk.last() {
        let has_record = records
            .get(found, QueryType::Txt)
            .is_some_and(|a| !a.records().is_empty());
        if has_record && !questions.iter().any(|(n, _)| n == found) {
            questions.push((found.clone(), RecordType::TXT));
        }
    }
    let hosts: Vec<DomainName> = records
        .get(&domain, QueryType::Mx)
        .map(mx_hosts)
        .unwrap_or_default()
        .into_iter()
        .take(MAX_MX_HOSTS)
        .collect();
    let validator = Validator {
        resolver,
        anchors: &request.anchors,
        now: SystemTime::now(),
    };
    let (secured, dane) = futures::join!(
        join_all(
            questions
                .iter()
                .map(|(name, record_type)| validator.secure(name, *record_type))
        ),
        join_all(hosts.iter().map(|host| async {
            let name = crate::records::tlsa::smtp_tlsa_name(host);
            let (tlsa, answer) = validator.secure(&name, RecordType::TLSA).await;
            DaneHost {
                host: host.clone(),
                records: answer.map(|a| tlsa_rdata(&a)).unwrap_or_default(),
                tlsa,
            }
        })),
    );
    records.dnssec = Some(DnssecRecords {
        unchecked: None,
        questions: secured.into_iter().map(|(s, _)| s).collect(),
        dane,
    });
}

/// The TLSA records in an answer's answer section (at whatever name: the question's, or the
/// end of its CNAME chain), as RDATA.
fn tlsa_rdata(answer: &DnssecAnswer) -> Vec<Vec<u8>> {
    answer
        .answers()
        .iter()
        .filter(|r| r.name.eq_ignore_root(&answer.name))
        .filter_map(|r| match &r.data {
            RData::TLSA(tlsa) => {
                let mut rdata = vec![
                    u8::from(tlsa.cert_usage),
                    u8::from(tlsa.selector),
                    u8::from(tlsa.matching),
                ];
                rdata.extend_from_slice(&tlsa.cert_data);
                Some(rdata)
            }
            _ => None,
        })
        .collect()
}

/// One run's anchors and clock, over the resolver.
struct Validator<'a> {
    resolver: &'a Resolver,
    anchors: &'a Anchors,
    now: SystemTime,
}

/// One step of a question: the verdict in the zone holding the name, and the CNAME to follow.
struct Step {
    security: Security,
    chain: Vec<String>,
    cname: Option<Name>,
    has_records: bool,
}

impl Step {
    fn stop(security: Security) -> Step {
        Step {
            security,
            chain: Vec::new(),
            cname: None,
            has_records: false,
        }
    }
}

impl Validator<'_> {
    /// Validates one question, following CNAMEs; returns the verdict and the last answer.
    async fn secure(
        &self,
        name: &DomainName,
        record_type: RecordType,
    ) -> (Secured, Option<Arc<DnssecAnswer>>) {
        let mut secured = Secured {
            name: name.clone(),
            record_type,
            security: Security::Secure,
            chain: Vec::new(),
            cnames: Vec::new(),
            has_records: false,
        };
        let Some(mut current) = wire(name.as_str()) else {
            secured.security = Security::Inconclusive(format!("`{name}` cannot be asked"));
            return (secured, None);
        };
        let mut last = None;
        for hop in 0..=MAX_SECURE_CNAME_HOPS {
            let answer = self.resolver.lookup_dnssec(&current, record_type).await;
            let step = self.step(&current, record_type, &answer).await;
            last = Some(answer);
            secured.chain = step.chain;
            secured.has_records = step.has_records;
            let security = std::mem::replace(&mut secured.security, Security::Secure);
            secured.security = security.worse(step.security);
            let Some(target) = step.cname else {
                break;
            };
            if secured.security.rank() >= Security::Inconclusive(String::new()).rank() {
                break;
            }
            if hop == MAX_SECURE_CNAME_HOPS {
                secured.security = Security::Inconclusive(format!(
                    "{name} is a chain of more than {MAX_SECURE_CNAME_HOPS} CNAMEs"
                ));
                break;
            }
            secured.cnames.push(domain_name(&target));
            current = target;
        }
        (secured, last)
    }

    /// The verdict on one answer in the zone that holds its name.
    async fn step(&self, name: &Name, record_type: RecordType, answer: &DnssecAnswer) -> Step {
        if let Err(stop) = usable(answer) {
            return Step::stop(stop.into());
        }
        let zone = match self.zone_of(name).await {
            Ok(zone) => zone,
            Err(stop) => return Step::stop(stop.into()),
        };
        let (anchor, links) = match self.chain_to(&zone).await {
            Ok(found) => found,
            Err(stop) => return Step::stop(stop.into()),
        };
        let chain = links.iter().map(|l| show(&l.zone)).collect();
        let (records, cname, has_records) = answer_records(answer, name, record_type, &zone);
        let security = match dnssec::validate(&anchor.records, &links, &records, self.now) {
            Ok(Verdict::Secure) => Security::Secure,
            Ok(Verdict::Insecure(insecure)) => Security::Insecure(insecure),
            Ok(Verdict::Bogus(failure)) => Security::Bogus(failure),
            Err(e) => Security::Inconclusive(format!("{} cannot be validated: {e}", show(name))),
        };
        Step {
            security,
            chain,
            cname,
            has_records,
        }
    }

    /// The zone holding `name`: the owner of the SOA its `SOA` question brings back.
    async fn zone_of(&self, name: &Name) -> Result<Name, Stop> {
        let mut asked = name.clone();
        for _ in 0..=name.num_labels() {
            let answer = self.resolver.lookup_dnssec(&asked, RecordType::SOA).await;
            usable(&answer)?;
            let at_name = |r: &&Record| r.name.eq_ignore_root(&asked);
            if answer
                .answers()
                .iter()
                .filter(at_name)
                .any(|r| r.record_type() == RecordType::SOA)
            {
                return Ok(fqdn(&asked));
            }
            if answer
                .answers()
                .iter()
                .filter(at_name)
                .any(|r| r.record_type() == RecordType::CNAME)
            {
                // A CNAME is never at a zone's apex: its zone is its parent's.
                if asked.is_root() {
                    break;
                }
                asked = asked.base_name();
                continue;
            }
            return answer
                .authorities()
                .iter()
                .find(|r| r.record_type() == RecordType::SOA && r.name.zone_of(&asked))
                .map(|r| fqdn(&r.name))
                .ok_or_else(|| {
                    Stop::Inconclusive(format!(
                        "the answer to {} SOA names no zone (no SOA record in it)",
                        show(&asked)
                    ))
                });
        }
        Err(Stop::Inconclusive(format!(
            "no zone was found for {}",
            show(name)
        )))
    }

    /// The links from the trust anchor's zone down to `zone` (or to the first cut without DS).
    async fn chain_to(&self, zone: &Name) -> Result<(&TrustAnchor, Vec<ZoneLink>), Stop> {
        let anchor = self
            .anchors
            .covering(zone)
            .ok_or_else(|| Stop::Inconclusive(format!("no trust anchor covers {}", show(zone))))?;
        let mut zones = vec![fqdn(zone)];
        let mut current = fqdn(zone);
        while !current.eq_ignore_root(&anchor.zone) {
            if zones.len() >= MAX_CHAIN_LINKS || current.is_root() {
                return Err(Stop::Inconclusive(format!(
                    "more than {MAX_CHAIN_LINKS} zone cuts above {}",
                    show(zone)
                )));
            }
            let parent = self.zone_of(&current.base_name()).await?;
            if !anchor.zone.zone_of(&parent) {
                return Err(Stop::Inconclusive(format!(
                    "the trust anchor's zone {} is not a zone apex: the zone above {} is {}",
                    show(&anchor.zone),
                    show(&current),
                    show(&parent)
                )));
            }
            zones.push(parent.clone());
            current = parent;
        }
        zones.reverse();
        let Some((top, below)) = zones.split_first() else {
            return Err(Stop::Inconclusive("an empty chain".into()));
        };
        let (top_keys, ds_answers) = futures::join!(
            self.resolver.lookup_dnssec(top, RecordType::DNSKEY),
            join_all(
                below
                    .iter()
                    .map(|z| self.resolver.lookup_dnssec(z, RecordType::DS))
            ),
        );
        usable(&top_keys)?;
        let mut links = vec![ZoneLink {
            zone: top.clone(),
            ds: Vec::new(),
            dnskey: top_keys.answers().to_vec(),
        }];
        for (zone, ds) in below.iter().zip(&ds_answers) {
            usable(ds)?;
            let has_ds = ds
                .answers()
                .iter()
                .any(|r| r.record_type() == RecordType::DS && r.name.eq_ignore_root(zone));
            links.push(ZoneLink {
                zone: zone.clone(),
                ds: ds
                    .answers()
                    .iter()
                    .chain(ds.authorities())
                    .cloned()
                    .collect(),
                dnskey: Vec::new(),
            });
            if !has_ds {
                break;
            }
        }
        // Each zone with a DS gives its keys; the last may be an unsigned delegation.
        let signed: Vec<usize> = (1..links.len())
            .filter(|&i| {
                links.get(i).is_some_and(|l| {
                    l.ds.iter().any(|r| {
                        r.record_type() == RecordType::DS && r.name.eq_ignore_root(&l.zone)
                    })
                })
            })
            .collect();
        let keys = join_all(
            signed
                .iter()
                .filter_map(|&i| links.get(i))
                .map(|l| self.resolver.lookup_dnssec(&l.zone, RecordType::DNSKEY)),
        )
        .await;
        for (&i, answer) in signed.iter().zip(keys) {
            usable(&answer)?;
            if let Some(link) = links.get_mut(i) {
                link.dnskey = answer.answers().to_vec();
            }
        }
        Ok((anchor, links))
    }
}

/// `Err` with the verdict for an answer that was not asked or did not come.
fn usable(answer: &DnssecAnswer) -> Result<(), Stop> {
    match &answer.outcome {
        DnssecOutcome::Response { .. } => Ok(()),
        DnssecOutcome::ZoneFile(path) => Err(Stop::Unchecked(format!(
            "{} is answered from the --zone file {}",
            show(&answer.name),
            path.display()
        ))),
        DnssecOutcome::Failed(e) => Err(Stop::Inconclusive(format!(
            "{} {}: {e}",
            show(&answer.name),
            answer.record_type
        ))),
    }
}

/// What of an answer is validated in `zone`: the RRset asked for at the name with its RRSIGs;
/// or the CNAME there (and its target, to follow); or, for a negative answer, the SOA and
/// NSEC/NSEC3 records of the authority section (their signatures are checked, not what they
/// deny: see the validator's module doc). Returns the records, the CNAME target, and whether
/// the answer holds records of the type.
fn answer_records(
    answer: &DnssecAnswer,
    name: &Name,
    record_type: RecordType,
    zone: &Name,
) -> (Vec<Record>, Option<Name>, bool) {
    let of_type = |records: &[Record], types: &[RecordType]| -> Vec<Record> {
        records
            .iter()
            .filter(|r| zone.zone_of(&r.name))
            .filter(|r| types.contains(&covered(r)))
            .cloned()
            .collect()
    };
    let at_name: Vec<Record> = answer
        .answers()
        .iter()
        .filter(|r| r.name.eq_ignore_root(name))
        .cloned()
        .collect();
    let data = of_type(&at_name, &[record_type]);
    if data.iter().any(|r| r.record_type() == record_type) {
        return (data, None, true);
    }
    let cname = of_type(&at_name, &[RecordType::CNAME]);
    let target = cname.iter().find_map(|r| match &r.data {
        RData::CNAME(target) => Some(fqdn(&target.0)),
        _ => None,
    });
    if target.is_some() {
        return (cname, target, false);
    }
    let proof = of_type(
        answer.authorities(),
        &[RecordType::SOA, RecordType::NSEC, RecordType::NSEC3],
    );
    (proof, None, false)
}

/// The type a record stands for: its own, or the one an RRSIG covers.
fn covered(record: &Record) -> RecordType {
    match &record.data {
        RData::DNSSEC(DNSSECRData::RRSIG(sig)) => sig.input().type_covered,
        _ => record.record_type(),
    }
}

/// A name as asked: each label's bytes as they are, fully qualified.
fn wire(text: &str) -> Option<Name> {
    let mut name = Name::from_labels(text.split('.').map(str::as_bytes)).ok()?;
    name.set_fqdn(true);
    Some(name)
}

fn fqdn(name: &Name) -> Name {
    let mut name = name.clone();
    name.set_fqdn(true);
    name
}

fn domain_name(name: &Name) -> DomainName {
    DomainName::from_ascii_unchecked(crate::dns::zone::name_text(name))
}

/// A zone as mailshift shows names: without the trailing dot; the root as `.`.
pub fn show(name: &Name) -> String {
    if name.is_root() {
        return ".".into();
    }
    crate::dns::zone::name_text(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::ResponseCode;
    use hickory_proto::rr::rdata::{CNAME, TXT};

    fn name(text: &str) -> Name {
        Name::from_ascii(text).unwrap()
    }

    fn txt(owner: &str) -> Record {
        Record::from_rdata(name(owner), 300, RData::TXT(TXT::new(vec!["x".into()])))
    }

    fn answer(answers: Vec<Record>, authorities: Vec<Record>) -> DnssecAnswer {
        DnssecAnswer {
            name: name("a.example."),
            record_type: RecordType::TXT,
            outcome: DnssecOutcome::Response {
                rcode: ResponseCode::NoError,
                answers,
                authorities,
            },
        }
    }

    #[test]
    fn the_answer_validated_is_the_rrset_the_cname_or_the_denial() {
        let zone = name("example.");
        let found = answer(vec![txt("a.example."), txt("other.example.")], vec![]);
        let (records, cname, has) =
            answer_records(&found, &name("a.example."), RecordType::TXT, &zone);
        assert_eq!(records.len(), 1);
        assert!(has && cname.is_none());
        let alias = answer(
            vec![
                Record::from_rdata(
                    name("a.example."),
                    300,
                    RData::CNAME(CNAME(name("b.elsewhere."))),
                ),
                txt("b.elsewhere."),
            ],
            vec![],
        );
        let (records, cname, has) =
            answer_records(&alias, &name("a.example."), RecordType::TXT, &zone);
        assert_eq!(records.len(), 1);
        assert_eq!(cname, Some(name("b.elsewhere.")));
        assert!(!has);
        // A denial: the authority section's records in the zone, nothing else.
        let soa = Record::from_rdata(
            name("example."),
            300,
            RData::SOA(hickory_proto::rr::rdata::SOA::new(
                name("ns.example."),
                name("hm.example."),
                1,
                2,
                3,
                4,
                5,
            )),
        );
        let denial = answer(vec![], vec![soa, txt("outside.test.")]);
        let (records, cname, has) =
            answer_records(&denial, &name("a.example."), RecordType::TXT, &zone);
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].record_type(), RecordType::SOA);
        assert!(cname.is_none() && !has);
    }

    #[test]
    fn verdicts_combine_to_the_worst() {
        let inconclusive = Security::Inconclusive("x".into());
        assert_eq!(
            Security::Secure.worse(inconclusive.clone()),
            inconclusive.clone()
        );
        assert_eq!(inconclusive.clone().worse(Security::Secure), inconclusive);
        assert_eq!(show(&Name::root()), ".");
        assert_eq!(show(&name("Post.Bryggeri.SE.")), "post.bryggeri.se");
    }
}
