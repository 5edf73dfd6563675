//! Microsoft SNDS (Smart Network Data Services) data exports: Outlook.com's view of each sending
//! IP, one activity period (a day) at a time.
//!
//! The export is CSV without a header, one row per IP and day, in this order: IP address,
//! activity period start, activity period end, RCPT commands, DATA commands, message
//! recipients, filter result (`GREEN`, `YELLOW`, `RED`), complaint rate (`< 0.1%`, `0.3%`), trap
//! message period start and end, trap hits, sample HELO, JMR P1 sender, comments. A header row,
//! when a file has one, is read by its names instead. Times are as SNDS writes them
//! (`11/30/2026 4:00 PM`); the row's day is the date its activity period starts on. Each row is
//! stored as the `snds` row of its day and IP, replacing an earlier one.

use super::input::{Line, Lines, MAX_RECORD};
use super::metrics::{column, csv_fields};
use super::{sql_int, ImportError, Session};
use chrono::{NaiveDate, NaiveDateTime};
use std::io::BufRead;
use std::net::IpAddr;

/// The columns mailshift stores.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Col {
    Ip,
    Start,
    Rcpt,
    Data,
    Recipients,
    Filter,
    ComplaintRate,
    TrapHits,
}

/// Where each column is in a row without a header.
const POSITIONS: [(Col, usize); 8] = [
    (Col::Ip, 0),
    (Col::Start, 1),
    (Col::Rcpt, 3),
    (Col::Data, 4),
    (Col::Recipients, 5),
    (Col::Filter, 6),
    (Col::ComplaintRate, 7),
    (Col::TrapHits, 10),
];

/// The fields of a headerless export row.
const FIELDS: usize = 14;

fn col_of(name: &str) -> Option<Col> {
    Some(match column(name).as_str() {
        "ip_address" | "ip" => Col::Ip,
        "activity_period_start" | "activity_start" | "activity_period" => Col::Start,
        "rcpt_commands" => Col::Rcpt,
        "data_commands" => Col::Data,
        "message_recipients" => Col::Recipients,
        "filter_result" => Col::Filter,
        "complaint_rate" => Col::ComplaintRate,
        "trap_hits" => Col::TrapHits,
        _ => return None,
    })
}

struct Row {
    day: NaiveDate,
    ip: IpAddr,
    rcpt: Option<u64>,
    data: Option<u64>,
    recipients: Option<u64>,
    filter: String,
    complaint_rate: Option<String>,
    trap_hits: Option<u64>,
}

/// Imports an SNDS export.
pub(crate) fn import(s: &mut Session<'_>, input: &mut impl BufRead) -> Result<(), ImportError> {
    let mut lines = Lines::new(input);
    let mut positions: Option<Vec<(Col, usize)>> = None;
    while let Some((number, line)) = lines.next_line().map_err(|e| s.io(e))? {
        let text = match line {
            Line::Text(t) if t.trim().is_empty() => continue,
            Line::Text(t) => t,
            Line::TooLong(n) => {
                s.outcome.records += 1;
                s.reject(
                    number,
                    format!(
                        "a line of {n} bytes, over the {} a row may have",
                        crate::files::show_size(MAX_RECORD as u64)
                    ),
                );
                continue;
            }
            Line::NotText => {
                s.outcome.records += 1;
                s.reject(number, "not UTF-8 text");
                continue;
            }
        };
        let fields = match csv_fields(text) {
            Ok(f) => f,
            Err(e) => {
                s.outcome.records += 1;
                s.reject(number, e);
                continue;
            }
        };
        if positions.is_none() {
            let first = fields.first().map(|f| f.trim()).unwrap_or_default();
            let header = first.parse::<IpAddr>().is_err() && col_of(first).is_some();
            positions = Some(if header {
                header_positions(s, &fields)?
            } else {
                POSITIONS.to_vec()
            });
            if header {
                continue;
            }
        }
        let layout = positions.as_deref().unwrap_or(&POSITIONS);
        s.outcome.records += 1;
        match check(layout, &fields, layout == POSITIONS) {
            Ok(row) => {
                store(s, &row)?;
                s.outcome.counted += 1;
                s.day(row.day);
            }
            Err(message) => s.reject(number, message),
        }
    }
    Ok(())
}

