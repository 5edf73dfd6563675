//! Google Postmaster Tools traffic stats: Gmail's view of a sending domain, one day at a time.
//!
//! The file is what the Postmaster Tools API v1 returns: a `domains.trafficStats.list` response
//! (`{"trafficStats": [...], "nextPageToken": "..."}`), a bare array of `TrafficStats`, or one of
//! them (`domains.trafficStats.get`). Each names its domain and day in `name`
//! (`domains/example.com/trafficStats/20261201`) and is stored as the `postmaster` row of that
//! day and domain, replacing an earlier one: `userReportedSpamRatio`, `domainReputation`,
//! `spfSuccessRatio`, `dkimSuccessRatio`, `dmarcSuccessRatio`, and `ipReputations` and
//! `deliveryErrors` as the JSON they were given in. Google leaves a metric out on days with too
//! little traffic; it is stored as unknown (NULL), not as zero.

use super::input::{JsonRecords, MAX_RECORD};
use super::{ImportError, Session};
use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::Value;
use std::io::BufRead;

const REPUTATIONS: [&str; 5] = [
    "HIGH",
    "MEDIUM",
    "LOW",
    "BAD",
    "REPUTATION_CATEGORY_UNSPECIFIED",
];

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TrafficStats {
    name: Option<String>,
    user_reported_spam_ratio: Option<Value>,
    domain_reputation: Option<String>,
    ip_reputations: Option<Value>,
    spf_success_ratio: Option<Value>,
    dkim_success_ratio: Option<Value>,
    dmarc_success_ratio: Option<Value>,
    delivery_errors: Option<Value>,
}

/// A checked day of traffic stats.
struct Day {
    day: NaiveDate,
    domain: String,
    spam_ratio: Option<f64>,
    domain_reputation: Option<String>,
    ip_reputations: Option<String>,
    spf: Option<f64>,
    dkim: Option<f64>,
    dmarc: Option<f64>,
    delivery_errors: Option<String>,
}

/// Imports a Postmaster Tools traffic stats file.
pub(crate) fn import(s: &mut Session<'_>, input: &mut impl BufRead) -> Result<(), ImportError> {
    let mut records = JsonRecords::new(input, &["trafficStats"]);
    while let Some(record) = records.next_record().map_err(|e| s.scan(e))? {
        s.outcome.records += 1;
        let line = record.line;
        let text = match record.text {
            Ok(t) => t,
            Err(size) => {
                s.reject(
                    line,
                    format!(
                        "a record of {size} bytes, over the {} a record may have",
                        crate::files::show_size(MAX_RECORD as u64)
                    ),
                );
                continue;
            }
        };
        let stats = match serde_json::from_slice::<TrafficStats>(text) {
            Ok(stats) => stats,
            Err(e) => {
                s.reject(
                    line,
                    format!(
                        "not Postmaster Tools traffic stats: {}",
                        super::json_message(&e)
                    ),
                );
                continue;
            }
        };
        match check(&stats) {
            Ok(day) => {
                store(s, &day)?;
                s.outcome.counted += 1;
                s.day(day.day);
            }
            Err(message) => s.reject(line, message),
        }
    }
    Ok(())
}

/// The day and domain of `domains/example.com/trafficStats/20261201`.
fn named(name: &str) -> Option<(String, NaiveDate)> {
    let rest = name.strip_prefix("domains/")?;
    let (domain, date) = rest.split_once("/trafficStats/")?;
    let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    if domain.is_empty() || domain.contains('/') || date.len() != 8 {
        return None;
    }
    let day = NaiveDate::parse_from_str(date, "%Y%m%d").ok()?;
    Some((domain, day))
}

/// A ratio from 0 to 1.
fn ratio(value: &Option<Value>, field: &str) -> Result<Option<f64>, String> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(r) if (0.0..=1.0).contains(&r) => Ok(Some(r)),
            _ => Err(format!("`{field}` is {n}, not a ratio from 0 to 1")),
        },
        Some(other) => Err(format!("`{field}` is {other}, not a ratio from 0 to 1")),
    }
}

fn reputation(text: &str, field: &str) -> Result<String, String> {
    if REPUTATIONS.contains(&text) {
        Ok(text.to_string())
    } else {
        Err(format!(
            "`{field}` is `{text}`: expected one of {}",
            REPUTATIONS.join(", ")
        ))
    }
}

