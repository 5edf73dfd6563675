//! TLSA records (RFC 6698, RFC 7671) as SMTP uses them for DANE (RFC 7672).
//!
//! A TLSA record at `_25._tcp.<mx host>` names the certificate (or its public key) the mail
//! server presents, or a trust anchor above it: four fields, the certificate usage (0 PKIX-TA,
//! 1 PKIX-EE, 2 DANE-TA, 3 DANE-EE), the selector (0 the whole certificate, 1 its
//! SubjectPublicKeyInfo), the matching type (0 the data itself, 1 its SHA-256, 2 its SHA-512)
//! and the certificate association data. [`Tlsa::parse`] reads the RDATA and refuses what a
//! sender cannot use: undefined values, a digest of the wrong length, exact data that is not
//! the DER it must be. SMTP senders do not use usages 0 and 1 (RFC 7672 §3.1.3: there is no
//! set of CAs SMTP clients agree on), which [`Tlsa::smtp_usable`] says.
//!
//! [`tlsa_matches`] is the matching itself, for a certificate chain captured from the server
//! (the SMTP probe): whether the record's association data is that of the certificate it
//! applies to.

use sha2::{Digest, Sha256, Sha512};
use std::fmt;

/// The owner name of the TLSA records for SMTP to `host` (RFC 7672 §2.2: port 25, TCP).
pub fn smtp_tlsa_name(host: &crate::domain::DomainName) -> crate::domain::DomainName {
    host.child("_25._tcp")
}

/// The certificate usage field (RFC 6698 §2.1.1, RFC 7218 acronyms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Usage {
    /// 0: a CA in the chain, which must also pass PKIX validation.
    PkixTa,
    /// 1: the server's certificate, which must also pass PKIX validation.
    PkixEe,
    /// 2: a trust anchor of the domain's own for the server's chain.
    DaneTa,
    /// 3: the server's certificate or key itself, whatever signed it.
    DaneEe,
}

/// The selector field (RFC 6698 §2.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Selector {
    /// 0: the whole certificate (DER).
    Cert,
    /// 1: the certificate's SubjectPublicKeyInfo (DER): survives a renewal with the same key.
    Spki,
}

/// The matching type field (RFC 6698 §2.1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Matching {
    /// 0: the selected data itself.
    Full,
    /// 1: its SHA-256 digest (32 bytes).
    Sha256,
    /// 2: its SHA-512 digest (64 bytes).
    Sha512,
}

/// One TLSA record, every field known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tlsa {
    pub usage: Usage,
    pub selector: Selector,
    pub matching: Matching,
    /// The certificate association data.
    pub data: Vec<u8>,
}

/// Why a TLSA record cannot be used: senders treat such a record as unusable (RFC 7672 §2.2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsaError {
    #[error(
        "the record is {0} bytes long: a TLSA record holds a usage, a selector, a matching \
         type and the association data"
    )]
    TooShort(usize),
    #[error("certificate usage {0} is not defined (0 PKIX-TA, 1 PKIX-EE, 2 DANE-TA, 3 DANE-EE)")]
    UnknownUsage(u8),
    #[error("selector {0} is not defined (0 the full certificate, 1 its SubjectPublicKeyInfo)")]
    UnknownSelector(u8),
    #[error("matching type {0} is not defined (0 exact, 1 SHA-256, 2 SHA-512)")]
    UnknownMatching(u8),
    #[error("a {matching} association is {expected} bytes; this record's is {got}")]
    DigestLength {
        matching: &'static str,
        expected: usize,
        got: usize,
    },
    #[error("the exact association data (matching type 0) is not a DER {what}")]
    NotDer { what: &'static str },
}

impl Usage {
    pub fn number(self) -> u8 {
        match self {
            Usage::PkixTa => 0,
            Usage::PkixEe => 1,
            Usage::DaneTa => 2,
            Usage::DaneEe => 3,
        }
    }

    /// The RFC 7218 acronym.
    pub fn acronym(self) -> &'static str {
        match self {
            Usage::PkixTa => "PKIX-TA",
            Usage::PkixEe => "PKIX-EE",
            Usage::DaneTa => "DANE-TA",
            Usage::DaneEe => "DANE-EE",
        }
    }

    /// True for the usages that name the server's own certificate (1 and 3); the others name
    /// a certificate above it.
    pub fn is_end_entity(self) -> bool {
        matches!(self, Usage::PkixEe | Usage::DaneEe)
    }
}