/// The position of each column a header names; IP and activity start are required.
fn header_positions(s: &Session<'_>, fields: &[String]) -> Result<Vec<(Col, usize)>, ImportError> {
    let positions: Vec<(Col, usize)> = fields
        .iter()
        .enumerate()
        .filter_map(|(i, name)| col_of(name).map(|c| (c, i)))
        .collect();
    for (col, name) in [
        (Col::Ip, "IP Address"),
        (Col::Start, "Activity period start"),
    ] {
        if !positions.iter().any(|(c, _)| *c == col) {
            return Err(s.format(format!("the header has no `{name}` column")));
        }
    }
    Ok(positions)
}

fn field<'a>(layout: &[(Col, usize)], fields: &'a [String], col: Col) -> Option<&'a str> {
    let (_, i) = layout.iter().find(|(c, _)| *c == col)?;
    fields.get(*i).map(|f| f.trim()).filter(|f| !f.is_empty())
}

/// A time as SNDS writes it (`11/30/2026 4:00 PM`), or in ISO form.
fn date_of(text: &str) -> Option<NaiveDate> {
    const TIMES: [&str; 5] = [
        "%m/%d/%Y %I:%M %p",
        "%m/%d/%Y %H:%M",
        "%m/%d/%Y %H:%M:%S",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M:%S",
    ];
    TIMES
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
        .map(|t| t.date())
        .or_else(|| NaiveDate::parse_from_str(text, "%m/%d/%Y").ok())
        .or_else(|| NaiveDate::parse_from_str(text, "%Y-%m-%d").ok())
}

fn number(
    layout: &[(Col, usize)],
    fields: &[String],
    col: Col,
    name: &str,
) -> Result<Option<u64>, String> {
    match field(layout, fields, col) {
        None => Ok(None),
        Some(t) => t
            .parse::<u64>()
            .map(Some)
            .map_err(|_| format!("{name} is `{t}`, not a whole number from 0")),
    }
}

/// `< 0.1%`, `0.3%`, `12%`.
fn complaint_rate(text: &str) -> bool {
    let t = text.trim_start_matches('<').trim();
    t.strip_suffix('%')
        .and_then(|n| n.trim().parse::<f64>().ok())
        .is_some_and(|n| (0.0..=100.0).contains(&n))
}

fn check(layout: &[(Col, usize)], fields: &[String], fixed: bool) -> Result<Row, String> {
    if fixed && fields.len() < 11 {
        return Err(format!(
            "{} fields, where an SNDS export row has {FIELDS} (IP address, activity period start and end, RCPT, DATA, recipients, filter result, complaint rate, trap period start and end, trap hits, sample HELO, JMR P1 sender, comments)",
            fields.len()
        ));
    }
    let ip_text = field(layout, fields, Col::Ip).ok_or("no IP address")?;
    let ip = ip_text
        .parse::<IpAddr>()
        .map_err(|_| format!("`{ip_text}` is not an IP address"))?;
    let start = field(layout, fields, Col::Start).ok_or("no activity period start")?;
    let day = date_of(start).ok_or_else(|| {
        format!(
            "activity period start `{start}` is not a time as SNDS writes it (11/30/2026 4:00 PM)"
        )
    })?;
    let filter = field(layout, fields, Col::Filter)
        .ok_or("no filter result (GREEN, YELLOW, RED)")?
        .to_ascii_uppercase();
    if !matches!(filter.as_str(), "GREEN" | "YELLOW" | "RED") {
        return Err(format!(
            "filter result `{filter}`: expected GREEN, YELLOW or RED"
        ));
    }
    let complaint = field(layout, fields, Col::ComplaintRate);
    if let Some(c) = complaint {
        if !complaint_rate(c) {
            return Err(format!(
                "complaint rate `{c}` is not a percentage (< 0.1%, 0.3%)"
            ));
        }
    }
    Ok(Row {
        day,
        ip,
        rcpt: number(layout, fields, Col::Rcpt, "RCPT commands")?,
        data: number(layout, fields, Col::Data, "DATA commands")?,
        recipients: number(layout, fields, Col::Recipients, "message recipients")?,
        filter,
        complaint_rate: complaint.map(str::to_string),
        trap_hits: number(layout, fields, Col::TrapHits, "trap hits")?,
    })
}

