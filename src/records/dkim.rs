//! DKIM public-key records (RFC 6376 §3.6.1, RFC 8463 for Ed25519).
//!
//! Besides validity, a checker needs what mail-auth does not expose: the RSA key size, so weak
//! keys can be named. The key is decoded here (SubjectPublicKeyInfo, or a bare PKCS#1 key as some
//! publishers use) and measured; mail-auth then confirms that receivers can load it.

use super::tags::split_tags;
use base64::Engine;
use mail_auth::common::parse::TxtRecordParser;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyType {
    Rsa,
    Ed25519,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// `p=` is empty: the key was revoked.
    Revoked,
    /// Decoded key with its size in bits (RSA modulus, or 256 for Ed25519).
    Key { bits: usize, der: Vec<u8> },
    /// No `p=` tag, or it could not be decoded (the reason is in `errors`).
    Unusable,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DkimKeyRecord {
    pub text: String,
    pub key_type: KeyType,
    pub key: PublicKey,
    /// `t=y`: the domain is testing DKIM; receivers may treat signatures as unsigned.
    pub testing: bool,
    /// `h=` restricts the key to SHA-1, which RFC 8301 receivers no longer accept.
    pub sha1_only: bool,
    /// `s=` excludes email (`s=` without `email` or `*`).
    pub not_for_email: bool,
    /// Problems that make receivers reject the key (`dkim.syntax`).
    pub errors: Vec<String>,
}

impl DkimKeyRecord {
    pub fn parse(text: &str) -> DkimKeyRecord {
        let (tags, tag_errors) = split_tags(text);
        let mut rec = DkimKeyRecord {
            text: text.to_string(),
            key_type: KeyType::Rsa,
            key: PublicKey::Unusable,
            testing: false,
            sha1_only: false,
            not_for_email: false,
            errors: tag_errors.into_iter().map(|e| e.reason).collect(),
        };
        let mut p_value: Option<&str> = None;
        let mut seen: Vec<&str> = Vec::new();
        for tag in &tags {
            // RFC 6376 §3.2: a tag that appears twice invalidates the whole record.
            if seen.contains(&tag.name.as_str()) {
                rec.errors.push(format!(
                    "`{}=` appears more than once; receivers reject the whole record",
                    tag.name
                ));
                continue;
            }
            seen.push(&tag.name);
            // DKIM tag names are case-sensitive (RFC 6376 §3.2).
            match tag.name.as_str() {
                "v" => {
                    if tag.position != 1 {
                        rec.errors.push("`v=` must be the first tag".into());
                    }
                    if tag.value != "DKIM1" {
                        rec.errors.push(format!(
                            "`v={}`: the version must be `DKIM1`; receivers discard the key",
                            tag.value
                        ));
                    }
                }
                "k" => match tag.value.to_ascii_lowercase().as_str() {
                    "rsa" => rec.key_type = KeyType::Rsa,
                    "ed25519" => rec.key_type = KeyType::Ed25519,
                    other => rec.errors.push(format!(
                        "`k={other}` is not a key type receivers know (rsa or ed25519)"
                    )),
                },
                "p" => p_value = Some(tag.value.as_str()),
                "t" => {
                    for flag in tag.value.split(':') {
                        if flag.trim() == "y" {
                            rec.testing = true;
                        }
                    }
                }
                "h" => {
                    let algs: Vec<String> = tag
                        .value
                        .split(':')
                        .map(|a| a.trim().to_ascii_lowercase())
                        .collect();
                    rec.sha1_only = !algs.iter().any(|a| a == "sha256");
                }
                "s" => {
                    rec.not_for_email = !tag
                        .value
                        .split(':')
                        .any(|s| matches!(s.trim(), "*" | "email"));
                }
                _ => {}
            }
        }
        match p_value {
            None => rec
                .errors
                .push("no `p=` tag: the record carries no public key".into()),
            Some(p) => {
                let b64: String = p.chars().filter(|c| !c.is_ascii_whitespace()).collect();
                if b64.is_empty() {
                    rec.key = PublicKey::Revoked;
                } else {
                    match base64::engine::general_purpose::STANDARD.decode(b64.as_bytes()) {
                        Err(e) => rec.errors.push(format!("`p=` is not valid base64 ({e})")),
                        Ok(der) => match key_bits(&rec.key_type, &der) {
                            Ok(bits) => rec.key = PublicKey::Key { bits, der },
                            Err(reason) => rec.errors.push(reason),
                        },
                    }
                }
            }
        }
        // Keys too small for modern crypto libraries are reported as weak, not malformed.
        let measurable_weak = matches!(rec.key, PublicKey::Key { bits, .. } if bits < 1024);
        if rec.errors.is_empty() && !measurable_weak && rec.key != PublicKey::Revoked {
            if let Err(e) = mail_auth::common::verify::DomainKey::parse(text.as_bytes()) {
                rec.errors.push(format!(
                    "receivers' DKIM parsers (mail-auth) reject this key: {e}"
                ));
            }
        }
        rec
    }

    pub fn bits(&self) -> Option<usize> {
        match self.key {
            PublicKey::Key { bits, .. } => Some(bits),
            _ => None,
        }
    }
}

const RSA_ENCRYPTION: spki::ObjectIdentifier =
    spki::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

/// Measures a decoded `p=` value.
fn key_bits(key_type: &KeyType, der: &[u8]) -> Result<usize, String> {
    match key_type {
        KeyType::Ed25519 => {
            if der.len() == 32 {
                Ok(256)
            } else {
                Err(format!(
                    "an Ed25519 key must be 32 bytes (RFC 8463); this one is {}",
                    der.len()
                ))
            }
        }
        KeyType::Rsa => {
            use spki::der::Decode;
            let rsa_der = match spki::SubjectPublicKeyInfoRef::from_der(der) {
                Ok(info) => {
                    if info.algorithm.oid != RSA_ENCRYPTION {
                        return Err(format!(
                            "`p=` holds a non-RSA key (algorithm {}) but `k=` says rsa",
                            info.algorithm.oid
                        ));
                    }
                    info.subject_public_key.raw_bytes().to_vec()
                }
                // Some publishers put the bare PKCS#1 RSAPublicKey in p=.
                Err(_) => der.to_vec(),
            };
            let key = pkcs1::RsaPublicKey::from_der(&rsa_der)
                .map_err(|_| "`p=` does not hold a valid RSA public key".to_string())?;
            let modulus = key.modulus.as_bytes();
            let leading = modulus.iter().take_while(|b| **b == 0).count();
            let significant = &modulus[leading..];
            let bits = match significant.first() {
                Some(first) => significant.len() * 8 - first.leading_zeros() as usize,
                None => 0,
            };
            Ok(bits)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RSA-1024 key from RFC 6376 Appendix C (the "brisbane" example).
    const RFC6376_KEY: &str = "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDwIRP/UC3SBsEmGqZ9ZJW3/DkMoGeLnQg1fWn7/zYtIxN2SnFCjxOCKG9v3b4jYfcTNh5ijSsq631uBItLa7od+v/RtdC2UzJ1lWT947qR+Rcac2gbto/NMqJ0fzfVjH4OuKhitdY9tf6mcwGjaNBcWToIMmPSPDdQPNUYckcQ2QIDAQAB";

    #[test]
    fn measures_rsa_and_ed25519_keys() {
        let r = DkimKeyRecord::parse(&format!("v=DKIM1; k=rsa; p={RFC6376_KEY}"));
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        assert_eq!(r.bits(), Some(1024));
        // RFC 8463 Appendix A key.
        let r = DkimKeyRecord::parse(
            "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
        );
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        assert_eq!(r.bits(), Some(256));
    }

    #[test]
    fn revoked_testing_and_errors() {
        let r = DkimKeyRecord::parse("v=DKIM1; p=");
        assert_eq!(r.key, PublicKey::Revoked);
        let r = DkimKeyRecord::parse(&format!("v=DKIM1; t=y; p={RFC6376_KEY}"));
        assert!(r.testing);
        let r = DkimKeyRecord::parse("v=DKIM1; k=dsa; p=AAAA");
        assert!(
            r.errors.iter().any(|e| e.contains("k=dsa")),
            "{:?}",
            r.errors
        );
        let r = DkimKeyRecord::parse("v=DKIM1; p=not*base64");
        assert!(
            r.errors.iter().any(|e| e.contains("base64")),
            "{:?}",
            r.errors
        );
        let r = DkimKeyRecord::parse(&format!("v=DKIM1; p={RFC6376_KEY}; p="));
        assert!(
            r.errors.iter().any(|e| e.contains("more than once")),
            "{:?}",
            r.errors
        );
        let r = DkimKeyRecord::parse("v=DKIM2; p=AAAA");
        assert!(
            r.errors.iter().any(|e| e.contains("DKIM1")),
            "{:?}",
            r.errors
        );
    }
}
