//! What the receivers' DMARC aggregate reports say about the migration, per platform and day,
//! and whether enforcing DMARC is safe: the pure half of `mailshift reports` and of the
//! `dmarc-enforced` gate requirement.
//!
//! Each report row (a source IP's messages on a day, and how the receiver judged them) is
//! attributed to the old platform, the new one, a kept sender or nothing the plan knows
//! ([`crate::attribution`]). Per platform and day: messages, the DMARC pass rate and the
//! aligned DKIM and SPF shares — the old platform's share falling and the new one's rising is
//! the migration seen from the receivers. Unknown sources are the signal: one whose mail fails
//! DMARC while passing DKIM or SPF for some *other* domain is mail the company sends through a
//! service nobody listed (a forgotten sender: it blocks enforcement, which would junk it); one
//! that authenticates as nothing is spoofing (enforcement is what stops it).

use crate::attribution::{Attribution, Side};
use chrono::NaiveDate;
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// One row of an aggregate report, as the history keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The UTC day the report's interval begins.
    pub day: NaiveDate,
    pub reporter: String,
    /// The policy domain the report is for.
    pub domain: String,
    pub header_from: Option<String>,
    pub source_ip: IpAddr,
    pub count: u64,
    /// The receiver's DMARC evaluation: DKIM aligned and passed, SPF aligned and passed.
    pub dkim_aligned: bool,
    pub spf_aligned: bool,
    /// Some DKIM signature or the SPF check passed, for any domain (aligned or not).
    pub authenticated_elsewhere: bool,
    pub disposition: Option<String>,
}

impl Row {
    pub fn dmarc_pass(&self) -> bool {
        self.dkim_aligned || self.spf_aligned
    }
}

/// The rows of every imported aggregate report, grouped by what the summary tells apart (day,
/// reporter, policy domain, From domain, source, results): a report of 100,000 rows from a few
/// hundred sources comes back as a few hundred rows.
pub fn load_rows(
    history: &crate::history::History,
) -> Result<Vec<Row>, crate::history::HistoryError> {
    let conn = history.conn();
    let sql = |e: rusqlite::Error| history.sql_error(e);
    let mut stmt = conn
        .prepare(
            // An auth result passes when an entry's last field, its result, is `pass`: inside a
            // JSON string a quote is escaped, so `,"pass"]` can only be that.
            "SELECT date(COALESCE(r.begin, r.end), 'unixepoch'), r.org_name, r.domain,
                    w.header_from, w.source_ip, SUM(w.count),
                    w.dkim = 'pass', w.spf = 'pass',
                    (w.dkim_results LIKE '%,\"pass\"]%'
                     OR w.spf_results LIKE '%,\"pass\"]%'),
                    w.disposition
             FROM dmarc_rows w JOIN dmarc_reports r ON w.report = r.id
             WHERE COALESCE(r.begin, r.end) IS NOT NULL
             GROUP BY 1, 2, 3, 4, 5, 7, 8, 9, 10
             ORDER BY 1",
        )
        .map_err(sql)?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, i64>(5)?,
                r.get::<_, bool>(6)?,
                r.get::<_, bool>(7)?,
                r.get::<_, bool>(8)?,
                r.get::<_, Option<String>>(9)?,
            ))
        })
        .map_err(sql)?;
    let mut out = Vec::new();
    for row in rows {
        let (day, reporter, domain, header_from, ip, count, dkim, spf, elsewhere, disposition) =
            row.map_err(sql)?;
        // Stored rows were checked on import; one that no longer parses is skipped.
        let (Ok(day), Ok(source_ip)) = (
            NaiveDate::parse_from_str(&day, "%Y-%m-%d"),
            ip.parse::<IpAddr>(),
        ) else {
            continue;
        };
        out.push(Row {
            day,
            reporter,
            domain: domain.to_ascii_lowercase(),
            header_from: header_from.map(|h| h.to_ascii_lowercase()),
            source_ip,
            count: u64::try_from(count).unwrap_or(0),
            dkim_aligned: dkim,
            spf_aligned: spf,
            authenticated_elsewhere: elsewhere,
            disposition,
        });
    }
    Ok(out)
}

