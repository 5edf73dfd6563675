//! DMARC (RFC 9989) for a parsed message, through mail-auth, fed by mailshift's resolver.
//!
//! mail-auth 0.13 implements RFC 9989's DNS tree walk, the organizational domain, identifier
//! alignment, `np`/`sp`/`p` and `t=y`. Its questions are the `_dmarc` names of the walks from the
//! author (From) domain and from each authenticated identifier under the author's
//! organizational domain, and an A lookup of the author domain when `np` could apply. The walks
//! are fetched before mail-auth runs ([`walk_names`], in RFC 9989's order, concurrently), in two
//! steps: the author's walk, then the walks of the SPF and DKIM domains that can align with it.
//!
//! On top of mail-auth:
//! * a `_dmarc` name with more than one DMARC record ends policy discovery, "DMARC does not
//!   apply" (RFC 9989 §4.10; mail-auth takes the first record that parses);
//! * when the author domain does not exist (NXDOMAIN), `np` applies; the caches cannot tell
//!   mail-auth so ([`RecordCache`]), so the policy is corrected here the way mail-auth would
//!   have set it;
//! * the alignment of *every* identifier is reported (mail-auth stops at the first aligned pass).

use super::cache::null_authenticator;
use super::records::{Evaluator, Question, RecordCache, TxtKind, MULTIPLE_DMARC_RECORDS};
use crate::dns::Resolver;
use crate::domain::DomainName;
use crate::fetch::dmarc_walk_names;
use mail_auth::common::to_a_label;
use mail_auth::dmarc::verify::DmarcParameters;
use mail_auth::dmarc::{Alignment, Dmarc, Policy, Psd};
use mail_auth::{
    AuthenticatedMessage, DkimOutput, DmarcOutput, DmarcResult, Error, Parameters, SpfOutput,
    SpfResult, Txt,
};
use serde::Serialize;
use std::sync::Arc;

/// DMARC's verdict on a message, with what it was based on.
#[derive(Debug, Clone)]
pub struct DmarcEvaluation {
    /// `pass`, `fail`, `none`, `temperror` or `permerror`.
    pub result: &'static str,
    /// The RFC5322.From domain (A-labels), when there is exactly one.
    pub from_domain: Option<String>,
    /// The domain whose `_dmarc` record applies, and the record.
    pub policy_domain: Option<String>,
    pub record: Option<Arc<Dmarc>>,
    /// The policy that applies to this message (`p`, `sp` or `np`, after `t=y`).
    pub policy: Option<&'static str>,
    /// The author's organizational domain (RFC 9989 §4.10.2).
    pub org_domain: Option<String>,
    pub spf: DmarcResult,
    pub dkim: DmarcResult,
    /// Why DMARC does not apply, or what was corrected.
    pub note: Option<String>,
}

/// The `_dmarc` names of an RFC 9989 §4.10 tree walk from `domain` ([`dmarc_walk_names`], the
/// walk `check` does), for a name from a message: empty labels are dropped, and a single label
/// has no walk (mail-auth asks nothing for it).
pub fn walk_names(domain: &str) -> Vec<String> {
    let labels: Vec<&str> = domain.split('.').filter(|l| !l.is_empty()).collect();
    if labels.len() < 2 {
        return Vec::new();
    }
    dmarc_walk_names(&DomainName::from_ascii_unchecked(labels.join(".")))
        .into_iter()
        .map(|name| name.to_string())
        .collect()
}

fn walk_questions(domain: &str) -> Vec<Question> {
    walk_names(domain)
        .into_iter()
        .map(|n| Question::Txt(TxtKind::Dmarc, n))
        .collect()
}

/// The records of a walk from `domain`, as mail-auth collects them (stopping after a record
/// with `psd=y|n`, or at a failure: `Err`). `None` while a name of the walk is not fetched.
/// The records a tree walk found, longest name first: `(domain, record)`.
type Walk = Vec<(String, Arc<Dmarc>)>;

