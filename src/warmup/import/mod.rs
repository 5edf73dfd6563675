//! Importing warmup evidence into a plan's history: the daily totals and platform events that
//! say how each cohort's mail fared, and the reputation data the mailbox providers publish.
//!
//! Five formats, each recognised from its first record unless `--kind` names it, each read by
//! its own module into the history's tables:
//!
//! | kind | file | goes to |
//! |---|---|---|
//! | [`metrics`] | mailshift's CSV or JSON of daily totals per day, cohort and provider | `daily`, source `metrics`: a file's row replaces the stored one |
//! | [`sendgrid`] | SendGrid Event Webhook JSON (an array per POST, or one event a line) | `daily`, source `events`: each event added once |
//! | [`ses`] | Amazon SES event publishing JSON (Firehose lines, SNS notifications) | `daily`, source `events`: each recipient's event added once |
//! | [`postmaster`] | Google Postmaster Tools `trafficStats` (API v1) | `postmaster`, one row per day and domain |
//! | [`snds`] | Microsoft SNDS data export CSV | `snds`, one row per day and IP |
//!
//! Rules every format follows. A file is imported in one `BEGIN IMMEDIATE` transaction: a crash
//! or a broken file leaves nothing of it, and two processes importing at once queue. A file is
//! known by the SHA-256 of its bytes: one already in `imports` counts nothing again ("already
//! imported on …"); the digest is taken in a first pass that parses nothing, and again while the
//! records are read, so a file that changed in between is refused rather than half-counted. A
//! record that cannot be counted (a bad date, a negative count, an event without its id) is a
//! problem at its file and line, counted as `rejected`; the good records of the same file are
//! imported. A file that cannot be read at all — not a regular file, over the `evidence` cap,
//! not UTF-8 text, of no known format, or JSON whose structure breaks — is an [`ImportError`]
//! naming it, and nothing of it is imported. Platform events count once across files: a 64-bit
//! digest of each event's identity is kept in `seen_events`. Days are the event's UTC time
//! moved by the plan's `utc_offset`.

mod input;
pub mod metrics;
pub mod postmaster;
pub mod sendgrid;
pub mod ses;
pub mod snds;
mod sniff;
mod tally;

use crate::files::FileError;
use crate::history::{History, HistoryError};
use chrono::NaiveDate;
use rusqlite::Transaction;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

pub use crate::import::ImportError;

/// The problems kept per file; `rejected` counts them all. A garbage file of a billion lines
/// must not become a billion messages in memory.
pub const MAX_PROBLEMS: usize = 10_000;

/// How long an import waits for another process's import to finish: an import holds the write
/// lock while it reads its file, which for a month of events is minutes, not seconds.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// The formats of warmup evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum EvidenceKind {
    /// mailshift's metrics schema: daily totals per day, cohort and provider (CSV or JSON).
    Metrics,
    /// SendGrid Event Webhook events (a JSON array per POST, or one event per line).
    #[value(name = "sendgrid")]
    SendGrid,
    /// Amazon SES event publishing records (one per line, an array, or SNS notifications).
    Ses,
    /// Google Postmaster Tools traffic stats (API v1 `domains.trafficStats`).
    Postmaster,
    /// Microsoft SNDS data export (CSV).
    Snds,
}

impl EvidenceKind {
    /// The name used by `--kind` and in `imports.kind`.
    pub fn id(self) -> &'static str {
        match self {
            EvidenceKind::Metrics => "metrics",
            EvidenceKind::SendGrid => "sendgrid",
            EvidenceKind::Ses => "ses",
            EvidenceKind::Postmaster => "postmaster",
            EvidenceKind::Snds => "snds",
        }
    }

    /// What the format is, in words.
    pub fn name(self) -> &'static str {
        match self {
            EvidenceKind::Metrics => "mailshift metrics",
            EvidenceKind::SendGrid => "SendGrid Event Webhook events",
            EvidenceKind::Ses => "Amazon SES events",
            EvidenceKind::Postmaster => "Google Postmaster Tools traffic stats",
            EvidenceKind::Snds => "Microsoft SNDS data",
        }
    }
}

impl fmt::Display for EvidenceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// What an import needs from the plan and the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportOptions {
    /// Minutes east of UTC of the day boundary (the plan's `utc_offset`).
    pub utc_offset_minutes: i32,
    /// The event field (SendGrid custom argument, SES message tag) naming the cohort.
    pub cohort_field: String,
    /// The cohort of events and rows that name none (`--cohort`).
    pub default_cohort: Option<String>,
    /// The plan's cohorts; empty accepts any name.
    pub cohorts: Vec<String>,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            utc_offset_minutes: 0,
            cohort_field: "cohort".to_string(),
            default_cohort: None,
            cohorts: Vec::new(),
        }
    }
}