impl Selector {
    pub fn number(self) -> u8 {
        match self {
            Selector::Cert => 0,
            Selector::Spki => 1,
        }
    }
}

impl Matching {
    pub fn number(self) -> u8 {
        match self {
            Matching::Full => 0,
            Matching::Sha256 => 1,
            Matching::Sha512 => 2,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Matching::Full => "exact",
            Matching::Sha256 => "SHA-256",
            Matching::Sha512 => "SHA-512",
        }
    }

    /// The association data of `selected` (certificate or SubjectPublicKeyInfo DER).
    pub fn digest(self, selected: &[u8]) -> Vec<u8> {
        match self {
            Matching::Full => selected.to_vec(),
            Matching::Sha256 => Sha256::digest(selected).to_vec(),
            Matching::Sha512 => Sha512::digest(selected).to_vec(),
        }
    }
}

impl Tlsa {
    /// Reads a TLSA RDATA (RFC 6698 §2.1).
    pub fn parse(rdata: &[u8]) -> Result<Tlsa, TlsaError> {
        let [usage, selector, matching, data @ ..] = rdata else {
            return Err(TlsaError::TooShort(rdata.len()));
        };
        let usage = match usage {
            0 => Usage::PkixTa,
            1 => Usage::PkixEe,
            2 => Usage::DaneTa,
            3 => Usage::DaneEe,
            other => return Err(TlsaError::UnknownUsage(*other)),
        };
        let selector = match selector {
            0 => Selector::Cert,
            1 => Selector::Spki,
            other => return Err(TlsaError::UnknownSelector(*other)),
        };
        let matching = match matching {
            0 => Matching::Full,
            1 => Matching::Sha256,
            2 => Matching::Sha512,
            other => return Err(TlsaError::UnknownMatching(*other)),
        };
        let expected = match matching {
            Matching::Full => None,
            Matching::Sha256 => Some(32),
            Matching::Sha512 => Some(64),
        };
        if let Some(expected) = expected {
            if data.len() != expected {
                return Err(TlsaError::DigestLength {
                    matching: matching.name(),
                    expected,
                    got: data.len(),
                });
            }
        } else {
            check_der(selector, data)?;
        }
        Ok(Tlsa {
            usage,
            selector,
            matching,
            data: data.to_vec(),
        })
    }

    /// The record's RDATA.
    pub fn to_rdata(&self) -> Vec<u8> {
        let mut out = vec![
            self.usage.number(),
            self.selector.number(),
            self.matching.number(),
        ];
        out.extend_from_slice(&self.data);
        out
    }

    /// False for PKIX-TA (0) and PKIX-EE (1): SMTP senders treat those as unusable (RFC 7672
    /// §3.1.3), so they secure nothing.
    pub fn smtp_usable(&self) -> bool {
        matches!(self.usage, Usage::DaneTa | Usage::DaneEe)
    }

    /// The record for a certificate (DER): usage, selector and matching as given, the
    /// association data computed from it. `None` when the certificate cannot be read (selector
    /// 1 needs its SubjectPublicKeyInfo).
    pub fn for_certificate(
        usage: Usage,
        selector: Selector,
        matching: Matching,
        certificate_der: &[u8],
    ) -> Option<Tlsa> {
        let selected = select(selector, certificate_der)?;
        Some(Tlsa {
            usage,
            selector,
            matching,
            data: matching.digest(selected),
        })
    }
}

impl fmt::Display for Tlsa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&presentation(&self.to_rdata()))
    }
}

/// A TLSA RDATA in presentation form (`3 1 1 8cb0…`), malformed ones too: the fields there are,
/// then the data in hexadecimal.
pub fn presentation(rdata: &[u8]) -> String {
    let fields = rdata.iter().take(3).map(u8::to_string);
    let data: String = rdata
        .get(3..)
        .unwrap_or_default()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    fields
        .chain((!data.is_empty()).then_some(data))
        .collect::<Vec<_>>()
        .join(" ")
}

fn check_der(selector: Selector, data: &[u8]) -> Result<(), TlsaError> {
    use x509_parser::prelude::FromDer;
    let whole = |rest: &[u8]| rest.is_empty();
    let ok = match selector {
        Selector::Cert => x509_parser::certificate::X509Certificate::from_der(data)
            .is_ok_and(|(rest, _)| whole(rest)),
        Selector::Spki => x509_parser::x509::SubjectPublicKeyInfo::from_der(data)
            .is_ok_and(|(rest, _)| whole(rest)),
    };
    if ok {
        Ok(())
    } else {
        Err(TlsaError::NotDer {
            what: match selector {
                Selector::Cert => "certificate",
                Selector::Spki => "SubjectPublicKeyInfo",
            },
        })
    }
}

