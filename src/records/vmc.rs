//! Mark certificates (VMC and CMC): the PEM chain a BIMI record's `a=` names, checked the way
//! draft-fetch-validation-vmc-wchuang describes and the BIMI Group's Mark Certificate
//! Requirements (MCR) profile: the chain leads to a trusted mark-certificate root, every
//! certificate is within its validity period, the mark certificate carries the BIMI extended key
//! usage (`id-kp-BrandIndicatorforMessageIdentification`, 1.3.6.1.5.5.7.3.31) as does its issuer,
//! its subjectAltName names the assertion record's domain (or `<selector>._bimi.<domain>`), and
//! its logotype extension (RFC 3709, RFC 6170 §4: a `data:` URI of gzipped SVG) holds the logo.
//! Whether it is a VMC or a CMC is read from the subject's markType attribute.
//!
//! Everything here is pure: the caller fetches the PEM and the logo and passes them in with the
//! time and the trusted roots, so the checks run the same offline and in tests. Revocation (CRL)
//! and Certificate Transparency proofs, which the draft also asks receivers to check, need the
//! network or a log list and are left out. Path building is rustls-webpki's; fields webpki does
//! not expose are read with x509-parser, and the logotype, which neither parses, with `der`.

use crate::domain::DomainName;
use crate::records::svg_tiny_ps::{self, SvgzError};
use base64::Engine;
use chrono::{DateTime, Utc};
use rustls_pki_types::{CertificateDer, UnixTime};
use sha2::Digest;
use spki::der;
use std::time::Duration;
use x509_parser::prelude::{FromDer, GeneralName, ParsedExtension, X509Certificate};

/// id-kp-BrandIndicatorforMessageIdentification.
pub const BIMI_EKU_OID: &str = "1.3.6.1.5.5.7.3.31";
/// The same OID as DER content octets, as webpki's `KeyUsage` wants it.
const BIMI_EKU_DER: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x1f];
/// The Mark Certificate General Policy Identifier (MCR §7.1.2.3): VMCs and CMCs both carry it.
pub const MARK_CERTIFICATE_POLICY_OID: &str = "1.3.6.1.4.1.53087.1.1";
/// subject:markType (MCR §7.1.4.2.2): says which verification the mark had, so VMC or CMC.
pub const MARK_TYPE_OID: &str = "1.3.6.1.4.1.53087.1.13";
/// id-pe-logotype (RFC 3709).
pub const LOGOTYPE_OID: &str = "1.3.6.1.5.5.7.1.12";
/// The pilot identifier extension (MCR): critical, only on early CMCs.
pub const PILOT_IDENTIFIER_OID: &str = "1.3.6.1.4.1.53087.4.1";

/// The largest PEM file read: a chain of four certificates, each with a 32 KiB logo inside,
/// is well under it.
pub const MAX_PEM_BYTES: usize = 256 * 1024;
/// Certificates read from one file (leaf, intermediates, optional root).
pub const MAX_CHAIN_CERTIFICATES: usize = 10;
/// Images and URIs looked at in one logotype extension.
const MAX_LOGOTYPE_ITEMS: usize = 16;

const SHA256_OID: &str = "2.16.840.1.101.3.4.2.1";
const SHA384_OID: &str = "2.16.840.1.101.3.4.2.2";
const SHA512_OID: &str = "2.16.840.1.101.3.4.2.3";

/// Why the PEM file cannot be read as a certificate chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PemError {
    #[error("the file is {size} bytes; a mark certificate chain is at most {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("the file holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)")]
    NoCertificate,
    #[error("PEM block {index} cannot be read ({reason})")]
    Malformed { index: usize, reason: String },
    #[error("the file holds more than {limit} certificates")]
    TooMany { limit: usize },
}

/// The certificates of a PEM file, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PemChain {
    pub certificates: Vec<CertificateDer<'static>>,
    /// Private keys found beside the certificates (which should never be published).
    pub private_keys: usize,
}

/// Reads the certificates of a PEM file (the `a=` document).
pub fn parse_pem_chain(pem: &[u8]) -> Result<PemChain, PemError> {
    if pem.len() > MAX_PEM_BYTES {
        return Err(PemError::TooLarge {
            size: pem.len(),
            limit: MAX_PEM_BYTES,
        });
    }
    let mut chain = PemChain {
        certificates: Vec::new(),
        private_keys: 0,
    };
    let mut reader = pem;
    for (i, item) in rustls_pemfile::read_all(&mut reader).enumerate() {
        match item {
            Ok(rustls_pemfile::Item::X509Certificate(cert)) => {
                if chain.certificates.len() >= MAX_CHAIN_CERTIFICATES {
                    return Err(PemError::TooMany {
                        limit: MAX_CHAIN_CERTIFICATES,
                    });
                }
                chain.certificates.push(cert);
            }
            Ok(
                rustls_pemfile::Item::Pkcs1Key(_)
                | rustls_pemfile::Item::Pkcs8Key(_)
                | rustls_pemfile::Item::Sec1Key(_),
            ) => chain.private_keys += 1,
            Ok(_) => {}
            Err(e) => {
                return Err(PemError::Malformed {
                    index: i + 1,
                    reason: e.to_string(),
                })
            }
        }
    }
    if chain.certificates.is_empty() {
        return Err(PemError::NoCertificate);
    }
    Ok(chain)
}

/// subject:markType values (MCR §7.1.4.2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MarkType {
    RegisteredMark,
    GovernmentMark,
    PriorUseMark,
    ModifiedRegisteredMark,
    /// A value these requirements do not list.
    Other(String),
}

impl MarkType {
    pub fn parse(value: &str) -> MarkType {
        match value.trim() {
            "Registered Mark" => MarkType::RegisteredMark,
            "Government Mark" => MarkType::GovernmentMark,
            "Prior Use Mark" => MarkType::PriorUseMark,
            "Modified Registered Mark" => MarkType::ModifiedRegisteredMark,
            other => MarkType::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            MarkType::RegisteredMark => "Registered Mark",
            MarkType::GovernmentMark => "Government Mark",
            MarkType::PriorUseMark => "Prior Use Mark",
            MarkType::ModifiedRegisteredMark => "Modified Registered Mark",
            MarkType::Other(other) => other,
        }
    }

    /// Registered and government marks make a VMC; prior-use and modified marks a CMC (MCR §1.1).
    pub fn kind(&self) -> CertificateKind {
        match self {
            MarkType::RegisteredMark | MarkType::GovernmentMark => CertificateKind::Vmc,
            MarkType::PriorUseMark | MarkType::ModifiedRegisteredMark => CertificateKind::Cmc,
            MarkType::Other(_) => CertificateKind::Unknown,
        }
    }
}

/// Verified or Common Mark Certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CertificateKind {
    /// A Verified Mark Certificate: a registered trademark or government mark.
    Vmc,
    /// A Common Mark Certificate: a mark in prior use, or a modified registered trademark.
    Cmc,
    /// No (known) markType in the subject.
    #[default]
    Unknown,
}

