//! mailshift's metrics schema: the day's totals per cohort and mailbox provider, for platforms
//! whose events mailshift does not read (or for totals taken from a platform's dashboard).
//!
//! CSV with a header row, or JSON (an array of objects, or `{"metrics": [...]}`), with these
//! fields (names are case-insensitive; spaces and dashes count as underscores):
//!
//! | field | |
//! |---|---|
//! | `day` (or `date`) | `YYYY-MM-DD`, in the plan's `utc_offset` |
//! | `cohort` | one of the plan's cohorts; may be left out with `--cohort NAME` |
//! | `provider` | `gmail`, `yahoo` (or `aol`), `microsoft` (or `outlook`), `other` |
//! | `sent`, `delivered`, `hard_bounces`, `soft_bounces`, `complaints`, `deferrals`, `blocks` | whole numbers from 0 |
//! | `opens`, `clicks` | optional |
//! | `pool` | optional: rows of the same day, cohort and provider from different pools add up |
//!
//! A row is checked before it counts: `delivered` is at most `sent`, and `delivered +
//! hard_bounces + blocks` at most `sent` (a message is delivered, bounced or blocked, not two of
//! them); complaints, soft bounces and deferrals may be about mail sent on an earlier day, so
//! they are not held to the day's `sent`. Each file's totals for a day, cohort and provider
//! replace the ones stored (source `metrics`): a corrected export imported later wins. Other
//! columns are ignored (and named in the notes).

use super::input::{JsonRecords, Line, Lines, MAX_RECORD};
use super::{sql_int, ImportError, Session};
use crate::warmup::Provider;
use chrono::NaiveDate;
use std::collections::{BTreeMap, HashMap};
use std::io::BufRead;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Day,
    Cohort,
    Provider,
    Sent,
    Delivered,
    HardBounces,
    SoftBounces,
    Complaints,
    Deferrals,
    Blocks,
    Opens,
    Clicks,
    Pool,
}

const FIELDS: [Field; 13] = [
    Field::Day,
    Field::Cohort,
    Field::Provider,
    Field::Sent,
    Field::Delivered,
    Field::HardBounces,
    Field::SoftBounces,
    Field::Complaints,
    Field::Deferrals,
    Field::Blocks,
    Field::Opens,
    Field::Clicks,
    Field::Pool,
];

/// The counts every row has, in the `daily` table's order.
const COUNTS: [Field; 7] = [
    Field::Sent,
    Field::Delivered,
    Field::HardBounces,
    Field::SoftBounces,
    Field::Complaints,
    Field::Deferrals,
    Field::Blocks,
];

/// The columns, as the README lists them.
pub const COLUMNS: &str = "day,cohort,provider,sent,delivered,hard_bounces,soft_bounces,complaints,deferrals,blocks and optional opens,clicks,pool";

impl Field {
    fn name(self) -> &'static str {
        match self {
            Field::Day => "day",
            Field::Cohort => "cohort",
            Field::Provider => "provider",
            Field::Sent => "sent",
            Field::Delivered => "delivered",
            Field::HardBounces => "hard_bounces",
            Field::SoftBounces => "soft_bounces",
            Field::Complaints => "complaints",
            Field::Deferrals => "deferrals",
            Field::Blocks => "blocks",
            Field::Opens => "opens",
            Field::Clicks => "clicks",
            Field::Pool => "pool",
        }
    }

    fn of(column: &str) -> Option<Field> {
        if column == "date" {
            return Some(Field::Day);
        }
        FIELDS.into_iter().find(|f| f.name() == column)
    }
}

/// A column or field name as compared: trimmed, lower-case, spaces and dashes as underscores.
pub(super) fn column(name: &str) -> String {
    name.trim()
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c == ' ' || c == '-' { '_' } else { c })
        .collect()
}

