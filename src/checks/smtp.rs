//! SMTP checks (`check --probe-smtp`): would a sending server get TLS from each MX host, and
//! would it trust the certificate? The probe (`crate::smtp_probe`) talked to every MX host on
//! port 25; this judges what it recorded, against what the domain asks of senders.
//!
//! How bad a TLS problem is depends on that: with an MTA-STS policy in enforce mode (RFC 8461
//! §4.2, §5) — or TLSA records, for senders that do DANE (RFC 7672 §2.2) — senders that honour
//! it do not deliver to an MX host without STARTTLS or with a certificate not valid for the
//! host's name, so it fails. Without them senders encrypt opportunistically and deliver anyway
//! (RFC 7435), so it warns: mail is exposed, and enforcement cannot be turned on until it is
//! fixed. Not reaching a server says nothing about it (many networks block port 25): that is
//! inconclusive. Whether the MX names match the policy's `mx` patterns is `mta-sts.mx-mismatch`'s
//! business, so it is not repeated here.
//!
//! Ids: `smtp.ok`, `smtp.no-starttls`, `smtp.certificate`, `smtp.certificate-expiring`,
//! `smtp.implicit-mx`, `smtp.tls-failed`, `smtp.dane-mismatch`, `smtp.old-tls`,
//! `smtp.banner`, `smtp.protocol`, `smtp.unreachable`, `smtp.unchecked`.

use crate::checks::mta_sts::policy_in_force;
use crate::dns::QueryType;
use crate::domain::DomainName;
use crate::fetch::dnssec::Security;
use crate::fetch::{mx_hosts, DomainRecords};
use crate::finding::{Finding, Severity};
use crate::records::mta_sts::Mode;
use crate::records::tlsa::{dane_ee_record, tlsa_matches, Tlsa};
use crate::smtp_probe::{
    CertProblem, CertSummary, CertVerdict, HostProbe, ProbeError, SmtpProbe, SmtpProbes, Stage,
    TlsFailureKind, MAX_HOSTS,
};
use hickory_proto::rr::RecordType;

pub fn analyse(records: &DomainRecords) -> Vec<Finding> {
    let Some(probes) = &records.smtp else {
        return vec![];
    };
    let domain = &records.domain;
    if probes.offline {
        return vec![Finding::new(
            "smtp.unchecked",
            Severity::Info,
            format!("The MX hosts of {domain} were not probed (--offline): STARTTLS and their certificates are unchecked."),
        )];
    }
    let mut findings = Vec::new();
    let probed = probes.hosts.iter().any(|h| !h.addresses.is_empty());
    if !probed {
        let has_mx = records
            .get(domain, QueryType::Mx)
            .is_some_and(|a| !mx_hosts(a).is_empty());
        let why = if probes.implicit_mx {
            "it has no MX record, and no address of its own that senders could use instead"
        } else if has_mx {
            "none of its MX hosts has an address to connect to"
        } else {
            "it has no MX host to connect to"
        };
        findings.push(Finding::new(
            "smtp.unchecked",
            Severity::Info,
            format!("No SMTP server of {domain} was probed: {why}."),
        ));
        return findings;
    }
    if probes.hosts_not_probed > 0 {
        findings.push(Finding::new(
            "smtp.unchecked",
            Severity::Info,
            format!(
                "{domain} has {} more MX hosts than the {MAX_HOSTS} probed; they are unchecked.",
                probes.hosts_not_probed
            ),
        ));
    }
    if probes.implicit_mx {
        findings.push(
            Finding::new(
                "smtp.implicit-mx",
                Severity::Info,
                format!("{domain} publishes no MX record, so senders deliver to its own address (the implicit MX of RFC 5321 §5.1): that server was probed."),
            )
            .fix(format!("Publish an MX record naming the server that accepts mail for {domain}, or a null MX ({domain}. MX 0 .) if it accepts none (RFC 7505).")),
        );
    }
    let policy = policy_in_force(records).and_then(|p| p.mode);
    let mut good: Vec<(String, String, serde_json::Value)> = Vec::new();
    for host in &probes.hosts {
        judge_host(records, probes, host, policy, &mut findings, &mut good);
    }
    if !good.is_empty() {
        let (lines, data): (Vec<String>, Vec<serde_json::Value>) = good
            .iter()
            .map(|(line, _, data)| (line.clone(), data.clone()))
            .unzip();
        let evidence: Vec<&str> = good
            .iter()
            .map(|(_, evidence, _)| evidence.as_str())
            .collect();
        findings.push(
            Finding::new(
                "smtp.ok",
                Severity::Pass,
                format!(
                    "STARTTLS with a certificate valid for the MX host name: {}.",
                    lines.join("; ")
                ),
            )
            .evidence(evidence.join("\n"))
            .data(serde_json::json!({ "hosts": data })),
        );
    }
    findings
}

