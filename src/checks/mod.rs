//! The analysers: pure functions from fetched records to findings.
//!
//! One module per family (`spf`, `dmarc`, `dkim`, `mx`, `mta-sts`, `tls-rpt`, `bimi`, `blocklist`, `propagation`, `smtp`, `dnssec`, `dane`, `domain`), each owning its finding ids
//! (listed in its module doc and in README's catalog). Nothing here does I/O, so every check is
//! unit-tested with literal records.

pub mod bimi;
pub mod blocklist;
pub mod coexist;
pub mod dane;
pub mod dkim;
pub mod dmarc;
pub mod dnssec;
pub mod domain;
pub mod inbound;
pub mod mta_sts;
pub mod mx;
pub mod parked;
pub mod propagation;
pub mod retired;
pub mod smtp;
pub mod spf;
pub mod tls_rpt;

use crate::fetch::DomainRecords;
use crate::finding::Finding;

/// Runs every analyser over one domain's records, domain-level findings first.
pub fn analyse(records: &DomainRecords) -> Vec<Finding> {
    let (mut findings, exists) = domain::analyse(records);
    if !exists {
        return findings;
    }
    findings.extend(spf::analyse(records));
    findings.extend(dkim::analyse(records));
    findings.extend(dmarc::analyse(records));
    findings.extend(mx::analyse(records));
    findings.extend(mta_sts::analyse(records));
    findings.extend(tls_rpt::analyse(records));
    findings.extend(bimi::analyse(records));
    findings.extend(blocklist::analyse(records));
    findings.extend(propagation::analyse(records));
    findings.extend(dnssec::analyse(records));
    findings.extend(dane::analyse(records));
    findings.extend(smtp::analyse(records));
    findings
}