/// The fields of one CSV line (quotes as RFC 4180 has them).
pub(super) fn csv_fields(line: &str) -> Result<Vec<String>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(line.as_bytes());
    match reader.records().next() {
        Some(Ok(record)) => Ok(record.iter().map(str::to_string).collect()),
        Some(Err(e)) => Err(format!("not a CSV row: {e}")),
        None => Ok(Vec::new()),
    }
}

/// A row's fields as given, before they are checked.
type RawRow = [Option<String>; FIELDS.len()];

/// A checked row.
struct Row {
    day: NaiveDate,
    cohort: String,
    provider: Provider,
    pool: String,
    counts: [u64; 7],
    opens: Option<u64>,
    clicks: Option<u64>,
}

fn get(raw: &RawRow, field: Field) -> Option<&str> {
    raw.get(field as usize)
        .and_then(|v| v.as_deref())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

fn count(raw: &RawRow, field: Field) -> Result<Option<u64>, String> {
    let Some(text) = get(raw, field) else {
        return Ok(None);
    };
    if let Some(negative) = text.strip_prefix('-') {
        if negative.parse::<u64>().is_ok() {
            return Err(format!(
                "`{}` is {text}: counts are whole numbers from 0",
                field.name()
            ));
        }
    }
    text.parse::<u64>()
        .map(Some)
        .map_err(|_| format!("`{}` is `{text}`, not a whole number", field.name()))
}

fn check(raw: &RawRow, s: &Session<'_>) -> Result<Row, String> {
    let day_text = get(raw, Field::Day).ok_or("no `day` (YYYY-MM-DD)")?;
    let day = NaiveDate::parse_from_str(day_text, "%Y-%m-%d")
        .ok()
        .filter(|_| day_text.len() == 10)
        .ok_or_else(|| format!("`day` is `{day_text}`, not a date (write it as 2026-11-02)"))?;
    let cohort = match (get(raw, Field::Cohort), &s.opts.default_cohort) {
        (Some(c), _) => c.to_string(),
        (None, Some(c)) => c.clone(),
        (None, None) => {
            return Err("no `cohort` (give --cohort NAME when a file holds one cohort)".to_string())
        }
    };
    if !s.opts.knows_cohort(&cohort) {
        return Err(format!(
            "`cohort` `{cohort}` is not one of the plan's cohorts ({})",
            s.opts.cohort_list()
        ));
    }
    let provider_text = get(raw, Field::Provider).ok_or("no `provider`")?;
    let provider = Provider::parse(provider_text).ok_or_else(|| {
        format!(
            "`provider` `{provider_text}` is not one mailshift counts apart: gmail, yahoo (or aol), microsoft (or outlook), other"
        )
    })?;
    let mut counts = [0u64; 7];
    for (slot, field) in counts.iter_mut().zip(COUNTS) {
        *slot = count(raw, field)?.ok_or_else(|| format!("no `{}`", field.name()))?;
    }
    let [sent, delivered, hard, _, _, _, blocks] = counts;
    if delivered > sent {
        return Err(format!(
            "`delivered` ({delivered}) is more than `sent` ({sent})"
        ));
    }
    let settled = delivered.saturating_add(hard).saturating_add(blocks);
    if settled > sent {
        return Err(format!(
            "`delivered` + `hard_bounces` + `blocks` ({settled}) is more than `sent` ({sent}): a message is delivered, bounced or blocked, not two of them"
        ));
    }
    Ok(Row {
        day,
        cohort,
        provider,
        pool: get(raw, Field::Pool).unwrap_or_default().to_string(),
        counts,
        opens: count(raw, Field::Opens)?,
        clicks: count(raw, Field::Clicks)?,
    })
}

/// One day, cohort and provider's totals in a file.
#[derive(Default)]
struct Total {
    counts: [u64; 7],
    opens: Option<u64>,
    clicks: Option<u64>,
}

/// The checked rows of one file, added up per day, cohort and provider.
#[derive(Default)]
struct Totals {
    rows: BTreeMap<(NaiveDate, String, Provider), Total>,
    /// Where each day, cohort, provider and pool was first given.
    seen: HashMap<(NaiveDate, String, Provider, String), usize>,
}

fn add_opt(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (None, None) => None,
        _ => Some(a.unwrap_or(0).saturating_add(b.unwrap_or(0))),
    }
}

