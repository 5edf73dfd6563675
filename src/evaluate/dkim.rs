//! DKIM (RFC 6376, RFC 8463) and ARC (RFC 8617) verification of a parsed message, through
//! mail-auth, fed by mailshift's resolver.
//!
//! mail-auth verifies; the keys come from mailshift's [`Resolver`] through [`RecordCache`]. The
//! key names are known from the message (`s=` and `d=` of every signature and seal), so they
//! are fetched, concurrently, before mail-auth runs, and a run normally needs no second round.
//! Only the names mail-auth computes itself (an RFC 6541 ATPS record, the RFC 6651 report
//! record of an unexpected signature) cost one more run.

use super::cache::null_authenticator;
use super::records::{Evaluator, Question, RecordCache, TxtKind};
use crate::dns::Resolver;
use crate::evaluate::cache::plain;
use mail_auth::common::verify::VerifySignature;
use mail_auth::{ArcOutput, AuthenticatedMessage, DkimOutput, Parameters};

/// The TXT name of a signature's key, as mailshift spells names.
pub fn key_name(signature: &impl VerifySignature) -> String {
    plain(&signature.domain_key())
}

/// Verifies as of `at` (Unix seconds) instead of the current time: the `x=` expiry of every
/// DKIM-Signature and ARC-Message-Signature is judged against `at`. mail-auth compares `x=`
/// with the clock, so a signature still valid at `at` has its parsed `x=` cleared (the header
/// as signed is untouched, so the cryptographic check is unchanged), and one already expired at
/// `at` is marked expired. For verifying archived messages and time-stamped test vectors.
pub fn verify_as_of(message: &mut AuthenticatedMessage<'_>, at: u64) {
    fn adjust(x: &mut u64, t: &mut u64, at: u64) {
        if *x == 0 {
            return;
        }
        if *x > *t && *x > at {
            *x = 0;
        } else {
            // Expired at `at`: make mail-auth see it expired whatever the clock says.
            *x = 1;
            *t = (*t).max(1);
        }
    }
    for header in &mut message.dkim_headers {
        let sig = &mut header.header;
        adjust(&mut sig.x, &mut sig.t, at);
    }
    for header in &mut message.ams_headers {
        let sig = &mut header.header;
        adjust(&mut sig.x, &mut sig.t, at);
    }
}

/// The key names the DKIM and ARC evaluations of `message` will ask for.
pub fn key_questions(message: &AuthenticatedMessage<'_>) -> Vec<Question> {
    let mut questions: Vec<Question> = Vec::new();
    for header in &message.dkim_headers {
        let sig = &header.header;
        questions.push(Question::Txt(TxtKind::DomainKey, key_name(sig)));
        if sig.r {
            questions.push(Question::Txt(
                TxtKind::DomainKeyReport,
                plain(&format!("_report._domainkey.{}", sig.d)),
            ));
        }
    }
    for header in &message.ams_headers {
        questions.push(Question::Txt(TxtKind::DomainKey, key_name(&header.header)));
    }
    for header in &message.as_headers {
        questions.push(Question::Txt(TxtKind::DomainKey, key_name(&header.header)));
    }
    questions.sort();
    questions.dedup();
    questions
}

/// Verifies every DKIM-Signature of `message` with mail-auth (one output per malformed
/// signature first, then one per parsed signature, in header order). The keys should have been
/// fetched into `cache` ([`key_questions`]); anything else mail-auth asks is fetched and the
/// verification repeated.
pub async fn verify_dkim<'x>(
    resolver: &Resolver,
    cache: &'x RecordCache,
    message: &'x AuthenticatedMessage<'x>,
) -> Result<Vec<DkimOutput<'x>>, String> {
    let authenticator = null_authenticator()?;
    let mut round = 1;
    loop {
        cache.begin_run(Evaluator::Dkim);
        let output = authenticator
            .verify_dkim(Parameters::new(message).with_txt_cache(cache))
            .await;
        if !cache.repeat(resolver, round).await {
            return Ok(output);
        }
        round += 1;
    }
}

/// Validates the ARC chain of `message` with mail-auth.
pub async fn verify_arc<'x>(
    resolver: &Resolver,
    cache: &'x RecordCache,
    message: &'x AuthenticatedMessage<'x>,
) -> Result<ArcOutput<'x>, String> {
    let authenticator = null_authenticator()?;
    let mut round = 1;
    loop {
        cache.begin_run(Evaluator::Arc);
        let output = authenticator
            .verify_arc(Parameters::new(message).with_txt_cache(cache))
            .await;
        if !cache.repeat(resolver, round).await {
            return Ok(output);
        }
        round += 1;
    }
}