impl ImportOptions {
    /// The plan's values: its day boundary and cohorts.
    pub fn for_plan(warmup: &crate::warmup::WarmupPlan) -> ImportOptions {
        ImportOptions {
            utc_offset_minutes: warmup.utc_offset_minutes,
            cohorts: warmup.cohorts.iter().map(|c| c.name.clone()).collect(),
            ..ImportOptions::default()
        }
    }

    /// True when `name` is one of the plan's cohorts (any name when the plan lists none).
    pub fn knows_cohort(&self, name: &str) -> bool {
        self.cohorts.is_empty() || self.cohorts.iter().any(|c| c == name)
    }

    /// The plan's cohorts, for messages.
    pub fn cohort_list(&self) -> String {
        self.cohorts.join(", ")
    }
}

/// A record that was not imported, at its line (of the row, or where the JSON record starts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowProblem {
    pub line: usize,
    pub message: String,
}

/// What importing one file did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileOutcome {
    /// As named (a path that is not UTF-8 is written with U+FFFD in JSON).
    #[serde(serialize_with = "crate::output::lossy_path")]
    pub path: PathBuf,
    pub kind: EvidenceKind,
    pub sha256: String,
    /// When the same content was imported before (RFC 3339): then nothing was counted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub already_imported: Option<String>,
    /// Records read: rows, events (an SES record that names three recipients is one), days.
    pub records: u64,
    /// What was stored: rows and days written, events counted (an SES event once per
    /// recipient).
    pub counted: u64,
    /// Events already counted, by an earlier file or earlier in this one.
    pub duplicates: u64,
    /// Records not imported; each has a problem.
    pub rejected: u64,
    /// SendGrid `dropped` events: never sent, so not in any count.
    pub dropped: u64,
    /// Amazon SES `Reject` events: refused by SES before sending, so not in any count.
    pub rejected_by_platform: u64,
    /// Events that count as nothing (unsubscribes, rendering failures, unknown event types).
    pub ignored: u64,
    /// Events counted without a cohort (cohort `""` in the history).
    pub without_cohort: u64,
    /// The rejected records' problems (the first [`MAX_PROBLEMS`]).
    pub problems: Vec<RowProblem>,
    /// What is worth knowing about the file that is not a rejected record.
    pub notes: Vec<String>,
    /// The days the file had data for.
    pub days: Vec<NaiveDate>,
}

impl FileOutcome {
    /// The first `limit` problems, and how many rejected records are not among them.
    pub fn first_problems(&self, limit: usize) -> (&[RowProblem], u64) {
        let shown = self
            .problems
            .get(..limit.min(self.problems.len()))
            .unwrap_or_default();
        (shown, self.rejected.saturating_sub(shown.len() as u64))
    }

    fn new(path: &Path, kind: EvidenceKind, sha256: String) -> FileOutcome {
        FileOutcome {
            path: path.to_path_buf(),
            kind,
            sha256,
            already_imported: None,
            records: 0,
            counted: 0,
            duplicates: 0,
            rejected: 0,
            dropped: 0,
            rejected_by_platform: 0,
            ignored: 0,
            without_cohort: 0,
            problems: Vec::new(),
            notes: Vec::new(),
            days: Vec::new(),
        }
    }
}