impl Totals {
    fn add(&mut self, s: &mut Session<'_>, line: usize, raw: &RawRow) {
        let row = match check(raw, s) {
            Ok(row) => row,
            Err(message) => return s.reject(line, message),
        };
        let key = (row.day, row.cohort.clone(), row.provider, row.pool.clone());
        if let Some(first) = self.seen.get(&key) {
            return s.reject(
                line,
                format!(
                    "the same day, cohort, provider and pool as line {first}: a file gives each once (rows add up only when their `pool`s differ)"
                ),
            );
        }
        self.seen.insert(key, line);
        let total = self
            .rows
            .entry((row.day, row.cohort, row.provider))
            .or_default();
        for (t, n) in total.counts.iter_mut().zip(row.counts) {
            *t = t.saturating_add(n);
        }
        total.opens = add_opt(total.opens, row.opens);
        total.clicks = add_opt(total.clicks, row.clicks);
        s.outcome.counted += 1;
        s.day(row.day);
    }

    /// Replaces the stored `metrics` rows of each key the file gave.
    fn write(&self, s: &Session<'_>) -> Result<(), ImportError> {
        let mut upsert =
            s.tx.prepare_cached(
                "INSERT INTO daily (day, cohort, provider, source, sent, delivered, hard_bounces,
                     soft_bounces, complaints, deferrals, blocks, opens, clicks)
                 VALUES (?1, ?2, ?3, 'metrics', ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
                 ON CONFLICT (day, cohort, provider, source) DO UPDATE SET
                     sent = excluded.sent, delivered = excluded.delivered,
                     hard_bounces = excluded.hard_bounces, soft_bounces = excluded.soft_bounces,
                     complaints = excluded.complaints, deferrals = excluded.deferrals,
                     blocks = excluded.blocks, opens = excluded.opens, clicks = excluded.clicks",
            )
            .map_err(|e| s.sql(e))?;
        for ((day, cohort, provider), total) in &self.rows {
            let [sent, delivered, hard, soft, complaints, deferrals, blocks] =
                total.counts.map(sql_int);
            upsert
                .execute(rusqlite::params![
                    day.to_string(),
                    cohort,
                    provider.id(),
                    sent,
                    delivered,
                    hard,
                    soft,
                    complaints,
                    deferrals,
                    blocks,
                    total.opens.map(sql_int),
                    total.clicks.map(sql_int)
                ])
                .map_err(|e| s.sql(e))?;
        }
        Ok(())
    }
}

/// Imports a metrics file, CSV or JSON.
pub(crate) fn import(s: &mut Session<'_>, input: &mut impl BufRead) -> Result<(), ImportError> {
    let mut totals = Totals::default();
    if matches!(s.first_byte(), Some(b'[' | b'{')) {
        json(s, input, &mut totals)?;
    } else {
        csv(s, input, &mut totals)?;
    }
    totals.write(s)
}