/// How many DMARC aggregate reports the history holds.
pub fn report_count(
    history: &crate::history::History,
) -> Result<u64, crate::history::HistoryError> {
    history
        .conn()
        .query_row("SELECT count(*) FROM dmarc_reports", [], |r| {
            r.get::<_, i64>(0)
        })
        .map(|n| u64::try_from(n).unwrap_or(0))
        .map_err(|e| history.sql_error(e))
}

/// SMTP TLS reports of one day and policy domain: how sessions to the domain's MX went.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TlsDay {
    pub day: NaiveDate,
    pub policy_domain: String,
    /// `sts`, `tlsa`, `no-policy-found`.
    pub policy_types: Vec<String>,
    pub successful_sessions: u64,
    pub failed_sessions: u64,
    /// Failed sessions per receiving MX and result type (`certificate-expired`,
    /// `starttls-not-supported`, …).
    pub failures: Vec<TlsFailure>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TlsFailure {
    pub mx: String,
    pub result_type: String,
    pub sessions: u64,
}

/// The imported TLS reports per day and policy domain.
pub fn load_tls(
    history: &crate::history::History,
) -> Result<Vec<TlsDay>, crate::history::HistoryError> {
    let conn = history.conn();
    let sql = |e: rusqlite::Error| history.sql_error(e);
    let mut stmt = conn
        .prepare(
            "SELECT date(COALESCE(r.begin, r.end), 'unixepoch'), p.policy_domain, p.policy_type,
                    p.success, p.failure, p.failure_details
             FROM tls_policies p JOIN tls_reports r ON p.report = r.id
             WHERE COALESCE(r.begin, r.end) IS NOT NULL
             ORDER BY 1, 2",
        )
        .map_err(sql)?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, String>(5)?,
            ))
        })
        .map_err(sql)?;
    // Per (day, policy domain): the day, and failed sessions per (MX, result type).
    type Failures = BTreeMap<(String, String), u64>;
    let mut days: BTreeMap<(NaiveDate, String), (TlsDay, Failures)> = BTreeMap::new();
    for row in rows {
        let (day, domain, policy_type, success, failure, details) = row.map_err(sql)?;
        let Ok(day) = NaiveDate::parse_from_str(&day, "%Y-%m-%d") else {
            continue;
        };
        let domain = domain.to_ascii_lowercase();
        let (entry, failures) = days.entry((day, domain.clone())).or_insert_with(|| {
            (
                TlsDay {
                    day,
                    policy_domain: domain,
                    ..TlsDay::default()
                },
                BTreeMap::new(),
            )
        });
        if !entry.policy_types.contains(&policy_type) {
            entry.policy_types.push(policy_type);
        }
        entry.successful_sessions += u64::try_from(success).unwrap_or(0);
        entry.failed_sessions += u64::try_from(failure).unwrap_or(0);
        let details: Vec<serde_json::Value> = serde_json::from_str(&details).unwrap_or_default();
        for d in details {
            let text = |k: &str| d.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
            let mx = match text("receiving-mx-hostname") {
                m if m.is_empty() => "(not given)".to_string(),
                m => m.trim_end_matches('.').to_ascii_lowercase(),
            };
            let sessions = d
                .get("failed-session-count")
                .and_then(|v| v.as_u64())
                .unwrap_or(0);
            *failures.entry((mx, text("result-type"))).or_default() += sessions;
        }
    }
    Ok(days
        .into_values()
        .map(|(mut day, failures)| {
            day.failures = failures
                .into_iter()
                .map(|((mx, result_type), sessions)| TlsFailure {
                    mx,
                    result_type,
                    sessions,
                })
                .collect();
            day
        })
        .collect())
}

/// Totals of one platform on one day.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Totals {
    pub messages: u64,
    pub dmarc_pass: u64,
    pub dkim_aligned: u64,
    pub spf_aligned: u64,
}

