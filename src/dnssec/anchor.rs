//! Trust anchors: the keys validation starts from.
//!
//! By default the root zone's key-signing keys as IANA publishes them (the ones hickory-proto
//! ships, key tags 20326 and 38696), as DNSKEY records. A file (`check --trust-anchor FILE`)
//! replaces them: DS or DNSKEY records in zone-file form (`example.se. IN DS 12345 13 2 3F…`,
//! `example.se. 3600 IN DNSKEY 257 3 13 mdsswUy…`, parentheses and comments allowed) or in
//! RFC 3597 generic form (`example.se. IN TYPE43 \# 36 3039…`), for a company's internal
//! signed zone, or a test zone. Names below an anchor's zone are validated from the deepest
//! anchor above them.

use super::MAX_RECORDS;
use hickory_proto::dnssec::rdata::{DNSSECRData, DNSKEY};
use hickory_proto::dnssec::TrustAnchors;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecoder, Restrict};

/// The keys (or key digests) that vouch for one zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustAnchor {
    /// The zone they vouch for, fully qualified.
    pub zone: Name,
    /// Its DS or DNSKEY records.
    pub records: Vec<Record>,
}

/// The trust anchors of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchors {
    anchors: Vec<TrustAnchor>,
}

/// Why a trust anchor file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnchorError {
    #[error("line {line}: {reason}")]
    Line { line: usize, reason: String },
    #[error("no DS or DNSKEY record in it")]
    Empty,
    #[error("more than {max} records; a trust anchor is a few keys", max = MAX_RECORDS)]
    TooMany,
}

impl Anchors {
    /// The root zone's key-signing keys (IANA's, as hickory-proto ships them).
    pub fn root() -> Anchors {
        let keys = TrustAnchors::default();
        let records = (0..keys.len())
            .filter_map(|i| keys.get(i))
            .map(|key| {
                Record::from_rdata(
                    Name::root(),
                    172_800,
                    RData::DNSSEC(DNSSECRData::DNSKEY(DNSKEY::with_flags(257, key.clone()))),
                )
            })
            .collect();
        Anchors {
            anchors: vec![TrustAnchor {
                zone: Name::root(),
                records,
            }],
        }
    }

    /// Reads DS and DNSKEY records (zone-file or RFC 3597 form), one a line.
    pub fn parse(text: &str) -> Result<Anchors, AnchorError> {
        let text = crate::dns::zone::flatten_parentheses(text);
        let mut origin: Option<Name> = None;
        let mut records: Vec<Record> = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let fail = |reason: String| AnchorError::Line {
                line: index + 1,
                reason,
            };
            let line = line.split(';').next().unwrap_or_default().trim();
            if line.is_empty() {
                continue;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            match fields.as_slice() {
                ["$ORIGIN", name] => {
                    origin = Some(absolute(name, None).map_err(fail)?);
                    continue;
                }
                ["$TTL", _] => continue,
                [directive, ..] if directive.starts_with('$') => {
                    return Err(fail(format!("{directive} is not understood here")));
                }
                _ => {}
            }
            if records.len() == MAX_RECORDS {
                return Err(AnchorError::TooMany);
            }
            records.push(record(&fields, origin.as_ref()).map_err(fail)?);
        }
        let mut anchors: Vec<TrustAnchor> = Vec::new();
        for record in records {
            match anchors
                .iter_mut()
                .find(|a| a.zone.eq_ignore_root(&record.name))
            {
                Some(anchor) => anchor.records.push(record),
                None => anchors.push(TrustAnchor {
                    zone: record.name.clone(),
                    records: vec![record],
                }),
            }
        }
        if anchors.is_empty() {
            return Err(AnchorError::Empty);
        }
        Ok(Anchors { anchors })
    }

    /// The anchor for `zone`: the deepest anchor at or above it.
    pub fn covering(&self, zone: &Name) -> Option<&TrustAnchor> {
        self.anchors
            .iter()
            .filter(|a| a.zone.zone_of(zone))
            .max_by_key(|a| a.zone.num_labels())
    }

    pub fn iter(&self) -> impl Iterator<Item = &TrustAnchor> {
        self.anchors.iter()
    }
}

