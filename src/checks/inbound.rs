//! The inbound side of a migration: mail for the domain moving to a new mailbox provider.
//!
//! An MTA-STS policy in enforce mode names the MX hosts senders may deliver to. Move MX to a
//! new provider before the policy names its hosts, and every sender that honours the policy
//! refuses to deliver — silently, until TLS reports arrive. So before the inbound change, the
//! policy must already cover the new provider's hosts, under a new id (senders refetch a
//! policy only when the id changes). After the change, `mta-sts.mx-mismatch` judges the MX
//! hosts actually published.
//!
//! Ids: `coexist.mta-sts-new-mx`.

use crate::catalog::ProviderProfile;
use crate::checks::mta_sts::policy_in_force;
use crate::dns::QueryType;
use crate::fetch::{mta_sts_name, mx_hosts, DomainRecords};
use crate::finding::{Finding, Severity};
use crate::records::mta_sts::{mx_matches, Mode};

/// Whether the domain's MTA-STS policy covers the MX hosts of `provider`, the mailbox provider
/// mail is moving to, while MX does not point there yet.
pub fn mta_sts_covers_new_mx(
    records: &DomainRecords,
    provider: &ProviderProfile,
) -> Option<Finding> {
    let domain = &records.domain;
    let hosts = provider.mx_hosts_for(domain);
    let new_host = hosts.first()?;
    let policy = policy_in_force(records)?;
    let mode = policy.mode?;
    if mode == Mode::None {
        return None;
    }
    let current: Vec<String> = records
        .get(domain, QueryType::Mx)
        .map(|a| mx_hosts(a).iter().map(|h| h.to_string()).collect())
        .unwrap_or_default();
    // Already there (any of its hosts, older setups' included): `mta-sts.mx-mismatch` judges
    // the hosts published.
    if current
        .iter()
        .any(|h| hosts.iter().any(|pattern| mx_matches(pattern, h)))
    {
        return None;
    }
    if policy.mx.iter().any(|p| mx_matches(p, new_host)) {
        return None;
    }
    let missing = [new_host];
    let (severity, effect) = match mode {
        Mode::Enforce => (
            Severity::Fail,
            "the moment MX points there, every sender that honours the policy refuses to deliver",
        ),
        _ => (
            Severity::Warn,
            "once MX points there, senders report every delivery as a policy failure (testing mode), and enforcing later would stop mail",
        ),
    };
    let lines: String = missing.iter().map(|h| format!("mx: {h}\n")).collect();
    let wait = policy
        .max_age
        .map(|age| format!(" Senders that do not look up the record again keep the old policy up to its max_age ({age} s)."))
        .unwrap_or_default();
    Some(
        Finding::new(
            "coexist.mta-sts-new-mx",
            severity,
            format!(
                "The MTA-STS policy of {domain} ({}) does not cover {}'s MX host{} {}: {effect}.",
                mode.as_str(),
                provider.name,
                if missing.len() == 1 { "" } else { "s" },
                missing.iter().map(|h| h.as_str()).collect::<Vec<_>>().join(", ")
            ),
        )
        .fix(format!(
            "Before changing MX: add these lines to the policy, keeping the current hosts until the move is done:\n{lines}then change the id in {} so senders fetch it.{wait}",
            mta_sts_name(domain)
        )),
    )
}