/// Imports one file (of `kind`, or of the kind its content shows) in one transaction.
pub fn import_file(
    history: &mut History,
    path: &Path,
    kind: Option<EvidenceKind>,
    opts: &ImportOptions,
) -> Result<FileOutcome, ImportError> {
    let survey = input::survey(path)?;
    let kind = match kind {
        Some(kind) => kind,
        None => sniff::kind(&survey.head).map_err(|message| match message {
            sniff::Unknown::NotText(offset) => ImportError::File(FileError::NotText {
                path: path.to_path_buf(),
                kind: crate::files::FileKind::Evidence,
                offset,
            }),
            sniff::Unknown::Format(message) => ImportError::Format {
                path: path.to_path_buf(),
                message,
            },
        })?,
    };
    let mut outcome = FileOutcome::new(path, kind, survey.sha256);
    let history_error = |source: HistoryError| ImportError::History {
        path: path.to_path_buf(),
        source,
    };
    if let Some(earlier) = history.import_of(&outcome.sha256).map_err(history_error)? {
        outcome.already_imported = Some(earlier.imported_at);
        return Ok(outcome);
    }
    history
        .conn()
        .busy_timeout(LOCK_WAIT)
        .map_err(|e| history_error(history.sql_error(e)))?;
    let database = history.path().to_path_buf();
    let sql = |e: rusqlite::Error| sql_error(path, &database, e);
    let tx = history.write().map_err(history_error)?;
    let mut stream = input::Stream::open(path)?;
    let mut session = Session {
        tx: &tx,
        opts,
        path,
        database: &database,
        head: &survey.head,
        outcome: &mut outcome,
        days: BTreeSet::new(),
        unknown_cohorts: BTreeMap::new(),
    };
    match kind {
        EvidenceKind::Metrics => metrics::import(&mut session, &mut stream)?,
        EvidenceKind::SendGrid => sendgrid::import(&mut session, &mut stream)?,
        EvidenceKind::Ses => ses::import(&mut session, &mut stream)?,
        EvidenceKind::Postmaster => postmaster::import(&mut session, &mut stream)?,
        EvidenceKind::Snds => snds::import(&mut session, &mut stream)?,
    }
    session.finish();
    if stream.finish()? != outcome.sha256 {
        return Err(ImportError::Changed {
            path: path.to_path_buf(),
        });
    }
    // Another process may have imported the same content while this one waited for the lock.
    let earlier: Option<String> = tx
        .query_row(
            "SELECT imported_at FROM imports WHERE sha256 = ?1",
            [&outcome.sha256],
            |r| r.get(0),
        )
        .map(Some)
        .or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok(None),
            e => Err(e),
        })
        .map_err(sql)?;
    if let Some(when) = earlier {
        drop(tx);
        let mut again = FileOutcome::new(path, kind, outcome.sha256);
        again.already_imported = Some(when);
        return Ok(again);
    }
    tx.execute(
        "INSERT INTO imports (sha256, path, kind, imported_at, records, duplicates, rejected)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        rusqlite::params![
            outcome.sha256,
            path.display().to_string(),
            kind.id(),
            crate::history::now(),
            sql_int(outcome.records),
            sql_int(outcome.duplicates),
            sql_int(outcome.rejected),
        ],
    )
    .map_err(sql)?;
    tx.commit().map_err(sql)?;
    Ok(outcome)
}

/// Imports each file in turn, each in its own transaction: one that fails leaves the others.
pub fn import_files(
    history: &mut History,
    paths: &[PathBuf],
    kind: Option<EvidenceKind>,
    opts: &ImportOptions,
) -> Vec<Result<FileOutcome, ImportError>> {
    paths
        .iter()
        .map(|path| import_file(history, path, kind, opts))
        .collect()
}

fn sql_error(path: &Path, database: &Path, e: rusqlite::Error) -> ImportError {
    ImportError::History {
        path: path.to_path_buf(),
        source: HistoryError::Sql {
            path: database.to_path_buf(),
            message: e.to_string(),
        },
    }
}

/// A count as SQLite stores it.
pub(crate) fn sql_int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// One file being imported: the transaction, the options, and what has been found so far.
pub(crate) struct Session<'a> {
    pub tx: &'a Transaction<'a>,
    pub opts: &'a ImportOptions,
    pub path: &'a Path,
    database: &'a Path,
    /// The file's first bytes (what its format was recognised from).
    pub head: &'a [u8],
    pub outcome: &'a mut FileOutcome,
    days: BTreeSet<NaiveDate>,
    /// Cohort names events gave that the plan does not have, with how many events gave each.
    unknown_cohorts: BTreeMap<String, u64>,
}