/// Why the logo in a certificate cannot be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogotypeError {
    #[error("the certificate cannot be parsed ({0})")]
    Certificate(String),
    #[error("the certificate has no logotype extension (1.3.6.1.5.5.7.1.12)")]
    Missing,
    #[error("the logotype extension is not valid DER ({0})")]
    Der(String),
    #[error("the logotype extension has no subject logo")]
    NoSubjectLogo,
    #[error("the subject logo is referenced indirectly, not embedded")]
    Indirect,
    #[error("the subject logo has no image")]
    NoImage,
    #[error("the logo's media type is `{0}`, not `image/svg+xml`")]
    NotSvg(String),
    #[error("the logo is not embedded as a `data:` URI (it points to `{0}`)")]
    NotDataUri(String),
    #[error("the logo's `data:` URI is not base64 ({0})")]
    Base64(String),
    #[error("the embedded logo: {0}")]
    Svgz(SvgzError),
}

/// The logo embedded in a mark certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddedLogo {
    /// The image's media type, as written (`image/svg+xml`).
    pub media_type: String,
    /// The SVG document, decompressed.
    pub svg: Vec<u8>,
    /// It was gzip-compressed, as RFC 6170 §5.2 requires of `data:` URIs.
    pub gzipped: bool,
    /// Whether a logotype hash the checker can compute (SHA-256/384/512) matches the SVG (RFC
    /// 6170 §5.2: over the decompressed SVG, line ends as LF); `None` when there is none.
    pub hash_matches: Option<bool>,
}

/// The logo embedded in one certificate (DER), for comparing with the file `l=` names.
pub fn embedded_logo(certificate_der: &[u8]) -> Result<EmbeddedLogo, LogotypeError> {
    let (_, cert) = X509Certificate::from_der(certificate_der)
        .map_err(|e| LogotypeError::Certificate(e.to_string()))?;
    let extension = cert
        .extensions()
        .iter()
        .find(|e| e.oid.to_id_string() == LOGOTYPE_OID)
        .ok_or(LogotypeError::Missing)?;
    decode_logotype(extension.value)
}

/// Decodes a logotype extension's value (RFC 3709 `LogotypeExtn`) down to the subject logo's
/// SVG. Every length is checked by the DER reader and every loop is bounded.
pub fn decode_logotype(extension_value: &[u8]) -> Result<EmbeddedLogo, LogotypeError> {
    let der_error = |e: der::Error| LogotypeError::Der(e.to_string());
    // LogotypeExtn ::= SEQUENCE { communityLogos [0], issuerLogo [1], subjectLogo [2], ... }
    let extn = single(extension_value, 0x30).map_err(der_error)?;
    let subject = children(extn)
        .map_err(der_error)?
        .into_iter()
        .find(|(tag, _)| *tag == 0xa2)
        .map(|(_, value)| value)
        .ok_or(LogotypeError::NoSubjectLogo)?;
    // subjectLogo [2] EXPLICIT LogotypeInfo ::= CHOICE { direct [0] LogotypeData, indirect [1] }
    let (tag, info) = first(subject).map_err(der_error)?;
    match tag {
        0xa0 => {}
        0xa1 => return Err(LogotypeError::Indirect),
        other => {
            return Err(LogotypeError::Der(format!(
                "unexpected tag {other:#04x} in subjectLogo"
            )))
        }
    }
    // LogotypeData ::= SEQUENCE { image SEQUENCE OF LogotypeImage OPTIONAL, audio [1] ... }
    let images = children(info)
        .map_err(der_error)?
        .into_iter()
        .find(|(tag, _)| *tag == 0x30)
        .map(|(_, value)| value)
        .ok_or(LogotypeError::NoImage)?;
    let mut first_media_type = None;
    for (tag, image) in children(images).map_err(der_error)? {
        if tag != 0x30 {
            continue;
        }
        // LogotypeImage ::= SEQUENCE { imageDetails LogotypeDetails, imageInfo OPTIONAL }
        let (_, details) = first(image).map_err(der_error)?;
        // LogotypeDetails ::= SEQUENCE { mediaType IA5String, logotypeHash SEQUENCE OF
        //   HashAlgAndValue, logotypeURI SEQUENCE OF IA5String }
        let parts = children(details).map_err(der_error)?;
        let (Some((0x16, media)), Some((0x30, hashes)), Some((0x30, uris))) = (
            parts.first().copied(),
            parts.get(1).copied(),
            parts.get(2).copied(),
        ) else {
            return Err(LogotypeError::Der(
                "LogotypeDetails is not mediaType, hashes, URIs".into(),
            ));
        };
        let media_type = ia5(media)?;
        let is_svg = media_type
            .split(';')
            .next()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("image/svg+xml"));
        if !is_svg {
            first_media_type.get_or_insert(media_type);
            continue;
        }
        let mut first_uri = None;
        for (tag, uri) in children(uris).map_err(der_error)? {
            if tag != 0x16 {
                continue;
            }
            let uri = ia5(uri)?;
            if uri.len() >= 5
                && uri
                    .get(..5)
                    .is_some_and(|s| s.eq_ignore_ascii_case("data:"))
            {
                let (svg, gzipped) = decode_data_uri(&uri)?;
                let hash_matches = check_hashes(hashes, &svg).map_err(der_error)?;
                return Ok(EmbeddedLogo {
                    media_type,
                    svg,
                    gzipped,
                    hash_matches,
                });
            }
            first_uri.get_or_insert(uri);
        }
        return Err(LogotypeError::NotDataUri(clip(
            first_uri.as_deref().unwrap_or("nothing"),
        )));
    }
    match first_media_type {
        Some(media_type) => Err(LogotypeError::NotSvg(clip(&media_type))),
        None => Err(LogotypeError::NoImage),
    }
}

/// The SVG in a `data:image/svg+xml;base64,...` URI, decompressed when gzipped.
fn decode_data_uri(uri: &str) -> Result<(Vec<u8>, bool), LogotypeError> {
    let body = uri.get(5..).unwrap_or_default();
    let Some((header, data)) = body.split_once(',') else {
        return Err(LogotypeError::Base64("the `data:` URI has no `,`".into()));
    };
    if !header
        .split(';')
        .any(|p| p.trim().eq_ignore_ascii_case("base64"))
    {
        return Err(LogotypeError::Base64(
            "the `data:` URI is not marked `;base64`".into(),
        ));
    }
    let cleaned: String = data.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(cleaned.as_bytes())
        .map_err(|e| LogotypeError::Base64(e.to_string()))?;
    let gzipped = svg_tiny_ps::is_gzip(&bytes);
    let svg = svg_tiny_ps::decompress(&bytes)
        .map_err(LogotypeError::Svgz)?
        .into_owned();
    Ok((svg, gzipped))
}