impl Totals {
    fn add(&mut self, row: &Row) {
        self.messages += row.count;
        if row.dmarc_pass() {
            self.dmarc_pass += row.count;
        }
        if row.dkim_aligned {
            self.dkim_aligned += row.count;
        }
        if row.spf_aligned {
            self.spf_aligned += row.count;
        }
    }

    pub fn pass_rate(&self) -> Option<f64> {
        (self.messages > 0).then(|| self.dmarc_pass as f64 / self.messages as f64)
    }
}

/// A platform as the summary names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Source {
    pub side: Side,
    /// The provider id (or the plan's name for a kept sender); `None` for unknown sources.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
}

/// What an unknown source did over the reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UnknownSource {
    pub ip: IpAddr,
    pub messages: u64,
    pub failing: u64,
    pub first_seen: NaiveDate,
    pub last_seen: NaiveDate,
    /// The From domains it sent as.
    pub header_from: Vec<String>,
    pub reporters: Vec<String>,
    /// Its failing mail still authenticated as some other domain: a real sender nobody listed.
    pub looks_legitimate: bool,
}

/// The attributed summary of a set of report rows.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    /// Per platform, per day.
    pub by_day: BTreeMap<NaiveDate, BTreeMap<String, Totals>>,
    /// Per platform over every day.
    pub totals: BTreeMap<String, Totals>,
    pub sources: BTreeMap<String, Source>,
    /// Unknown sources, most messages first.
    pub unknown: Vec<UnknownSource>,
}

impl Summary {
    /// The unknown sources with messages failing DMARC: the spoofers and forgotten senders.
    pub fn unknown_failing(&self) -> impl Iterator<Item = &UnknownSource> {
        self.unknown.iter().filter(|u| u.failing > 0)
    }
}

/// The key a source is listed under: `new:sendgrid`, `old:mailchimp`, `kept:Help desk`,
/// `unknown`.
fn key(a: &Attribution) -> String {
    match &a.platform {
        Some(p) => format!("{}:{p}", a.side.word()),
        None => a.side.word().to_string(),
    }
}

/// Sums `rows`, attributing each source IP with `attribute`.
pub fn summarise(rows: &[Row], attribute: &impl Fn(IpAddr) -> Attribution) -> Summary {
    let mut s = Summary::default();
    let mut unknown: BTreeMap<IpAddr, UnknownSource> = BTreeMap::new();
    let mut cache: BTreeMap<IpAddr, Attribution> = BTreeMap::new();
    for row in rows {
        let a = cache
            .entry(row.source_ip)
            .or_insert_with(|| attribute(row.source_ip))
            .clone();
        let k = key(&a);
        s.sources.entry(k.clone()).or_insert(Source {
            side: a.side,
            platform: a.platform.clone(),
        });
        s.by_day
            .entry(row.day)
            .or_default()
            .entry(k.clone())
            .or_default()
            .add(row);
        s.totals.entry(k).or_default().add(row);
        if a.side == Side::Unknown {
            let u = unknown
                .entry(row.source_ip)
                .or_insert_with(|| UnknownSource {
                    ip: row.source_ip,
                    messages: 0,
                    failing: 0,
                    first_seen: row.day,
                    last_seen: row.day,
                    header_from: Vec::new(),
                    reporters: Vec::new(),
                    looks_legitimate: false,
                });
            u.messages += row.count;
            if !row.dmarc_pass() {
                u.failing += row.count;
                u.looks_legitimate |= row.authenticated_elsewhere;
            }
            u.first_seen = u.first_seen.min(row.day);
            u.last_seen = u.last_seen.max(row.day);
            let from = row
                .header_from
                .clone()
                .unwrap_or_else(|| row.domain.clone());
            if !u.header_from.contains(&from) {
                u.header_from.push(from);
            }
            if !u.reporters.contains(&row.reporter) {
                u.reporters.push(row.reporter.clone());
            }
        }
    }
    s.unknown = unknown.into_values().collect();
    s.unknown
        .sort_by(|a, b| b.messages.cmp(&a.messages).then(a.ip.cmp(&b.ip)));
    s
}

