//! DNSSEC validation of one answer along its chain of trust, as a pure function of the records:
//! given a trust anchor, the DS and DNSKEY RRsets of each zone cut from the anchor down (with
//! their RRSIGs), and the answer, [`validate`] says whether the answer is secure, insecure (an
//! unsigned delegation that the parent proves with NSEC or NSEC3, and where the chain stops) or
//! bogus (which link failed, and why), following RFC 4033–4035, RFC 5155 (NSEC3) and RFC 6840.
//! The signatures, digests and NSEC3 hashes are hickory-proto's (aws-lc-rs); this module owns the
//! order of the checks, the verdict and the bounds that keep a hostile zone from making it work
//! without end (KeyTrap, CVE-2023-50387: at most [`MAX_SIGNATURE_CHECKS_PER_RRSET`] signature
//! checks per RRset, [`MAX_SIGNATURE_CHECKS`] in all, [`MAX_DS_DIGESTS_PER_ZONE`] DS digests per
//! zone).
//!
//! # What the resolver must ask to fill a chain
//!
//! Every question is sent with EDNS0's DO bit set (RFC 4035 §3.2.1: without it no RRSIG, NSEC
//! or NSEC3 comes back) and the CD bit set (RFC 4035 §3.2.2: a validating upstream resolver
//! would otherwise answer SERVFAIL for bogus data, and the failing link could not be named).
//! The records kept are the answer section *and* the authority section (negative answers carry
//! their NSEC/NSEC3 proofs and RRSIGs there), RRSIGs included. For a name in zone `Z`:
//! 1. The anchor: the root's key-signing keys ([`anchor::Anchors::root`]), or a configured
//!    DS/DNSKEY set for some zone `A` above `Z` (`--trust-anchor`, [`anchor::Anchors::parse`]).
//! 2. For each zone cut from `A` down to `Z` (a cut is where `NAME SOA` is answered by `NAME`
//!    itself, or the owner of the SOA in a negative answer's authority section): `CUT DS`
//!    (the DS RRset and its RRSIGs, or the NSEC/NSEC3 records and RRSIGs of the NODATA answer)
//!    and, unless that proved there is no DS, `CUT DNSKEY`: one [`ZoneLink`] per cut, `A` first.
//! 3. The question itself (`Z`'s answer RRsets with their RRSIGs) as `answer`.
//!
//! Not covered: proofs of non-existence for the answer itself (NXDOMAIN/NODATA: each RRset in
//! `answer` is checked to be signed, not what it denies), the proof that no closer name exists
//! when an answer was expanded from a wildcard (its signature is checked), and the NSEC3
//! opt-out closest-encloser proof (a covering opt-out NSEC3 is taken as the proof, as hickory's
//! own validator does).
//!
//! `fetch::dnssec` asks those questions (`Resolver::lookup_dnssec`) for `check --dnssec`.

pub mod anchor;

use hickory_proto::dnssec::rdata::{DNSSECRData, DNSKEY, DS, NSEC, NSEC3, RRSIG};
use hickory_proto::dnssec::{Algorithm, Verifier};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType, SerialNumber};
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Zone cuts followed from the anchor down (the deepest real delegation chains have a handful).
pub const MAX_CHAIN_LINKS: usize = 16;
/// Records read from one input set (a link's DS or DNSKEY answer, the anchor, the answer).
pub const MAX_RECORDS: usize = 256;
/// Signature verifications tried for one RRset before giving up: KeyTrap (CVE-2023-50387) makes
/// a validator try every RRSIG against every key with a colliding tag; 8 is also hickory's own
/// validator's bound.
pub const MAX_SIGNATURE_CHECKS_PER_RRSET: usize = 8;
/// Signature verifications tried in one [`validate`] call, over all RRsets.
pub const MAX_SIGNATURE_CHECKS: usize = 128;
/// DS digests computed for one zone cut (each is a hash of a DNSKEY).
pub const MAX_DS_DIGESTS_PER_ZONE: usize = 8;
/// NSEC3 iterations above this make the proof unusable: the zone is treated as insecure, as
/// RFC 9276 §3.2 allows and BIND does, rather than hashing without bound.
pub const MAX_NSEC3_ITERATIONS: u16 = 150;

/// One zone cut on the way down from the trust anchor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneLink {
    /// The zone's apex.
    pub zone: Name,
    /// The parent's answer to `ZONE DS`: the DS RRset with its RRSIGs, or, when there is no
    /// DS, the NSEC or NSEC3 records proving that, with their RRSIGs. Not read for the first
    /// link, which the trust anchor vouches for.
    pub ds: Vec<Record>,
    /// The zone's answer to `ZONE DNSKEY`, RRSIGs included. Empty when `ds` proves there is no DS.
    pub dnskey: Vec<Record>,
}

/// What validation concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every link, and every answer RRset, is signed by keys the anchor vouches for.
    Secure,
    /// The chain reaches a delegation the parent proves unsigned: nothing below it can be secure.
    Insecure(Insecure),
    /// A link does not validate.
    Bogus(Failure),
}

/// Where a chain of trust stops without failing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Insecure {
    /// The last zone validated (it vouches for the proof).
    pub parent: Name,
    /// The delegation without a usable DS.
    pub child: Name,
    pub reason: InsecureReason,
}

/// How a delegation was shown to be unsigned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InsecureReason {
    /// An NSEC at the child's name lists NS but no DS (RFC 4035 §5.2).
    NsecDeniesDs,
    /// An NSEC3 matching the child's hashed name lists NS but no DS (RFC 5155 §8.6).
    Nsec3DeniesDs,
    /// An opt-out NSEC3 covers the child's hashed name (RFC 5155 §6): the parent does not say
    /// whether unsigned delegations in that span exist.
    Nsec3OptOut,
    /// The NSEC3 records use more iterations than [`MAX_NSEC3_ITERATIONS`].
    Nsec3IterationsAboveLimit { iterations: u16 },
    /// No DS uses an algorithm and digest this build validates (RFC 4035 §5.2, RFC 6840 §5.2).
    UnsupportedAlgorithms { algorithms: Vec<u8> },
}

/// The link that failed: the zone whose data it is, the RRset, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The zone that signs the failing RRset (the parent for DS records and their NSEC/NSEC3).
    pub zone: Name,
    /// The owner of the failing RRset.
    pub owner: Name,
    pub record_type: RecordType,
    pub reason: BogusReason,
}

/// Why a link is bogus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BogusReason {
    /// No RRSIG over the RRset from its zone, with an algorithm this build verifies.
    NoSignature,
    /// The RRSIG's validity ended before now (an expiration time, seconds since 1970).
    SignatureExpired { expiration: u32 },
    /// The RRSIG's validity starts after now.
    SignatureNotYetValid { inception: u32 },
    /// A trusted key with the RRSIG's tag and algorithm exists; the signature does not verify.
    SignatureDoesNotVerify { key_tag: u16 },
    /// No trusted key of the zone has the RRSIG's key tag and algorithm.
    NoKeyForSignature { key_tag: u16 },
    /// The RRSIG names another signer than the zone the RRset is in.
    SignerIsNotZone { signer: Name },
    /// The zone answered no DNSKEY RRset.
    NoDnskey,
    /// No DNSKEY of the zone is one that the parent's DS records describe.
    NoDnskeyMatchesDs { key_tags: Vec<u16> },
    /// No DNSKEY of the zone is one of the trust anchor's keys.
    NoDnskeyMatchesAnchor,
    /// The parent gave neither DS records nor a signed proof that there are none.
    NoDsProof,
    /// The parent's NSEC/NSEC3 at the delegation lists DS, yet no DS RRset was given.
    DsDenialContradicted,
    /// The parent proves the name is not a delegation: it does not exist, or has no NS.
    NotADelegation,
    /// More signature checks than the KeyTrap bounds allow would be needed.
    TooManySignatureChecks { tried: usize },
}

