//! The warmup evidence in the history, read back for deciding: delivery counts per day, cohort
//! and mailbox provider, and the mailbox providers' own view (Google Postmaster Tools per day
//! and domain, Microsoft SNDS per day and IP).
//!
//! A day's counts for a cohort and provider come from one source: a metrics file's totals when
//! one was imported for that key (an operator's export is the more complete view), otherwise
//! the counts aggregated from the platform's events.

use super::model::Provider;
use crate::history::{History, HistoryError};
use chrono::NaiveDate;
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// One day's delivery counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DayCounts {
    pub sent: u64,
    pub delivered: u64,
    pub hard_bounces: u64,
    pub soft_bounces: u64,
    pub complaints: u64,
    pub deferrals: u64,
    pub blocks: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clicks: Option<u64>,
}

/// Google Postmaster Tools' view of one domain on one day.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PostmasterDay {
    pub domain: String,
    /// User-reported spam over inbox-delivered mail (the ratio Gmail's 0.10%/0.30% apply to).
    pub spam_ratio: Option<f64>,
    /// `HIGH`, `MEDIUM`, `LOW`, `BAD`.
    pub domain_reputation: Option<String>,
    /// (reputation, the sample IPs Postmaster lists under it).
    pub ip_reputations: Vec<(String, Vec<String>)>,
    /// Temporary (rate-limit) delivery errors over all mail, when Postmaster reports them.
    pub temporary_error_ratio: Option<f64>,
}

/// Microsoft SNDS' view of one IP on one day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SndsDay {
    /// `GREEN`, `YELLOW`, `RED`.
    pub filter: Option<String>,
    /// As SNDS writes it (`< 0.1%`, `0.3%`).
    pub complaint_rate: Option<String>,
    pub trap_hits: Option<u64>,
    pub recipients: Option<u64>,
}

/// Everything imported, keyed for deciding.
#[derive(Debug, Clone, Default)]
pub struct Evidence {
    pub daily: BTreeMap<(NaiveDate, String, Provider), DayCounts>,
    pub postmaster: BTreeMap<NaiveDate, Vec<PostmasterDay>>,
    pub snds: BTreeMap<(NaiveDate, IpAddr), SndsDay>,
}

fn day(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

fn count(v: Option<i64>) -> u64 {
    v.and_then(|n| u64::try_from(n).ok()).unwrap_or(0)
}

impl Evidence {
    /// Reads all the evidence of `history`.
    pub fn load(history: &History) -> Result<Evidence, HistoryError> {
        let mut evidence = Evidence::default();
        let conn = history.conn();
        // Metrics rows win over event aggregates for the same key: read events first.
        let mut stmt = conn
            .prepare(
                "SELECT day, cohort, provider, sent, delivered, hard_bounces, soft_bounces,
                        complaints, deferrals, blocks, opens, clicks
                 FROM daily ORDER BY CASE source WHEN 'metrics' THEN 1 ELSE 0 END",
            )
            .map_err(|e| history.sql_error(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    DayCounts {
                        sent: count(r.get(3)?),
                        delivered: count(r.get(4)?),
                        hard_bounces: count(r.get(5)?),
                        soft_bounces: count(r.get(6)?),
                        complaints: count(r.get(7)?),
                        deferrals: count(r.get(8)?),
                        blocks: count(r.get(9)?),
                        opens: r.get::<_, Option<i64>>(10)?.map(|v| count(Some(v))),
                        clicks: r.get::<_, Option<i64>>(11)?.map(|v| count(Some(v))),
                    },
                ))
            })
            .map_err(|e| history.sql_error(e))?;
        for row in rows {
            let (d, cohort, provider, counts) = row.map_err(|e| history.sql_error(e))?;
            if let (Some(d), Some(p)) = (day(&d), Provider::parse(&provider)) {
                evidence.daily.insert((d, cohort, p), counts);
            }
        }
        let mut stmt = conn
            .prepare(
                "SELECT day, domain, spam_ratio, domain_reputation, ip_reputations, delivery_errors
                 FROM postmaster",
            )
            .map_err(|e| history.sql_error(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<f64>>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, Option<String>>(5)?,
                ))
            })
            .map_err(|e| history.sql_error(e))?;
        for row in rows {
            let (d, domain, spam_ratio, reputation, ips, errors) =
                row.map_err(|e| history.sql_error(e))?;
            let Some(d) = day(&d) else { continue };
            evidence
                .postmaster
                .entry(d)
                .or_default()
                .push(PostmasterDay {
                    domain,
                    spam_ratio,
                    domain_reputation: reputation.map(|r| r.to_ascii_uppercase()),
                    ip_reputations: ips.as_deref().map(ip_reputations).unwrap_or_default(),
                    temporary_error_ratio: errors.as_deref().and_then(temporary_errors),
                });
        }
        let mut stmt = conn
            .prepare("SELECT day, ip, filter, complaint_rate, trap_hits, recipients FROM snds")
            .map_err(|e| history.sql_error(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, Option<i64>>(4)?,
                    r.get::<_, Option<i64>>(5)?,
                ))
            })
            .map_err(|e| history.sql_error(e))?;
        for row in rows {
            let (d, ip, filter, rate, traps, recipients) = row.map_err(|e| history.sql_error(e))?;
            if let (Some(d), Ok(ip)) = (day(&d), ip.trim().parse::<IpAddr>()) {
                evidence.snds.insert(
                    (d, ip),
                    SndsDay {
                        filter: filter.map(|f| f.trim().to_ascii_uppercase()),
                        complaint_rate: rate,
                        trap_hits: traps.map(|t| count(Some(t))),
                        recipients: recipients.map(|t| count(Some(t))),
                    },
                );
            }
        }
        Ok(evidence)
    }

    /// The last day with any delivery counts.
    pub fn last_day(&self) -> Option<NaiveDate> {
        self.daily.keys().map(|(d, _, _)| *d).max()
    }
}