/// Why the ARC header fields of `message` are not a well-formed chain, beyond what mail-auth
/// checks (it parses leniently and validates only what it needs), or `None`:
///
/// * ARC header fields without an ARC-Message-Signature (mail-auth reports "no chain");
/// * tag lists that break RFC 6376 §3.2, which ARC uses (RFC 8617 §4.1): a tag name not of
///   the form `ALPHA *(ALPHA / DIGIT / "_")`, an empty tag (`;;`), a repeated tag;
/// * a required tag missing (RFC 8617 §4.1.2, §4.1.3; tag names are case-sensitive, so `S=` is
///   not `s=`): `i a b bh d h s` in an ARC-Message-Signature, `i a b cv d s` in an ARC-Seal;
/// * `d=` that is not a domain name;
/// * `a=rsa-sha1`, which RFC 8301 forbids;
/// * an ARC-Message-Signature whose `h=` signs ARC-Seal fields (RFC 8617 §4.1.2).
pub fn arc_structure_problem(message: &AuthenticatedMessage<'_>) -> Option<String> {
    let fields: Vec<(&[u8], &[u8])> = message
        .headers
        .iter()
        .filter(|(name, _)| {
            let name = name.trim_ascii_end();
            name.eq_ignore_ascii_case(b"ARC-Seal")
                || name.eq_ignore_ascii_case(b"ARC-Message-Signature")
                || name.eq_ignore_ascii_case(b"ARC-Authentication-Results")
        })
        .copied()
        .collect();
    if fields.is_empty() {
        return None;
    }
    let is = |name: &[u8], want: &[u8]| name.trim_ascii_end().eq_ignore_ascii_case(want);
    if !fields.iter().any(|(n, _)| is(n, b"ARC-Message-Signature")) {
        return Some("the ARC set has no ARC-Message-Signature".into());
    }
    if !fields.iter().any(|(n, _)| is(n, b"ARC-Seal")) {
        return Some("the ARC set has no ARC-Seal".into());
    }
    for (name, value) in &fields {
        let (kind, required): (&str, &[&str]) = if is(name, b"ARC-Seal") {
            ("ARC-Seal", &["i", "a", "b", "cv", "d", "s"])
        } else if is(name, b"ARC-Message-Signature") {
            (
                "ARC-Message-Signature",
                &["i", "a", "b", "bh", "d", "h", "s"],
            )
        } else {
            continue;
        };
        let text = String::from_utf8_lossy(value);
        let tags = match tag_list(&text) {
            Ok(tags) => tags,
            Err(problem) => return Some(format!("an {kind} field is malformed: {problem}")),
        };
        for tag in required {
            if !tags.iter().any(|(n, _)| n == tag) {
                return Some(format!("an {kind} field has no {tag}= tag"));
            }
        }
        for (n, v) in &tags {
            match n.as_str() {
                "a" if v.eq_ignore_ascii_case("rsa-sha1") => {
                    return Some(format!(
                        "an {kind} field uses rsa-sha1, which RFC 8301 forbids"
                    ))
                }
                "d" if !is_domain_name(v) => {
                    return Some(format!("an {kind} field has d={v}, not a domain name"))
                }
                "h" if kind == "ARC-Message-Signature"
                    && v.split(':')
                        .any(|h| h.trim().eq_ignore_ascii_case("arc-seal")) =>
                {
                    return Some(
                        "an ARC-Message-Signature signs ARC-Seal fields (RFC 8617 §4.1.2 \
                         forbids it)"
                            .into(),
                    )
                }
                _ => {}
            }
        }
    }
    None
}

/// An RFC 6376 §3.2 tag list as `(name, value)` pairs (values with whitespace removed), or what
/// breaks the grammar.
fn tag_list(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut tags: Vec<(String, String)> = Vec::new();
    let pieces: Vec<&str> = text.split(';').collect();
    for (i, piece) in pieces.iter().enumerate() {
        let trimmed = piece.trim();
        if trimmed.is_empty() {
            // Only the list's trailing `;` may leave an empty piece.
            if i + 1 == pieces.len() && i > 0 {
                continue;
            }
            return Err("an empty tag (`;;`)".into());
        }
        let Some((name, value)) = trimmed.split_once('=') else {
            return Err(format!("`{trimmed}` is not tag=value"));
        };
        let name = name.trim();
        let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(format!("`{name}` is not a tag name"));
        }
        if tags.iter().any(|(n, _)| n == name) {
            return Err(format!("the tag {name}= appears twice"));
        }
        let value: String = value.chars().filter(|c| !c.is_whitespace()).collect();
        tags.push((name.to_string(), value));
    }
    Ok(tags)
}

/// A domain name of LDH labels (underscores allowed), at most 253 characters.
pub fn is_domain_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_lists_follow_rfc_6376() {
        assert_eq!(
            tag_list("a=rsa-sha256; b=ab\r\n cd; d=example.org;").unwrap(),
            [
                ("a".to_string(), "rsa-sha256".to_string()),
                ("b".to_string(), "abcd".to_string()),
                ("d".to_string(), "example.org".to_string())
            ]
        );
        assert!(tag_list("a=1;; b=2").is_err());
        assert!(tag_list("a=1; _=2").is_err());
        assert!(tag_list("a=1; a=2").is_err());
        assert!(tag_list("a=1; b").is_err());
    }

    #[test]
    fn domain_names() {
        assert!(is_domain_name("mail.example.org"));
        assert!(is_domain_name("_dmarc.example.org."));
        assert!(!is_domain_name("***"));
        assert!(!is_domain_name("a..b"));
        assert!(!is_domain_name(""));
    }
}