/// The input cannot be validated as given (a caller's mistake or an oversized answer).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error("the chain of zones is empty")]
    EmptyChain,
    #[error("the chain has {0} zones; at most {max} are followed", max = MAX_CHAIN_LINKS)]
    TooManyLinks(usize),
    #[error("{count} records given for {what}; at most {max} are read", max = MAX_RECORDS)]
    TooManyRecords { what: String, count: usize },
    #[error("the chain goes from {parent} to {child}, which is not below it")]
    NotNested { parent: String, child: String },
    #[error("the trust anchor holds no DS or DNSKEY record for {zone}, the chain's first zone")]
    AnchorNotForZone { zone: String },
    #[error("the answer record {owner} is not in {zone}, the chain's last zone")]
    AnswerOutsideZone { owner: String, zone: String },
}

/// True when the records include RRSIGs: the server sent DNSSEC data (the DO bit was honoured
/// and the zone is signed).
pub fn has_signatures(records: &[Record]) -> bool {
    records.iter().any(|r| r.record_type() == RecordType::RRSIG)
}

/// Validates `answer` (RRsets of the chain's last zone, with their RRSIGs; empty to validate
/// the chain alone) along `chain`, whose first zone `anchor` (DS or DNSKEY records) vouches
/// for, at time `now`.
pub fn validate(
    anchor: &[Record],
    chain: &[ZoneLink],
    answer: &[Record],
    now: SystemTime,
) -> Result<Verdict, InputError> {
    check_input(anchor, chain, answer)?;
    let now = serial_time(now);
    let mut budget = Budget::default();
    let Some((first, below)) = chain.split_first() else {
        return Err(InputError::EmptyChain);
    };
    let first_zone = fqdn(&first.zone);
    let trust = anchor_trust(anchor, &first_zone)?;
    let mut keys = match zone_keys(&first_zone, &trust, &first.dnskey, now, &mut budget) {
        Ok(keys) => keys,
        Err(stop) => return Ok(stop.into_verdict(&first_zone, &first_zone)),
    };
    let mut parent = first_zone;
    for link in below {
        let zone = fqdn(&link.zone);
        let ds_set: Vec<&Record> = rrset(&link.ds, &zone, RecordType::DS);
        if ds_set.is_empty() {
            return Ok(
                match prove_no_ds(&parent, &keys, &zone, &link.ds, now, &mut budget) {
                    Ok(reason) => Verdict::Insecure(Insecure {
                        parent,
                        child: zone,
                        reason,
                    }),
                    Err(failure) => Verdict::Bogus(*failure),
                },
            );
        }
        let signatures = signatures(&link.ds, &zone, RecordType::DS);
        let signed = verify_rrset(
            &parent,
            &keys,
            &zone,
            RecordType::DS,
            &ds_set,
            &signatures,
            now,
            &mut budget,
        );
        if let Err(reason) = signed {
            return Ok(Verdict::Bogus(Failure {
                zone: parent,
                owner: zone,
                record_type: RecordType::DS,
                reason,
            }));
        }
        let ds: Vec<&DS> = ds_set.iter().filter_map(|r| as_ds(r)).collect();
        keys = match zone_keys(&zone, &Trust::Ds(ds), &link.dnskey, now, &mut budget) {
            Ok(keys) => keys,
            Err(stop) => return Ok(stop.into_verdict(&parent, &zone)),
        };
        parent = zone;
    }
    for (owner, record_type) in rrset_keys(answer) {
        let records = rrset(answer, &owner, record_type);
        let signatures = signatures(answer, &owner, record_type);
        let signed = verify_rrset(
            &parent,
            &keys,
            &owner,
            record_type,
            &records,
            &signatures,
            now,
            &mut budget,
        );
        if let Err(reason) = signed {
            return Ok(Verdict::Bogus(Failure {
                zone: parent,
                owner,
                record_type,
                reason,
            }));
        }
    }
    Ok(Verdict::Secure)
}

fn check_input(anchor: &[Record], chain: &[ZoneLink], answer: &[Record]) -> Result<(), InputError> {
    if chain.is_empty() {
        return Err(InputError::EmptyChain);
    }
    if chain.len() > MAX_CHAIN_LINKS {
        return Err(InputError::TooManyLinks(chain.len()));
    }
    let too_many = |what: String, records: &[Record]| {
        (records.len() > MAX_RECORDS).then_some(InputError::TooManyRecords {
            what,
            count: records.len(),
        })
    };
    if let Some(e) = too_many("the trust anchor".into(), anchor) {
        return Err(e);
    }
    if let Some(e) = too_many("the answer".into(), answer) {
        return Err(e);
    }
    for link in chain {
        let zone = show(&link.zone);
        if let Some(e) = too_many(format!("{zone} DS"), &link.ds) {
            return Err(e);
        }
        if let Some(e) = too_many(format!("{zone} DNSKEY"), &link.dnskey) {
            return Err(e);
        }
    }
    for pair in chain.windows(2) {
        if let [parent, child] = pair {
            if !parent.zone.zone_of(&child.zone) || parent.zone.eq_ignore_root(&child.zone) {
                return Err(InputError::NotNested {
                    parent: show(&parent.zone),
                    child: show(&child.zone),
                });
            }
        }
    }
    if let Some(last) = chain.last() {
        if let Some(outside) = answer.iter().find(|r| !last.zone.zone_of(&r.name)) {
            return Err(InputError::AnswerOutsideZone {
                owner: show(&outside.name),
                zone: show(&last.zone),
            });
        }
    }
    Ok(())
}

/// What vouches for a zone's DNSKEY RRset.
enum Trust<'a> {
    Ds(Vec<&'a DS>),
    Keys(Vec<&'a DNSKEY>),
}

fn anchor_trust<'a>(anchor: &'a [Record], zone: &Name) -> Result<Trust<'a>, InputError> {
    let ds: Vec<&DS> = rrset(anchor, zone, RecordType::DS)
        .into_iter()
        .filter_map(as_ds)
        .collect();
    if !ds.is_empty() {
        return Ok(Trust::Ds(ds));
    }
    let keys: Vec<&DNSKEY> = rrset(anchor, zone, RecordType::DNSKEY)
        .into_iter()
        .filter_map(as_dnskey)
        .collect();
    if !keys.is_empty() {
        return Ok(Trust::Keys(keys));
    }
    Err(InputError::AnchorNotForZone { zone: show(zone) })
}

/// A DNSKEY usable for zone data, with its tag computed once.
#[derive(Clone, Copy)]
struct ZoneKey<'a> {
    key: &'a DNSKEY,
    tag: u16,
}

/// Why a zone's keys are not trusted: its delegation is insecure, or bogus.
enum KeysStop {
    Insecure(InsecureReason),
    Bogus(Box<Failure>),
}

impl KeysStop {
    fn into_verdict(self, parent: &Name, zone: &Name) -> Verdict {
        match self {
            KeysStop::Insecure(reason) => Verdict::Insecure(Insecure {
                parent: parent.clone(),
                child: zone.clone(),
                reason,
            }),
            KeysStop::Bogus(failure) => Verdict::Bogus(*failure),
        }
    }
}