/// Compares the logotype hashes (`SEQUENCE OF HashAlgAndValue`) with the SVG.
fn check_hashes(hashes: &[u8], svg: &[u8]) -> der::Result<Option<bool>> {
    let lf: Vec<u8> = if svg.contains(&b'\r') {
        normalise_line_ends(svg)
    } else {
        Vec::new()
    };
    let mut verdict = None;
    for (tag, entry) in children(hashes)? {
        if tag != 0x30 {
            continue;
        }
        // HashAlgAndValue ::= SEQUENCE { hashAlg AlgorithmIdentifier, hashValue OCTET STRING }
        let parts = children(entry)?;
        let (Some((0x30, alg)), Some((0x04, value))) =
            (parts.first().copied(), parts.get(1).copied())
        else {
            continue;
        };
        let (oid_tag, oid) = first(alg)?;
        if oid_tag != 0x06 {
            continue;
        }
        let Ok(oid) = der::asn1::ObjectIdentifier::from_bytes(oid) else {
            continue;
        };
        let digest = |data: &[u8]| -> Option<Vec<u8>> {
            Some(match oid.to_string().as_str() {
                SHA256_OID => sha2::Sha256::digest(data).to_vec(),
                SHA384_OID => sha2::Sha384::digest(data).to_vec(),
                SHA512_OID => sha2::Sha512::digest(data).to_vec(),
                _ => return None,
            })
        };
        let Some(plain) = digest(svg) else { continue };
        let matches = plain == value || (!lf.is_empty() && digest(&lf).is_some_and(|d| d == value));
        if matches {
            return Ok(Some(true));
        }
        verdict = Some(false);
    }
    Ok(verdict)
}

/// One DER element with the given tag that fills `input`; its contents.
fn single(input: &[u8], tag: u8) -> der::Result<&[u8]> {
    let (found, value, rest) = next_tlv(input)?;
    if found != tag || !rest.is_empty() {
        return Err(der::ErrorKind::Failed.into());
    }
    Ok(value)
}

/// The first element of `input` (tag octet and contents).
fn first(input: &[u8]) -> der::Result<(u8, &[u8])> {
    next_tlv(input).map(|(tag, value, _)| (tag, value))
}

/// The elements of a constructed value's contents, at most [`MAX_LOGOTYPE_ITEMS`] + a few.
fn children(mut input: &[u8]) -> der::Result<Vec<(u8, &[u8])>> {
    let mut out = Vec::new();
    while !input.is_empty() && out.len() < MAX_LOGOTYPE_ITEMS {
        let (tag, value, rest) = next_tlv(input)?;
        out.push((tag, value));
        input = rest;
    }
    Ok(out)
}

/// Reads one tag-length-value from the front of `input`.
fn next_tlv(input: &[u8]) -> der::Result<(u8, &[u8], &[u8])> {
    use der::{Reader, Tagged};
    let mut reader = der::SliceReader::new(input)?;
    let any: der::asn1::AnyRef<'_> = reader.decode()?;
    let consumed = usize::try_from(reader.position())?;
    let rest = input.get(consumed..).unwrap_or_default();
    Ok((any.tag().octet(), any.value(), rest))
}

fn ia5(value: &[u8]) -> Result<String, LogotypeError> {
    if !value.is_ascii() {
        return Err(LogotypeError::Der(
            "an IA5String holds non-ASCII bytes".into(),
        ));
    }
    Ok(String::from_utf8_lossy(value).into_owned())
}

fn normalise_line_ends(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'\r' {
            out.push(b'\n');
            if bytes.get(i + 1) == Some(&b'\n') {
                i += 1;
            }
        } else {
            out.push(b);
        }
        i += 1;
    }
    out
}

/// Why a mark certificate chain would not be accepted. Certificates are numbered from 1 in
/// file order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VmcProblem {
    #[error("{0}")]
    Pem(PemError),
    #[error("certificate {index} of the file cannot be parsed ({reason})")]
    Unreadable { index: usize, reason: String },
    #[error("the file holds only CA certificates: there is no mark certificate in it")]
    NoMarkCertificate,
    #[error("certificate {index} ({subject}) expired on {not_after}")]
    Expired {
        index: usize,
        subject: String,
        not_after: String,
    },
    #[error("certificate {index} ({subject}) is not valid until {not_before}")]
    NotYetValid {
        index: usize,
        subject: String,
        not_before: String,
    },
    #[error(
        "the mark certificate ({subject}) does not have the BIMI extended key usage \
         (1.3.6.1.5.5.7.3.31){}",
        listed(present)
    )]
    NoBimiEku {
        subject: String,
        present: Vec<String>,
    },
    #[error(
        "certificate {index} ({subject}), which issued the mark certificate, does not have the \
         BIMI extended key usage (1.3.6.1.5.5.7.3.31)"
    )]
    IssuerWithoutBimiEku { index: usize, subject: String },
    #[error("the mark certificate names no domain (it has no subjectAltName DNS name)")]
    NoNames,
    #[error(
        "the mark certificate is for {}, not {domain} (nor {selector_name})",
        names.join(", ")
    )]
    NameMismatch {
        domain: String,
        selector_name: String,
        names: Vec<String>,
    },
    #[error("no trusted mark certificate roots were given, so the chain could not be checked")]
    NoTrustAnchors,
    #[error(
        "the chain does not lead to a trusted mark certificate authority (its last certificate \
         was issued by {issuer}; is an intermediate missing from the file?)"
    )]
    UntrustedIssuer { issuer: String },
    #[error("the chain does not verify: {reason}")]
    ChainInvalid { reason: String },
    #[error("the mark certificate has no logotype extension (1.3.6.1.5.5.7.1.12), so no logo")]
    NoLogotype,
    #[error("the mark certificate's logotype extension is marked critical; it must not be")]
    CriticalLogotype,
    #[error("the logo in the mark certificate cannot be read: {0}")]
    Logotype(LogotypeError),
}

fn listed(present: &[String]) -> String {
    if present.is_empty() {
        " (it has no extended key usage at all)".into()
    } else {
        format!(" (it has {})", present.join(", "))
    }
}

/// What checking a mark certificate chain found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VmcReport {
    /// Certificates in the file.
    pub chain_length: usize,
    /// The mark certificate's subject and issuer, as distinguished names.
    pub subject: Option<String>,
    pub issuer: Option<String>,
    /// Its validity period, in seconds since the Unix epoch (shown by [`date`]).
    pub not_before: Option<i64>,
    pub not_after: Option<i64>,
    /// Its subjectAltName DNS names, lower-cased.
    pub dns_names: Vec<String>,
    /// Its certificate policy OIDs.
    pub policies: Vec<String>,
    pub mark_type: Option<MarkType>,
    pub kind: CertificateKind,
    /// The logo it embeds.
    pub logo: Option<EmbeddedLogo>,
    /// What stops receivers from accepting it.
    pub problems: Vec<VmcProblem>,
    /// Deviations from the profile receivers may tolerate.
    pub notes: Vec<String>,
}