fn csv(
    s: &mut Session<'_>,
    input: &mut impl BufRead,
    totals: &mut Totals,
) -> Result<(), ImportError> {
    let mut lines = Lines::new(input);
    let mut positions: Option<Vec<Option<Field>>> = None;
    while let Some((number, line)) = lines.next_line().map_err(|e| s.io(e))? {
        let text = match line {
            Line::Text(t) if t.trim().is_empty() => continue,
            Line::Text(t) => t,
            Line::TooLong(n) => {
                if positions.is_none() {
                    return Err(s.format(format!(
                        "the first line is {n} bytes long: not a metrics header"
                    )));
                }
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
                if positions.is_none() {
                    return Err(s.format("the header line is not UTF-8 text"));
                }
                s.outcome.records += 1;
                s.reject(number, "not UTF-8 text (save the file as UTF-8)");
                continue;
            }
        };
        let fields = match csv_fields(text) {
            Ok(f) => f,
            Err(e) if positions.is_none() => return Err(s.format(format!("line {number}: {e}"))),
            Err(e) => {
                s.outcome.records += 1;
                s.reject(number, e);
                continue;
            }
        };
        let Some(columns) = &positions else {
            positions = Some(header(s, &fields)?);
            continue;
        };
        s.outcome.records += 1;
        if fields.len() != columns.len() {
            s.reject(
                number,
                format!(
                    "{} fields, where the header has {}",
                    fields.len(),
                    columns.len()
                ),
            );
            continue;
        }
        let mut raw: RawRow = Default::default();
        for (field, value) in columns.iter().zip(fields) {
            if let Some(slot) = field.and_then(|f| raw.get_mut(f as usize)) {
                *slot = Some(value);
            }
        }
        totals.add(s, number, &raw);
    }
    Ok(())
}

/// The field of each column; the file is refused when a required one is missing.
fn header(s: &mut Session<'_>, fields: &[String]) -> Result<Vec<Option<Field>>, ImportError> {
    let mut positions = Vec::with_capacity(fields.len());
    let mut ignored = Vec::new();
    for name in fields {
        let field = Field::of(&column(name));
        if let Some(f) = field {
            if positions.contains(&Some(f)) {
                return Err(s.format(format!("the header names `{}` twice", f.name())));
            }
        } else {
            ignored.push(name.trim().to_string());
        }
        positions.push(field);
    }
    let missing: Vec<&str> = FIELDS
        .into_iter()
        .filter(|f| required(*f, s) && !positions.contains(&Some(*f)))
        .map(Field::name)
        .collect();
    if !missing.is_empty() {
        return Err(s.format(format!(
            "the header has no {} column{} (metrics columns: {COLUMNS})",
            missing.join(", "),
            if missing.len() == 1 { "" } else { "s" }
        )));
    }
    if !ignored.is_empty() {
        s.outcome
            .notes
            .push(format!("columns ignored: {}", ignored.join(", ")));
    }
    Ok(positions)
}

fn required(field: Field, s: &Session<'_>) -> bool {
    match field {
        Field::Opens | Field::Clicks | Field::Pool => false,
        Field::Cohort => s.opts.default_cohort.is_none(),
        _ => true,
    }
}