/// The part of a certificate a selector names.
fn select(selector: Selector, certificate_der: &[u8]) -> Option<&[u8]> {
    use x509_parser::prelude::FromDer;
    match selector {
        Selector::Cert => Some(certificate_der),
        Selector::Spki => x509_parser::certificate::X509Certificate::from_der(certificate_der)
            .ok()
            .map(|(_, cert)| cert.tbs_certificate.subject_pki.raw),
    }
}

/// Whether `record` matches the certificate chain a server presented (DER, the server's own
/// certificate first): for usages 1 and 3 the server's certificate, for 0 and 2 any certificate
/// above it. This is the association check only: for DANE-TA the chain must still be
/// verified up to the matching certificate, and the server's name checked (RFC 7672 §3.2);
/// PKIX usages also need PKIX validation. An empty chain, or a certificate that cannot be read
/// when the selector needs its key, matches nothing.
/// The `3 1 1` record (DANE-EE, the public key, SHA-256) that matches a certificate: what to
/// publish for a server's current certificate. `None` when the certificate cannot be read.
pub fn dane_ee_record(certificate_der: &[u8]) -> Option<String> {
    let spki = select(Selector::Spki, certificate_der)?;
    let digest: String = Matching::Sha256
        .digest(spki)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Some(format!("3 1 1 {digest}"))
}

