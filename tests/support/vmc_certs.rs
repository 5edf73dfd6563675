//! Mark certificate chains for tests, made at run time with rcgen: a test root CA, a BIMI issuing
//! CA (with the BIMI extended key usage), and a mark certificate with the BIMI EKU, DNS names,
//! the Mark Certificate General Policy, a subject markType and a logotype extension embedding an
//! SVG (RFC 3709 `LogotypeExtn`, the logo as a `data:` URI of gzipped SVG per RFC 6170). Each
//! part can be left out or made wrong, one test at a time.
//!
//! Used by `src/records/vmc.rs`'s unit tests (through `#[path]`); integration tests get it by
//! listing `pub mod vmc_certs;` in `tests/support/mod.rs`. It depends only on the crate's
//! dependencies and dev-dependencies, never on the crate itself.
#![allow(dead_code)]

use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls_pki_types::CertificateDer;
use sha2::Digest;
use std::io::Write;

const BIMI_EKU: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 3, 31];
const MARK_CERTIFICATE_POLICY: &[u64] = &[1, 3, 6, 1, 4, 1, 53087, 1, 1];
const MARK_TYPE: &[u64] = &[1, 3, 6, 1, 4, 1, 53087, 1, 13];
const LOGOTYPE: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 1, 12];
const CERTIFICATE_POLICIES: &[u64] = &[2, 5, 29, 32];
const SHA256: &[u64] = &[2, 16, 840, 1, 101, 3, 4, 2, 1];

/// What to put in the chain. [`MarkSpec::new`] gives a valid VMC for `northwind.example`, valid
/// through 2026.
#[derive(Debug, Clone)]
pub struct MarkSpec {
    /// The logotype extension's value (DER); `None` leaves the extension out.
    pub logotype: Option<Vec<u8>>,
    pub logotype_critical: bool,
    pub dns_names: Vec<String>,
    /// `false` gives the mark certificate TLS server authentication instead (a TLS certificate
    /// pasted by mistake).
    pub leaf_bimi_eku: bool,
    /// `false` leaves the EKU extension off the issuing CA.
    pub intermediate_bimi_eku: bool,
    /// subject:markType; `None` leaves it out.
    pub mark_type: Option<String>,
    /// The Mark Certificate General Policy in certificatePolicies.
    pub policy: bool,
    /// The mark certificate's validity, as (year, month, day) at midnight UTC.
    pub not_before: (i32, u8, u8),
    pub not_after: (i32, u8, u8),
    /// The PEM file also holds the root.
    pub include_root: bool,
    /// The PEM file lists the issuers before the mark certificate.
    pub leaf_last: bool,
    /// The root's common name.
    pub root_name: String,
}

impl MarkSpec {
    pub fn new(svg: &[u8]) -> MarkSpec {
        MarkSpec {
            logotype: Some(logotype_extension(svg, "image/svg+xml", true, true)),
            logotype_critical: false,
            dns_names: vec!["northwind.example".into()],
            leaf_bimi_eku: true,
            intermediate_bimi_eku: true,
            mark_type: Some("Registered Mark".into()),
            policy: true,
            not_before: (2026, 1, 1),
            not_after: (2026, 12, 31),
            include_root: false,
            leaf_last: false,
            root_name: "Mailshift Test Mark Root".into(),
        }
    }
}

/// A generated chain.
pub struct MarkPki {
    /// The root, to pass as the trusted anchor.
    pub root_der: CertificateDer<'static>,
    pub root_pem: String,
    pub intermediate_der: CertificateDer<'static>,
    pub leaf_der: CertificateDer<'static>,
    /// The mark certificate's private key (never published; for a "key in the file" test).
    pub leaf_key_pem: String,
    /// What `a=` would serve.
    pub chain_pem: String,
}