/// What `dmarc-enforced` asks of the reports.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct EnforcementRule {
    /// Days in a row, ending with the latest reported day, on which the new platform passed.
    pub days: usize,
    /// The share of the new platform's messages that must pass DMARC on each of those days.
    pub min_pass_rate: f64,
}

impl Default for EnforcementRule {
    /// Two weeks: a weekly newsletter and its follow-ups are seen at least twice. 98%:
    /// forwarding and mailing lists break some authentication of any real sender.
    fn default() -> Self {
        EnforcementRule {
            days: 14,
            min_pass_rate: 0.98,
        }
    }
}

/// Whether the reports make enforcement safe, and why (or why not).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Enforcement {
    pub safe: bool,
    /// One sentence per reason, the blocking ones first.
    pub reasons: Vec<String>,
    /// The new platform's pass rate per day over the window.
    pub new_platform_days: Vec<(NaiveDate, f64)>,
}

/// Judges `dmarc-enforced` from a summary.
pub fn enforcement(summary: &Summary, rule: EnforcementRule) -> Enforcement {
    let mut reasons = Vec::new();
    let mut safe = true;
    let new_keys: Vec<&String> = summary
        .sources
        .iter()
        .filter(|(_, s)| s.side == Side::New)
        .map(|(k, _)| k)
        .collect();
    let mut days: Vec<(NaiveDate, f64)> = summary
        .by_day
        .iter()
        .filter_map(|(day, per)| {
            let mut t = Totals::default();
            for k in &new_keys {
                if let Some(x) = per.get(*k) {
                    t.messages += x.messages;
                    t.dmarc_pass += x.dmarc_pass;
                }
            }
            t.pass_rate().map(|r| (*day, r))
        })
        .collect();
    let start = days.len().saturating_sub(rule.days);
    days.drain(..start);
    if days.len() < rule.days {
        safe = false;
        reasons.push(format!(
            "the reports show the new platform on {} of the {} days needed",
            days.len(),
            rule.days
        ));
    }
    // Days in a row: a gap (a day without reports) breaks the run.
    if let (Some(first), Some(last)) = (days.first(), days.last()) {
        let span = (last.0 - first.0).num_days() + 1;
        if span > days.len() as i64 {
            safe = false;
            reasons.push(format!(
                "the reported days of the new platform are not consecutive ({} to {}, {} days reported)",
                first.0,
                last.0,
                days.len()
            ));
        }
    }
    for (day, rate) in &days {
        if *rate < rule.min_pass_rate {
            safe = false;
            reasons.push(format!(
                "on {day} only {} of the new platform's mail passed DMARC (needed {})",
                pct(*rate),
                pct(rule.min_pass_rate)
            ));
        }
    }
    for u in summary.unknown.iter().filter(|u| u.looks_legitimate) {
        safe = false;
        reasons.push(format!(
            "{} sent {} message(s) as {} from {} to {} failing DMARC but authenticated as another domain: a sender the plan does not list (add it to the plan's `keep` with its include, or align it) — enforcing would junk its mail",
            u.ip,
            u.failing,
            u.header_from.join(", "),
            u.first_seen,
            u.last_seen
        ));
    }
    if safe {
        reasons.push(format!(
            "the new platform passed DMARC on each of the last {} reported days (lowest {}), and no unlisted sender fails",
            days.len(),
            pct(days.iter().map(|(_, r)| *r).fold(1.0, f64::min))
        ));
        let spoofing: u64 = summary
            .unknown
            .iter()
            .filter(|u| !u.looks_legitimate)
            .map(|u| u.failing)
            .sum();
        if spoofing > 0 {
            reasons.push(format!(
                "{spoofing} message(s) from unknown sources failed every check: spoofing, which enforcement stops"
            ));
        }
    }
    Enforcement {
        safe,
        reasons,
        new_platform_days: days,
    }
}

fn pct(x: f64) -> String {
    let p = x * 100.0;
    if (p - p.round()).abs() < 1e-9 {
        format!("{p:.0}%")
    } else {
        format!("{p:.1}%")
    }
}