/// `name` as a fully qualified name: absolute, `@`, or relative to `$ORIGIN`.
fn absolute(name: &str, origin: Option<&Name>) -> Result<Name, String> {
    if name == "@" {
        return origin
            .cloned()
            .ok_or_else(|| "`@` without an $ORIGIN".to_string());
    }
    let parsed = Name::from_ascii(name).map_err(|e| format!("`{name}` is not a name: {e}"))?;
    if name.ends_with('.') {
        return Ok(parsed);
    }
    match origin {
        Some(origin) => parsed
            .append_domain(origin)
            .map_err(|e| format!("`{name}` is too long: {e}")),
        // Without an $ORIGIN, a name is taken as written (`example.se` is example.se.).
        None => {
            let mut parsed = parsed;
            parsed.set_fqdn(true);
            Ok(parsed)
        }
    }
}

/// One record: `OWNER [TTL] [IN] TYPE RDATA…`.
fn record(fields: &[&str], origin: Option<&Name>) -> Result<Record, String> {
    let Some((owner, rest)) = fields.split_first() else {
        return Err("an empty line".into());
    };
    let owner = absolute(owner, origin)?;
    let mut rest = rest;
    let mut ttl = 3600;
    // TTL and class, in either order.
    for _ in 0..2 {
        match rest.split_first() {
            Some((field, tail)) if field.eq_ignore_ascii_case("IN") => rest = tail,
            Some((field, tail)) if field.bytes().all(|b| b.is_ascii_digit()) => {
                ttl = field
                    .parse()
                    .map_err(|_| format!("TTL `{field}` is out of range"))?;
                rest = tail;
            }
            _ => {}
        }
    }
    let Some((record_type, rdata)) = rest.split_first() else {
        return Err("no record type".into());
    };
    let record_type = match record_type.to_ascii_uppercase().as_str() {
        "DS" | "TYPE43" => RecordType::DS,
        "DNSKEY" | "TYPE48" => RecordType::DNSKEY,
        other => {
            return Err(format!(
                "a {other} record: a trust anchor is DS or DNSKEY records"
            ))
        }
    };
    let bytes = match rdata {
        ["\\#", length, hex @ ..] => {
            let bytes = from_hex(&hex.concat())?;
            if length.parse::<usize>().ok() != Some(bytes.len()) {
                return Err(format!(
                    "the generic RDATA is {} bytes, not {length}",
                    bytes.len()
                ));
            }
            bytes
        }
        [a, b, c, data @ ..] if !data.is_empty() => {
            let mut bytes = Vec::new();
            if record_type == RecordType::DS {
                // key tag, algorithm, digest type, digest (hex).
                bytes.extend_from_slice(&number::<u16>(a, "key tag")?.to_be_bytes());
                bytes.push(number::<u8>(b, "algorithm")?);
                bytes.push(number::<u8>(c, "digest type")?);
                bytes.extend(from_hex(&data.concat())?);
            } else {
                // flags, protocol, algorithm, public key (base64).
                bytes.extend_from_slice(&number::<u16>(a, "flags")?.to_be_bytes());
                bytes.push(number::<u8>(b, "protocol")?);
                bytes.push(number::<u8>(c, "algorithm")?);
                use base64::Engine;
                let key = base64::engine::general_purpose::STANDARD
                    .decode(data.concat())
                    .map_err(|e| format!("the public key is not base64: {e}"))?;
                bytes.extend(key);
            }
            bytes
        }
        _ => return Err(format!("the {record_type} record's data is incomplete")),
    };
    let length = u16::try_from(bytes.len()).map_err(|_| "the record is too long".to_string())?;
    let data = RData::read(
        &mut BinDecoder::new(&bytes),
        record_type,
        Restrict::new(length),
    )
    .map_err(|e| format!("the {record_type} record cannot be read: {e}"))?;
    Ok(Record::from_rdata(owner, ttl, data))
}

fn number<T: std::str::FromStr>(text: &str, what: &str) -> Result<T, String> {
    text.parse()
        .map_err(|_| format!("the {what} `{text}` is not a number in range"))
}

