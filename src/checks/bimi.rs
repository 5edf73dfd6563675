//! BIMI checks (draft-brand-indicators-for-message-identification): will receivers show the
//! domain's logo?
//!
//! Four things must hold at once: one valid assertion record at `default._bimi` (of the domain
//! or its DMARC policy domain), DMARC at enforcement as BIMI requires (`p=quarantine` or
//! `reject`, no `pct` below 100, no `sp=none` — the draft's §7.3), a logo that follows the SVG
//! Tiny Portable/Secure profile, and for the receivers that insist on one (Gmail, Apple), a
//! mark certificate (VMC or CMC) that chains to a mark authority, is in date, names the domain
//! and embeds the same logo. A migration breaks BIMI quietly: DMARC relaxed to `p=none` "for
//! the move", or a logo host left on the old platform. Each part is judged separately, so the
//! finding names the one that fails.
//!
//! Ids: `bimi.absent`, `bimi.declined`, `bimi.syntax`, `bimi.multiple`, `bimi.dmarc`,
//! `bimi.logo-fetch`, `bimi.logo-profile`, `bimi.logo-notes`, `bimi.no-certificate`,
//! `bimi.certificate-fetch`, `bimi.certificate`, `bimi.certificate-expiring`,
//! `bimi.logo-mismatch`, `bimi.ok`, `bimi.unchecked`, `bimi.inconclusive`; in a migration,
//! `coexist.bimi-lost`.

use crate::dns::{Outcome, QueryType};
use crate::domain::DomainName;
use crate::fetch::{bimi_name, BimiFetch, DomainRecords};
use crate::finding::{Finding, RecordChange, Severity};
use crate::records::bimi::{discover, parse_record, BimiRecord, Discovery};
use crate::records::dmarc::Policy;
use crate::records::svg_tiny_ps;
use crate::records::vmc::{self, LogoComparison, VmcReport};
use crate::web::{WebError, WebFetch};

pub fn analyse(records: &DomainRecords) -> Vec<Finding> {
    let Some(fetch) = &records.bimi else {
        return vec![];
    };
    let domain = &records.domain;
    let here = bimi_name(domain);
    let Some(answer) = records.get(&here, QueryType::Txt) else {
        return vec![];
    };
    if let Outcome::Failed(e) = &answer.outcome {
        return vec![Finding::new(
            "bimi.inconclusive",
            Severity::Inconclusive,
            format!("The BIMI record of {domain} could not be fetched ({e})."),
        )
        .evidence(answer.describe())];
    }
    let Some(found_at) = &fetch.found_at else {
        return vec![Finding::new(
            "bimi.absent",
            Severity::Info,
            format!("{domain} publishes no BIMI record: receivers show no logo beside its mail."),
        )
        .evidence(answer.describe())
        .fix(format!(
            "To show a logo: DMARC at quarantine or reject (pct 100), an SVG Tiny P/S logo over HTTPS, and for Gmail and Apple Mail a mark certificate (VMC or CMC); then publish {here} TXT \"v=BIMI1; l=https://…/logo.svg; a=https://…/vmc.pem\"."
        ))];
    };
    let name = bimi_name(found_at);
    let Some(answer) = records.get(&name, QueryType::Txt) else {
        return vec![];
    };
    let strings = answer.txt_strings();
    let text = match discover(&strings) {
        Discovery::One(text) => text.to_string(),
        Discovery::Several(n) => {
            return vec![Finding::new(
                "bimi.multiple",
                Severity::Fail,
                format!("{name} holds {n} BIMI records: receivers use none and show no logo."),
            )
            .evidence(answer.describe())
            .fix("Keep one v=BIMI1 record.")]
        }
        Discovery::None => return vec![],
    };
    let inherited = found_at != domain;
    let whose = if inherited {
        format!("{domain} (through its policy domain {found_at})")
    } else {
        domain.to_string()
    };
    let record = parse_record(&text);
    if record.declined {
        return vec![Finding::new(
            "bimi.declined",
            Severity::Info,
            format!("{whose} declines BIMI (empty l= and a=): receivers show no logo."),
        )
        .evidence(answer.describe())];
    }
    let mut findings = Vec::new();
    if !record.is_valid() {
        findings.push(
            Finding::new(
                "bimi.syntax",
                Severity::Fail,
                format!(
                    "The BIMI record of {whose} is not usable: {}.",
                    record.problems.join("; ")
                ),
            )
            .evidence(answer.describe())
            .records(vec![RecordChange::replace(
                &name,
                "TXT",
                text.as_str(),
                "v=BIMI1; l=https://www.example.com/bimi/logo.svg; a=https://www.example.com/bimi/vmc.pem",
            )]),
        );
    }
    findings.extend(dmarc_requirement(records, domain));
    let mut certificate = None;
    if record.is_valid() {
        let (more, report) = logo_and_certificate(fetch, found_at, &whose);
        findings.extend(more);
        certificate = report;
    }
    if findings.iter().all(|f| f.severity <= Severity::Info) {
        findings.push(ok(&record, certificate.as_ref(), &whose, found_at));
    }
    findings
}