impl VmcReport {
    /// Would a receiver that checks mark certificates accept this one (revocation and
    /// Certificate Transparency aside)?
    pub fn is_valid(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks the PEM chain an assertion record's `a=` names, for the record found at
/// `<selector>._bimi.<domain>` (pass the organisational domain when the record was found there),
/// at time `now`, against the given trusted mark certificate roots (DER).
pub fn check_chain(
    pem: &[u8],
    domain: &DomainName,
    selector: &str,
    now: DateTime<Utc>,
    trust_anchors: &[CertificateDer<'_>],
) -> VmcReport {
    let mut report = VmcReport::default();
    let chain = match parse_pem_chain(pem) {
        Ok(chain) => chain,
        Err(e) => {
            report.problems.push(VmcProblem::Pem(e));
            return report;
        }
    };
    if chain.private_keys > 0 {
        report.notes.push(format!(
            "the file also holds {} private key(s); publish only the certificates",
            chain.private_keys
        ));
    }
    let ders = chain.certificates;
    report.chain_length = ders.len();
    let mut parsed = Vec::with_capacity(ders.len());
    for (i, der) in ders.iter().enumerate() {
        match X509Certificate::from_der(der.as_ref()) {
            Ok((_, cert)) => parsed.push(cert),
            Err(e) => report.problems.push(VmcProblem::Unreadable {
                index: i + 1,
                reason: e.to_string(),
            }),
        }
    }
    if !report.problems.is_empty() {
        return report;
    }
    let leaves: Vec<usize> = (0..parsed.len())
        .filter(|&i| parsed.get(i).is_some_and(|c| !c.is_ca()))
        .collect();
    let (Some(&leaf_index), Some(leaf), Some(leaf_der)) = (
        leaves.first(),
        leaves.first().and_then(|&i| parsed.get(i)),
        leaves.first().and_then(|&i| ders.get(i)),
    ) else {
        report.problems.push(VmcProblem::NoMarkCertificate);
        return report;
    };
    if leaf_index != 0 {
        report.notes.push(format!(
            "the mark certificate is certificate {} of the file; it should come first, then its \
             issuers (receivers may refuse a chain out of order)",
            leaf_index + 1
        ));
    }
    if leaves.len() > 1 {
        report.notes.push(format!(
            "the file holds {} end-entity certificates; it should hold one mark certificate \
             (receivers may refuse it)",
            leaves.len()
        ));
    }

    report.subject = Some(leaf.subject().to_string());
    report.issuer = Some(leaf.issuer().to_string());
    report.not_before = Some(leaf.validity().not_before.timestamp());
    report.not_after = Some(leaf.validity().not_after.timestamp());

    check_validity(&parsed, now, &mut report);
    let eku_problem = check_ekus(&parsed, leaf_index, &mut report);
    check_names(leaf, domain, selector, &mut report);
    read_profile(leaf, &mut report);
    check_path(
        &ders,
        &parsed,
        leaf_der,
        leaf_index,
        now,
        trust_anchors,
        eku_problem,
        &mut report,
    );
    report
}

/// A short name for a certificate in messages: its CN, else its O, else the whole subject.
fn describe(cert: &X509Certificate<'_>) -> String {
    let subject = cert.subject();
    let named = subject
        .iter_common_name()
        .next()
        .or_else(|| subject.iter_organization().next())
        .and_then(|a| a.as_str().ok())
        .map(str::to_string);
    clip(&named.unwrap_or_else(|| subject.to_string()))
}

/// A certificate date as reports show it: `YYYY-MM-DD HH:MM UTC`.
pub fn date(timestamp: i64) -> String {
    DateTime::<Utc>::from_timestamp(timestamp, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| format!("{timestamp} (seconds since 1970)"))
}

fn check_validity(parsed: &[X509Certificate<'_>], now: DateTime<Utc>, report: &mut VmcReport) {
    let now = now.timestamp();
    for (i, cert) in parsed.iter().enumerate() {
        let validity = cert.validity();
        if validity.not_after.timestamp() < now {
            report.problems.push(VmcProblem::Expired {
                index: i + 1,
                subject: describe(cert),
                not_after: date(validity.not_after.timestamp()),
            });
        } else if validity.not_before.timestamp() > now {
            report.problems.push(VmcProblem::NotYetValid {
                index: i + 1,
                subject: describe(cert),
                not_before: date(validity.not_before.timestamp()),
            });
        }
    }
}

/// The EKUs a certificate lists, as names or OIDs; `None` without the extension.
fn ekus(cert: &X509Certificate<'_>) -> Option<Vec<String>> {
    let eku = cert.extended_key_usage().ok().flatten()?;
    let eku = eku.value;
    let mut names: Vec<String> = [
        (eku.any, "any purpose"),
        (eku.server_auth, "TLS server authentication"),
        (eku.client_auth, "TLS client authentication"),
        (eku.code_signing, "code signing"),
        (eku.email_protection, "email protection"),
        (eku.time_stamping, "time stamping"),
        (eku.ocsp_signing, "OCSP signing"),
    ]
    .into_iter()
    .filter(|(present, _)| *present)
    .map(|(_, name)| name.to_string())
    .collect();
    names.extend(eku.other.iter().map(|oid| oid.to_id_string()));
    Some(names)
}

/// Returns true when an EKU problem was reported (so webpki's own EKU error is not repeated).
fn check_ekus(parsed: &[X509Certificate<'_>], leaf_index: usize, report: &mut VmcReport) -> bool {
    let Some(leaf) = parsed.get(leaf_index) else {
        return false;
    };
    let leaf_ekus = ekus(leaf).unwrap_or_default();
    let mut reported = false;
    if !leaf_ekus.iter().any(|e| e == BIMI_EKU_OID) {
        report.problems.push(VmcProblem::NoBimiEku {
            subject: describe(leaf),
            present: leaf_ekus,
        });
        reported = true;
    } else if leaf_ekus.len() > 1 {
        let others: Vec<&str> = leaf_ekus
            .iter()
            .filter(|e| *e != BIMI_EKU_OID)
            .map(String::as_str)
            .collect();
        report.notes.push(format!(
            "the mark certificate also lists {}; the Mark Certificate Requirements allow only the \
             BIMI extended key usage",
            others.join(", ")
        ));
    }
    // The immediate issuer must carry the EKU too (the fetch draft's BIMI EKU section); a root
    // issuing directly has none.
    let issuer = parsed
        .iter()
        .enumerate()
        .find(|(i, c)| *i != leaf_index && c.subject().as_raw() == leaf.issuer().as_raw());
    if let Some((i, issuer)) = issuer {
        let self_signed = issuer.subject().as_raw() == issuer.issuer().as_raw();
        let has_bimi = ekus(issuer).is_some_and(|e| e.iter().any(|e| e == BIMI_EKU_OID));
        if !self_signed && !has_bimi {
            report.problems.push(VmcProblem::IssuerWithoutBimiEku {
                index: i + 1,
                subject: describe(issuer),
            });
            reported = true;
        }
    }
    reported
}

/// The draft's VMC Domain Verification: a SAN equal to the record's domain matches any selector;
/// one equal to `<selector>._bimi.<domain>` matches only that selector.
fn check_names(
    leaf: &X509Certificate<'_>,
    domain: &DomainName,
    selector: &str,
    report: &mut VmcReport,
) {
    let names: Vec<String> = leaf
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::DNSName(name) => Some(canonical_name(name)),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    report.dns_names.clone_from(&names);
    let domain_name = domain.as_str().to_string();
    let selector_name = format!(
        "{}._bimi.{domain_name}",
        selector.trim().to_ascii_lowercase()
    );
    if names.is_empty() {
        report.problems.push(VmcProblem::NoNames);
    } else if !names
        .iter()
        .any(|n| *n == domain_name || *n == selector_name)
    {
        report.problems.push(VmcProblem::NameMismatch {
            domain: domain_name,
            selector_name,
            names: names.iter().take(20).map(|n| clip(n)).collect(),
        });
    }
}

/// A SAN as compared: lower case, no trailing dot, internationalised names as A-labels.
fn canonical_name(name: &str) -> String {
    let trimmed = name.trim().trim_end_matches('.');
    if trimmed.is_ascii() {
        trimmed.to_ascii_lowercase()
    } else {
        idna::domain_to_ascii(trimmed).unwrap_or_else(|_| trimmed.to_lowercase())
    }
}

/// Policies, markType, the logotype, and the extensions receivers stumble on.
fn read_profile(leaf: &X509Certificate<'_>, report: &mut VmcReport) {
    for extension in leaf.extensions() {
        if let ParsedExtension::CertificatePolicies(policies) = extension.parsed_extension() {
            report
                .policies
                .extend(policies.iter().map(|p| p.policy_id.to_id_string()));
        }
    }
    if !report
        .policies
        .iter()
        .any(|p| p == MARK_CERTIFICATE_POLICY_OID)
    {
        report.notes.push(format!(
            "the mark certificate does not assert the Mark Certificate General Policy \
             ({MARK_CERTIFICATE_POLICY_OID}) that identifies VMCs and CMCs"
        ));
    }

    let mark_type = leaf
        .subject()
        .iter_attributes()
        .find(|a| a.attr_type().to_id_string() == MARK_TYPE_OID)
        .map(|a| a.as_str().map(MarkType::parse));
    match mark_type {
        Some(Ok(mark_type)) => {
            report.kind = mark_type.kind();
            if let MarkType::Other(value) = &mark_type {
                report.notes.push(format!(
                    "the subject's markType is `{}`, which the Mark Certificate Requirements do \
                     not list; VMC or CMC cannot be told",
                    clip(value)
                ));
            }
            report.mark_type = Some(mark_type);
        }
        Some(Err(_)) => report
            .notes
            .push("the subject's markType is not a text string; VMC or CMC cannot be told".into()),
        None => report.notes.push(format!(
            "the subject has no markType ({MARK_TYPE_OID}); VMC or CMC cannot be told"
        )),
    }

    if leaf
        .extensions()
        .iter()
        .any(|e| e.oid.to_id_string() == PILOT_IDENTIFIER_OID)
    {
        report.notes.push(
            "the mark certificate carries the critical pilot identifier extension of early CMCs; \
             receivers that do not know it refuse the certificate"
                .into(),
        );
    }

    let logotype = leaf
        .extensions()
        .iter()
        .find(|e| e.oid.to_id_string() == LOGOTYPE_OID);
    let Some(logotype) = logotype else {
        report.problems.push(VmcProblem::NoLogotype);
        return;
    };
    if logotype.critical {
        report.problems.push(VmcProblem::CriticalLogotype);
    }
    match decode_logotype(logotype.value) {
        Ok(logo) => {
            if !logo.gzipped {
                report.notes.push(
                    "the embedded logo is not gzip-compressed, as RFC 6170 requires of `data:` \
                     URIs"
                        .into(),
                );
            }
            if logo.hash_matches == Some(false) {
                report.notes.push(
                    "the logotype hash does not match the embedded logo (RFC 6170 §5.2: a hash \
                     of the decompressed SVG)"
                        .into(),
                );
            }
            report.logo = Some(logo);
        }
        Err(e) => report.problems.push(VmcProblem::Logotype(e)),
    }
}

/// Path building to the trusted roots, with the BIMI EKU required of every certificate in the
/// path (webpki applies it to intermediates too, as the MCR requires of sub-CAs).
#[allow(clippy::too_many_arguments)]
fn check_path(
    ders: &[CertificateDer<'static>],
    parsed: &[X509Certificate<'_>],
    leaf_der: &CertificateDer<'static>,
    leaf_index: usize,
    now: DateTime<Utc>,
    trust_anchors: &[CertificateDer<'_>],
    eku_reported: bool,
    report: &mut VmcReport,
) {
    let anchors: Vec<_> = trust_anchors
        .iter()
        .filter_map(|c| webpki::anchor_from_trusted_cert(c).ok())
        .collect();
    if anchors.len() < trust_anchors.len() {
        report.notes.push(format!(
            "{} of the given trusted roots cannot be parsed and were left out",
            trust_anchors.len() - anchors.len()
        ));
    }
    if anchors.is_empty() {
        report.problems.push(VmcProblem::NoTrustAnchors);
        return;
    }
    let intermediates: Vec<CertificateDer<'_>> = ders
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != leaf_index)
        .map(|(_, c)| c.clone())
        .collect();
    let end_entity = match webpki::EndEntityCert::try_from(leaf_der) {
        Ok(ee) => ee,
        Err(e) => {
            report.problems.push(VmcProblem::ChainInvalid {
                reason: format!("the mark certificate is not accepted ({e:?})"),
            });
            return;
        }
    };
    let verify = |time: UnixTime, usage: Usage| {
        let result = match usage {
            Usage::Bimi => end_entity.verify_for_usage(
                webpki::ALL_VERIFICATION_ALGS,
                &anchors,
                &intermediates,
                time,
                webpki::KeyUsage::required(BIMI_EKU_DER),
                None,
                None,
            ),
            Usage::Any => end_entity.verify_for_usage(
                webpki::ALL_VERIFICATION_ALGS,
                &anchors,
                &intermediates,
                time,
                AnyKeyUsage,
                None,
                None,
            ),
        };
        result.map(|_| ())
    };
    let Err(error) = verify(unix_time(now.timestamp()), Usage::Bimi) else {
        return;
    };
    let dated = report.problems.iter().any(|p| {
        matches!(
            p,
            VmcProblem::Expired { .. } | VmcProblem::NotYetValid { .. }
        )
    });
    if let Some(problem) = path_problem(&error, dated, eku_reported, parsed, leaf_index) {
        report.problems.push(problem);
        return;
    }
    // The error was one already reported (a date, an EKU). webpki reports only the most
    // relevant error of a path, so the path is built again without those two checks, at a time
    // every certificate is valid, to tell whether the chain is trusted at all.
    let Some(valid_at) = common_validity(parsed, now.timestamp()) else {
        return;
    };
    if let Err(error) = verify(unix_time(valid_at), Usage::Any) {
        if let Some(problem) = path_problem(&error, true, true, parsed, leaf_index) {
            report.problems.push(problem);
        }
    }
}

#[derive(Clone, Copy)]
enum Usage {
    Bimi,
    Any,
}

/// Accepts any EKU: used only for the second pass of [`check_path`].
struct AnyKeyUsage;

impl webpki::ExtendedKeyUsageValidator for AnyKeyUsage {
    fn validate(&self, _: webpki::KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        Ok(())
    }
}

fn unix_time(timestamp: i64) -> UnixTime {
    UnixTime::since_unix_epoch(Duration::from_secs(u64::try_from(timestamp).unwrap_or(0)))
}

/// `now` moved into the span every certificate of the file is valid in, if there is one.
fn common_validity(parsed: &[X509Certificate<'_>], now: i64) -> Option<i64> {
    let from = parsed
        .iter()
        .map(|c| c.validity().not_before.timestamp())
        .max()?;
    let until = parsed
        .iter()
        .map(|c| c.validity().not_after.timestamp())
        .min()?;
    (from <= until).then(|| now.clamp(from, until))
}

/// The problem behind a webpki error, unless it repeats one already reported.
fn path_problem(
    error: &webpki::Error,
    dated: bool,
    eku_reported: bool,
    parsed: &[X509Certificate<'_>],
    leaf_index: usize,
) -> Option<VmcProblem> {
    use webpki::Error as E;
    let reason = match error {
        E::UnknownIssuer => {
            return Some(VmcProblem::UntrustedIssuer {
                issuer: top_issuer(parsed, leaf_index),
            })
        }
        E::CertExpired { .. } | E::CertNotValidYet { .. } if dated => return None,
        #[allow(deprecated)]
        E::RequiredEkuNotFound | E::RequiredEkuNotFoundContext(_) if eku_reported => return None,
        #[allow(deprecated)]
        E::RequiredEkuNotFound | E::RequiredEkuNotFoundContext(_) => {
            "a certificate of the chain lacks the BIMI extended key usage".to_string()
        }
        E::CaUsedAsEndEntity => "the mark certificate is a CA certificate".into(),
        E::InvalidSignatureForPublicKey => {
            "a signature in the chain does not verify (a certificate was altered, or was not \
             issued by the certificate it names)"
                .into()
        }
        E::UnsupportedCriticalExtension => {
            "a certificate has a critical extension receivers do not understand".into()
        }
        #[allow(deprecated)]
        E::UnsupportedSignatureAlgorithm
        | E::UnsupportedSignatureAlgorithmContext(_)
        | E::UnsupportedSignatureAlgorithmForPublicKey
        | E::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => {
            "a certificate is signed with an algorithm receivers do not accept".into()
        }
        other => format!("{other:?}"),
    };
    Some(VmcProblem::ChainInvalid { reason })
}

/// The issuer of the last certificate reached by following issuers up from the leaf within the
/// file: the authority receivers would have to trust.
fn top_issuer(parsed: &[X509Certificate<'_>], leaf_index: usize) -> String {
    let mut current = leaf_index;
    for _ in 0..parsed.len() {
        let Some(cert) = parsed.get(current) else {
            break;
        };
        let next = parsed
            .iter()
            .enumerate()
            .find(|(i, c)| *i != current && c.subject().as_raw() == cert.issuer().as_raw());
        match next {
            Some((i, _)) => current = i,
            None => break,
        }
    }
    parsed
        .get(current)
        .map(|c| clip(&c.issuer().to_string()))
        .unwrap_or_default()
}

/// How the logo in the certificate compares with the one `l=` names (BIMI draft §7.9: receivers
/// must check they are identical when both are given).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogoComparison {
    /// Byte for byte the same SVG (after decompressing either).
    Identical,
    /// The same once line endings, a byte-order mark and surrounding white space are ignored.
    SameIgnoringWhitespace,
    /// Different documents; their SHA-256 digests (hex) for the evidence.
    Different {
        certificate_sha256: String,
        fetched_sha256: String,
    },
    /// The fetched logo cannot be decompressed.
    FetchedUnreadable(String),
}

/// Compares the certificate's SVG (from [`embedded_logo`]) with the fetched logo (SVG or SVGZ).
pub fn compare_logos(certificate_svg: &[u8], fetched: &[u8]) -> LogoComparison {
    let fetched = match svg_tiny_ps::decompress(fetched) {
        Ok(fetched) => fetched,
        Err(e) => return LogoComparison::FetchedUnreadable(e.to_string()),
    };
    let certificate_svg = svg_tiny_ps::decompress(certificate_svg)
        .unwrap_or(std::borrow::Cow::Borrowed(certificate_svg));
    if fetched.as_ref() == certificate_svg.as_ref() {
        return LogoComparison::Identical;
    }
    let loose = |b: &[u8]| {
        let b = b.strip_prefix(&[0xef, 0xbb, 0xbf]).unwrap_or(b);
        normalise_line_ends(b).trim_ascii().to_vec()
    };
    if loose(&fetched) == loose(&certificate_svg) {
        return LogoComparison::SameIgnoringWhitespace;
    }
    let hex = |b: &[u8]| {
        sha2::Sha256::digest(b)
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect::<String>()
    };
    LogoComparison::Different {
        certificate_sha256: hex(&certificate_svg),
        fetched_sha256: hex(&fetched),
    }
}

/// A value cut for quoting in a message.
fn clip(text: &str) -> String {
    crate::words::clip(text, 120)
}

/// The test chain generator, shared with the integration tests.
#[cfg(test)]
#[path = "../../tests/support/vmc_certs.rs"]
mod vmc_certs;

#[cfg(test)]
mod tests {
    use super::vmc_certs::{self, MarkPki, MarkSpec};
    use super::*;

    fn logo() -> Vec<u8> {
        std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/bimi/valid-tiny-ps.svg"
        ))
        .unwrap()
    }

    fn at(rfc3339: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(rfc3339)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn domain() -> DomainName {
        DomainName::parse("northwind.example").unwrap()
    }

    fn check(pki: &MarkPki, selector: &str, now: &str) -> VmcReport {
        check_chain(
            pki.chain_pem.as_bytes(),
            &domain(),
            selector,
            at(now),
            std::slice::from_ref(&pki.root_der),
        )
    }

    #[test]
    fn a_good_vmc_chain_passes() {
        let pki = MarkPki::build(&MarkSpec::new(&logo()));
        let r = check(&pki, "default", "2026-06-01T00:00:00Z");
        assert!(r.is_valid(), "{r:#?}");
        assert!(r.notes.is_empty(), "{:?}", r.notes);
        assert_eq!(r.chain_length, 2);
        assert_eq!(r.kind, CertificateKind::Vmc);
        assert_eq!(r.mark_type, Some(MarkType::RegisteredMark));
        assert_eq!(r.dns_names, ["northwind.example"]);
        assert!(r.policies.iter().any(|p| p == MARK_CERTIFICATE_POLICY_OID));
        let embedded = r.logo.unwrap();
        assert_eq!(embedded.svg, logo());
        assert!(embedded.gzipped);
        assert_eq!(embedded.hash_matches, Some(true));
        assert_eq!(embedded.media_type, "image/svg+xml");
        assert_eq!(
            compare_logos(&embedded.svg, &logo()),
            LogoComparison::Identical
        );
        assert!(date(r.not_after.unwrap()).starts_with("2026-12-31"));
    }

    #[test]
    fn the_chain_may_include_the_root_and_be_out_of_order() {
        let mut spec = MarkSpec::new(&logo());
        spec.include_root = true;
        spec.leaf_last = true;
        let pki = MarkPki::build(&spec);
        let r = check(&pki, "default", "2026-06-01T00:00:00Z");
        assert!(r.is_valid(), "{r:#?}");
        assert_eq!(r.chain_length, 3);
        assert!(
            r.notes.iter().any(|n| n.contains("should come first")),
            "{:?}",
            r.notes
        );
    }

    #[test]
    fn expired_and_not_yet_valid() {
        let pki = MarkPki::build(&MarkSpec::new(&logo()));
        let late = check(&pki, "default", "2027-02-01T00:00:00Z");
        assert!(
            matches!(
                late.problems.as_slice(),
                [VmcProblem::Expired { index: 1, .. }]
            ),
            "{:#?}",
            late.problems
        );
        assert!(late.problems[0]
            .to_string()
            .contains("expired on 2026-12-31"));
        let early = check(&pki, "default", "2025-06-01T00:00:00Z");
        assert!(
            matches!(
                early.problems.as_slice(),
                [VmcProblem::NotYetValid { index: 1, .. }]
            ),
            "{:#?}",
            early.problems
        );
    }

    #[test]
    fn a_tls_certificate_is_not_a_mark_certificate() {
        let mut spec = MarkSpec::new(&logo());
        spec.leaf_bimi_eku = false;
        let pki = MarkPki::build(&spec);
        let r = check(&pki, "default", "2026-06-01T00:00:00Z");
        assert_eq!(r.problems.len(), 1, "{:#?}", r.problems);
        let message = r.problems[0].to_string();
        assert!(
            message.contains("does not have the BIMI extended key usage"),
            "{message}"
        );
        assert!(message.contains("TLS server authentication"), "{message}");
    }

    #[test]
    fn the_issuing_ca_needs_the_eku_too() {
        let mut spec = MarkSpec::new(&logo());
        spec.intermediate_bimi_eku = false;
        let pki = MarkPki::build(&spec);
        let r = check(&pki, "default", "2026-06-01T00:00:00Z");
        assert!(
            matches!(
                r.problems.as_slice(),
                [VmcProblem::IssuerWithoutBimiEku { index: 2, .. }]
            ),
            "{:#?}",
            r.problems
        );
    }

    #[test]
    fn names_must_match_the_domain_or_the_selector() {
        let mut spec = MarkSpec::new(&logo());
        spec.dns_names = vec!["other.example".into(), "www.other.example".into()];
        let r = check(&MarkPki::build(&spec), "default", "2026-06-01T00:00:00Z");
        let message = r.problems[0].to_string();
        assert!(
            message.contains("is for other.example, www.other.example, not northwind.example"),
            "{message}"
        );

        spec.dns_names = vec!["default._bimi.northwind.example".into()];
        let pki = MarkPki::build(&spec);
        assert!(check(&pki, "default", "2026-06-01T00:00:00Z").is_valid());
        let promo = check(&pki, "promo", "2026-06-01T00:00:00Z");
        assert!(matches!(
            promo.problems.as_slice(),
            [VmcProblem::NameMismatch { .. }]
        ));

        spec.dns_names = vec!["NorthWind.Example.".into()];
        assert!(check(&MarkPki::build(&spec), "promo", "2026-06-01T00:00:00Z").is_valid());
    }

    #[test]
    fn an_unknown_root_is_not_trusted() {
        let pki = MarkPki::build(&MarkSpec::new(&logo()));
        let mut other = MarkSpec::new(&logo());
        other.root_name = "Another Mark Root".into();
        let stranger = MarkPki::build(&other);
        let r = check_chain(
            pki.chain_pem.as_bytes(),
            &domain(),
            "default",
            at("2026-06-01T00:00:00Z"),
            std::slice::from_ref(&stranger.root_der),
        );
        assert!(
            matches!(r.problems.as_slice(), [VmcProblem::UntrustedIssuer { .. }]),
            "{r:#?}"
        );
        assert!(r.problems[0]
            .to_string()
            .contains("Mailshift Test Mark Root"));
        let none = check_chain(
            pki.chain_pem.as_bytes(),
            &domain(),
            "default",
            at("2026-06-01T00:00:00Z"),
            &[],
        );
        assert_eq!(none.problems, [VmcProblem::NoTrustAnchors]);
        // A root with the right name but another key: the signatures do not verify.
        let impostor = MarkPki::build(&MarkSpec::new(&logo()));
        let r = check_chain(
            pki.chain_pem.as_bytes(),
            &domain(),
            "default",
            at("2026-06-01T00:00:00Z"),
            std::slice::from_ref(&impostor.root_der),
        );
        assert!(
            matches!(&r.problems[..], [VmcProblem::ChainInvalid { reason }] if reason.contains("signature")),
            "{:#?}",
            r.problems
        );
    }

    #[test]
    fn an_expired_certificate_from_an_unknown_root_reports_both() {
        let pki = MarkPki::build(&MarkSpec::new(&logo()));
        let mut other = MarkSpec::new(&logo());
        other.root_name = "Another Mark Root".into();
        let stranger = MarkPki::build(&other);
        let r = check_chain(
            pki.chain_pem.as_bytes(),
            &domain(),
            "default",
            at("2027-06-01T00:00:00Z"),
            std::slice::from_ref(&stranger.root_der),
        );
        assert!(
            matches!(
                r.problems.as_slice(),
                [
                    VmcProblem::Expired { .. },
                    VmcProblem::UntrustedIssuer { .. }
                ]
            ),
            "{:#?}",
            r.problems
        );
        // Trusted but expired: the second pass finds nothing more.
        let trusted = check(&pki, "default", "2027-06-01T00:00:00Z");
        assert_eq!(trusted.problems.len(), 1, "{:#?}", trusted.problems);
    }

    #[test]
    fn cmc_and_unknown_mark_types() {
        let mut spec = MarkSpec::new(&logo());
        spec.mark_type = Some("Prior Use Mark".into());
        let r = check(&MarkPki::build(&spec), "default", "2026-06-01T00:00:00Z");
        assert!(r.is_valid(), "{r:#?}");
        assert_eq!(r.kind, CertificateKind::Cmc);
        spec.mark_type = None;
        spec.policy = false;
        let r = check(&MarkPki::build(&spec), "default", "2026-06-01T00:00:00Z");
        assert_eq!(r.kind, CertificateKind::Unknown);
        assert!(
            r.notes.iter().any(|n| n.contains("no markType")),
            "{:?}",
            r.notes
        );
        assert!(
            r.notes.iter().any(|n| n.contains("General Policy")),
            "{:?}",
            r.notes
        );
    }

    #[test]
    fn the_logotype_is_required_and_not_critical() {
        let mut spec = MarkSpec::new(&logo());
        spec.logotype = None;
        let r = check(&MarkPki::build(&spec), "default", "2026-06-01T00:00:00Z");
        assert_eq!(r.problems, [VmcProblem::NoLogotype]);

        let mut spec = MarkSpec::new(&logo());
        spec.logotype_critical = true;
        let r = check(&MarkPki::build(&spec), "default", "2026-06-01T00:00:00Z");
        assert!(
            r.problems.contains(&VmcProblem::CriticalLogotype),
            "{:#?}",
            r.problems
        );
    }

    #[test]
    fn embedded_logo_reads_a_certificate() {
        let pki = MarkPki::build(&MarkSpec::new(&logo()));
        let logo_in_cert = embedded_logo(pki.leaf_der.as_ref()).unwrap();
        assert_eq!(logo_in_cert.svg, logo());
        assert_eq!(
            embedded_logo(pki.root_der.as_ref()).unwrap_err(),
            LogotypeError::Missing
        );
        assert!(matches!(
            embedded_logo(b"not a certificate"),
            Err(LogotypeError::Certificate(_))
        ));
    }

    #[test]
    fn logotype_variants() {
        let svg = logo();
        let plain = vmc_certs::logotype_extension(&svg, "image/svg+xml", false, true);
        let r = decode_logotype(&plain).unwrap();
        assert!(!r.gzipped);
        assert_eq!(r.svg, svg);
        let png = vmc_certs::logotype_extension(&svg, "image/png", true, true);
        assert_eq!(
            decode_logotype(&png).unwrap_err(),
            LogotypeError::NotSvg("image/png".into())
        );
        let wrong_hash = vmc_certs::logotype_extension(&svg, "image/svg+xml", true, false);
        assert_eq!(
            decode_logotype(&wrong_hash).unwrap().hash_matches,
            Some(false)
        );
        let crlf = String::from_utf8(svg.clone())
            .unwrap()
            .replace('\n', "\r\n");
        let crlf_ext = vmc_certs::logotype_extension(crlf.as_bytes(), "image/svg+xml", true, true);
        assert_eq!(decode_logotype(&crlf_ext).unwrap().hash_matches, Some(true));
        assert!(matches!(
            decode_logotype(&[0x30, 0x00]),
            Err(LogotypeError::NoSubjectLogo)
        ));
        assert!(matches!(decode_logotype(&[]), Err(LogotypeError::Der(_))));
    }

    #[test]
    fn truncated_logotypes_never_panic() {
        let ext = vmc_certs::logotype_extension(&logo(), "image/svg+xml", true, true);
        for end in 0..ext.len() {
            let _ = decode_logotype(ext.get(..end).unwrap());
        }
        let mut flipped = ext.clone();
        for i in 0..flipped.len().min(200) {
            flipped[i] ^= 0xff;
            let _ = decode_logotype(&flipped);
            flipped[i] ^= 0xff;
        }
    }

    #[test]
    fn pem_files() {
        assert_eq!(
            check_chain(b"", &domain(), "default", at("2026-06-01T00:00:00Z"), &[]).problems,
            [VmcProblem::Pem(PemError::NoCertificate)]
        );
        let html = b"<html><body>Not found</body></html>";
        assert_eq!(parse_pem_chain(html).unwrap_err(), PemError::NoCertificate);
        let broken = b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
        assert!(matches!(
            parse_pem_chain(broken),
            Err(PemError::Malformed { index: 1, .. })
        ));
        let huge = vec![b'a'; MAX_PEM_BYTES + 1];
        assert!(matches!(
            parse_pem_chain(&huge),
            Err(PemError::TooLarge { .. })
        ));
        let garbage_der = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let r = check_chain(
            garbage_der.as_bytes(),
            &domain(),
            "default",
            at("2026-06-01T00:00:00Z"),
            &[],
        );
        assert!(matches!(
            r.problems.as_slice(),
            [VmcProblem::Unreadable { index: 1, .. }]
        ));
        let pki = MarkPki::build(&MarkSpec::new(&logo()));
        let with_key = format!("{}{}", pki.chain_pem, pki.leaf_key_pem);
        let r = check_chain(
            with_key.as_bytes(),
            &domain(),
            "default",
            at("2026-06-01T00:00:00Z"),
            std::slice::from_ref(&pki.root_der),
        );
        assert!(r.is_valid());
        assert!(
            r.notes.iter().any(|n| n.contains("private key")),
            "{:?}",
            r.notes
        );
        let only_root = pki.root_pem.clone();
        let r = check_chain(
            only_root.as_bytes(),
            &domain(),
            "default",
            at("2026-06-01T00:00:00Z"),
            std::slice::from_ref(&pki.root_der),
        );
        assert_eq!(r.problems, [VmcProblem::NoMarkCertificate]);
    }

    #[test]
    fn comparing_logos() {
        let svg = logo();
        let crlf = String::from_utf8(svg.clone())
            .unwrap()
            .replace('\n', "\r\n");
        assert_eq!(
            compare_logos(&svg, crlf.as_bytes()),
            LogoComparison::SameIgnoringWhitespace
        );
        let svgz = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/bimi/valid-tiny-ps.svgz"
        ))
        .unwrap();
        assert_eq!(compare_logos(&svg, &svgz), LogoComparison::Identical);
        let other = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/bimi/not-square.svg"
        ))
        .unwrap();
        let LogoComparison::Different {
            certificate_sha256,
            fetched_sha256,
        } = compare_logos(&svg, &other)
        else {
            panic!("expected different logos");
        };
        assert_eq!(certificate_sha256.len(), 64);
        assert_ne!(certificate_sha256, fetched_sha256);
        assert!(matches!(
            compare_logos(&svg, &[0x1f, 0x8b, 1, 2, 3]),
            LogoComparison::FetchedUnreadable(_)
        ));
    }

    #[test]
    fn oid_constants_agree() {
        let eku = der::asn1::ObjectIdentifier::new_unwrap(BIMI_EKU_OID);
        assert_eq!(eku.as_bytes(), BIMI_EKU_DER);
        assert_eq!(
            MarkType::parse(" Government Mark ").kind(),
            CertificateKind::Vmc
        );
        assert_eq!(
            MarkType::parse("Modified Registered Mark").kind(),
            CertificateKind::Cmc
        );
        assert_eq!(MarkType::parse("Pending").as_str(), "Pending");
    }

    proptest::proptest! {
        #[test]
        fn decoders_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..1024)) {
            let _ = decode_logotype(&bytes);
            let _ = embedded_logo(&bytes);
            let _ = parse_pem_chain(&bytes);
            let _ = compare_logos(&bytes, &bytes);
        }
    }
}