/// Authenticates a zone's DNSKEY RRset (RFC 4035 §5.2): a key the DS records (or the anchor)
/// describe must sign it. Returns the zone keys of the set, all trusted from then on.
fn zone_keys<'a>(
    zone: &Name,
    trust: &Trust<'_>,
    dnskey_answer: &'a [Record],
    now: SerialNumber,
    budget: &mut Budget,
) -> Result<Vec<ZoneKey<'a>>, KeysStop> {
    let bogus = |reason| {
        KeysStop::Bogus(Box::new(Failure {
            zone: zone.clone(),
            owner: zone.clone(),
            record_type: RecordType::DNSKEY,
            reason,
        }))
    };
    // A DS set this build cannot check makes the zone insecure whatever its keys (and the
    // resolver need not even ask for them).
    let usable_ds: Vec<&DS> = match trust {
        Trust::Ds(ds_set) => {
            let usable: Vec<&DS> = ds_set
                .iter()
                .copied()
                .filter(|ds| ds.algorithm().is_supported() && ds.digest_type().is_supported())
                .collect();
            if usable.is_empty() {
                let mut algorithms: Vec<u8> =
                    ds_set.iter().map(|ds| u8::from(ds.algorithm())).collect();
                algorithms.sort_unstable();
                algorithms.dedup();
                return Err(KeysStop::Insecure(InsecureReason::UnsupportedAlgorithms {
                    algorithms,
                }));
            }
            usable
        }
        Trust::Keys(_) => Vec::new(),
    };
    let dnskey_set = rrset(dnskey_answer, zone, RecordType::DNSKEY);
    let keys: Vec<ZoneKey<'a>> = dnskey_set
        .iter()
        .filter_map(|r| as_dnskey(r))
        .filter(|key| key.zone_key() && !key.revoke())
        .filter_map(|key| {
            Some(ZoneKey {
                key,
                tag: key.calculate_key_tag().ok()?,
            })
        })
        .collect();
    if keys.is_empty() {
        return Err(bogus(BogusReason::NoDnskey));
    }
    let entry: Vec<ZoneKey<'a>> = match trust {
        Trust::Keys(anchors) => keys
            .iter()
            .filter(|k| anchors.contains(&k.key))
            .copied()
            .collect(),
        Trust::Ds(_) => {
            let mut digests = 0;
            let mut entry: Vec<ZoneKey<'a>> = Vec::new();
            for ds in &usable_ds {
                let described = keys
                    .iter()
                    .filter(|k| k.tag == ds.key_tag() && key_algorithm(k.key) == ds.algorithm());
                for key in described {
                    if digests == MAX_DS_DIGESTS_PER_ZONE {
                        break;
                    }
                    digests += 1;
                    let already = entry.iter().any(|e| std::ptr::eq(e.key, key.key));
                    if !already && ds.covers(zone, key.key).unwrap_or(false) {
                        entry.push(*key);
                    }
                }
            }
            entry
        }
    };
    if entry.is_empty() {
        return Err(bogus(match trust {
            Trust::Keys(_) => BogusReason::NoDnskeyMatchesAnchor,
            Trust::Ds(_) => {
                let mut key_tags: Vec<u16> = usable_ds.iter().map(|ds| ds.key_tag()).collect();
                key_tags.sort_unstable();
                key_tags.dedup();
                BogusReason::NoDnskeyMatchesDs { key_tags }
            }
        }));
    }
    let signatures = signatures(dnskey_answer, zone, RecordType::DNSKEY);
    verify_rrset(
        zone,
        &entry,
        zone,
        RecordType::DNSKEY,
        &dnskey_set,
        &signatures,
        now,
        budget,
    )
    .map_err(bogus)?;
    Ok(keys)
}