/// BIMI's DMARC requirement (draft §7.3): the policy that applies to the domain enforces, for
/// every message.
fn dmarc_requirement(records: &DomainRecords, domain: &DomainName) -> Option<Finding> {
    let Some((policy_domain, dmarc)) = crate::checks::dmarc::policy_record(records, domain) else {
        return Some(
            Finding::new(
                "bimi.dmarc",
                Severity::Fail,
                format!("{domain} has no usable DMARC record, and BIMI shows logos only for domains whose DMARC policy is quarantine or reject."),
            )
            .fix("Publish DMARC at p=quarantine or p=reject (pct 100) first."),
        );
    };
    let subdomain = &policy_domain != domain;
    // A subdomain is governed by sp= (or p= when sp= is absent) of its policy domain.
    let applied = if subdomain {
        dmarc.sp.or(dmarc.p)
    } else {
        dmarc.p
    };
    let mut why = Vec::new();
    match applied {
        Some(Policy::Quarantine | Policy::Reject) => {}
        Some(Policy::None) => why.push(if subdomain {
            format!("the policy for subdomains of {policy_domain} is none")
        } else {
            "its policy is p=none".to_string()
        }),
        None => why.push("its record has no policy".to_string()),
    }
    if let Some(pct) = dmarc.pct.filter(|p| *p < 100) {
        why.push(format!(
            "pct={pct} applies the policy to only {pct}% of mail"
        ));
    }
    if !subdomain && dmarc.sp == Some(Policy::None) {
        why.push("sp=none leaves its subdomains unenforced".to_string());
    }
    if dmarc.testing {
        why.push("t=y (testing) makes receivers apply one step less".to_string());
    }
    if why.is_empty() {
        return None;
    }
    Some(
        Finding::new(
            "bimi.dmarc",
            Severity::Fail,
            format!(
                "BIMI logos are not shown for {domain}: {} ({}). BIMI requires DMARC at quarantine or reject for all mail.",
                why.join("; "),
                dmarc.text
            ),
        )
        .fix(format!(
            "Move the DMARC record of {policy_domain} to p=quarantine or p=reject without pct below 100, sp=none or t=y, once reports show every sender passing (`mailshift reports`, the `dmarc-enforced` gate)."
        )),
    )
}

/// A fetched file, as far as BIMI is concerned.
enum Fetched<'a> {
    /// Served with 200, within the cap.
    Body(&'a [u8]),
    /// Not usable, and why.
    Failed(Box<Finding>),
    /// Not fetched: `--offline`.
    Offline,
}

fn fetched<'a>(fetch: &'a WebFetch, what: &str, id: &str) -> Fetched<'a> {
    let failed =
        |severity, message: String| Fetched::Failed(Box::new(Finding::new(id, severity, message)));
    match &fetch.result {
        Ok(response) if response.status == 200 && !response.over_cap => Fetched::Body(&response.body),
        Ok(response) if response.over_cap => failed(
            Severity::Fail,
            format!("The {what} at {} is larger than mailshift reads ({} bytes read before stopping): receivers refuse files that large.", fetch.url, response.body.len()),
        ),
        Ok(response) => {
            let mut message = format!(
                "The {what} at {} answers HTTP {}, not 200: receivers show no logo.",
                fetch.url, response.status
            );
            if let Some(location) = &response.location {
                message.push_str(&format!(" It redirects to {location}."));
            }
            failed(Severity::Fail, message)
        }
        Err(WebError::Offline) => Fetched::Offline,
        Err(e) if e.is_inconclusive() => Fetched::Failed(Box::new(Finding::new(
            "bimi.inconclusive",
            Severity::Inconclusive,
            format!("The {what} at {} could not be fetched ({e}).", fetch.url),
        ))),
        Err(e) => failed(
            Severity::Fail,
            format!("The {what} at {} cannot be fetched: {e}.", fetch.url),
        ),
    }
}