fn check(stats: &TrafficStats) -> Result<Day, String> {
    let name = stats
        .name
        .as_deref()
        .ok_or("no `name` (domains/DOMAIN/trafficStats/YYYYMMDD)")?;
    let (domain, day) = named(name)
        .ok_or_else(|| format!("`name` is `{name}`, not domains/DOMAIN/trafficStats/YYYYMMDD"))?;
    let domain_reputation = stats
        .domain_reputation
        .as_deref()
        .map(|r| reputation(r, "domainReputation"))
        .transpose()?;
    let ip_reputations = match &stats.ip_reputations {
        None | Some(Value::Null) => None,
        Some(Value::Array(list)) => {
            for item in list {
                let r = item
                    .get("reputation")
                    .and_then(Value::as_str)
                    .ok_or("an `ipReputations` entry without its `reputation`")?;
                reputation(r, "ipReputations[].reputation")?;
            }
            Some(Value::Array(list.clone()).to_string())
        }
        Some(other) => return Err(format!("`ipReputations` is {other}, not a list")),
    };
    let delivery_errors = match &stats.delivery_errors {
        None | Some(Value::Null) => None,
        Some(Value::Array(list)) => {
            for item in list {
                ratio(
                    &item.get("errorRatio").cloned(),
                    "deliveryErrors[].errorRatio",
                )?;
                if item.get("errorType").and_then(Value::as_str).is_none() {
                    return Err("a `deliveryErrors` entry without its `errorType`".to_string());
                }
            }
            Some(Value::Array(list.clone()).to_string())
        }
        Some(other) => return Err(format!("`deliveryErrors` is {other}, not a list")),
    };
    Ok(Day {
        day,
        domain,
        spam_ratio: ratio(&stats.user_reported_spam_ratio, "userReportedSpamRatio")?,
        domain_reputation,
        ip_reputations,
        spf: ratio(&stats.spf_success_ratio, "spfSuccessRatio")?,
        dkim: ratio(&stats.dkim_success_ratio, "dkimSuccessRatio")?,
        dmarc: ratio(&stats.dmarc_success_ratio, "dmarcSuccessRatio")?,
        delivery_errors,
    })
}

fn store(s: &Session<'_>, d: &Day) -> Result<(), ImportError> {
    s.tx.prepare_cached(
        "INSERT INTO postmaster (day, domain, spam_ratio, domain_reputation, ip_reputations,
                 spf_success, dkim_success, dmarc_success, delivery_errors)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT (day, domain) DO UPDATE SET
                 spam_ratio = excluded.spam_ratio,
                 domain_reputation = excluded.domain_reputation,
                 ip_reputations = excluded.ip_reputations,
                 spf_success = excluded.spf_success,
                 dkim_success = excluded.dkim_success,
                 dmarc_success = excluded.dmarc_success,
                 delivery_errors = excluded.delivery_errors",
    )
    .and_then(|mut stmt| {
        stmt.execute(rusqlite::params![
            d.day.to_string(),
            d.domain,
            d.spam_ratio,
            d.domain_reputation,
            d.ip_reputations,
            d.spf,
            d.dkim,
            d.dmarc,
            d.delivery_errors
        ])
    })
    .map(|_| ())
    .map_err(|e| s.sql(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_give_the_domain_and_the_day() {
        assert_eq!(
            named("domains/News.Northwind.example/trafficStats/20261201"),
            Some((
                "news.northwind.example".to_string(),
                NaiveDate::from_ymd_opt(2026, 12, 1).unwrap()
            ))
        );
        assert_eq!(named("domains/a.example/trafficStats/2026121"), None);
        assert_eq!(named("domains/a.example/trafficStats/20261301"), None);
        assert_eq!(named("domains//trafficStats/20261201"), None);
        assert_eq!(named("a.example/20261201"), None);
    }
}

#[cfg(test)]
mod import_tests {
    use super::super::testing::{history, import, opts, problems};
    use super::super::EvidenceKind;

    #[test]
    fn one_object_or_a_bare_list_is_read_and_bad_values_are_named() {
        let (dir, mut h) = history();
        let one = r#"{"name": "domains/news.bluefinprovisions.com/trafficStats/20261104",
            "userReportedSpamRatio": 0.0031, "domainReputation": "LOW",
            "deliveryErrors": [{"errorClass": "PERMANENT_ERROR", "errorType": "REJECTED_RATE_LIMIT_EXCEEDED", "errorRatio": 0.04}]}"#;
        let o = import(&dir, &mut h, "one.json", one, None, &opts()).unwrap();
        assert_eq!((o.kind, o.counted), (EvidenceKind::Postmaster, 1));
        let list = "[\n{\"name\": \"domains/a.example/trafficStats/20261104\", \"spfSuccessRatio\": 1.5},\n{\"name\": \"domains/a.example/trafficStats/20261105\", \"domainReputation\": \"GREAT\"},\n{\"name\": \"a.example\"},\n{\"name\": \"domains/a.example/trafficStats/20261106\", \"ipReputations\": [{\"ipCount\": \"1\"}]}\n]";
        let o = import(
            &dir,
            &mut h,
            "list.json",
            list,
            Some(EvidenceKind::Postmaster),
            &opts(),
        )
        .unwrap();
        assert_eq!(
            problems(&o),
            [
                "2: `spfSuccessRatio` is 1.5, not a ratio from 0 to 1",
                "3: `domainReputation` is `GREAT`: expected one of HIGH, MEDIUM, LOW, BAD, REPUTATION_CATEGORY_UNSPECIFIED",
                "4: `name` is `a.example`, not domains/DOMAIN/trafficStats/YYYYMMDD",
                "5: an `ipReputations` entry without its `reputation`",
            ]
        );
        let row: (String, f64, String, Option<f64>, String) = h
            .conn()
            .query_row(
                "SELECT domain, spam_ratio, domain_reputation, spf_success, delivery_errors FROM postmaster WHERE day = '2026-11-04'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .unwrap();
        assert_eq!(
            row,
            (
                "news.bluefinprovisions.com".to_string(),
                0.0031,
                "LOW".to_string(),
                None,
                r#"[{"errorClass":"PERMANENT_ERROR","errorRatio":0.04,"errorType":"REJECTED_RATE_LIMIT_EXCEEDED"}]"#.to_string()
            )
        );
    }
}