fn walk(cache: &RecordCache, domain: &str) -> Option<Result<Walk, Error>> {
    let mut found = Vec::new();
    for name in walk_names(domain) {
        match cache.dmarc(&name)? {
            Txt::Dmarc(record) => {
                let stop = matches!(record.psd, Psd::Yes | Psd::No);
                let owner = name.strip_prefix("_dmarc.").unwrap_or(&name).to_string();
                found.push((owner, record));
                if stop {
                    break;
                }
            }
            Txt::Error(Error::Dns(mail_auth::DnsError::RecordNotFound(_)))
            | Txt::Error(Error::Dns(mail_auth::DnsError::InvalidRecordType)) => {}
            Txt::Error(e) => return Some(Err(e)),
            _ => {}
        }
    }
    Some(Ok(found))
}

/// RFC 9989 §4.10.2 (as mail-auth selects it): the first record with `psd=n`; one label below
/// the first record with `psd=y` other than the start; else the shortest name with a record;
/// else the start itself.
fn organizational_domain(walk: &[(String, Arc<Dmarc>)], start: &str) -> String {
    for (name, record) in walk {
        match record.psd {
            Psd::No => return name.clone(),
            Psd::Yes if name != start => {
                let depth = name.split('.').filter(|l| !l.is_empty()).count() + 1;
                let labels: Vec<&str> = start.split('.').filter(|l| !l.is_empty()).collect();
                return labels[labels.len().saturating_sub(depth)..].join(".");
            }
            _ => {}
        }
    }
    walk.last()
        .map_or_else(|| start.to_string(), |(name, _)| name.clone())
}

/// `domain` is `parent` or a subdomain of it.
fn within(domain: &str, parent: &str) -> bool {
    domain
        .strip_suffix(parent)
        .is_some_and(|prefix| prefix.is_empty() || prefix.ends_with('.'))
}

/// The single From domain of `message` (mail-auth's reading: every address's domain, A-labels;
/// several different domains exempt the message from DMARC).
pub fn from_domain(message: &AuthenticatedMessage<'_>) -> Result<Option<String>, String> {
    let mut domain: Option<String> = None;
    for from in &message.from {
        if let Some((_, d)) = from.rsplit_once('@') {
            let d = to_a_label(d).into_owned();
            match &domain {
                None => domain = Some(d),
                Some(first) if *first != d => {
                    return Err(format!(
                        "the From header names several domains ({first}, {d}); RFC 9989 exempts \
                         such messages from DMARC"
                    ))
                }
                Some(_) => {}
            }
        }
    }
    Ok(domain)
}

impl DmarcEvaluation {
    fn none(from_domain: Option<String>, note: Option<String>) -> DmarcEvaluation {
        DmarcEvaluation {
            result: "none",
            from_domain,
            policy_domain: None,
            record: None,
            policy: None,
            org_domain: None,
            spf: DmarcResult::None,
            dkim: DmarcResult::None,
            note,
        }
    }

    /// Whether identifier `domain` (an SPF or DKIM domain) is aligned with the From domain in
    /// `mode`, from the walks fetched for this evaluation. `None` without a From domain, or when
    /// the identifier's organizational domain could not be determined.
    pub fn aligned(&self, cache: &RecordCache, domain: &str, strict: bool) -> Option<bool> {
        let from = self.from_domain.as_deref()?;
        let domain = to_a_label(domain.trim_end_matches('.')).into_owned();
        if domain == from {
            return Some(true);
        }
        if strict {
            return Some(false);
        }
        let org = self.org_domain.as_deref().unwrap_or(from);
        if !within(&domain, org) {
            return Some(false);
        }
        let walk = walk(cache, &domain)?.ok()?;
        Some(organizational_domain(&walk, &domain) == org)
    }

    /// `adkim=s` in the applicable record.
    pub fn strict_dkim(&self) -> bool {
        self.record
            .as_ref()
            .is_some_and(|r| r.adkim == Alignment::Strict)
    }

    /// `aspf=s` in the applicable record.
    pub fn strict_spf(&self) -> bool {
        self.record
            .as_ref()
            .is_some_and(|r| r.aspf == Alignment::Strict)
    }
}