/// The hook the DANE check fills: true when `host` has usable TLSA records at
/// `_25._tcp.<host>` (RFC 7672 §2.2), so senders that do DANE require TLS to it and match the
/// chain it presents (`TlsOutcome::chain`, DER, leaf first) against those records instead of
/// the web's certificate authorities. Until TLSA records are fetched, nothing is known.
pub fn dane_required(records: &DomainRecords, host: &DomainName) -> bool {
    !usable_tlsa(records, host).is_empty()
}

/// The TLSA records senders that do DANE use for `host`: only with `--dnssec`, when the
/// domain's MX answer and the host's TLSA answer are both secure (RFC 7672 §2.2.1), and only
/// DANE-TA and DANE-EE records (§3.1.3: the PKIX usages are unusable for SMTP).
fn usable_tlsa(records: &DomainRecords, host: &DomainName) -> Vec<Tlsa> {
    let Some(dnssec) = &records.dnssec else {
        return Vec::new();
    };
    let mx_secure = dnssec
        .question(&records.domain, RecordType::MX)
        .is_some_and(|q| q.security == Security::Secure);
    let Some(entry) = dnssec.dane.iter().find(|d| &d.host == host) else {
        return Vec::new();
    };
    if !mx_secure || entry.tlsa.security != Security::Secure {
        return Vec::new();
    }
    entry
        .records
        .iter()
        .filter_map(|rdata| Tlsa::parse(rdata).ok())
        .filter(Tlsa::smtp_usable)
        .collect()
}

/// Whether the chain `host` presented matches one of its usable TLSA records.
fn dane_mismatch(tlsa: &[Tlsa], host: &DomainName, at: &str, chain: &[Vec<u8>]) -> Option<Finding> {
    if tlsa.is_empty() || tlsa.iter().any(|t| tlsa_matches(t, chain)) {
        return None;
    }
    let name = crate::records::tlsa::smtp_tlsa_name(host);
    let current = chain
        .first()
        .and_then(|leaf| dane_ee_record(leaf))
        .map(|record| format!(" The certificate it serves now matches `{name}. IN TLSA {record}`."))
        .unwrap_or_default();
    Some(
        Finding::new(
            "smtp.dane-mismatch",
            Severity::Fail,
            format!(
                "The certificate chain of {at} matches none of the {} usable TLSA record{} at {name}: senders that do DANE do not deliver to it (RFC 7672 §3).{current}",
                tlsa.len(),
                if tlsa.len() == 1 { "" } else { "s" }
            ),
        )
        .fix(format!(
            "Publish the TLSA record for the certificate {host} serves (and keep the old record until every server has the new certificate): a certificate change must be announced in DNS first."
        )),
    )
}

/// How much the domain asks of senders' TLS to `host`, and what a failure then means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Demand {
    /// MTA-STS enforce: senders that honour it do not deliver without valid TLS.
    Enforce,
    /// TLSA records: senders that do DANE do not deliver without TLS.
    Dane,
    /// MTA-STS testing: senders deliver anyway and report the failure.
    Testing,
    /// Nothing: senders encrypt if they can, unchecked.
    Opportunistic,
}

impl Demand {
    fn of(records: &DomainRecords, policy: Option<Mode>, host: &DomainName) -> Demand {
        if policy == Some(Mode::Enforce) {
            Demand::Enforce
        } else if dane_required(records, host) {
            Demand::Dane
        } else if policy == Some(Mode::Testing) {
            Demand::Testing
        } else {
            Demand::Opportunistic
        }
    }

    fn severity(self) -> Severity {
        match self {
            Demand::Enforce | Demand::Dane => Severity::Fail,
            Demand::Testing | Demand::Opportunistic => Severity::Warn,
        }
    }

    /// What a TLS failure at `host` means for mail, given `otherwise` (what happens without a
    /// policy).
    fn consequence(self, domain: &DomainName, host: &DomainName, otherwise: &str) -> String {
        match self {
            Demand::Enforce => format!("the MTA-STS policy of {domain} is in enforce mode, so senders that honour it do not deliver to {host} (RFC 8461 §4.2, §5)"),
            Demand::Dane => format!("{host} has TLSA records, so senders that do DANE do not deliver to it without TLS (RFC 7672 §2.2)"),
            Demand::Testing => format!("the MTA-STS policy of {domain} is in testing mode: senders still deliver and report the failure, but enforcing the policy would stop delivery to {host}"),
            Demand::Opportunistic => otherwise.to_string(),
        }
    }
}