impl Session<'_> {
    /// A record that is not imported.
    pub fn reject(&mut self, line: usize, message: impl Into<String>) {
        self.outcome.rejected += 1;
        if self.outcome.problems.len() < MAX_PROBLEMS {
            self.outcome.problems.push(RowProblem {
                line,
                message: message.into(),
            });
        }
    }

    /// A day the file has data for.
    pub fn day(&mut self, day: NaiveDate) {
        self.days.insert(day);
    }

    /// An SQLite error inside the import's transaction.
    pub fn sql(&self, e: rusqlite::Error) -> ImportError {
        sql_error(self.path, self.database, e)
    }

    /// A read error.
    pub fn io(&self, e: std::io::Error) -> ImportError {
        ImportError::File(input::read_error(self.path, e))
    }

    /// A break in a JSON document: nothing of the file is imported.
    pub fn scan(&self, e: input::ScanError) -> ImportError {
        match e {
            input::ScanError::Io(e) => self.io(e),
            input::ScanError::Syntax { line, message } => ImportError::Malformed {
                path: self.path.to_path_buf(),
                line,
                message,
            },
        }
    }

    /// A file-level problem (a CSV without the columns it needs): nothing is imported.
    pub fn format(&self, message: impl Into<String>) -> ImportError {
        ImportError::Format {
            path: self.path.to_path_buf(),
            message: message.into(),
        }
    }

    /// The first byte of the content after a byte-order mark and whitespace.
    pub fn first_byte(&self) -> Option<u8> {
        input::without_bom(self.head)
            .iter()
            .copied()
            .find(|b| !b.is_ascii_whitespace())
    }

    /// The cohort of an event: the name it gives (`named`, from the cohort field), else the
    /// first of `categories` that is one of the plan's cohorts, else `--cohort`, else none
    /// (`""`). A name the plan does not have is kept (the events are real; the plan may be
    /// what is wrong) and reported in the notes.
    pub fn cohort<'c>(
        &mut self,
        named: Option<&'c str>,
        categories: &[&'c str],
    ) -> std::borrow::Cow<'c, str> {
        use std::borrow::Cow;
        if let Some(name) = named.map(str::trim).filter(|n| !n.is_empty()) {
            if !self.opts.knows_cohort(name) {
                *self.unknown_cohorts.entry(name.to_string()).or_default() += 1;
            }
            return Cow::Borrowed(name);
        }
        if !self.opts.cohorts.is_empty() {
            if let Some(c) = categories
                .iter()
                .map(|c| c.trim())
                .find(|c| self.opts.knows_cohort(c))
            {
                return Cow::Borrowed(c);
            }
        }
        match &self.opts.default_cohort {
            Some(c) => Cow::Owned(c.clone()),
            None => Cow::Borrowed(""),
        }
    }

    fn finish(&mut self) {
        self.outcome.days = std::mem::take(&mut self.days).into_iter().collect();
        for (name, n) in std::mem::take(&mut self.unknown_cohorts) {
            self.outcome.notes.push(format!(
                "{} named the cohort `{name}`, which the plan does not have (cohorts: {}): counted under that name",
                crate::words::count(usize::try_from(n).unwrap_or(usize::MAX), "event", "events"),
                self.opts.cohort_list()
            ));
        }
        if self.outcome.without_cohort > 0 {
            self.outcome.notes.push(format!(
                "{} named no cohort (no `{}` field{}): counted under the cohort \"\"; give --cohort NAME when a file holds one cohort",
                crate::words::count(
                    usize::try_from(self.outcome.without_cohort).unwrap_or(usize::MAX),
                    "event",
                    "events"
                ),
                self.opts.cohort_field,
                if self.outcome.kind == EvidenceKind::SendGrid {
                    " and no category named after a cohort"
                } else {
                    ""
                }
            ));
        }
    }
}

/// A serde_json error's message without its position (the record's line is reported instead).
pub(crate) fn json_message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rsplit_once(" at line ") {
        Some((message, _)) => message.to_string(),
        None => text,
    }
}

/// What the parsers' tests share: a file in a fresh history, imported, and the rows it left.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// A fresh history in a temporary directory.
    pub fn history() -> (tempfile::TempDir, History) {
        let dir = tempfile::tempdir().unwrap();
        let history = History::open_dir(&dir.path().join("plan.state")).unwrap();
        (dir, history)
    }

    /// The options of the warmup-import test plan: Eastern time, three cohorts.
    pub fn opts() -> ImportOptions {
        ImportOptions {
            utc_offset_minutes: -300,
            cohorts: vec!["engaged-30d".into(), "engaged-90d".into(), "rest".into()],
            ..ImportOptions::default()
        }
    }

    /// Writes `text` as `name` in `dir` and imports it.
    pub fn import(
        dir: &tempfile::TempDir,
        history: &mut History,
        name: &str,
        text: &str,
        kind: Option<EvidenceKind>,
        opts: &ImportOptions,
    ) -> Result<FileOutcome, ImportError> {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        import_file(history, &path, kind, opts)
    }

    /// `daily` rows of `source` as `day cohort provider: sent delivered hard soft complaints
    /// deferrals blocks opens clicks` (`-` for NULL), sorted.
    pub fn daily(history: &History, source: &str) -> Vec<String> {
        let mut stmt = history
            .conn()
            .prepare(
                "SELECT day, cohort, provider, sent, delivered, hard_bounces, soft_bounces,
                 complaints, deferrals, blocks, opens, clicks FROM daily WHERE source = ?1
                 ORDER BY day, cohort, provider",
            )
            .unwrap();
        let rows = stmt
            .query_map([source], |r| {
                let mut counts = Vec::new();
                for i in 3..12 {
                    counts.push(
                        r.get::<_, Option<i64>>(i)?
                            .map_or("-".to_string(), |n| n.to_string()),
                    );
                }
                Ok(format!(
                    "{} {} {}: {}",
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    counts.join(" ")
                ))
            })
            .unwrap();
        rows.map(Result::unwrap).collect()
    }

    /// The problems as `line: message`.
    pub fn problems(outcome: &FileOutcome) -> Vec<String> {
        outcome
            .problems
            .iter()
            .map(|p| format!("{}: {}", p.line, p.message))
            .collect()
    }
}