/// The DMARC record that enforces: `p=quarantine` from `none`, `reject` from `quarantine`
/// (a step at a time, as receivers and operators recommend), the other tags kept, `pct`
/// removed (full enforcement). `None` when it already rejects.
pub fn enforcing_record(current: &str) -> Option<String> {
    let record = crate::records::dmarc::DmarcRecord::parse(current);
    let next = match record.p {
        Some(crate::records::dmarc::Policy::Reject) => return None,
        Some(crate::records::dmarc::Policy::Quarantine) => "reject",
        _ => "quarantine",
    };
    let text = crate::fixes::tag_list_with(current, "p", Some(next));
    Some(crate::fixes::tag_list_with(&text, "pct", None))
}

/// Everything `mailshift reports PLAN` shows: the summary, the enforcement judgement per policy
/// domain, and what the attribution could not know.
#[derive(Debug, Clone, Serialize)]
pub struct View {
    pub plan: String,
    pub reports: u64,
    pub reporters: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_day: Option<NaiveDate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_day: Option<NaiveDate>,
    #[serde(flatten)]
    pub summary: Summary,
    /// Per policy domain of the reports.
    pub enforcement: BTreeMap<String, Enforcement>,
    /// Reverse DNS names that placed unknown-looking sources, per IP.
    pub reverse_dns: BTreeMap<IpAddr, String>,
    /// SMTP TLS reports: sessions to the domain's MX per day.
    pub tls: Vec<TlsDay>,
    pub notes: Vec<String>,
}