fn judge_host(
    records: &DomainRecords,
    probes: &SmtpProbes,
    host: &HostProbe,
    policy: Option<Mode>,
    findings: &mut Vec<Finding>,
    good: &mut Vec<(String, String, serde_json::Value)>,
) {
    let domain = &records.domain;
    let name = &host.host;
    let demand = Demand::of(records, policy, name);
    let reached: Vec<&SmtpProbe> = host
        .addresses
        .iter()
        .filter(|p| unreached(p).is_none())
        .collect();
    let unreached: Vec<(&SmtpProbe, String)> = host
        .addresses
        .iter()
        .filter_map(|p| unreached(p).map(|why| (p, why)))
        .collect();
    if !unreached.is_empty() {
        let list: Vec<String> = unreached
            .iter()
            .map(|(p, why)| format!("{}: {why}", p.address))
            .collect();
        let evidence = unreached
            .iter()
            .map(|(p, _)| transcript(p))
            .collect::<Vec<_>>()
            .join("\n");
        let finding = if reached.is_empty() {
            Finding::new(
                "smtp.unreachable",
                Severity::Inconclusive,
                format!(
                    "{name} could not be probed on port {} from here ({}). Many networks block outgoing connections to port 25 (home connections, most cloud providers), so this says nothing about {name}: probe from a machine that may send mail.",
                    probes.port,
                    list.join("; ")
                ),
            )
        } else {
            Finding::new(
                "smtp.unreachable",
                Severity::Info,
                format!(
                    "{name} answered at another address, but not here ({}): this network may not reach that address family, or the address is not served.",
                    list.join("; ")
                ),
            )
        };
        let mut finding = finding.evidence(evidence);
        if let Some((probe, _)) = unreached.first() {
            finding = finding.data(probe_data(probe));
        }
        findings.push(finding);
    }
    let tlsa = usable_tlsa(records, name);
    for probe in reached {
        match judge_probe(domain, probes, probe, demand, &tlsa) {
            Ok(summary) => {
                findings.extend(expiring(probes, probe, demand));
                good.push((summary, transcript(probe), probe_data(probe)));
            }
            Err(found) => findings.extend(found),
        }
    }
}

/// A certificate valid now that expires within this many days is worth a warning: automated
/// renewal (ACME) renews a month ahead, so one this close has missed its renewal.
pub const EXPIRY_WARNING_DAYS: i64 = 14;

/// `smtp.certificate-expiring`: the certificate of a host that passed expires within
/// [`EXPIRY_WARNING_DAYS`] of the probe.
fn expiring(probes: &SmtpProbes, probe: &SmtpProbe, demand: Demand) -> Option<Finding> {
    let leaf = probe.tls.as_ref()?.leaf.as_ref()?;
    let left = leaf.not_after - probes.probed_at;
    if !(0..EXPIRY_WARNING_DAYS * 86_400).contains(&left) {
        return None;
    }
    let when = crate::words::in_days(left);
    let (severity, then) = match demand {
        Demand::Enforce => (
            Severity::Warn,
            "senders that enforce the domain's MTA-STS policy refuse to deliver",
        ),
        Demand::Testing => (
            Severity::Warn,
            "senders report failures under the MTA-STS policy (testing), and refuse to deliver once it is enforced",
        ),
        Demand::Dane => (
            Severity::Warn,
            "senders doing DANE with a trust-anchor record (usage 2) refuse to deliver (DANE-EE records, usage 3, ignore the dates)",
        ),
        Demand::Opportunistic => (
            Severity::Info,
            "senders that encrypt opportunistically still deliver without checking it, but no MTA-STS policy could be enforced",
        ),
    };
    Some(
        Finding::new(
            "smtp.certificate-expiring",
            severity,
            format!(
                "The certificate of {} ({}) expires on {} ({when}); once it has, {then}.",
                probe.host,
                probe.address.ip(),
                date(leaf.not_after)
            ),
        )
        .evidence(transcript(probe))
        .fix(format!(
            "Renew the certificate of {} now, and check that its automatic renewal works (ACME clients renew 30 days ahead).",
            probe.host
        )),
    )
}

/// Why a probe never got a word from the server, or `None` when it did.
fn unreached(probe: &SmtpProbe) -> Option<String> {
    let error = probe.error.as_ref()?;
    if probe.banner.is_some() {
        return None;
    }
    match error {
        e if e.is_unreachable() => Some(e.to_string()),
        ProbeError::Timeout { seconds, .. } => Some(format!(
            "the connection was accepted, but no greeting came within {seconds} s (a silent server, or a network that intercepts port 25)"
        )),
        ProbeError::Closed { .. } | ProbeError::Io { .. } => Some(format!(
            "{error} (a server refusing this address, or a network that intercepts port 25)"
        )),
        ProbeError::NotSmtp { .. } => None,
        _ => Some(error.to_string()),
    }
}