/// Checks the parent's proof that `child` has no DS (RFC 4035 §5.2, RFC 5155 §8.6).
fn prove_no_ds(
    parent: &Name,
    keys: &[ZoneKey<'_>],
    child: &Name,
    proof: &[Record],
    now: SerialNumber,
    budget: &mut Budget,
) -> Result<InsecureReason, Box<Failure>> {
    let failure = |owner: &Name, record_type, reason| {
        Box::new(Failure {
            zone: parent.clone(),
            owner: owner.clone(),
            record_type,
            reason,
        })
    };
    let signed = |owner: &Name, record_type, budget: &mut Budget| {
        let records = rrset(proof, owner, record_type);
        let signatures = signatures(proof, owner, record_type);
        verify_rrset(
            parent,
            keys,
            owner,
            record_type,
            &records,
            &signatures,
            now,
            budget,
        )
        .map_err(|reason| failure(owner, record_type, reason))
    };

    let nsecs: Vec<(&Name, &NSEC)> = proof
        .iter()
        .filter(|r| parent.zone_of(&r.name))
        .filter_map(|r| as_nsec(r).map(|nsec| (&r.name, nsec)))
        .collect();
    if let Some((owner, nsec)) = nsecs.iter().find(|(owner, _)| owner.eq_ignore_root(child)) {
        signed(owner, RecordType::NSEC, budget)?;
        return delegation_without_ds(nsec.type_set().iter())
            .map(|()| InsecureReason::NsecDeniesDs)
            .map_err(|reason| failure(child, RecordType::DS, reason));
    }
    let child_fqdn = fqdn(child);
    if let Some((owner, _)) = nsecs
        .iter()
        .find(|(owner, nsec)| nsec_covers(owner, nsec.next_domain_name(), &child_fqdn))
    {
        signed(owner, RecordType::NSEC, budget)?;
        return Err(failure(child, RecordType::DS, BogusReason::NotADelegation));
    }

    let nsec3s: Vec<(&Name, &NSEC3)> = proof
        .iter()
        .filter(|r| r.name.base_name().eq_ignore_root(parent))
        .filter_map(|r| as_nsec3(r).map(|nsec3| (&r.name, nsec3)))
        .collect();
    if let Some((owner, nsec3)) = nsec3s
        .iter()
        .find(|(_, nsec3)| nsec3.iterations() > MAX_NSEC3_ITERATIONS)
    {
        signed(owner, RecordType::NSEC3, budget)?;
        return Ok(InsecureReason::Nsec3IterationsAboveLimit {
            iterations: nsec3.iterations(),
        });
    }
    let mut hashes: Vec<(&[u8], u16, String)> = Vec::new();
    let mut covering = None;
    for (owner, nsec3) in &nsec3s {
        let Some(hashed_owner) = owner.iter().next().map(|l| l.to_ascii_lowercase()) else {
            continue;
        };
        let params = (nsec3.salt(), nsec3.iterations());
        let hash = match hashes.iter().find(|(s, i, _)| (*s, *i) == params) {
            Some((_, _, hash)) => hash.clone(),
            None => {
                let Ok(digest) = nsec3.hash_algorithm().hash(params.0, &child_fqdn, params.1)
                else {
                    continue;
                };
                let hash = base32hex(digest.as_ref());
                hashes.push((params.0, params.1, hash.clone()));
                hash
            }
        };
        if hashed_owner == hash.as_bytes() {
            signed(owner, RecordType::NSEC3, budget)?;
            return delegation_without_ds(nsec3.type_set().iter())
                .map(|()| InsecureReason::Nsec3DeniesDs)
                .map_err(|reason| failure(child, RecordType::DS, reason));
        }
        let next = base32hex(nsec3.next_hashed_owner_name());
        if covering.is_none() && hash_covers(&hashed_owner, next.as_bytes(), hash.as_bytes()) {
            covering = Some((*owner, *nsec3));
        }
    }
    if let Some((owner, nsec3)) = covering {
        signed(owner, RecordType::NSEC3, budget)?;
        return if nsec3.opt_out() {
            Ok(InsecureReason::Nsec3OptOut)
        } else {
            Err(failure(child, RecordType::DS, BogusReason::NotADelegation))
        };
    }
    Err(failure(child, RecordType::DS, BogusReason::NoDsProof))
}

/// The type bitmap at a delegation without DS: NS, and neither DS nor SOA (an NSEC with SOA is
/// the child's own, from the wrong side of the cut; RFC 6840 §4.4).
fn delegation_without_ds(types: impl Iterator<Item = RecordType>) -> Result<(), BogusReason> {
    let (mut ns, mut ds, mut soa) = (false, false, false);
    for t in types {
        ns |= t == RecordType::NS;
        ds |= t == RecordType::DS;
        soa |= t == RecordType::SOA;
    }
    match (ns, ds, soa) {
        (_, true, _) => Err(BogusReason::DsDenialContradicted),
        (true, false, false) => Ok(()),
        _ => Err(BogusReason::NotADelegation),
    }
}

/// Whether an NSEC from `owner` to `next` covers `name` (RFC 4034 §6.1 canonical order; the
/// last NSEC of a zone wraps around to the apex).
fn nsec_covers(owner: &Name, next: &Name, name: &Name) -> bool {
    let (owner, next) = (fqdn(owner), fqdn(next));
    if owner < next {
        owner < *name && *name < next
    } else {
        owner < *name || *name < next
    }
}

/// Whether the hashed span from `owner` to `next` covers `hash` (base32hex keeps the order).
fn hash_covers(owner: &[u8], next: &[u8], hash: &[u8]) -> bool {
    if owner < next {
        owner < hash && hash < next
    } else {
        owner < hash || hash < next
    }
}

/// Why an RRSIG could not vouch for an RRset, ranked so the most telling one is reported.
fn rank(reason: &BogusReason) -> u8 {
    match reason {
        BogusReason::SignatureDoesNotVerify { .. } => 4,
        BogusReason::SignatureExpired { .. } | BogusReason::SignatureNotYetValid { .. } => 3,
        BogusReason::NoKeyForSignature { .. } => 2,
        BogusReason::SignerIsNotZone { .. } => 1,
        _ => 0,
    }
}

/// Verifies that one of `signatures` over the RRset is valid now and made by one of `keys`
/// (RFC 4035 §5.3), within the KeyTrap bounds.
#[allow(clippy::too_many_arguments)]
fn verify_rrset(
    zone: &Name,
    keys: &[ZoneKey<'_>],
    owner: &Name,
    record_type: RecordType,
    records: &[&Record],
    signatures: &[&RRSIG],
    now: SerialNumber,
    budget: &mut Budget,
) -> Result<(), BogusReason> {
    let owner = fqdn(owner);
    let mut best = BogusReason::NoSignature;
    let mut note = |reason: BogusReason| {
        if rank(&reason) > rank(&best) {
            best = reason;
        }
    };
    let mut tried_here = 0;
    for signature in signatures {
        let input = signature.input();
        if !input.algorithm.is_supported() {
            continue;
        }
        // A denial must be signed at its own name: one expanded from a wildcard could be
        // replayed for any name.
        let wildcard = input.num_labels < owner.num_labels();
        if input.num_labels > owner.num_labels()
            || (wildcard && matches!(record_type, RecordType::NSEC | RecordType::NSEC3))
        {
            continue;
        }
        if !input.signer_name.eq_ignore_root(zone) {
            note(BogusReason::SignerIsNotZone {
                signer: input.signer_name.clone(),
            });
            continue;
        }
        if let Err(reason) = in_validity_period(now, input.sig_inception, input.sig_expiration) {
            note(reason);
            continue;
        }
        let candidates = keys
            .iter()
            .filter(|k| k.tag == input.key_tag && key_algorithm(k.key) == input.algorithm);
        let mut any = false;
        let canonical = canonical_rrset(&owner, records, input.original_ttl);
        for key in candidates {
            any = true;
            if tried_here == MAX_SIGNATURE_CHECKS_PER_RRSET || !budget.take() {
                return Err(BogusReason::TooManySignatureChecks { tried: tried_here });
            }
            tried_here += 1;
            if key
                .key
                .verify_rrsig(&owner, DNSClass::IN, signature, canonical.iter())
                .is_ok()
            {
                return Ok(());
            }
            note(BogusReason::SignatureDoesNotVerify {
                key_tag: input.key_tag,
            });
        }
        if !any {
            note(BogusReason::NoKeyForSignature {
                key_tag: input.key_tag,
            });
        }
    }
    Err(best)
}

/// Whether `now` lies in an RRSIG's validity period; times half the 32-bit circle apart have
/// no order (RFC 1982 §3.2) and count as outside it.
fn in_validity_period(
    now: SerialNumber,
    inception: SerialNumber,
    expiration: SerialNumber,
) -> Result<(), BogusReason> {
    use std::cmp::Ordering::{Equal, Greater, Less};
    if !matches!(now.partial_cmp(&inception), Some(Greater | Equal)) {
        return Err(BogusReason::SignatureNotYetValid {
            inception: inception.get(),
        });
    }
    if !matches!(now.partial_cmp(&expiration), Some(Less | Equal)) {
        return Err(BogusReason::SignatureExpired {
            expiration: expiration.get(),
        });
    }
    Ok(())
}

/// The RRset as it was signed (RFC 4034 §6.2–6.3): the owner as asked, the original TTL (a
/// cache's countdown would reorder and change it), duplicates removed.
fn canonical_rrset(owner: &Name, records: &[&Record], original_ttl: u32) -> Vec<Record> {
    let mut canonical: Vec<Record> = records
        .iter()
        .map(|r| {
            let mut r = (*r).clone();
            r.name = owner.clone();
            r.ttl = original_ttl;
            r.dns_class = DNSClass::IN;
            r
        })
        .collect();
    canonical.sort();
    canonical.dedup_by(|a, b| a.data == b.data);
    canonical
}

/// The signature checks left for one [`validate`] call.
struct Budget {
    left: usize,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            left: MAX_SIGNATURE_CHECKS,
        }
    }
}

impl Budget {
    fn take(&mut self) -> bool {
        if self.left == 0 {
            return false;
        }
        self.left -= 1;
        true
    }
}

/// The records of one RRset (RRSIGs aside).
fn rrset<'a>(records: &'a [Record], owner: &Name, record_type: RecordType) -> Vec<&'a Record> {
    records
        .iter()
        .filter(|r| r.record_type() == record_type && r.name.eq_ignore_root(owner))
        .collect()
}

/// The RRSIGs over one RRset.
fn signatures<'a>(records: &'a [Record], owner: &Name, covered: RecordType) -> Vec<&'a RRSIG> {
    records
        .iter()
        .filter(|r| r.name.eq_ignore_root(owner))
        .filter_map(|r| match &r.data {
            RData::DNSSEC(DNSSECRData::RRSIG(sig)) if sig.input().type_covered == covered => {
                Some(sig)
            }
            _ => None,
        })
        .collect()
}

/// The distinct RRsets among records (RRSIGs aside), in order of appearance.
fn rrset_keys(records: &[Record]) -> Vec<(Name, RecordType)> {
    let mut keys: Vec<(Name, RecordType)> = Vec::new();
    for r in records
        .iter()
        .filter(|r| r.record_type() != RecordType::RRSIG)
    {
        let record_type = r.record_type();
        if !keys
            .iter()
            .any(|(n, t)| *t == record_type && n.eq_ignore_root(&r.name))
        {
            keys.push((fqdn(&r.name), record_type));
        }
    }
    keys
}

fn as_ds(record: &Record) -> Option<&DS> {
    match &record.data {
        RData::DNSSEC(DNSSECRData::DS(ds)) => Some(ds),
        _ => None,
    }
}

fn as_dnskey(record: &Record) -> Option<&DNSKEY> {
    match &record.data {
        RData::DNSSEC(DNSSECRData::DNSKEY(key)) => Some(key),
        _ => None,
    }
}

fn as_nsec(record: &Record) -> Option<&NSEC> {
    match &record.data {
        RData::DNSSEC(DNSSECRData::NSEC(nsec)) => Some(nsec),
        _ => None,
    }
}

fn as_nsec3(record: &Record) -> Option<&NSEC3> {
    match &record.data {
        RData::DNSSEC(DNSSECRData::NSEC3(nsec3)) => Some(nsec3),
        _ => None,
    }
}