fn json(
    s: &mut Session<'_>,
    input: &mut impl BufRead,
    totals: &mut Totals,
) -> Result<(), ImportError> {
    let mut records = JsonRecords::new(input, &["metrics"]);
    let mut ignored: Vec<String> = Vec::new();
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
        let object: serde_json::Map<String, serde_json::Value> = match serde_json::from_slice(text)
        {
            Ok(o) => o,
            Err(e) => {
                s.reject(
                    line,
                    format!("not a metrics object: {}", super::json_message(&e)),
                );
                continue;
            }
        };
        let mut raw: RawRow = Default::default();
        let mut bad = None;
        for (key, value) in object {
            let Some(field) = Field::of(&column(&key)) else {
                if !ignored.contains(&key) && ignored.len() < 20 {
                    ignored.push(key);
                }
                continue;
            };
            let text = match value {
                serde_json::Value::String(t) => Some(t),
                serde_json::Value::Number(n) => Some(n.to_string()),
                serde_json::Value::Null => None,
                other => {
                    bad = Some(format!(
                        "`{}` is {other}, not a {}",
                        field.name(),
                        if field == Field::Day
                            || field == Field::Cohort
                            || field == Field::Provider
                            || field == Field::Pool
                        {
                            "string"
                        } else {
                            "count"
                        }
                    ));
                    break;
                }
            };
            if let Some(slot) = raw.get_mut(field as usize) {
                *slot = text;
            }
        }
        match bad {
            Some(message) => s.reject(line, message),
            None => totals.add(s, line, &raw),
        }
    }
    if !ignored.is_empty() {
        s.outcome
            .notes
            .push(format!("fields ignored: {}", ignored.join(", ")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testing::{daily, history, import, opts, problems};
    use super::super::{EvidenceKind, ImportError};

    const HEADER: &str = "Day,Cohort,Provider,Sent,Delivered,Hard Bounces,Soft-Bounces,Complaints,Deferrals,Blocks,Opens,Clicks,Pool,Campaign\n";

    #[test]
    fn rows_of_different_pools_add_up_and_a_repeated_key_is_rejected() {
        let (dir, mut h) = history();
        let text = format!(
            "{HEADER}2026-11-02,rest,gmail,100,90,2,1,0,5,1,40,,pool-a,weekly\n\
             2026-11-02,rest,Google,50,45,1,0,1,2,0,,,pool-b,weekly\n\
             2026-11-02,rest,gmail,7,7,0,0,0,0,0,1,1,pool-a,weekly\n\
             \n\
             2026-11-02,rest,outlook,10,10,0,0,0,0,0,\"3\",\"1\",,weekly\n"
        );
        let o = import(&dir, &mut h, "m.csv", &text, None, &opts()).unwrap();
        assert_eq!(o.kind, EvidenceKind::Metrics);
        assert_eq!((o.records, o.counted, o.rejected), (4, 3, 1));
        assert_eq!(
            problems(&o),
            ["4: the same day, cohort, provider and pool as line 2: a file gives each once (rows add up only when their `pool`s differ)"]
        );
        assert_eq!(o.notes, ["columns ignored: Campaign"]);
        assert_eq!(
            daily(&h, "metrics"),
            [
                "2026-11-02 rest gmail: 150 135 3 1 1 7 1 40 -",
                "2026-11-02 rest microsoft: 10 10 0 0 0 0 0 3 1"
            ]
        );
    }

    #[test]
    fn a_later_file_replaces_the_totals_of_the_keys_it_gives() {
        let (dir, mut h) = history();
        let first = format!(
            "{HEADER}2026-11-02,rest,gmail,100,90,2,1,0,5,1,40,4,,\n2026-11-02,rest,yahoo,10,9,0,0,0,0,0,,,,\n"
        );
        import(&dir, &mut h, "a.csv", &first, None, &opts()).unwrap();
        let corrected = r#"[{"date": "2026-11-02", "cohort": "rest", "provider": "gmail", "sent": 100,
            "delivered": 92, "hard_bounces": 2, "soft_bounces": "1", "complaints": 0,
            "deferrals": 5, "blocks": 1, "opens": null}]"#;
        let o = import(&dir, &mut h, "b.json", corrected, None, &opts()).unwrap();
        assert_eq!((o.records, o.counted, o.rejected), (1, 1, 0));
        assert_eq!(
            daily(&h, "metrics"),
            [
                "2026-11-02 rest gmail: 100 92 2 1 0 5 1 - -",
                "2026-11-02 rest yahoo: 10 9 0 0 0 0 0 - -"
            ]
        );
    }

    #[test]
    fn every_bad_value_is_named_and_a_header_without_counts_refuses_the_file() {
        let (dir, mut h) = history();
        let rows = [
            ("2026-11-02,rest,gmail,10,9,0,0,0,0,0", None),
            ("2026-11-2,rest,gmail,10,9,0,0,0,0,0", Some("`day` is `2026-11-2`, not a date (write it as 2026-11-02)")),
            (",rest,gmail,10,9,0,0,0,0,0", Some("no `day` (YYYY-MM-DD)")),
            ("2026-11-02,rest,icloud,10,9,0,0,0,0,0", Some("`provider` `icloud` is not one mailshift counts apart: gmail, yahoo (or aol), microsoft (or outlook), other")),
            ("2026-11-02,rest,gmail,10,9.5,0,0,0,0,0", Some("`delivered` is `9.5`, not a whole number")),
            ("2026-11-02,rest,gmail,10,9,0,0,0,0,", Some("no `blocks`")),
            ("2026-11-02,rest,gmail,10,9,1,0,0,0,1", Some("`delivered` + `hard_bounces` + `blocks` (11) is more than `sent` (10): a message is delivered, bounced or blocked, not two of them")),
            ("2026-11-02,rest,gmail,10,9,0,0,0", Some("8 fields, where the header has 10")),
            ("2026-11-02,vip,gmail,10,9,0,0,0,0,0", Some("`cohort` `vip` is not one of the plan's cohorts (engaged-30d, engaged-90d, rest)")),
        ];
        let mut text = "day,cohort,provider,sent,delivered,hard_bounces,soft_bounces,complaints,deferrals,blocks\n".to_string();
        for (row, _) in rows {
            text.push_str(row);
            text.push('\n');
        }
        let o = import(
            &dir,
            &mut h,
            "m.csv",
            &text,
            Some(EvidenceKind::Metrics),
            &opts(),
        )
        .unwrap();
        let expected: Vec<String> = rows
            .iter()
            .enumerate()
            .filter_map(|(i, (_, p))| p.map(|p| format!("{}: {p}", i + 2)))
            .collect();
        assert_eq!(problems(&o), expected);
        assert_eq!((o.records, o.counted), (9, 1));
        let err = import(
            &dir,
            &mut h,
            "n.csv",
            "day,cohort,provider,sent\n2026-11-02,rest,gmail,1\n",
            Some(EvidenceKind::Metrics),
            &opts(),
        )
        .unwrap_err();
        assert!(matches!(err, ImportError::Format { .. }));
        assert!(
            err.to_string().ends_with("n.csv: the header has no delivered, hard_bounces, soft_bounces, complaints, deferrals, blocks columns (metrics columns: day,cohort,provider,sent,delivered,hard_bounces,soft_bounces,complaints,deferrals,blocks and optional opens,clicks,pool)"),
            "{err}"
        );
    }

    #[test]
    fn a_file_of_one_cohort_may_leave_the_column_out() {
        let (dir, mut h) = history();
        let text = "day,provider,sent,delivered,hard_bounces,soft_bounces,complaints,deferrals,blocks\n2026-11-02,aol,10,9,0,0,0,0,0\n";
        let err = import(&dir, &mut h, "a.csv", text, None, &opts()).unwrap_err();
        assert!(
            err.to_string().contains("the header has no cohort column"),
            "{err}"
        );
        let mut o = opts();
        o.default_cohort = Some("engaged-90d".into());
        import(&dir, &mut h, "a.csv", text, None, &o).unwrap();
        assert_eq!(
            daily(&h, "metrics"),
            ["2026-11-02 engaged-90d yahoo: 10 9 0 0 0 0 0 - -"]
        );
    }

    #[test]
    fn json_values_of_the_wrong_type_are_named() {
        let (dir, mut h) = history();
        let text = "[\n{\"day\": \"2026-11-02\", \"cohort\": \"rest\", \"provider\": \"gmail\", \"sent\": [1]},\n\"x\",\n{\"day\": \"2026-11-02\", \"cohort\": \"rest\", \"provider\": \"gmail\", \"sent\": 1, \"delivered\": 1, \"hard_bounces\": 0, \"soft_bounces\": 0, \"complaints\": 0, \"deferrals\": 0, \"blocks\": 0, \"sent_at\": 3}\n]";
        let o = import(&dir, &mut h, "m.json", text, None, &opts()).unwrap();
        assert_eq!(
            problems(&o),
            [
                "2: `sent` is [1], not a count",
                "3: not a metrics object: invalid type: string \"x\", expected a map"
            ]
        );
        assert_eq!(o.notes, ["fields ignored: sent_at"]);
        assert_eq!(o.counted, 1);
    }
}