/// One reached address: `Ok` with its line for `smtp.ok`, or the findings against it.
fn judge_probe(
    domain: &DomainName,
    probes: &SmtpProbes,
    probe: &SmtpProbe,
    demand: Demand,
    tlsa: &[Tlsa],
) -> Result<String, Vec<Finding>> {
    let host = &probe.host;
    let at = format!("{host} ({})", probe.address.ip());
    let evidence = transcript(probe);
    let data = probe_data(probe);
    let finding = |id: &str, severity: Severity, message: String| {
        Finding::new(id, severity, message)
            .evidence(evidence.clone())
            .data(data.clone())
    };
    let banner = match (&probe.banner, &probe.error) {
        (Some(banner), _) => banner,
        (None, error) => {
            let why = error
                .as_ref()
                .map(|e| e.to_string())
                .unwrap_or_else(|| "no greeting".into());
            return Err(vec![finding(
                "smtp.banner",
                Severity::Warn,
                format!("{at} does not speak SMTP on port {}: {why}. Senders cannot deliver to it (unless a device on this network intercepts port 25).", probes.port),
            )
            .fix(format!("Point the MX record at a mail server, or fix the service listening on {at} port 25."))]);
        }
    };
    if banner.code != 220 {
        let temporary = (400..500).contains(&banner.code);
        let message = if temporary {
            format!("{at} greeted with `{}`: a temporary refusal (busy, greylisting, or this address rate-limited); try again later.", banner.first_line())
        } else {
            format!("{at} refused the session with `{}`: it may refuse every sender, or only this machine's address (residential and cloud addresses often are); probe from a sending server to tell.", banner.first_line())
        };
        let severity = if temporary {
            Severity::Inconclusive
        } else {
            Severity::Warn
        };
        let mut f = finding("smtp.banner", severity, message);
        if !temporary {
            f = f.fix(format!("If {host} refuses every sender, remove it from the MX records of {domain} or fix its access rules."));
        }
        return Err(vec![f]);
    }
    let ehlo_name = probe.ehlo_name.as_deref().unwrap_or("?");
    let ehlo = match (&probe.ehlo, &probe.error) {
        (Some(ehlo), _) => ehlo,
        (None, error) => {
            let why = error
                .as_ref()
                .map(|e| e.to_string())
                .unwrap_or_else(|| "no answer to EHLO".into());
            return Err(vec![finding(
                "smtp.protocol",
                Severity::Warn,
                format!(
                    "{at} greeted, then broke off: {why}. Senders cannot get as far as STARTTLS."
                ),
            )
            .fix(format!(
                "Check the mail server's logs on {at} for the session."
            ))]);
        }
    };
    if ehlo.code != 250 {
        return Err(vec![finding(
            "smtp.protocol",
            Severity::Warn,
            format!("{at} refused EHLO {ehlo_name} with `{}`: senders that use ESMTP cannot use STARTTLS with it (some fall back to HELO, without TLS).", ehlo.first_line()),
        )
        .fix(format!("Accept EHLO on {host} (RFC 5321 §4.1.1.1); if it checks the client's name, check it after STARTTLS, at RCPT."))]);
    }
    if !probe.starttls_offered {
        let consequence = demand.consequence(
            domain,
            host,
            &format!("mail to {host} travels unencrypted, and an MTA-STS policy or DANE cannot be enforced for it"),
        );
        return Err(vec![finding(
            "smtp.no-starttls",
            demand.severity(),
            format!("{at} does not offer STARTTLS: {consequence}."),
        )
        .fix(format!("Turn on STARTTLS on {host} with a certificate for {host} from a public certificate authority (Postfix: smtpd_tls_security_level = may with smtpd_tls_chain_files)."))]);
    }
    let tls_failed_otherwise = format!("senders that try TLS fail, then deliver unencrypted or retry later, so mail to {host} is delayed or exposed");
    let Some(tls) = probe
        .tls
        .as_ref()
        .filter(|_| probe.starttls.as_ref().is_some_and(|r| r.code == 220))
    else {
        let what = match (&probe.starttls, &probe.error) {
            (Some(reply), _) => format!("answered it with `{}`", reply.first_line()),
            (None, Some(e)) => e.to_string(),
            (None, None) => "did not answer it".into(),
        };
        return Err(vec![finding(
            "smtp.tls-failed",
            demand.severity(),
            format!(
                "{at} offers STARTTLS but {what}: {}.",
                demand.consequence(domain, host, &tls_failed_otherwise)
            ),
        )
        .fix(format!("Fix TLS on {host}: STARTTLS must be answered 220 (its certificate and key files readable by the server)."))]);
    };
    let mut found = Vec::new();
    if let Some(failure) = &tls.failure {
        match failure.kind {
            TlsFailureKind::NotAttempted => found.push(finding(
                "smtp.tls-failed",
                Severity::Inconclusive,
                format!("mailshift could not set up TLS to {at} ({}): whether its STARTTLS works is unknown.", failure.reason),
            )),
            TlsFailureKind::NoModernVersion => found.push(
                finding(
                    "smtp.old-tls",
                    demand.severity(),
                    format!(
                        "{at} offers no TLS 1.2 or 1.3 ({}); TLS 1.0 and 1.1 are deprecated (RFC 8996) and refused by current senders: {}.",
                        failure.reason,
                        demand.consequence(domain, host, &tls_failed_otherwise)
                    ),
                )
                .fix(format!("Enable TLS 1.2 and 1.3 on {host} (Postfix: smtpd_tls_protocols = >=TLSv1.2).")),
            ),
            TlsFailureKind::Handshake => found.push(
                finding(
                    "smtp.tls-failed",
                    demand.severity(),
                    format!(
                        "The TLS handshake with {at} failed after STARTTLS ({}): {}.",
                        failure.reason,
                        demand.consequence(domain, host, &tls_failed_otherwise)
                    ),
                )
                .fix(format!("Fix TLS on {host}: a certificate and key that belong together, TLS 1.2 or 1.3 with current cipher suites (ECDHE with AES-GCM or ChaCha20).")),
            ),
        }
    }
    found.extend(dane_mismatch(tlsa, host, &at, &tls.chain));
    if let Some(CertVerdict::Invalid { problem, reason }) = &tls.verdict {
        // With TLSA records, the DANE check judges the chain; PKIX trust does not matter there.
        if demand != Demand::Dane {
            let what = certificate_problem(host, *problem, reason, tls.leaf.as_ref());
            let otherwise = "senders that encrypt opportunistically still deliver (without MTA-STS or DANE they do not check certificates), but an MTA-STS policy cannot be enforced until it is fixed";
            found.push(
                finding(
                    "smtp.certificate",
                    demand.severity(),
                    format!(
                        "The certificate of {at} {what}: {}.",
                        demand.consequence(domain, host, otherwise)
                    ),
                )
                .fix(format!("Install a certificate for {host} from a public certificate authority (a covering wildcard will do) with its intermediate certificates, renewed automatically (ACME).")),
            );
        }
    }
    if !found.is_empty() {
        return Err(found);
    }
    let leaf = tls
        .leaf
        .as_ref()
        .map(|c| format!(", certificate valid until {}", date(c.not_after)))
        .unwrap_or_default();
    Ok(format!(
        "{at} {}, {}{leaf}",
        tls.version.as_deref().unwrap_or("TLS"),
        tls.cipher_suite.as_deref().unwrap_or("?")
    ))
}