fn policy_name(policy: Policy) -> Option<&'static str> {
    match policy {
        Policy::None => Some("none"),
        Policy::Quarantine => Some("quarantine"),
        Policy::Reject => Some("reject"),
        Policy::Unspecified => None,
    }
}

/// Evaluates DMARC for `message` given its DKIM outputs and SPF result (`spf_domain`: the
/// domain SPF checked, MAIL FROM's or HELO's).
pub async fn verify_dmarc<'x>(
    resolver: &Resolver,
    cache: &'x RecordCache,
    message: &'x AuthenticatedMessage<'x>,
    dkim: &'x [DkimOutput<'x>],
    spf_domain: &'x str,
    spf: &'x SpfOutput,
) -> Result<DmarcEvaluation, String> {
    let from = match from_domain(message) {
        Ok(Some(from)) => from,
        Ok(None) => {
            return Ok(DmarcEvaluation::none(
                None,
                Some("the message has no From address with a domain".into()),
            ))
        }
        Err(note) => return Ok(DmarcEvaluation::none(None, Some(note))),
    };
    // The author's walk, then the walks of the identifiers that can align with it.
    cache.fetch(resolver, &walk_questions(&from)).await;
    let author_org = match walk(cache, &from) {
        Some(Ok(found)) => Some(organizational_domain(&found, &from)),
        _ => None,
    };
    if let Some(org) = &author_org {
        let spf_domain = to_a_label(spf_domain).into_owned();
        let mut more: Vec<Question> = Vec::new();
        let identifiers = dkim
            .iter()
            .filter_map(|o| o.signature().map(|s| to_a_label(&s.d).into_owned()))
            .chain((!spf_domain.is_empty()).then_some(spf_domain));
        for domain in identifiers {
            if domain != from && within(&domain, org) {
                more.extend(walk_questions(&domain));
            }
        }
        cache.fetch(resolver, &more).await;
    }

    let authenticator = null_authenticator()?;
    let mut round = 1;
    let output: DmarcOutput = loop {
        cache.begin_run(Evaluator::Dmarc);
        let output = authenticator
            .verify_dmarc(
                Parameters::new(DmarcParameters::new(message, dkim, spf_domain, spf))
                    .with_txt_cache(cache)
                    .with_ipv4_cache(cache),
            )
            .await;
        if !cache.repeat(resolver, round).await {
            break output;
        }
        round += 1;
    };

    let multiple = |r: &DmarcResult| matches!(r, DmarcResult::PermError(Error::Io(m)) if m == MULTIPLE_DMARC_RECORDS);
    if multiple(output.dkim_result()) || multiple(output.spf_result()) {
        return Ok(DmarcEvaluation::none(
            Some(from),
            Some(
                "a `_dmarc` name holds more than one DMARC record, so DMARC does not apply \
                 (RFC 9989 §4.10)"
                    .into(),
            ),
        ));
    }

    // Where the record was found: the author's own, else the organizational domain's, else the
    // last (shortest) of the walk, as mail-auth selects it.
    let found = match walk(cache, &from) {
        Some(Ok(found)) => found,
        _ => Vec::new(),
    };
    let org = author_org.clone().unwrap_or_else(|| from.clone());
    let selected = found
        .iter()
        .find(|(name, _)| *name == from)
        .or_else(|| found.iter().find(|(name, _)| *name == org))
        .or_else(|| found.last());
    let mut note = None;
    let mut policy = policy_name(output.policy());
    if let (Some((name, record)), Some(_)) = (selected, output.dmarc_record()) {
        // RFC 9989 §4.10.1: `np` for a non-existent author domain. mail-auth asked for its A
        // record through the cache, which could not say NXDOMAIN.
        if *name != from && record.np != record.sp && cache.nxdomain(&from) {
            let mut np = record.np;
            if record.t {
                np = match np {
                    Policy::Reject => Policy::Quarantine,
                    Policy::Quarantine => Policy::None,
                    other => other,
                };
            }
            policy = policy_name(np);
            note = Some(format!(
                "{from} does not exist (NXDOMAIN), so the record's np= applies"
            ));
        }
    }
    let record = output.dmarc_record_cloned();
    let result = match output.result() {
        DmarcResult::Pass => "pass",
        DmarcResult::Fail(_) => "fail",
        DmarcResult::TempError(_) => "temperror",
        DmarcResult::PermError(_) => "permerror",
        DmarcResult::None => "none",
    };
    Ok(DmarcEvaluation {
        result,
        from_domain: Some(from),
        policy_domain: record.as_ref().and(selected.map(|(name, _)| name.clone())),
        policy: if record.is_some() { policy } else { None },
        record,
        org_domain: author_org,
        spf: output.spf_result().clone(),
        dkim: output.dkim_result().clone(),
        note,
    })
}