fn from_hex(text: &str) -> Result<Vec<u8>, String> {
    if text.len() % 2 != 0 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("`{text}` is not hexadecimal"));
    }
    Ok((0..text.len())
        .step_by(2)
        .filter_map(|i| text.get(i..i + 2))
        .filter_map(|pair| u8::from_str_radix(pair, 16).ok())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::dnssec::rdata::DS;

    fn name(text: &str) -> Name {
        Name::from_ascii(text).unwrap()
    }

    #[test]
    fn the_root_anchor_is_ianas_key_signing_keys() {
        let root = Anchors::root();
        let anchor = root.covering(&name("example.com.")).unwrap();
        assert!(anchor.zone.is_root());
        let mut tags: Vec<u16> = anchor
            .records
            .iter()
            .filter_map(|r| match &r.data {
                RData::DNSSEC(DNSSECRData::DNSKEY(key)) => {
                    assert!(key.is_key_signing_key());
                    key.calculate_key_tag().ok()
                }
                _ => None,
            })
            .collect();
        tags.sort_unstable();
        assert_eq!(tags, [20326, 38696]);
    }

    #[test]
    fn ds_and_dnskey_records_in_either_form() {
        let text = "; the test zones' anchor\n\
            bryggeri.se.\t3600\tIN\tDS\t58508 13 2 428c2752f032883bba61dc4c12cf8fbc12329175892ed5c7d19f4e9e616f06d7\n\
            bryggeri.se. IN TYPE43 \\# 36 e48c0d02428c2752f032883bba61dc4c12cf8fbc12329175892ed5c7d19f4e9e616f06d7\n\
            $ORIGIN exempel.se.\n\
            @ IN DNSKEY ( 257 3 13\n  mdsswUyr3DPW132mOi8V9xESWE8jTo0dxCjjnopKl+GqJxpVXckHAeF+KkxLbxILfDLUT0rAK9iUzy1L53eKGQ== ) ; KSK\n";
        let anchors = Anchors::parse(text).unwrap();
        let bryggeri = anchors.covering(&name("post.bryggeri.se.")).unwrap();
        assert_eq!(bryggeri.zone, name("bryggeri.se."));
        assert_eq!(bryggeri.records.len(), 2);
        let ds: Vec<&DS> = bryggeri
            .records
            .iter()
            .filter_map(|r| match &r.data {
                RData::DNSSEC(DNSSECRData::DS(ds)) => Some(ds),
                _ => None,
            })
            .collect();
        assert_eq!(ds.len(), 2);
        assert_eq!(ds[0].key_tag(), 58508);
        assert_eq!(ds[1].key_tag(), 58508);
        let exempel = anchors.covering(&name("exempel.se.")).unwrap();
        assert_eq!(exempel.records[0].record_type(), RecordType::DNSKEY);
        assert!(anchors.covering(&name("example.com.")).is_none());
        assert_eq!(anchors.iter().count(), 2);
    }

    #[test]
    fn mistakes_name_their_line() {
        for (text, expected) in [
            ("", AnchorError::Empty),
            ("; only a comment\n", AnchorError::Empty),
            (
                "\nexample.se. IN A 192.0.2.1\n",
                AnchorError::Line {
                    line: 2,
                    reason: "a A record: a trust anchor is DS or DNSKEY records".into(),
                },
            ),
            (
                "example.se. IN DS 70000 13 2 00\n",
                AnchorError::Line {
                    line: 1,
                    reason: "the key tag `70000` is not a number in range".into(),
                },
            ),
            (
                "example.se. IN DS 1 13 2 zz\n",
                AnchorError::Line {
                    line: 1,
                    reason: "`zz` is not hexadecimal".into(),
                },
            ),
            (
                "example.se. IN DS 1 13\n",
                AnchorError::Line {
                    line: 1,
                    reason: "the DS record's data is incomplete".into(),
                },
            ),
            (
                "example.se. IN TYPE43 \\# 5 0001\n",
                AnchorError::Line {
                    line: 1,
                    reason: "the generic RDATA is 2 bytes, not 5".into(),
                },
            ),
            (
                "$INCLUDE other.zone\n",
                AnchorError::Line {
                    line: 1,
                    reason: "$INCLUDE is not understood here".into(),
                },
            ),
        ] {
            assert_eq!(Anchors::parse(text), Err(expected), "{text}");
        }
        let many = "example.se. IN DS 1 13 2 00\n".repeat(MAX_RECORDS + 1);
        assert_eq!(Anchors::parse(&many), Err(AnchorError::TooMany));
    }
}