/// What is wrong with a certificate, in words: "has expired (on 2025-03-01)".
fn certificate_problem(
    host: &DomainName,
    problem: CertProblem,
    reason: &str,
    leaf: Option<&CertSummary>,
) -> String {
    let names = leaf
        .map(|c| {
            if c.dns_names.is_empty() {
                format!("it names only {}", c.subject)
            } else {
                format!("it names {}", c.dns_names.join(", "))
            }
        })
        .unwrap_or_else(|| "it could not be read".into());
    match (problem, leaf) {
        (CertProblem::Expired, Some(c)) => format!("has expired (on {})", date(c.not_after)),
        (CertProblem::NotYetValid, Some(c)) => {
            format!("is not valid yet (not before {})", date(c.not_before))
        }
        (CertProblem::WrongName, _) => format!("is not valid for {host} ({names})"),
        (CertProblem::UntrustedIssuer, Some(c)) => format!(
            "is not issued by a trusted certificate authority (issuer: {})",
            c.issuer
        ),
        _ => format!("is not valid for {host}: {reason}"),
    }
}

fn date(seconds: i64) -> String {
    chrono::DateTime::from_timestamp(seconds, 0)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| format!("{seconds} s after the epoch"))
}

/// The conversation, as evidence.
fn transcript(probe: &SmtpProbe) -> String {
    let mut lines = vec![format!("{} ({}):", probe.host, probe.address)];
    lines.extend(probe.transcript.iter().map(|l| format!("  {l}")));
    if let Some(e) = &probe.error {
        if probe.stage != Stage::Quit {
            lines.push(format!("  ({e})"));
        }
    }
    lines.extend(probe.notes.iter().map(|n| format!("  (note: {n})")));
    if let Some(c) = probe.tls.as_ref().and_then(|t| t.leaf.as_ref()) {
        lines.push(format!(
            "  certificate: subject {}; names {}; issuer {}; valid {} to {}",
            c.subject,
            if c.dns_names.is_empty() {
                "none".to_string()
            } else {
                c.dns_names.join(", ")
            },
            c.issuer,
            date(c.not_before),
            date(c.not_after)
        ));
    }
    lines.join("\n")
}