/// Builds the view from the rows and an attribution.
pub fn view(
    plan: &str,
    reports: u64,
    rows: &[Row],
    attribute: impl Fn(IpAddr) -> Attribution,
    rule: EnforcementRule,
) -> View {
    let summary = summarise(rows, &attribute);
    let mut domains: Vec<&str> = rows.iter().map(|r| r.domain.as_str()).collect();
    domains.sort();
    domains.dedup();
    let enforcement = domains
        .iter()
        .map(|d| {
            let own: Vec<Row> = rows.iter().filter(|r| r.domain == *d).cloned().collect();
            (
                d.to_string(),
                enforcement(&summarise(&own, &attribute), rule),
            )
        })
        .collect();
    let mut reporters: Vec<String> = rows.iter().map(|r| r.reporter.clone()).collect();
    reporters.sort();
    reporters.dedup();
    View {
        plan: plan.to_string(),
        reports,
        reporters,
        first_day: rows.iter().map(|r| r.day).min(),
        last_day: rows.iter().map(|r| r.day).max(),
        summary,
        enforcement,
        reverse_dns: BTreeMap::new(),
        tls: Vec::new(),
        notes: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attribution::Basis;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, d).unwrap()
    }

    fn row(d: u32, ip: &str, count: u64, dkim: bool, spf: bool, elsewhere: bool) -> Row {
        Row {
            day: day(d),
            reporter: "google.com".into(),
            domain: "northwind.example".into(),
            header_from: Some("northwind.example".into()),
            source_ip: ip.parse().unwrap(),
            count,
            dkim_aligned: dkim,
            spf_aligned: spf,
            authenticated_elsewhere: elsewhere || dkim || spf,
            disposition: Some("none".into()),
        }
    }

    /// 198.51.100.x is SendGrid (new), 205.201.x Mailchimp (old), anything else unknown.
    fn attribute(ip: IpAddr) -> Attribution {
        let text = ip.to_string();
        let (side, platform) = if text.starts_with("198.51.100.") {
            (Side::New, "sendgrid")
        } else if text.starts_with("205.201.") {
            (Side::Old, "mailchimp")
        } else {
            return Attribution::UNKNOWN;
        };
        Attribution {
            side,
            platform: Some(platform.into()),
            basis: Some(Basis::Pool {
                pool: "test".into(),
            }),
        }
    }

    /// Fourteen days of the shift: the old platform's volume falling, the new one's rising.
    fn shift(days: u32) -> Vec<Row> {
        let mut rows = Vec::new();
        for d in 1..=days {
            rows.push(row(
                d,
                "198.51.100.25",
                1000 * u64::from(d),
                true,
                true,
                false,
            ));
            rows.push(row(d, "198.51.100.25", 5, false, false, false));
            rows.push(row(
                d,
                "205.201.131.7",
                20000 - 1000 * u64::from(d),
                true,
                false,
                false,
            ));
        }
        rows
    }

    #[test]
    fn rows_are_summed_per_platform_and_day() {
        let s = summarise(&shift(3), &attribute);
        let d1 = &s.by_day[&day(1)];
        assert_eq!(d1["new:sendgrid"].messages, 1005);
        assert_eq!(d1["new:sendgrid"].dmarc_pass, 1000);
        assert_eq!(d1["old:mailchimp"].spf_aligned, 0);
        assert_eq!(s.totals["new:sendgrid"].messages, 6015);
        assert_eq!(s.sources["old:mailchimp"].side, Side::Old);
        assert!(s.unknown.is_empty());
    }

    #[test]
    fn enforcement_opens_after_clean_days_and_a_spoofer_does_not_block_it() {
        let mut rows = shift(14);
        // A spoofer: fails everything.
        rows.push(row(9, "203.0.113.66", 40, false, false, false));
        let s = summarise(&rows, &attribute);
        let e = enforcement(&s, EnforcementRule::default());
        assert!(e.safe, "{:?}", e.reasons);
        assert_eq!(e.new_platform_days.len(), 14);
        assert!(e.reasons[1].contains("40 message(s) from unknown sources failed every check"));
        assert_eq!(s.unknown[0].first_seen, day(9));
        assert!(!s.unknown[0].looks_legitimate);
    }

    #[test]
    fn a_forgotten_sender_too_few_days_or_a_bad_day_keep_it_closed() {
        // A help desk that signs as itself (DKIM passes for its own domain, not aligned).
        let mut rows = shift(14);
        rows.push(row(5, "192.0.2.44", 300, false, false, true));
        let e = enforcement(&summarise(&rows, &attribute), EnforcementRule::default());
        assert!(!e.safe);
        assert!(
            e.reasons[0].starts_with("192.0.2.44 sent 300 message(s) as northwind.example"),
            "{:?}",
            e.reasons
        );

        let e = enforcement(
            &summarise(&shift(10), &attribute),
            EnforcementRule::default(),
        );
        assert!(!e.safe);
        assert_eq!(
            e.reasons[0],
            "the reports show the new platform on 10 of the 14 days needed"
        );

        let mut rows = shift(14);
        rows.push(row(12, "198.51.100.25", 2000, false, false, false));
        let e = enforcement(&summarise(&rows, &attribute), EnforcementRule::default());
        assert!(!e.safe);
        assert_eq!(
            e.reasons,
            ["on 2026-11-12 only 85.7% of the new platform's mail passed DMARC (needed 98%)"]
        );

        // A missing day breaks the run of days.
        let rows: Vec<Row> = shift(15).into_iter().filter(|r| r.day != day(8)).collect();
        let e = enforcement(&summarise(&rows, &attribute), EnforcementRule::default());
        assert!(!e.safe);
        assert!(e.reasons[0].contains("not consecutive"), "{:?}", e.reasons);
    }

    #[test]
    fn the_fix_is_the_next_policy_step_with_the_other_tags_kept() {
        assert_eq!(
            enforcing_record("v=DMARC1; p=none; pct=50; rua=mailto:dmarc@northwind.example")
                .as_deref(),
            Some("v=DMARC1; p=quarantine; rua=mailto:dmarc@northwind.example")
        );
        assert_eq!(
            enforcing_record("v=DMARC1; p=quarantine; rua=mailto:d@x.example").as_deref(),
            Some("v=DMARC1; p=reject; rua=mailto:d@x.example")
        );
        assert_eq!(enforcing_record("v=DMARC1; p=reject"), None);
    }
}