/// The logo's and the certificate's findings, and the certificate's report when one was read.
fn logo_and_certificate(
    fetch: &BimiFetch,
    found_at: &DomainName,
    whose: &str,
) -> (Vec<Finding>, Option<VmcReport>) {
    let mut findings = Vec::new();
    let mut certificate = None;
    let mut offline = false;
    let mut logo_bytes = None;
    if let Some(logo) = &fetch.logo {
        match fetched(logo, "BIMI logo", "bimi.logo-fetch") {
            Fetched::Body(body) => {
                let report = svg_tiny_ps::check(body);
                if !report.is_valid() {
                    findings.push(
                        Finding::new(
                            "bimi.logo-profile",
                            Severity::Fail,
                            format!(
                                "The BIMI logo of {whose} ({}) does not follow SVG Tiny P/S, so receivers show no logo: {}.",
                                logo.url,
                                report.problems.join("; ")
                            ),
                        )
                        .fix("Export the logo as SVG Tiny 1.2 with baseProfile=\"tiny-ps\", a <title>, a square viewBox, and no scripts, links, raster images or animation (the BIMI Group's conversion tools do this)."),
                    );
                } else if !report.notes.is_empty() {
                    findings.push(Finding::new(
                        "bimi.logo-notes",
                        Severity::Warn,
                        format!(
                            "The BIMI logo of {whose} ({}) is accepted, but: {}.",
                            logo.url,
                            report.notes.join("; ")
                        ),
                    ));
                }
                logo_bytes = Some(body);
            }
            Fetched::Failed(finding) => findings.push(*finding),
            Fetched::Offline => offline = true,
        }
    }
    match &fetch.authority {
        None => findings.push(
            Finding::new(
                "bimi.no-certificate",
                Severity::Warn,
                format!("The BIMI record of {whose} names no mark certificate (a=): Gmail and Apple Mail show logos only with a VMC or CMC; some other receivers show it without."),
            )
            .fix("Obtain a Verified Mark Certificate (registered trademark) or Common Mark Certificate (a mark in use for a year) and publish its PEM at the a= URL."),
        ),
        Some(authority) => match fetched(authority, "mark certificate", "bimi.certificate-fetch") {
            Fetched::Body(body) => {
                let report = vmc::check_chain(
                    body,
                    found_at,
                    crate::records::bimi::DEFAULT_SELECTOR,
                    fetch.fetched_at,
                    &fetch.roots,
                );
                findings.extend(certificate_findings(
                    &report,
                    authority,
                    whose,
                    logo_bytes,
                    fetch.fetched_at,
                ));
                certificate = Some(report);
            }
            Fetched::Failed(finding) => findings.push(*finding),
            Fetched::Offline => offline = true,
        },
    }
    if offline {
        findings.push(Finding::new(
            "bimi.unchecked",
            Severity::Info,
            format!("--offline: the BIMI logo and certificate of {whose} were not fetched."),
        ));
    }
    (findings, certificate)
}

/// A valid mark certificate that runs out within this many days is worth a warning: a VMC or
/// CMC is renewed with the mark authority by hand, and its validation takes days or weeks.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

fn certificate_findings(
    report: &VmcReport,
    authority: &WebFetch,
    whose: &str,
    logo: Option<&[u8]>,
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    let left = report.not_after.map(|t| t - now.timestamp());
    if report.is_valid() && left.is_some_and(|s| (0..EXPIRY_WARNING_DAYS * 86_400).contains(&s)) {
        let when = crate::words::in_days(left.unwrap_or_default());
        findings.push(
            Finding::new(
                "bimi.certificate-expiring",
                Severity::Warn,
                format!(
                    "The mark certificate of {whose} ({}) expires on {} ({when}): once it has, Gmail and Apple Mail stop showing the logo.",
                    authority.url,
                    report.not_after.map_or("?".into(), vmc::date)
                ),
            )
            .fix("Renew the certificate with the mark authority now (its validation can take weeks), and publish the new PEM at the a= URL."),
        );
    }
    if !report.is_valid() {
        let problems: Vec<String> = report.problems.iter().map(|p| p.to_string()).collect();
        findings.push(
            Finding::new(
                "bimi.certificate",
                Severity::Fail,
                format!(
                    "The mark certificate of {whose} ({}) would not be accepted: {}.",
                    authority.url,
                    problems.join("; ")
                ),
            )
            .fix("Renew or reissue the certificate with the mark authority, and serve the whole chain (mark certificate first, then the issuing CA) at the a= URL."),
        );
        return findings;
    }
    if let (Some(embedded), Some(fetched)) = (&report.logo, logo) {
        match vmc::compare_logos(&embedded.svg, fetched) {
            LogoComparison::Identical | LogoComparison::SameIgnoringWhitespace => {}
            LogoComparison::Different {
                certificate_sha256,
                fetched_sha256,
            } => findings.push(
                Finding::new(
                    "bimi.logo-mismatch",
                    Severity::Fail,
                    format!(
                        "The logo at l= differs from the one in the mark certificate of {whose} (SHA-256 {fetched_sha256} against {certificate_sha256}): receivers must refuse both."
                    ),
                )
                .fix("Serve at l= exactly the SVG the certificate embeds (a logo change needs a new certificate)."),
            ),
            LogoComparison::FetchedUnreadable(why) => findings.push(Finding::new(
                "bimi.logo-mismatch",
                Severity::Fail,
                format!("The logo at l= cannot be compared with the certificate's: {why}."),
            )),
        }
    }
    findings
}