/// Postmaster's `ipReputations` as stored (JSON): (reputation, sample IPs).
fn ip_reputations(json: &str) -> Vec<(String, Vec<String>)> {
    let Ok(serde_json::Value::Array(items)) = serde_json::from_str::<serde_json::Value>(json)
    else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| {
            let reputation = item.get("reputation")?.as_str()?.to_ascii_uppercase();
            let ips = item
                .get("sampleIps")
                .and_then(|s| s.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|ip| ip.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            Some((reputation, ips))
        })
        .collect()
}

/// The sum of Postmaster's temporary delivery-error ratios (rate limiting, throttling).
fn temporary_errors(json: &str) -> Option<f64> {
    let serde_json::Value::Array(items) = serde_json::from_str::<serde_json::Value>(json).ok()?
    else {
        return None;
    };
    let total: f64 = items
        .iter()
        .filter(|e| {
            e.get("errorClass")
                .and_then(|c| c.as_str())
                .is_some_and(|c| c.eq_ignore_ascii_case("TEMPORARY_ERROR"))
        })
        .filter_map(|e| e.get("errorRatio").and_then(|r| r.as_f64()))
        .sum();
    Some(total)
}

/// SNDS' complaint rate text as a fraction: `< 0.1%` is below 0.001 (taken as 0), `0.3%` is
/// 0.003.
pub fn snds_complaint_rate(text: &str) -> Option<f64> {
    let t = text.trim();
    if t.starts_with('<') {
        return Some(0.0);
    }
    let number = t
        .trim_start_matches(['>', ' '])
        .trim_end_matches('%')
        .trim();
    number.parse::<f64>().ok().map(|p| p / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snds_rates_and_postmaster_blobs_are_read_as_numbers() {
        assert_eq!(snds_complaint_rate("< 0.1%"), Some(0.0));
        assert_eq!(snds_complaint_rate("0.3%"), Some(0.003));
        assert_eq!(snds_complaint_rate("n/a"), None);
        let ips = ip_reputations(
            r#"[{"reputation":"high","ipCount":"1","sampleIps":["198.51.100.25"]},{"reputation":"LOW"}]"#,
        );
        assert_eq!(
            ips[0],
            ("HIGH".to_string(), vec!["198.51.100.25".to_string()])
        );
        assert_eq!(ips[1].0, "LOW");
        assert_eq!(
            temporary_errors(
                r#"[{"errorClass":"TEMPORARY_ERROR","errorType":"RATE_LIMIT_EXCEEDED","errorRatio":0.02},{"errorClass":"PERMANENT_ERROR","errorRatio":0.5}]"#
            ),
            Some(0.02)
        );
    }
}