fn key_algorithm(key: &DNSKEY) -> Algorithm {
    Verifier::algorithm(key)
}

fn fqdn(name: &Name) -> Name {
    let mut name = name.clone();
    name.set_fqdn(true);
    name
}

/// Seconds since 1970 modulo 2^32: RRSIG times are compared in serial number arithmetic
/// (RFC 4034 §3.1.5), so the wrap in 2106 is harmless.
fn serial_time(now: SystemTime) -> SerialNumber {
    let seconds = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    SerialNumber::new((seconds & u64::from(u32::MAX)) as u32)
}

/// Lowercase base32 with the extended hex alphabet, no padding (RFC 4648 §7): how NSEC3 owner
/// names spell hashes (RFC 5155 §3.3).
fn base32hex(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789abcdefghijklmnopqrstuv";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// A name as mailshift shows names: without the root's trailing dot.
fn show(name: &Name) -> String {
    let text = name.to_ascii();
    match text.strip_suffix('.') {
        Some(stripped) if !stripped.is_empty() => stripped.to_string(),
        _ => text,
    }
}

fn show_time(seconds: u32) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(u64::from(seconds)))
        .to_string()
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Secure => f.write_str("secure"),
            Verdict::Insecure(insecure) => write!(f, "insecure: {insecure}"),
            Verdict::Bogus(failure) => write!(f, "bogus: {failure}"),
        }
    }
}