fn ok(
    record: &BimiRecord,
    certificate: Option<&VmcReport>,
    whose: &str,
    found_at: &DomainName,
) -> Finding {
    let mut parts = vec![format!("{whose} publishes BIMI at {}", bimi_name(found_at))];
    if let Some(logo) = &record.logo {
        parts.push(format!("logo {logo}"));
    }
    if let Some(report) = certificate {
        let kind = match report.kind {
            vmc::CertificateKind::Vmc => "a VMC",
            vmc::CertificateKind::Cmc => "a CMC",
            vmc::CertificateKind::Unknown => "a mark certificate",
        };
        parts.push(format!(
            "{kind} issued by {} valid until {}",
            report.issuer.as_deref().unwrap_or("?"),
            report.not_after.map_or("?".into(), vmc::date)
        ));
    }
    Finding::new(
        "bimi.ok",
        Severity::Pass,
        format!("{}; DMARC enforces.", parts.join(", ")),
    )
}

/// A migration must not lose the BIMI record: `before` is the record the plan's snapshot
/// (taken before any change) holds at the domain's `default._bimi`, if any. When the domain
/// publishes none now (neither itself nor through its policy domain), the logo is gone from
/// every inbox; the fix republishes the record the snapshot kept.
pub fn lost_in_migration(
    records: &DomainRecords,
    before: Option<&str>,
    snapshot: &str,
) -> Option<Finding> {
    let before = before?;
    let fetch = records.bimi.as_ref()?;
    let here = bimi_name(&records.domain);
    let answer = records.get(&here, QueryType::Txt)?;
    if answer.failed().is_some() || fetch.found_at.is_some() {
        return None;
    }
    Some(
        Finding::new(
            "coexist.bimi-lost",
            Severity::Fail,
            format!(
                "{} published a BIMI record before the migration ({snapshot}: \"{before}\"), and publishes none now: receivers stop showing its logo.",
                records.domain
            ),
        )
        .evidence(answer.describe())
        .fix(format!("Republish the BIMI record at {here} as the snapshot holds it (DMARC must stay at quarantine or reject for it to show)."))
        .records(vec![RecordChange::add(&here, "TXT", before)]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::WebResponse;

    fn authority() -> WebFetch {
        WebFetch {
            url: "https://bimi.lindqvist-kaffe.se/vmc.pem".into(),
            result: Ok(WebResponse {
                status: 200,
                content_type: Some("application/pem-certificate-chain".into()),
                location: None,
                body: Vec::new(),
                over_cap: false,
            }),
        }
    }

    /// A valid mark certificate within 30 days of its end: a warning with the date; further
    /// out, or already refused for another reason, nothing of the kind.
    #[test]
    fn a_mark_certificate_about_to_expire_is_named_with_its_date() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-12-02T10:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let report = |days: i64| VmcReport {
            not_after: Some(now.timestamp() + days * 86_400),
            ..VmcReport::default()
        };
        let ids = |r: &VmcReport| -> Vec<String> {
            certificate_findings(r, &authority(), "lindqvist-kaffe.se", None, now)
                .iter()
                .map(|f| format!("{}:{}", f.id, f.severity))
                .collect()
        };
        assert_eq!(ids(&report(10)), ["bimi.certificate-expiring:warn"]);
        let f = certificate_findings(&report(10), &authority(), "lindqvist-kaffe.se", None, now);
        assert!(
            f[0].message
                .contains("expires on 2026-12-12 10:00 UTC (in 10 days)")
                && f[0].message.contains("stop showing the logo"),
            "{}",
            f[0].message
        );
        assert!(ids(&report(EXPIRY_WARNING_DAYS)).is_empty());
        let mut refused = report(10);
        refused
            .problems
            .push(vmc::VmcProblem::Pem(vmc::PemError::NoCertificate));
        assert_eq!(ids(&refused), ["bimi.certificate:fail"]);
    }
}