/// What the probe found, for machines.
fn probe_data(probe: &SmtpProbe) -> serde_json::Value {
    let tls = probe.tls.as_ref();
    let leaf = tls.and_then(|t| t.leaf.as_ref());
    serde_json::json!({
        "host": probe.host.as_str(),
        "address": probe.address.to_string(),
        "banner": probe.banner.as_ref().map(|r| r.first_line()),
        "ehlo_name": probe.ehlo_name,
        "extensions": probe.extensions,
        "starttls_offered": probe.starttls_offered,
        "tls_version": tls.and_then(|t| t.version.clone()),
        "cipher_suite": tls.and_then(|t| t.cipher_suite.clone()),
        "tls_failure": tls.and_then(|t| t.failure.as_ref()).map(|f| f.reason.clone()),
        "certificate": leaf.map(|c| serde_json::json!({
            "subject": c.subject,
            "issuer": c.issuer,
            "dns_names": c.dns_names,
            "not_before": date(c.not_before),
            "not_after": date(c.not_after),
        })),
        "certificate_error": tls.and_then(|t| match &t.verdict {
            Some(CertVerdict::Invalid { reason, .. }) => Some(reason.clone()),
            _ => None,
        }),
        "chain_length": tls.map(|t| t.chain.len()),
        "error": probe.error.as_ref().filter(|_| probe.stage != Stage::Quit).map(|e| e.to_string()),
        "elapsed_ms": probe.elapsed_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::{Answer, Outcome, Record, RecordData, Source};
    use crate::smtp_probe::{Reply, TlsFailure, TlsOutcome};
    use crate::web::{WebFetch, WebResponse};

    fn name(s: &str) -> DomainName {
        DomainName::parse(s).unwrap()
    }

    fn reply(code: u16, lines: &[&str]) -> Reply {
        Reply {
            code,
            lines: lines.iter().map(|l| l.to_string()).collect(),
        }
    }

    fn base(host: &str, ip: &str) -> SmtpProbe {
        SmtpProbe {
            host: name(host),
            address: std::net::SocketAddr::new(ip.parse().unwrap(), 25),
            stage: Stage::Quit,
            banner: Some(reply(220, &[&format!("{host} ESMTP")])),
            ehlo_name: Some("probe.example.net".into()),
            ehlo: Some(reply(250, &[host, "SIZE 10240000", "STARTTLS"])),
            extensions: vec!["SIZE 10240000".into(), "STARTTLS".into()],
            starttls_offered: true,
            starttls: Some(reply(220, &["2.0.0 Ready to start TLS"])),
            tls: Some(TlsOutcome {
                version: Some("TLS 1.3".into()),
                cipher_suite: Some("TLS13_AES_256_GCM_SHA384".into()),
                failure: None,
                chain: vec![vec![0x30]],
                leaf: Some(CertSummary {
                    subject: format!("CN={host}"),
                    issuer: "CN=Example CA".into(),
                    dns_names: vec![host.into()],
                    not_before: 1_767_225_600,
                    not_after: 1_798_761_600,
                }),
                verdict: Some(CertVerdict::Valid),
            }),
            error: None,
            notes: vec![],
            transcript: vec!["S: 220 hello".into()],
            elapsed_ms: 12,
        }
    }

    fn records(domain: &str, probes: Vec<SmtpProbe>, policy: Option<&str>) -> DomainRecords {
        let domain = name(domain);
        let mut answers = Vec::new();
        let mx: Vec<Record> = probes
            .iter()
            .enumerate()
            .map(|(i, p)| Record {
                ttl: 300,
                data: RecordData::Mx {
                    preference: 10 * (i as u16 + 1),
                    exchange: p.host.to_string(),
                },
            })
            .collect();
        answers.push(answer(&domain, QueryType::Mx, mx));
        if policy.is_some() {
            answers.push(answer(
                &domain.child("_mta-sts"),
                QueryType::Txt,
                vec![Record {
                    ttl: 300,
                    data: RecordData::Txt(vec![b"v=STSv1; id=20260101".to_vec()]),
                }],
            ));
        }
        let mut rec = DomainRecords::with_answers(domain.clone(), answers);
        rec.mta_sts_policy = policy.map(|body| WebFetch {
            url: format!("https://mta-sts.{domain}/.well-known/mta-sts.txt"),
            result: Ok(WebResponse {
                status: 200,
                content_type: Some("text/plain".into()),
                location: None,
                body: body.as_bytes().to_vec(),
                over_cap: false,
            }),
        });
        let mut hosts: Vec<HostProbe> = Vec::new();
        for p in probes {
            match hosts.iter_mut().find(|h| h.host == p.host) {
                Some(h) => h.addresses.push(p),
                None => hosts.push(HostProbe {
                    host: p.host.clone(),
                    addresses: vec![p],
                    addresses_not_probed: 0,
                    no_address: None,
                }),
            }
        }
        rec.smtp = Some(SmtpProbes {
            port: 25,
            hosts,
            hosts_not_probed: 0,
            offline: false,
            deadline_secs: 10,
            probed_at: 1_780_000_000,
            implicit_mx: false,
        });
        rec
    }

    fn answer(name: &DomainName, qtype: QueryType, records: Vec<Record>) -> Answer {
        Answer {
            name: name.clone(),
            qtype,
            cname_chain: vec![],
            outcome: Outcome::Records(records.into()),
            cname_conflict: false,
            source: Source::Network,
        }
    }

    fn ids(findings: &[Finding]) -> Vec<String> {
        findings
            .iter()
            .map(|f| format!("{}:{}", f.id, f.severity))
            .collect()
    }

    const ENFORCE: &str =
        "version: STSv1\nmode: enforce\nmx: *.posti.example.fi\nmax_age: 604800\n";
    const TESTING: &str =
        "version: STSv1\nmode: testing\nmx: *.posti.example.fi\nmax_age: 604800\n";

    #[test]
    fn smtp_good_tls_passes_and_names_the_session() {
        let rec = records(
            "example.fi",
            vec![base("mx1.posti.example.fi", "192.0.2.1")],
            None,
        );
        let f = analyse(&rec);
        assert_eq!(ids(&f), ["smtp.ok:pass"]);
        assert!(f[0].message.contains("TLS 1.3"), "{}", f[0].message);
        assert!(f[0].message.contains("mx1.posti.example.fi (192.0.2.1)"));
    }

    /// A valid certificate that runs out within two weeks of the probe: a warning where a
    /// policy makes senders check it, a note otherwise; a day outside the window, nothing.
    #[test]
    fn smtp_a_certificate_about_to_expire_is_named_with_its_date() {
        let probed_at = 1_780_000_000;
        let with_expiry = |not_after: i64| {
            let mut p = base("mx1.posti.example.fi", "192.0.2.1");
            if let Some(leaf) = p.tls.as_mut().and_then(|t| t.leaf.as_mut()) {
                leaf.not_after = not_after;
            }
            p
        };
        let soon = with_expiry(probed_at + 3 * 86_400 + 600);
        for (policy, expected) in [
            (None, "smtp.certificate-expiring:info"),
            (Some(TESTING), "smtp.certificate-expiring:warn"),
            (Some(ENFORCE), "smtp.certificate-expiring:warn"),
        ] {
            let f = analyse(&records("example.fi", vec![soon.clone()], policy));
            assert_eq!(ids(&f), [expected, "smtp.ok:pass"], "{policy:?}");
        }
        let f = analyse(&records("example.fi", vec![soon], Some(ENFORCE)));
        assert!(
            f[0].message.contains("expires on 2026-05-31 (in 3 days)")
                && f[0].message.contains("refuse to deliver"),
            "{}",
            f[0].message
        );
        assert!(f[0].fix.as_ref().is_some_and(|x| x.text.contains("Renew")));
        let later = with_expiry(probed_at + EXPIRY_WARNING_DAYS * 86_400 + 1);
        let f = analyse(&records("example.fi", vec![later], Some(ENFORCE)));
        assert_eq!(ids(&f), ["smtp.ok:pass"]);
    }

    #[test]
    fn smtp_no_starttls_fails_only_when_a_policy_enforces_tls() {
        let mut p = base("mx1.posti.example.fi", "192.0.2.1");
        p.starttls_offered = false;
        p.starttls = None;
        p.tls = None;
        for (policy, expected) in [
            (None, "smtp.no-starttls:warn"),
            (Some(TESTING), "smtp.no-starttls:warn"),
            (Some(ENFORCE), "smtp.no-starttls:fail"),
        ] {
            let f = analyse(&records("example.fi", vec![p.clone()], policy));
            assert_eq!(ids(&f), [expected], "{policy:?}");
        }
        let f = analyse(&records("example.fi", vec![p], Some(ENFORCE)));
        assert!(f[0].message.contains("enforce mode"), "{}", f[0].message);
    }

    #[test]
    fn smtp_certificate_problems_are_named() {
        let mut p = base("mx1.posti.example.fi", "192.0.2.1");
        if let Some(tls) = &mut p.tls {
            tls.verdict = Some(CertVerdict::Invalid {
                problem: CertProblem::WrongName,
                reason: "it is not issued for this host name".into(),
            });
            if let Some(leaf) = &mut tls.leaf {
                leaf.dns_names = vec!["www.example.fi".into()];
            }
        }
        let f = analyse(&records("example.fi", vec![p.clone()], None));
        assert_eq!(ids(&f), ["smtp.certificate:warn"]);
        assert!(
            f[0].message
                .contains("is not valid for mx1.posti.example.fi (it names www.example.fi)"),
            "{}",
            f[0].message
        );
        let f = analyse(&records("example.fi", vec![p.clone()], Some(ENFORCE)));
        assert_eq!(ids(&f), ["smtp.certificate:fail"]);
        if let Some(tls) = &mut p.tls {
            tls.verdict = Some(CertVerdict::Invalid {
                problem: CertProblem::Expired,
                reason: "it has expired".into(),
            });
        }
        let f = analyse(&records("example.fi", vec![p], None));
        assert!(
            f[0].message.contains("has expired (on 2027-01-01)"),
            "{}",
            f[0].message
        );
    }

    #[test]
    fn smtp_unreachable_is_inconclusive_unless_another_address_answered() {
        let mut v6 = base("mx1.posti.example.fi", "2001:db8::1");
        v6.banner = None;
        v6.ehlo = None;
        v6.tls = None;
        v6.stage = Stage::Connect;
        v6.error = Some(ProbeError::ConnectTimeout { seconds: 5 });
        let f = analyse(&records("example.fi", vec![v6.clone()], None));
        assert_eq!(ids(&f), ["smtp.unreachable:inconclusive"]);
        assert!(f[0]
            .message
            .contains("block outgoing connections to port 25"));
        let v4 = base("mx1.posti.example.fi", "192.0.2.1");
        let f = analyse(&records("example.fi", vec![v4, v6], None));
        assert_eq!(ids(&f), ["smtp.unreachable:info", "smtp.ok:pass"]);
    }

    #[test]
    fn smtp_banners_and_broken_tls() {
        let mut p = base("mx1.posti.example.fi", "192.0.2.1");
        p.banner = Some(reply(554, &["5.7.1 no service"]));
        p.ehlo = None;
        p.tls = None;
        let f = analyse(&records("example.fi", vec![p.clone()], None));
        assert_eq!(ids(&f), ["smtp.banner:warn"]);
        assert!(f[0].message.contains("`554 5.7.1 no service`"));
        p.banner = Some(reply(421, &["busy"]));
        let f = analyse(&records("example.fi", vec![p], None));
        assert_eq!(ids(&f), ["smtp.banner:inconclusive"]);

        let mut p = base("mx1.posti.example.fi", "192.0.2.1");
        p.starttls = Some(reply(454, &["4.7.0 TLS not available"]));
        p.tls = None;
        let f = analyse(&records("example.fi", vec![p], Some(ENFORCE)));
        assert_eq!(ids(&f), ["smtp.tls-failed:fail"]);

        let mut p = base("mx1.posti.example.fi", "192.0.2.1");
        if let Some(tls) = &mut p.tls {
            tls.version = None;
            tls.failure = Some(TlsFailure {
                kind: TlsFailureKind::NoModernVersion,
                reason: "peer is incompatible".into(),
            });
            tls.verdict = None;
            tls.leaf = None;
        }
        let f = analyse(&records("example.fi", vec![p], None));
        assert_eq!(ids(&f), ["smtp.old-tls:warn"]);
        assert!(f[0].message.contains("no TLS 1.2 or 1.3"));
    }

    #[test]
    fn smtp_offline_and_nothing_to_probe_are_info() {
        let mut rec = records("example.fi", vec![], None);
        let f = analyse(&rec);
        assert_eq!(ids(&f), ["smtp.unchecked:info"]);
        if let Some(p) = &mut rec.smtp {
            p.offline = true;
        }
        assert!(analyse(&rec)[0].message.contains("--offline"));
        rec.smtp = None;
        assert!(analyse(&rec).is_empty());
    }
}