impl fmt::Display for Insecure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (child, parent) = (show(&self.child), show(&self.parent));
        match &self.reason {
            InsecureReason::NsecDeniesDs => {
                write!(
                    f,
                    "{child} is unsigned: {parent} proves it has no DS (NSEC)"
                )
            }
            InsecureReason::Nsec3DeniesDs => {
                write!(
                    f,
                    "{child} is unsigned: {parent} proves it has no DS (NSEC3)"
                )
            }
            InsecureReason::Nsec3OptOut => write!(
                f,
                "{child} is unsigned: {parent}'s opt-out NSEC3 covers it, so it has no DS"
            ),
            InsecureReason::Nsec3IterationsAboveLimit { iterations } => write!(
                f,
                "{parent}'s NSEC3 records use {iterations} iterations (more than \
                 {MAX_NSEC3_ITERATIONS}): {child} is treated as unsigned"
            ),
            InsecureReason::UnsupportedAlgorithms { algorithms } => write!(
                f,
                "{child}'s DS records use only algorithms or digests not validated here \
                 (algorithm {})",
                algorithms
                    .iter()
                    .map(u8::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (zone, owner, rtype) = (show(&self.zone), show(&self.owner), self.record_type);
        match &self.reason {
            BogusReason::NoSignature => write!(f, "no RRSIG over {rtype} {owner} from {zone}"),
            BogusReason::SignatureExpired { expiration } => write!(
                f,
                "RRSIG over {rtype} {owner} expired {}",
                show_time(*expiration)
            ),
            BogusReason::SignatureNotYetValid { inception } => write!(
                f,
                "RRSIG over {rtype} {owner} is not valid before {}",
                show_time(*inception)
            ),
            BogusReason::SignatureDoesNotVerify { key_tag } => write!(
                f,
                "RRSIG over {rtype} {owner} by key tag {key_tag}: signature does not verify"
            ),
            BogusReason::NoKeyForSignature { key_tag } => write!(
                f,
                "RRSIG over {rtype} {owner}: no trusted DNSKEY of {zone} has key tag {key_tag}"
            ),
            BogusReason::SignerIsNotZone { signer } => write!(
                f,
                "RRSIG over {rtype} {owner} is signed by {}, not by its zone {zone}",
                show(signer)
            ),
            BogusReason::NoDnskey => write!(f, "{zone} has no DNSKEY RRset"),
            BogusReason::NoDnskeyMatchesDs { key_tags } => write!(
                f,
                "no DNSKEY of {zone} matches DS key tag {}",
                key_tags
                    .iter()
                    .map(u16::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            BogusReason::NoDnskeyMatchesAnchor => {
                write!(f, "no DNSKEY of {zone} is a trust-anchor key")
            }
            BogusReason::NoDsProof => write!(
                f,
                "{zone} gave no DS for {owner} and no NSEC or NSEC3 proof that there is none"
            ),
            BogusReason::DsDenialContradicted => write!(
                f,
                "{zone}'s NSEC/NSEC3 for {owner} lists a DS RRset, but none was given"
            ),
            BogusReason::NotADelegation => write!(
                f,
                "{zone} proves {owner} is not a delegation (no such name, or no NS there)"
            ),
            BogusReason::TooManySignatureChecks { tried } => write!(
                f,
                "gave up on {rtype} {owner} after {tried} signature checks (KeyTrap bound, \
                 CVE-2023-50387)"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::dnssec::crypto::EcdsaSigningKey;
    use hickory_proto::dnssec::rdata::SigInput;
    use hickory_proto::dnssec::{DigestType, Nsec3HashAlgorithm, SigningKey, TBS};
    use hickory_proto::rr::rdata::TXT;
    use hickory_proto::serialize::binary::{BinDecoder, Restrict};
    use std::collections::HashMap;
    use std::path::Path;
    use std::process::Command;
    use std::sync::OnceLock;

    /// The zones of fixtures/zones-dnssec, signed for this test run by its sign.sh.
    struct Signed {
        zones: HashMap<String, Vec<Record>>,
        anchor: Vec<Record>,
    }

    /// Signs once per test binary: every test reads the same freshly signed zones.
    fn signed() -> &'static Signed {
        static SIGNED: OnceLock<Signed> = OnceLock::new();
        SIGNED.get_or_init(|| {
            let script =
                Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/zones-dnssec/sign.sh");
            let out = tempfile::tempdir().unwrap();
            let run = Command::new("bash")
                .arg(&script)
                .arg(out.path())
                .output()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
            assert!(
                run.status.success(),
                "{} failed ({}): {}\nThe DNSSEC tests sign their zones with ldns-signzone: install \
                 the Debian package ldnsutils (.ci/run does).",
                script.display(),
                run.status,
                String::from_utf8_lossy(&run.stderr)
            );
            // Every zone sign.sh wrote (`ZONE.rfc3597`), beside the anchor.
            let mut zones = HashMap::new();
            for entry in std::fs::read_dir(out.path()).unwrap() {
                let path = entry.unwrap().path();
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                if let Some(zone) = name.strip_suffix(".rfc3597") {
                    if zone != "anchor" {
                        zones.insert(zone.to_string(), read_generic(&path));
                    }
                }
            }
            assert!(zones.len() >= 8, "sign.sh wrote {} zones", zones.len());
            let anchor = read_generic(&out.path().join("anchor.rfc3597"));
            Signed { zones, anchor }
        })
    }

    /// Reads records written as `OWNER TTL CLASS TYPEnn \# LEN HEX` (RFC 3597), decoding the
    /// RDATA with hickory's wire decoder: hickory-proto 0.26's zone-file parser refuses DNSKEY,
    /// RRSIG, NSEC and NSEC3 ("should be dynamically generated").
    fn read_generic(path: &Path) -> Vec<Record> {
        let text = std::fs::read_to_string(path).unwrap();
        let mut records = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with(';') {
                continue;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            assert!(
                fields.len() >= 6 && fields[4] == "\\#",
                "{}: {line}",
                path.display()
            );
            let record_type = RecordType::from(
                fields[3]
                    .strip_prefix("TYPE")
                    .unwrap()
                    .parse::<u16>()
                    .unwrap(),
            );
            let length: u16 = fields[5].parse().unwrap();
            let hex: String = fields[6..].concat();
            let bytes: Vec<u8> = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect();
            assert_eq!(bytes.len(), usize::from(length), "{line}");
            let data = RData::read(
                &mut BinDecoder::new(&bytes),
                record_type,
                Restrict::new(length),
            )
            .unwrap();
            let ttl = fields[1].parse().unwrap();
            records.push(Record::from_rdata(name(fields[0]), ttl, data));
        }
        records
    }

    fn name(text: &str) -> Name {
        let mut name = Name::from_ascii(text).unwrap();
        name.set_fqdn(true);
        name
    }

    /// One RRset of a zone with its RRSIGs, as a DO query's answer section holds it (nothing
    /// for a zone there is no file of).
    fn answer(zone: &str, owner: &str, record_type: RecordType) -> Vec<Record> {
        let owner = name(owner);
        signed()
            .zones
            .get(zone)
            .into_iter()
            .flatten()
            .filter(|r| r.name == owner)
            .filter(|r| {
                r.record_type() == record_type
                    || matches!(&r.data, RData::DNSSEC(DNSSECRData::RRSIG(sig))
                        if sig.input().type_covered == record_type)
            })
            .cloned()
            .collect()
    }

    /// The link for `zone`: the parent's DS RRset, or when it has none every NSEC and NSEC3 of
    /// the parent (the validator must find the one that counts), and the zone's DNSKEY RRset.
    fn link(parent: &str, zone: &str) -> ZoneLink {
        let mut ds = answer(parent, zone, RecordType::DS);
        if ds.is_empty() {
            let denials: Vec<Record> = signed().zones[parent]
                .iter()
                .filter(|r| {
                    matches!(r.record_type(), RecordType::NSEC | RecordType::NSEC3)
                        || matches!(&r.data, RData::DNSSEC(DNSSECRData::RRSIG(sig))
                            if matches!(sig.input().type_covered, RecordType::NSEC | RecordType::NSEC3))
                })
                .cloned()
                .collect();
            ds = denials;
        }
        ZoneLink {
            zone: name(zone),
            ds,
            dnskey: answer(zone, zone, RecordType::DNSKEY),
        }
    }

    fn top() -> ZoneLink {
        ZoneLink {
            zone: name("bryggeri.se"),
            ds: Vec::new(),
            dnskey: answer("bryggeri.se", "bryggeri.se", RecordType::DNSKEY),
        }
    }

    fn chain_to(zone: &str) -> Vec<ZoneLink> {
        vec![top(), link("bryggeri.se", zone)]
    }

    fn check(chain: &[ZoneLink], answer: &[Record]) -> Verdict {
        validate(&signed().anchor, chain, answer, SystemTime::now()).unwrap()
    }

    fn bogus(verdict: Verdict) -> Failure {
        match verdict {
            Verdict::Bogus(failure) => failure,
            other => panic!("expected bogus, got {other:?}"),
        }
    }

    fn rrsig_of(record: &Record) -> Option<&RRSIG> {
        match &record.data {
            RData::DNSSEC(DNSSECRData::RRSIG(sig)) => Some(sig),
            _ => None,
        }
    }

    #[test]
    fn a_correctly_signed_zone_answers_securely() {
        let post = chain_to("post.bryggeri.se");
        for (owner, record_type) in [
            ("post.bryggeri.se", RecordType::TXT),
            ("post.bryggeri.se", RecordType::MX),
            ("_dmarc.post.bryggeri.se", RecordType::TXT),
            ("mx1.post.bryggeri.se", RecordType::A),
        ] {
            let records = answer("post.bryggeri.se", owner, record_type);
            assert!(has_signatures(&records), "{owner} {record_type}");
            assert_eq!(
                check(&post, &records),
                Verdict::Secure,
                "{owner} {record_type}"
            );
        }
        // The chain alone, and the parent's own data.
        assert_eq!(check(&post, &[]), Verdict::Secure);
        let parent_txt = answer("bryggeri.se", "bryggeri.se", RecordType::TXT);
        assert_eq!(check(&[top()], &parent_txt), Verdict::Secure);
    }

    #[test]
    fn an_ed25519_zone_with_nsec3_answers_securely() {
        let lager = chain_to("lager.bryggeri.se");
        for (owner, record_type) in [
            ("lager.bryggeri.se", RecordType::TXT),
            ("lager.bryggeri.se", RecordType::MX),
            ("_dmarc.lager.bryggeri.se", RecordType::TXT),
        ] {
            let records = answer("lager.bryggeri.se", owner, record_type);
            assert_eq!(
                check(&lager, &records),
                Verdict::Secure,
                "{owner} {record_type}"
            );
        }
    }

    #[test]
    fn a_dnskey_trust_anchor_works_like_a_ds_one() {
        let anchor: Vec<Record> = answer("bryggeri.se", "bryggeri.se", RecordType::DNSKEY)
            .into_iter()
            .filter(|r| as_dnskey(r).is_some_and(DNSKEY::is_key_signing_key))
            .collect();
        assert_eq!(anchor.len(), 1);
        let records = answer("post.bryggeri.se", "post.bryggeri.se", RecordType::TXT);
        let chain = chain_to("post.bryggeri.se");
        let verdict = validate(&anchor, &chain, &records, SystemTime::now()).unwrap();
        assert_eq!(verdict, Verdict::Secure);
        // A key the zone does not have anchors nothing.
        let other_zone_key: Vec<Record> =
            answer("post.bryggeri.se", "post.bryggeri.se", RecordType::DNSKEY)
                .into_iter()
                .filter(|r| r.record_type() == RecordType::DNSKEY)
                .map(|mut r| {
                    r.name = name("bryggeri.se");
                    r
                })
                .collect();
        let failure =
            bogus(validate(&other_zone_key, &chain, &records, SystemTime::now()).unwrap());
        assert_eq!(failure.reason, BogusReason::NoDnskeyMatchesAnchor);
        assert_eq!(failure.zone, name("bryggeri.se"));
    }

    #[test]
    fn expired_signatures_make_the_zone_bogus_at_its_dnskey_rrset() {
        let records = answer(
            "utgangen.bryggeri.se",
            "utgangen.bryggeri.se",
            RecordType::TXT,
        );
        let failure = bogus(check(&chain_to("utgangen.bryggeri.se"), &records));
        assert_eq!(failure.zone, name("utgangen.bryggeri.se"));
        assert_eq!(failure.record_type, RecordType::DNSKEY);
        let BogusReason::SignatureExpired { expiration } = failure.reason else {
            panic!("{failure:?}");
        };
        assert!(expiration < serial_time(SystemTime::now()).get());
        let text = failure.to_string();
        assert!(
            text.starts_with("RRSIG over DNSKEY utgangen.bryggeri.se expired 20"),
            "{text}"
        );
    }

    #[test]
    fn signatures_not_yet_valid_are_bogus() {
        let two_days_ago = SystemTime::now() - Duration::from_secs(2 * 86_400);
        let records = answer("post.bryggeri.se", "post.bryggeri.se", RecordType::TXT);
        let verdict = validate(
            &signed().anchor,
            &chain_to("post.bryggeri.se"),
            &records,
            two_days_ago,
        )
        .unwrap();
        let failure = bogus(verdict);
        // The first link already fails: the anchor zone's own keys are not valid yet.
        assert_eq!(failure.zone, name("bryggeri.se"));
        assert_eq!(failure.record_type, RecordType::DNSKEY);
        assert!(matches!(
            failure.reason,
            BogusReason::SignatureNotYetValid { .. }
        ));
        assert!(
            failure.to_string().contains("is not valid before"),
            "{failure}"
        );
    }

    #[test]
    fn a_ds_for_a_key_the_zone_does_not_have_is_bogus() {
        let records = answer("fel-ds.bryggeri.se", "fel-ds.bryggeri.se", RecordType::TXT);
        let chain = chain_to("fel-ds.bryggeri.se");
        let failure = bogus(check(&chain, &records));
        assert_eq!(failure.zone, name("fel-ds.bryggeri.se"));
        assert_eq!(failure.record_type, RecordType::DNSKEY);
        let BogusReason::NoDnskeyMatchesDs { key_tags } = &failure.reason else {
            panic!("{failure:?}");
        };
        let ds_tag = as_ds(&chain[1].ds[0]).map(DS::key_tag);
        assert_eq!(key_tags.first().copied(), ds_tag);
        assert_eq!(
            failure.to_string(),
            format!(
                "no DNSKEY of fel-ds.bryggeri.se matches DS key tag {}",
                key_tags[0]
            )
        );
    }

    #[test]
    fn a_damaged_signature_is_bogus_for_its_rrset_only() {
        let chain = chain_to("andrad.bryggeri.se");
        let txt = answer("andrad.bryggeri.se", "andrad.bryggeri.se", RecordType::TXT);
        let failure = bogus(check(&chain, &txt));
        assert_eq!(failure.zone, name("andrad.bryggeri.se"));
        assert_eq!(failure.owner, name("andrad.bryggeri.se"));
        assert_eq!(failure.record_type, RecordType::TXT);
        assert!(matches!(
            failure.reason,
            BogusReason::SignatureDoesNotVerify { .. }
        ));
        assert!(
            failure.to_string().ends_with("signature does not verify"),
            "{failure}"
        );
        let mx = answer("andrad.bryggeri.se", "andrad.bryggeri.se", RecordType::MX);
        assert_eq!(check(&chain, &mx), Verdict::Secure);
    }

    #[test]
    fn a_tampered_answer_does_not_verify() {
        let mut records = answer("post.bryggeri.se", "post.bryggeri.se", RecordType::TXT);
        for record in &mut records {
            if record.record_type() == RecordType::TXT {
                record.data = RData::TXT(TXT::new(vec!["v=spf1 +all".into()]));
            }
        }
        let failure = bogus(check(&chain_to("post.bryggeri.se"), &records));
        assert_eq!(failure.record_type, RecordType::TXT);
        assert!(matches!(
            failure.reason,
            BogusReason::SignatureDoesNotVerify { .. }
        ));
    }

    #[test]
    fn an_rrset_without_signatures_is_bogus() {
        let records: Vec<Record> = answer("post.bryggeri.se", "post.bryggeri.se", RecordType::MX)
            .into_iter()
            .filter(|r| r.record_type() != RecordType::RRSIG)
            .collect();
        assert!(!has_signatures(&records));
        let failure = bogus(check(&chain_to("post.bryggeri.se"), &records));
        assert_eq!(failure.reason, BogusReason::NoSignature);
        assert_eq!(
            failure.to_string(),
            "no RRSIG over MX post.bryggeri.se from post.bryggeri.se"
        );
    }

    #[test]
    fn the_signature_checks_per_rrset_are_bounded() {
        // KeyTrap: many signatures that name a real key but do not verify, the good one last.
        let records = answer("post.bryggeri.se", "post.bryggeri.se", RecordType::TXT);
        let good = records
            .iter()
            .find(|r| rrsig_of(r).is_some())
            .unwrap()
            .clone();
        let sig = rrsig_of(&good).unwrap().clone();
        let mut hostile: Vec<Record> = records
            .iter()
            .filter(|r| r.record_type() == RecordType::TXT)
            .cloned()
            .collect();
        for i in 0..20u8 {
            let mut bytes = sig.sig().to_vec();
            bytes[0] ^= i + 1;
            let forged = RRSIG::from_sig(sig.input().clone(), bytes);
            let mut record = good.clone();
            record.data = RData::DNSSEC(DNSSECRData::RRSIG(forged));
            hostile.push(record);
        }
        hostile.push(good);
        let failure = bogus(check(&chain_to("post.bryggeri.se"), &hostile));
        assert_eq!(
            failure.reason,
            BogusReason::TooManySignatureChecks {
                tried: MAX_SIGNATURE_CHECKS_PER_RRSET
            }
        );
        assert!(failure.to_string().contains("CVE-2023-50387"), "{failure}");
    }

    #[test]
    fn an_unsigned_child_proven_by_nsec_is_insecure() {
        let chain = chain_to("osignerad.bryggeri.se");
        let records = answer(
            "osignerad.bryggeri.se",
            "osignerad.bryggeri.se",
            RecordType::TXT,
        );
        assert!(!has_signatures(&records));
        let verdict = check(&chain, &records);
        assert_eq!(
            verdict,
            Verdict::Insecure(Insecure {
                parent: name("bryggeri.se"),
                child: name("osignerad.bryggeri.se"),
                reason: InsecureReason::NsecDeniesDs,
            })
        );
        assert_eq!(
            verdict.to_string(),
            "insecure: osignerad.bryggeri.se is unsigned: bryggeri.se proves it has no DS (NSEC)"
        );
    }

    #[test]
    fn an_unsigned_child_proven_by_nsec3_is_insecure() {
        let chain = vec![
            top(),
            link("bryggeri.se", "lager.bryggeri.se"),
            link("lager.bryggeri.se", "kall.lager.bryggeri.se"),
        ];
        let records = answer(
            "kall.lager.bryggeri.se",
            "kall.lager.bryggeri.se",
            RecordType::MX,
        );
        assert_eq!(
            check(&chain, &records),
            Verdict::Insecure(Insecure {
                parent: name("lager.bryggeri.se"),
                child: name("kall.lager.bryggeri.se"),
                reason: InsecureReason::Nsec3DeniesDs,
            })
        );
    }

    #[test]
    fn a_missing_ds_needs_a_signed_proof() {
        let mut chain = chain_to("osignerad.bryggeri.se");
        let proof = std::mem::take(&mut chain[1].ds);
        let failure = bogus(check(&chain, &[]));
        assert_eq!(failure.reason, BogusReason::NoDsProof);
        assert_eq!(failure.zone, name("bryggeri.se"));
        assert_eq!(failure.record_type, RecordType::DS);
        // The proof without its signatures proves nothing.
        chain[1].ds = proof
            .into_iter()
            .filter(|r| r.record_type() != RecordType::RRSIG)
            .collect();
        let failure = bogus(check(&chain, &[]));
        assert_eq!(failure.reason, BogusReason::NoSignature);
        assert_eq!(failure.record_type, RecordType::NSEC);
        assert_eq!(failure.owner, name("osignerad.bryggeri.se"));
    }

    #[test]
    fn a_name_that_is_no_delegation_is_not_proven_unsigned() {
        // mx1 exists without NS (matching NSEC); finns-inte does not exist (covering NSEC).
        for zone in ["mx1.bryggeri.se", "finns-inte.bryggeri.se"] {
            let failure = bogus(check(&chain_to(zone), &[]));
            assert_eq!(failure.reason, BogusReason::NotADelegation, "{zone}");
            assert_eq!(failure.owner, name(zone));
        }
    }

    #[test]
    fn a_ds_rrset_must_be_signed_by_the_parent() {
        let mut chain = chain_to("post.bryggeri.se");
        chain[1].ds.retain(|r| r.record_type() != RecordType::RRSIG);
        let failure = bogus(check(&chain, &[]));
        assert_eq!(failure.zone, name("bryggeri.se"));
        assert_eq!(failure.owner, name("post.bryggeri.se"));
        assert_eq!(failure.record_type, RecordType::DS);
        assert_eq!(failure.reason, BogusReason::NoSignature);
    }

    #[test]
    fn malformed_input_is_an_error_not_a_verdict() {
        let anchor = &signed().anchor;
        let now = SystemTime::now();
        assert_eq!(validate(anchor, &[], &[], now), Err(InputError::EmptyChain));
        let upside_down = vec![link("bryggeri.se", "post.bryggeri.se"), top()];
        assert!(matches!(
            validate(anchor, &upside_down, &[], now),
            Err(InputError::NotNested { .. })
        ));
        let elsewhere = answer("lager.bryggeri.se", "lager.bryggeri.se", RecordType::TXT);
        assert!(matches!(
            validate(anchor, &chain_to("post.bryggeri.se"), &elsewhere, now),
            Err(InputError::AnswerOutsideZone { .. })
        ));
        let no_anchor = validate(&[], &chain_to("post.bryggeri.se"), &[], now);
        assert_eq!(
            no_anchor,
            Err(InputError::AnchorNotForZone {
                zone: "bryggeri.se".into()
            })
        );
        let long = vec![top(); MAX_CHAIN_LINKS + 1];
        assert_eq!(
            validate(anchor, &long, &[], now),
            Err(InputError::TooManyLinks(MAX_CHAIN_LINKS + 1))
        );
    }

    /// A zone signed here, with a key made here, for what ldns-signzone does not produce
    /// (opt-out spans without the delegation's own NSEC3, too many iterations, odd DS records).
    struct MadeZone {
        zone: Name,
        key: EcdsaSigningKey,
        dnskey: DNSKEY,
    }

    impl MadeZone {
        fn new(zone: &str) -> MadeZone {
            let pkcs8 = EcdsaSigningKey::generate_pkcs8(Algorithm::ECDSAP256SHA256).unwrap();
            let key = EcdsaSigningKey::from_pkcs8(&pkcs8, Algorithm::ECDSAP256SHA256).unwrap();
            let dnskey = DNSKEY::with_flags(257, key.to_public_key().unwrap());
            MadeZone {
                zone: name(zone),
                key,
                dnskey,
            }
        }

        fn dnskey_record(&self) -> Record {
            Record::from_rdata(
                self.zone.clone(),
                3600,
                RData::DNSSEC(DNSSECRData::DNSKEY(self.dnskey.clone())),
            )
        }

        /// The RRset (one owner and type) with an RRSIG valid from an hour ago for a day.
        fn signed(&self, mut rrset: Vec<Record>) -> Vec<Record> {
            let now = serial_time(SystemTime::now()).get();
            let first = rrset[0].clone();
            let input = SigInput {
                type_covered: first.record_type(),
                algorithm: Algorithm::ECDSAP256SHA256,
                num_labels: first.name.num_labels(),
                original_ttl: first.ttl,
                sig_expiration: SerialNumber::new(now + 86_400),
                sig_inception: SerialNumber::new(now - 3600),
                key_tag: self.dnskey.calculate_key_tag().unwrap(),
                signer_name: self.zone.clone(),
            };
            let tbs = TBS::from_input(&first.name, DNSClass::IN, &input, rrset.iter()).unwrap();
            let signature = self.key.sign(&tbs).unwrap();
            rrset.push(Record::from_rdata(
                first.name.clone(),
                first.ttl,
                RData::DNSSEC(DNSSECRData::RRSIG(RRSIG::from_sig(input, signature))),
            ));
            rrset
        }

        fn top_link(&self) -> ZoneLink {
            ZoneLink {
                zone: self.zone.clone(),
                ds: Vec::new(),
                dnskey: self.signed(vec![self.dnskey_record()]),
            }
        }

        /// One NSEC3 spanning every hash but the all-zero and all-one ones.
        fn nsec3_span(&self, opt_out: bool, iterations: u16) -> Vec<Record> {
            let nsec3 = NSEC3::new(
                Nsec3HashAlgorithm::SHA1,
                opt_out,
                iterations,
                Vec::new(),
                vec![0xff; 20],
                [RecordType::NS],
            );
            let owner = self.zone.prepend_label("0".repeat(32)).unwrap();
            self.signed(vec![Record::from_rdata(
                owner,
                300,
                RData::DNSSEC(DNSSECRData::NSEC3(nsec3)),
            )])
        }
    }

    #[test]
    fn nsec3_opt_out_spans_and_iteration_limits() {
        let parent = MadeZone::new("exempel.se");
        let anchor = vec![parent.dnskey_record()];
        let child = name("osignerad.exempel.se");
        let verdict = |proof: Vec<Record>| {
            let chain = vec![
                parent.top_link(),
                ZoneLink {
                    zone: child.clone(),
                    ds: proof,
                    dnskey: Vec::new(),
                },
            ];
            validate(&anchor, &chain, &[], SystemTime::now()).unwrap()
        };
        let insecure = |reason| {
            Verdict::Insecure(Insecure {
                parent: parent.zone.clone(),
                child: child.clone(),
                reason,
            })
        };
        assert_eq!(
            verdict(parent.nsec3_span(true, 0)),
            insecure(InsecureReason::Nsec3OptOut)
        );
        // Without opt-out, a span over the name says it does not exist.
        let failure = bogus(verdict(parent.nsec3_span(false, 0)));
        assert_eq!(failure.reason, BogusReason::NotADelegation);
        assert_eq!(
            verdict(parent.nsec3_span(true, 500)),
            insecure(InsecureReason::Nsec3IterationsAboveLimit { iterations: 500 })
        );
    }

    #[test]
    fn ds_records_only_of_unsupported_algorithms_leave_the_child_insecure() {
        let parent = MadeZone::new("exempel.se");
        let child = name("privat.exempel.se");
        let ds = DS::new(
            4711,
            Algorithm::Unknown(253),
            DigestType::SHA256,
            vec![7; 32],
        );
        let chain = vec![
            parent.top_link(),
            ZoneLink {
                zone: child.clone(),
                ds: parent.signed(vec![Record::from_rdata(
                    child.clone(),
                    3600,
                    RData::DNSSEC(DNSSECRData::DS(ds)),
                )]),
                dnskey: Vec::new(),
            },
        ];
        let verdict = validate(&[parent.dnskey_record()], &chain, &[], SystemTime::now());
        assert_eq!(
            verdict,
            Ok(Verdict::Insecure(Insecure {
                parent: parent.zone.clone(),
                child,
                reason: InsecureReason::UnsupportedAlgorithms {
                    algorithms: vec![253]
                },
            }))
        );
    }

    #[test]
    fn a_signature_by_a_key_the_zone_lacks_is_named() {
        let parent = MadeZone::new("exempel.se");
        let stranger = MadeZone::new("exempel.se");
        let txt = Record::from_rdata(
            name("exempel.se"),
            300,
            RData::TXT(TXT::new(vec!["v=spf1 -all".into()])),
        );
        let verdict = validate(
            &[parent.dnskey_record()],
            &[parent.top_link()],
            &stranger.signed(vec![txt]),
            SystemTime::now(),
        );
        let failure = bogus(verdict.unwrap());
        let stranger_tag = stranger.dnskey.calculate_key_tag().unwrap();
        if stranger_tag != parent.dnskey.calculate_key_tag().unwrap() {
            assert_eq!(
                failure.reason,
                BogusReason::NoKeyForSignature {
                    key_tag: stranger_tag
                }
            );
        }
    }

    #[test]
    fn nsec3_hashes_are_spelled_in_base32hex() {
        // RFC 4648 §10 test vectors, lower case and without padding.
        assert_eq!(base32hex(b""), "");
        assert_eq!(base32hex(b"f"), "co");
        assert_eq!(base32hex(b"fo"), "cpng");
        assert_eq!(base32hex(b"foo"), "cpnmu");
        assert_eq!(base32hex(b"foob"), "cpnmuog");
        assert_eq!(base32hex(b"fooba"), "cpnmuoj1");
        assert_eq!(base32hex(b"foobar"), "cpnmuoj1e8");
    }
}