pub fn tlsa_matches<C: AsRef<[u8]>>(record: &Tlsa, chain_der: &[C]) -> bool {
    let candidates: &[C] = if record.usage.is_end_entity() {
        chain_der.get(..1).unwrap_or_default()
    } else {
        chain_der.get(1..).unwrap_or_default()
    };
    candidates.iter().any(|certificate| {
        select(record.selector, certificate.as_ref())
            .is_some_and(|selected| record.matching.digest(selected) == record.data)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};

    const DIGEST: &str = "8cb0fc6c527506a053f4f14c8464bebbd6dede2738d11468dd953d7d6a3021f1";

    fn rdata(usage: u8, selector: u8, matching: u8, data: &[u8]) -> Vec<u8> {
        let mut out = vec![usage, selector, matching];
        out.extend_from_slice(data);
        out
    }

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn a_dane_ee_spki_sha256_record_parses() {
        let record = Tlsa::parse(&rdata(3, 1, 1, &hex(DIGEST))).unwrap();
        assert_eq!(record.usage, Usage::DaneEe);
        assert_eq!(record.selector, Selector::Spki);
        assert_eq!(record.matching, Matching::Sha256);
        assert!(record.smtp_usable());
        assert_eq!(record.to_string(), format!("3 1 1 {DIGEST}"));
        assert_eq!(Tlsa::parse(&record.to_rdata()), Ok(record));
        let sha512 = Tlsa::parse(&rdata(2, 0, 2, &[7; 64])).unwrap();
        assert_eq!(sha512.usage.acronym(), "DANE-TA");
    }

    #[test]
    fn pkix_usages_parse_but_are_not_for_smtp() {
        for usage in [0, 1] {
            let record = Tlsa::parse(&rdata(usage, 0, 1, &hex(DIGEST))).unwrap();
            assert!(!record.smtp_usable(), "{usage}");
        }
    }

    #[test]
    fn malformed_records_say_what_is_wrong() {
        assert_eq!(Tlsa::parse(&[3, 1]), Err(TlsaError::TooShort(2)));
        assert_eq!(Tlsa::parse(&[]), Err(TlsaError::TooShort(0)));
        assert_eq!(
            Tlsa::parse(&rdata(4, 1, 1, &hex(DIGEST))),
            Err(TlsaError::UnknownUsage(4))
        );
        assert_eq!(
            Tlsa::parse(&rdata(3, 2, 1, &hex(DIGEST))),
            Err(TlsaError::UnknownSelector(2))
        );
        assert_eq!(
            Tlsa::parse(&rdata(3, 1, 3, &hex(DIGEST))),
            Err(TlsaError::UnknownMatching(3))
        );
        let short = Tlsa::parse(&rdata(3, 1, 1, &hex(&DIGEST[..32]))).unwrap_err();
        assert_eq!(
            short,
            TlsaError::DigestLength {
                matching: "SHA-256",
                expected: 32,
                got: 16
            }
        );
        assert_eq!(
            short.to_string(),
            "a SHA-256 association is 32 bytes; this record's is 16"
        );
        assert!(matches!(
            Tlsa::parse(&rdata(3, 1, 2, &hex(DIGEST))),
            Err(TlsaError::DigestLength { expected: 64, .. })
        ));
        // Exact data must be the DER it names.
        assert_eq!(
            Tlsa::parse(&rdata(3, 1, 0, b"not der")),
            Err(TlsaError::NotDer {
                what: "SubjectPublicKeyInfo"
            })
        );
        assert_eq!(
            Tlsa::parse(&rdata(3, 0, 0, &[])),
            Err(TlsaError::NotDer {
                what: "certificate"
            })
        );
    }

    #[test]
    fn presentation_shows_malformed_records_too() {
        assert_eq!(presentation(&[3, 1, 1, 0xab, 0x01]), "3 1 1 ab01");
        assert_eq!(presentation(&[3, 1]), "3 1");
        assert_eq!(presentation(&[]), "");
        let name = crate::domain::DomainName::parse("mx1.example.com").unwrap();
        assert_eq!(smtp_tlsa_name(&name).as_str(), "_25._tcp.mx1.example.com");
    }

    /// A CA and a server certificate it signed (rcgen), with the server's key pair.
    fn chain() -> (Vec<u8>, Vec<u8>, KeyPair, KeyPair) {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["mx1.example.com".to_string()]).unwrap();
        let leaf_cert = leaf.signed_by(&leaf_key, &ca_cert, &ca_key).unwrap();
        (
            leaf_cert.der().to_vec(),
            ca_cert.der().to_vec(),
            leaf_key,
            ca_key,
        )
    }

    #[test]
    fn records_match_the_certificate_they_name() {
        let (leaf, ca, leaf_key, ca_key) = chain();
        let presented = [leaf.clone(), ca.clone()];
        // 3 1 1 computed independently: rcgen's own SubjectPublicKeyInfo of the key.
        let spki_sha256 = Sha256::digest(leaf_key.public_key_der()).to_vec();
        let dane_ee = Tlsa::parse(&rdata(3, 1, 1, &spki_sha256)).unwrap();
        assert!(tlsa_matches(&dane_ee, &presented));
        assert!(tlsa_matches(&dane_ee, &presented[..1]));
        // The same record does not match another key, nor an empty chain.
        assert!(!tlsa_matches(&dane_ee, std::slice::from_ref(&ca)));
        assert!(!tlsa_matches(&dane_ee, &[] as &[Vec<u8>]));
        // 3 0 1, 3 0 2 and 3 0 0: the whole certificate.
        for matching in [Matching::Sha256, Matching::Sha512, Matching::Full] {
            let record =
                Tlsa::for_certificate(Usage::DaneEe, Selector::Cert, matching, &leaf).unwrap();
            assert_eq!(Tlsa::parse(&record.to_rdata()).as_ref(), Ok(&record));
            assert!(tlsa_matches(&record, &presented), "{matching:?}");
        }
        let exact_key = Tlsa::parse(&rdata(3, 1, 0, &leaf_key.public_key_der())).unwrap();
        assert!(tlsa_matches(&exact_key, &presented));
        // DANE-TA (2 1 1): the CA's key, which is above the server's certificate.
        let ca_spki = Sha256::digest(ca_key.public_key_der()).to_vec();
        let dane_ta = Tlsa::parse(&rdata(2, 1, 1, &ca_spki)).unwrap();
        assert!(tlsa_matches(&dane_ta, &presented));
        // ... but not when the chain stops at the server's certificate, and a TA record never
        // matches the server's own certificate.
        assert!(!tlsa_matches(&dane_ta, &presented[..1]));
        let leaf_as_ta = Tlsa::parse(&rdata(2, 1, 1, &spki_sha256)).unwrap();
        assert!(!tlsa_matches(&leaf_as_ta, &presented));
        // A damaged digest does not match.
        let mut damaged = dane_ee.clone();
        damaged.data[0] ^= 1;
        assert!(!tlsa_matches(&damaged, &presented));
        // A certificate that cannot be read matches no SubjectPublicKeyInfo record.
        assert!(!tlsa_matches(&dane_ee, &[b"garbage".to_vec()]));
    }
}