impl MarkPki {
    pub fn build(spec: &MarkSpec) -> MarkPki {
        let root_key = KeyPair::generate().expect("root key");
        let mut root = CertificateParams::new(Vec::<String>::new()).expect("root params");
        root.distinguished_name
            .push(DnType::CommonName, spec.root_name.as_str());
        root.distinguished_name
            .push(DnType::OrganizationName, "mailshift tests");
        root.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        root.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        root.not_before = rcgen::date_time_ymd(2020, 1, 1);
        root.not_after = rcgen::date_time_ymd(2040, 1, 1);
        let root_cert = root.self_signed(&root_key).expect("root certificate");

        let issuing_key = KeyPair::generate().expect("issuing key");
        let mut issuing = CertificateParams::new(Vec::<String>::new()).expect("issuing params");
        issuing
            .distinguished_name
            .push(DnType::CommonName, "Mailshift Test Mark Issuing CA");
        issuing
            .distinguished_name
            .push(DnType::OrganizationName, "mailshift tests");
        issuing.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        issuing.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        if spec.intermediate_bimi_eku {
            issuing.extended_key_usages = vec![ExtendedKeyUsagePurpose::Other(BIMI_EKU.to_vec())];
        }
        if spec.policy {
            issuing.custom_extensions = vec![policies_extension()];
        }
        issuing.not_before = rcgen::date_time_ymd(2020, 1, 1);
        issuing.not_after = rcgen::date_time_ymd(2040, 1, 1);
        let issuing_cert = issuing
            .signed_by(&issuing_key, &root_cert, &root_key)
            .expect("issuing certificate");

        let leaf_key = KeyPair::generate().expect("leaf key");
        let mut leaf = CertificateParams::new(spec.dns_names.clone()).expect("leaf params");
        leaf.distinguished_name = rcgen::DistinguishedName::new();
        leaf.distinguished_name
            .push(DnType::OrganizationName, "Northwind Outfitters");
        if let Some(mark_type) = &spec.mark_type {
            leaf.distinguished_name
                .push(DnType::CustomDnType(MARK_TYPE.to_vec()), mark_type.as_str());
        }
        leaf.is_ca = IsCa::ExplicitNoCa;
        leaf.extended_key_usages = if spec.leaf_bimi_eku {
            vec![ExtendedKeyUsagePurpose::Other(BIMI_EKU.to_vec())]
        } else {
            vec![ExtendedKeyUsagePurpose::ServerAuth]
        };
        if spec.policy {
            leaf.custom_extensions.push(policies_extension());
        }
        if let Some(logotype) = &spec.logotype {
            let mut extension = CustomExtension::from_oid_content(LOGOTYPE, logotype.clone());
            extension.set_criticality(spec.logotype_critical);
            leaf.custom_extensions.push(extension);
        }
        let (y, m, d) = spec.not_before;
        leaf.not_before = rcgen::date_time_ymd(y, m, d);
        let (y, m, d) = spec.not_after;
        leaf.not_after = rcgen::date_time_ymd(y, m, d);
        let leaf_cert = leaf
            .signed_by(&leaf_key, &issuing_cert, &issuing_key)
            .expect("leaf certificate");

        let mut parts = vec![leaf_cert.pem(), issuing_cert.pem()];
        if spec.include_root {
            parts.push(root_cert.pem());
        }
        if spec.leaf_last {
            parts.reverse();
        }
        MarkPki {
            root_der: root_cert.der().clone(),
            root_pem: root_cert.pem(),
            intermediate_der: issuing_cert.der().clone(),
            leaf_der: leaf_cert.der().clone(),
            leaf_key_pem: leaf_key.serialize_pem(),
            chain_pem: parts.concat(),
        }
    }
}

/// certificatePolicies with the Mark Certificate General Policy alone.
fn policies_extension() -> CustomExtension {
    let policy_information = tlv(0x30, &tlv(0x06, &oid_content(MARK_CERTIFICATE_POLICY)));
    CustomExtension::from_oid_content(CERTIFICATE_POLICIES, tlv(0x30, &policy_information))
}

/// A `LogotypeExtn` whose subject logo is `svg` as a `data:` URI: gzipped (as RFC 6170
/// requires) or not, under `media_type`, with a SHA-256 logotype hash of the SVG that is right
/// or deliberately wrong.
pub fn logotype_extension(svg: &[u8], media_type: &str, gzip: bool, right_hash: bool) -> Vec<u8> {
    let payload = if gzip {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(svg).expect("gzip");
        encoder.finish().expect("gzip")
    } else {
        svg.to_vec()
    };
    let uri = format!(
        "data:{media_type};base64,{}",
        base64::engine::general_purpose::STANDARD.encode(payload)
    );
    // RFC 6170 §5.2: the hash is over the SVG with line ends as LF.
    let lf = String::from_utf8_lossy(svg).replace("\r\n", "\n");
    let mut digest = sha2::Sha256::digest(lf.as_bytes()).to_vec();
    if !right_hash {
        if let Some(first) = digest.first_mut() {
            *first ^= 0xff;
        }
    }
    let hash_algorithm = tlv(
        0x30,
        &[tlv(0x06, &oid_content(SHA256)), tlv(0x05, &[])].concat(),
    );
    let hash = tlv(0x30, &[hash_algorithm, tlv(0x04, &digest)].concat());
    let details = tlv(
        0x30,
        &[
            tlv(0x16, media_type.as_bytes()),
            tlv(0x30, &hash),
            tlv(0x30, &tlv(0x16, uri.as_bytes())),
        ]
        .concat(),
    );
    let image = tlv(0x30, &details);
    // LogotypeData ::= SEQUENCE { image SEQUENCE OF LogotypeImage }, as direct [0] IMPLICIT.
    let direct = tlv(0xa0, &tlv(0x30, &image));
    // subjectLogo [2] EXPLICIT LogotypeInfo.
    tlv(0x30, &tlv(0xa2, &direct))
}

/// One DER tag-length-value.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

/// The content octets of an OBJECT IDENTIFIER.
fn oid_content(arcs: &[u64]) -> Vec<u8> {
    let mut out = Vec::new();
    let (first, second, rest) = match arcs {
        [a, b, rest @ ..] => (*a, *b, rest),
        _ => panic!("an OID has at least two arcs"),
    };
    for arc in std::iter::once(first * 40 + second).chain(rest.iter().copied()) {
        let mut chunk = vec![(arc & 0x7f) as u8];
        let mut value = arc >> 7;
        while value > 0 {
            chunk.push(0x80 | (value & 0x7f) as u8);
            value >>= 7;
        }
        chunk.reverse();
        out.extend(chunk);
    }
    out
}