fn store(s: &Session<'_>, r: &Row) -> Result<(), ImportError> {
    s.tx.prepare_cached(
        "INSERT INTO snds (day, ip, rcpt, data, recipients, filter, complaint_rate, trap_hits)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (day, ip) DO UPDATE SET
                 rcpt = excluded.rcpt, data = excluded.data, recipients = excluded.recipients,
                 filter = excluded.filter, complaint_rate = excluded.complaint_rate,
                 trap_hits = excluded.trap_hits",
    )
    .and_then(|mut stmt| {
        stmt.execute(rusqlite::params![
            r.day.to_string(),
            r.ip.to_string(),
            r.rcpt.map(sql_int),
            r.data.map(sql_int),
            r.recipients.map(sql_int),
            r.filter,
            r.complaint_rate,
            r.trap_hits.map(sql_int)
        ])
    })
    .map(|_| ())
    .map_err(|e| s.sql(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snds_times_and_rates_read_as_written() {
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day);
        assert_eq!(date_of("11/30/2026 4:00 PM"), d(2026, 11, 30));
        assert_eq!(date_of("12/1/2026 3:59 AM"), d(2026, 12, 1));
        assert_eq!(date_of("2026-12-01"), d(2026, 12, 1));
        assert_eq!(date_of("30/11/2026 16:00"), None);
        assert!(complaint_rate("< 0.1%"));
        assert!(complaint_rate("0.3%"));
        assert!(!complaint_rate("0.3"));
        assert!(!complaint_rate("lots%"));
    }
}

#[cfg(test)]
mod import_tests {
    use super::super::testing::{history, import, opts, problems};
    use super::super::EvidenceKind;

    #[test]
    fn a_header_is_read_by_name_and_bad_rows_are_named() {
        let (dir, mut h) = history();
        let text = "IP Address,Activity period start,Activity period end,RCPT commands,DATA commands,Message recipients,Filter result,Complaint rate,Trap message period start,Trap message period end,Trap hits,Sample HELO,JMR P1 Sender,Comments\n\
            2001:db8::25,11/2/2026 4:00 PM,11/3/2026 3:00 PM,10,10,10,green,< 0.1%,,,0,mta.example.com,,\n\
            198.51.100.300,11/2/2026 4:00 PM,11/3/2026 3:00 PM,10,10,10,GREEN,< 0.1%,,,0,,,\n\
            198.51.100.25,11/2/2026 4:00 PM,11/3/2026 3:00 PM,10,10,10,BLUE,< 0.1%,,,0,,,\n\
            198.51.100.25,2 Nov 2026,11/3/2026 3:00 PM,10,10,10,GREEN,< 0.1%,,,0,,,\n\
            198.51.100.25,11/2/2026 4:00 PM,11/3/2026 3:00 PM,ten,10,10,GREEN,< 0.1%,,,0,,,\n\
            198.51.100.25,11/2/2026 4:00 PM,11/3/2026 3:00 PM,10,10,10,GREEN,high,,,0,,,\n";
        let o = import(&dir, &mut h, "snds.csv", text, None, &opts()).unwrap();
        assert_eq!(o.kind, EvidenceKind::Snds);
        assert_eq!(
            problems(&o),
            [
                "3: `198.51.100.300` is not an IP address",
                "4: filter result `BLUE`: expected GREEN, YELLOW or RED",
                "5: activity period start `2 Nov 2026` is not a time as SNDS writes it (11/30/2026 4:00 PM)",
                "6: RCPT commands is `ten`, not a whole number from 0",
                "7: complaint rate `high` is not a percentage (< 0.1%, 0.3%)",
            ]
        );
        assert_eq!((o.records, o.counted), (6, 1));
        let filter: String = h
            .conn()
            .query_row(
                "SELECT filter FROM snds WHERE ip = '2001:db8::25'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(filter, "GREEN");
        let short = "198.51.100.25,11/2/2026 4:00 PM,11/3/2026 3:00 PM,10,10\n";
        let o = import(&dir, &mut h, "short.csv", short, None, &opts()).unwrap();
        assert!(
            problems(&o)[0].starts_with("1: 5 fields, where an SNDS export row has 14"),
            "{:?}",
            o.problems
        );
    }
}