/// A one-line summary of how DMARC's SPF or DKIM side came out.
pub fn side(result: &DmarcResult) -> &'static str {
    match result {
        DmarcResult::Pass => "aligned pass",
        DmarcResult::Fail(Error::NotAligned) => "passes but not aligned",
        DmarcResult::Fail(_) => "fail",
        DmarcResult::TempError(_) => "DNS error",
        DmarcResult::PermError(_) => "error",
        DmarcResult::None => "no pass",
    }
}

/// Whether the SPF output counts for DMARC at all (mail-auth considers pass and temperror).
pub fn spf_counts(spf: &SpfOutput) -> bool {
    matches!(spf.result(), SpfResult::Pass | SpfResult::TempError)
}

/// Serialisable summary of the DMARC record that applied.
#[derive(Debug, Clone, Serialize)]
pub struct PolicySummary {
    pub domain: String,
    pub p: Option<&'static str>,
    pub sp: Option<&'static str>,
    pub np: Option<&'static str>,
    pub adkim: &'static str,
    pub aspf: &'static str,
    pub testing: bool,
}

impl PolicySummary {
    pub fn of(domain: &str, record: &Dmarc) -> PolicySummary {
        let align = |a: Alignment| match a {
            Alignment::Relaxed => "r",
            Alignment::Strict => "s",
        };
        PolicySummary {
            domain: domain.to_string(),
            p: policy_name(record.p),
            sp: policy_name(record.sp),
            np: policy_name(record.np),
            adkim: align(record.adkim),
            aspf: align(record.aspf),
            testing: record.t,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walk_follows_rfc_9989() {
        assert_eq!(
            walk_names("mail.example.com"),
            [
                "_dmarc.mail.example.com",
                "_dmarc.example.com",
                "_dmarc.com"
            ]
        );
        assert_eq!(
            walk_names("a.b.c.d.e.f.g.h.i.j.k.example.com"),
            [
                "_dmarc.a.b.c.d.e.f.g.h.i.j.k.example.com",
                "_dmarc.g.h.i.j.k.example.com",
                "_dmarc.h.i.j.k.example.com",
                "_dmarc.i.j.k.example.com",
                "_dmarc.j.k.example.com",
                "_dmarc.k.example.com",
                "_dmarc.example.com",
                "_dmarc.com"
            ]
        );
        assert!(walk_names("localhost").is_empty());
    }

    #[test]
    fn organizational_domains() {
        let rec = |psd: Psd| {
            let mut d = Dmarc::parse_default();
            d.psd = psd;
            Arc::new(d)
        };
        let walk = vec![
            ("giant.bank.example".to_string(), rec(Psd::Default)),
            ("bank.example".to_string(), rec(Psd::Yes)),
        ];
        assert_eq!(
            organizational_domain(&walk, "mail.giant.bank.example"),
            "giant.bank.example"
        );
        let walk = vec![("example.com".to_string(), rec(Psd::Default))];
        assert_eq!(organizational_domain(&walk, "a.example.com"), "example.com");
        assert_eq!(organizational_domain(&[], "a.example.com"), "a.example.com");
        assert!(within("a.example.com", "example.com"));
        assert!(!within("aexample.com", "example.com"));
    }

    trait ParseDefault {
        fn parse_default() -> Dmarc;
    }
    impl ParseDefault for Dmarc {
        fn parse_default() -> Dmarc {
            use mail_auth::common::parse::TxtRecordParser;
            Dmarc::parse(b"v=DMARC1; p=none").unwrap()
        }
    }
}
