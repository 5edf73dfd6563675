//! Importing DMARC aggregate reports (RFC 7489, RFC 9990) and SMTP TLS reports (RFC 8460) into
//! a plan's history, so what receivers saw of a domain's mail can be set against its migration.
//!
//! A file may hold one report or many, in any container receivers and mail archives use — XML,
//! JSON, gzip (also gzip in gzip), zip, a report email, an mbox, a Maildir (see [`container`]) —
//! and is recognised by its content, never its name. Rules: each file is imported in one
//! `BEGIN IMMEDIATE` transaction (a crash leaves all of it or none of it) and each report in a
//! savepoint inside it (a report that breaks half-way leaves none of its records). A file is
//! known by the SHA-256 of its bytes: one already in `imports` counts nothing again. A report is
//! known by its reporter and id (`org_name`, `report_id`): the same report in another file or
//! container is a duplicate and counts once. A report or record that cannot be read is a
//! [`Problem`] at its place in the file (message, attachment, zip entry, line, record) and
//! counted as rejected; the file's other reports are imported. A file nothing could be imported
//! from is not recorded as imported, so its problems are reported again next time. What cannot
//! be read at all — not a regular file, over the `feedback` cap, of no report format, changed
//! while it was read (its size or modification time) — is an [`ImportError`] naming the file.
//! Many files at once ([`import_paths`]) are read and parsed ahead on worker threads
//! (`prefetch`) and stored by one writer in the order named, with the same outcome, while a
//! checkpointer thread copies each committed batch into the database.

pub mod container;
pub mod dmarc;
mod prefetch;
pub mod sources;
pub mod summary;
pub mod tls;

use crate::files::FileKind;
use crate::history::{History, HistoryError};
use rusqlite::{params, OptionalExtension};
use serde::Serialize;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

pub use crate::import::ImportError;

/// Problems kept per file (all are counted in `rejected`).
pub const MAX_PROBLEMS: usize = crate::warmup::import::MAX_PROBLEMS;

/// How long an import waits for another process's import to finish.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// What an import may read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportOptions {
    /// The most one report may decompress to (gzip, zip): a zip bomb stops here.
    pub max_report_bytes: u64,
    /// Threads reading small files ahead in [`import_paths`]: `None` for one per core (at most
    /// four), `Some(0)` for none. The outcome is the same either way.
    pub workers: Option<usize>,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            max_report_bytes: 1 << 30,
            workers: None,
        }
    }
}

/// A report or record that was not imported, and where it is in the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// `message 3 (line 120), attachment report.xml.gz, record 7 (line 40)`; empty for the
    /// file as a whole.
    pub at: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.at.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.at, self.message)
        }
    }
}

/// What importing one file did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileOutcome {
    /// As named (a path that is not UTF-8 is written with U+FFFD in JSON).
    #[serde(serialize_with = "crate::output::lossy_path")]
    pub path: PathBuf,
    pub sha256: String,
    /// When the same content was imported before (RFC 3339): then nothing was counted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub already_imported: Option<String>,
    /// Reports stored: DMARC and TLS.
    pub reports: u64,
    /// DMARC aggregate reports stored.
    pub dmarc_reports: u64,
    /// SMTP TLS reports stored.
    pub tls_reports: u64,
    /// DMARC rows and TLS policies stored.
    pub records: u64,
    /// Messages the stored DMARC rows count (the sum of their counts).
    pub messages: u64,
    /// Reports already in the history (from an earlier file, or earlier in this one).
    pub duplicates: u64,
    /// Reports and records not imported; each has a problem.
    pub rejected: u64,
    /// The first [`MAX_PROBLEMS`] problems.
    pub problems: Vec<Problem>,
    /// What is worth knowing that is not a rejection (values cut, bytes replaced).
    pub notes: Vec<String>,
}

impl FileOutcome {
    fn new(path: &Path, sha256: String) -> FileOutcome {
        FileOutcome {
            path: path.to_path_buf(),
            sha256,
            already_imported: None,
            reports: 0,
            dmarc_reports: 0,
            tls_reports: 0,
            records: 0,
            messages: 0,
            duplicates: 0,
            rejected: 0,
            problems: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// The kind recorded in `imports`: `dmarc`, `tls-rpt` or both.
    pub fn kind(&self) -> &'static str {
        match (self.dmarc_reports > 0, self.tls_reports > 0) {
            (true, true) => "dmarc+tls-rpt",
            (false, true) => "tls-rpt",
            _ => "dmarc",
        }
    }
}

/// Files imported per transaction by [`import_paths`]: each file is still all or nothing (a
/// savepoint), and a batch commits once, since a commit per small report file costs more than
/// parsing it.
const BATCH: usize = 256;

/// Imports every file named; a directory stands for its files (a Maildir for the messages in
/// its `cur/` and `new/`, another directory for the regular files in it, not recursing). Each
/// file is all or nothing; files are committed 256 at a time, so an import that is killed leaves
/// every file of the batch it was in out, and importing again is safe. Small files are read and
/// parsed ahead on worker threads; they are stored in the order named.
pub fn import_paths(
    history: &mut History,
    paths: &[PathBuf],
    opts: &ImportOptions,
) -> Vec<Result<FileOutcome, ImportError>> {
    match import_paths_opening(|| Ok::<_, std::convert::Infallible>(history), paths, opts) {
        Ok(results) => results,
        Err(never) => match never {},
    }
}

/// [`import_paths`] into the history `open` gives, called once the workers are reading the
/// first files: opening a history (and whatever the caller checks first, such as the plan)
/// takes a few milliseconds that they need not wait for. When `open` fails, nothing is
/// imported and its error is returned.
pub fn import_paths_opening<H, E>(
    open: impl FnOnce() -> Result<H, E>,
    paths: &[PathBuf],
    opts: &ImportOptions,
) -> Result<Vec<Result<FileOutcome, ImportError>>, E>
where
    H: std::borrow::BorrowMut<History>,
{
    // The files in order, and the paths that could not be listed, after the files before them.
    let mut files: Vec<PathBuf> = Vec::new();
    let mut unlisted: Vec<(usize, ImportError)> = Vec::new();
    for path in paths {
        match container::expand(path) {
            Ok(found) => files.extend(found),
            Err(e) => unlisted.push((files.len(), e)),
        }
    }
    let workers = prefetch::workers(opts, files.len());
    // Only workers skip files by digest before the write lock is taken.
    let known = std::sync::OnceLock::new();
    // Made once: growing it a file at a time reallocates into fresh memory every doubling.
    let mut results = Vec::with_capacity(files.len() + unlisted.len());
    let mut unlisted = unlisted.into_iter().peekable();
    let mut writer = Writer::default();
    let mut stored = 0;
    let start = || {
        open().map(|mut history| {
            // A lock that cannot be waited for shows in the first file's `BEGIN IMMEDIATE`.
            let _ = ready_to_import(history.borrow_mut().conn());
            if workers > 0 {
                let _ = known.set(history.borrow().import_digests().unwrap_or_default());
            }
            history
        })
    };
    // Each file is stored as soon as it is ready, so the workers read ahead while it is.
    let opened = prefetch::each(
        &files,
        workers,
        opts,
        &known,
        start,
        |opened, path, prepared| {
            let Ok(history) = opened else {
                return std::ops::ControlFlow::Break(());
            };
            while let Some((_, e)) = unlisted.next_if(|(before, _)| *before <= stored) {
                results.push(Err(e));
            }
            writer.store(history.borrow(), path, prepared, opts, &mut results);
            stored += 1;
            std::ops::ControlFlow::Continue(())
        },
    );
    let history = opened?;
    writer.finish(history.borrow(), &mut results);
    results.extend(unlisted.map(|(_, e)| Err(e)));
    Ok(results)
}

/// Sets the connection up for an import: waits for another writer's lock rather than failing,
/// and keeps room for every statement an import repeats (rows are inserted by five of them).
fn ready_to_import(conn: &rusqlite::Connection) -> Result<(), rusqlite::Error> {
    conn.set_prepared_statement_cache_capacity(STATEMENTS);
    conn.busy_timeout(LOCK_WAIT)
}

/// Stores files one by one in transactions of [`BATCH`] files, each file in a savepoint.
/// The transaction is begun and committed by hand (not a [`rusqlite::Transaction`], which
/// would hold the history borrowed) so that it stays open between the files handed over.
#[derive(Default)]
struct Writer {
    /// Where the open transaction's files begin in the results.
    open_from: Option<usize>,
    /// Copies each committed batch into the database while the next one is stored; started
    /// with the first file (`None` inside when it could not be).
    checkpointer: std::cell::OnceCell<Option<Checkpointer>>,
}

/// A thread with its own connection that checkpoints the WAL after each batch is committed.
/// SQLite copies committed pages into the database (and waits for two fsyncs) whenever the
/// WAL passes 1,000 pages, and when the last connection closes; done by the importing thread,
/// the pipeline's critical path, that stalled it for every few hundred reports and again at
/// the end. A passive checkpoint on another connection runs beside the writer and takes no
/// lock it needs, so the writer only turns its own automatic checkpoints off meanwhile.
struct Checkpointer {
    nudge: std::sync::mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Checkpointer {
    /// `None` when the database cannot be opened a second time or the thread not started:
    /// then SQLite's own checkpoints stay on, as without one.
    fn start(history: &History) -> Option<Checkpointer> {
        let conn = rusqlite::Connection::open_with_flags(
            history.path(),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .ok()?;
        let (nudge, nudged) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("checkpoint".into())
            .spawn(move || {
                for () in nudged {
                    // A checkpoint that cannot run now (a reader holds old pages) is simply
                    // left to the next one, or to the close.
                    let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                }
            })
            .ok()?;
        // Only once the thread runs; if this fails, dropping `nudge` ends the thread.
        history
            .conn()
            .pragma_update(None, "wal_autocheckpoint", 0)
            .ok()?;
        Some(Checkpointer { nudge, thread })
    }

    fn nudge(&self) {
        let _ = self.nudge.send(());
    }

    /// Waits for the last checkpoint and gives the writer its automatic checkpoints back.
    fn finish(self, history: &History) {
        let Checkpointer { nudge, thread } = self;
        drop(nudge);
        let _ = thread.join();
        let _ = history
            .conn()
            .pragma_update(None, "wal_autocheckpoint", DEFAULT_AUTOCHECKPOINT);
    }
}

/// SQLite's default `wal_autocheckpoint`, in pages.
const DEFAULT_AUTOCHECKPOINT: i64 = 1000;

impl Writer {
    fn store(
        &mut self,
        history: &History,
        path: &Path,
        prepared: prefetch::Prepared,
        opts: &ImportOptions,
        results: &mut Vec<Result<FileOutcome, ImportError>>,
    ) {
        self.checkpointer
            .get_or_init(|| Checkpointer::start(history));
        let conn = history.conn();
        let database = history.path();
        let first = match self.open_from {
            Some(first) => first,
            None => {
                if let Err(e) = run_cached(conn, &["BEGIN IMMEDIATE"]) {
                    results.push(Err(sql_error(path, database, e)));
                    return;
                }
                *self.open_from.insert(results.len())
            }
        };
        let digested = match prepared {
            prefetch::Prepared::Ready(digested) => Ok(*digested),
            prefetch::Prepared::Later => Digested::of(path),
        };
        results.push(digested.and_then(|file| import_in(conn, database, path, opts, file)));
        if results.len() - first >= BATCH {
            self.commit(history, results);
        }
    }

    /// Commits the open transaction; when that fails, nothing of it was kept, and each of its
    /// files that looked imported says so.
    fn commit(&mut self, history: &History, results: &mut [Result<FileOutcome, ImportError>]) {
        let Some(first) = self.open_from.take() else {
            return;
        };
        let conn = history.conn();
        if let Err(e) = run_cached(conn, &["COMMIT"]) {
            let _ = conn.execute_batch("ROLLBACK");
            for r in results.iter_mut().skip(first) {
                if let Ok(o) = r {
                    *r = Err(sql_error(&o.path, history.path(), &e));
                }
            }
        } else if let Some(Some(checkpointer)) = self.checkpointer.get() {
            checkpointer.nudge();
        }
    }

    /// Commits what is open and stops the checkpointer.
    fn finish(&mut self, history: &History, results: &mut [Result<FileOutcome, ImportError>]) {
        self.commit(history, results);
        if let Some(Some(checkpointer)) = self.checkpointer.take() {
            checkpointer.finish(history);
        }
    }
}

/// Imports one file in one transaction.
pub fn import_file(
    history: &mut History,
    path: &Path,
    opts: &ImportOptions,
) -> Result<FileOutcome, ImportError> {
    let history_error = |source: HistoryError| ImportError::History {
        path: path.to_path_buf(),
        source,
    };
    // The common case, a file imported before, needs no write lock.
    let digested = Digested::of(path)?;
    if let Some(earlier) = history.import_of(&digested.sha256).map_err(history_error)? {
        let mut outcome = FileOutcome::new(path, digested.sha256);
        outcome.already_imported = Some(earlier.imported_at);
        return Ok(outcome);
    }
    ready_to_import(history.conn()).map_err(|e| history_error(history.sql_error(e)))?;
    let database = history.path().to_path_buf();
    let tx = history.write().map_err(history_error)?;
    let outcome = import_in(&tx, &database, path, opts, digested)?;
    tx.commit().map_err(|e| sql_error(path, &database, e))?;
    Ok(outcome)
}

/// A file whose bytes were hashed, and what reading them found when a worker read them ahead.
struct Digested {
    sha256: String,
    /// The file's size and modification time when it was hashed.
    print: container::Fingerprint,
    /// The file's reports, rejections and TLS JSON in order; `None` when the importing thread
    /// is to read the file itself.
    actions: Option<Vec<prefetch::Action>>,
}

impl Digested {
    /// The file hashed here, to be read here.
    fn of(path: &Path) -> Result<Digested, ImportError> {
        let (sha256, print) = container::digest(path)?;
        Ok(Digested {
            sha256,
            print,
            actions: None,
        })
    }
}

/// Imports one file inside the caller's transaction, in a savepoint: all of it or nothing.
fn import_in(
    conn: &rusqlite::Connection,
    database: &Path,
    path: &Path,
    opts: &ImportOptions,
    file: Digested,
) -> Result<FileOutcome, ImportError> {
    let Digested {
        sha256,
        print,
        actions,
    } = file;
    let mut outcome = FileOutcome::new(path, sha256);
    let sql = |e: rusqlite::Error| sql_error(path, database, e);
    // Another process (or an earlier file of this batch) may have imported the same content.
    let earlier: Option<String> = conn
        .prepare_cached("SELECT imported_at FROM imports WHERE sha256 = ?1")
        .and_then(|mut s| s.query_row([&outcome.sha256], |r| r.get(0)).optional())
        .map_err(sql)?;
    if let Some(when) = earlier {
        outcome.already_imported = Some(when);
        return Ok(outcome);
    }
    run_cached(conn, &["SAVEPOINT file"]).map_err(sql)?;
    let result = import_body(conn, database, path, opts, outcome, print, actions);
    let keep = matches!(&result, Ok((_, true)));
    let end: &[&str] = if keep {
        &["RELEASE file"]
    } else {
        &["ROLLBACK TO file", "RELEASE file"]
    };
    run_cached(conn, end).map_err(sql)?;
    result.map(|(outcome, _)| outcome)
}

/// The file's reports, and whether anything of it is to be kept.
fn import_body(
    conn: &rusqlite::Connection,
    database: &Path,
    path: &Path,
    opts: &ImportOptions,
    outcome: FileOutcome,
    print: container::Fingerprint,
    actions: Option<Vec<prefetch::Action>>,
) -> Result<(FileOutcome, bool), ImportError> {
    let sql = |e: rusqlite::Error| sql_error(path, database, e);
    conn.prepare_cached(
        "INSERT INTO imports (sha256, path, kind, imported_at, records, duplicates, rejected)
         VALUES (?1, ?2, 'dmarc', ?3, 0, 0, 0)",
    )
    .and_then(|mut insert| {
        insert.execute(params![
            outcome.sha256,
            path.display().to_string(),
            crate::history::now()
        ])
    })
    .map_err(sql)?;
    let import_id = conn.last_insert_rowid();
    let mut session = Session {
        tx: conn,
        path,
        database,
        import_id,
        opts,
        outcome,
    };
    match actions {
        // The worker compared the fingerprints around its reading.
        Some(actions) => session.replay(actions)?,
        None => {
            container::import(&mut session)?;
            // The digest must be of what was read: a file still being written is refused,
            // not recorded under the digest of an earlier state.
            if container::fingerprint(path)? != print {
                return Err(ImportError::Changed {
                    path: path.to_path_buf(),
                });
            }
        }
    }
    let outcome = session.outcome;
    if outcome.reports == 0 && outcome.duplicates == 0 {
        // Nothing of it is kept: not recorded, so its problems are reported again next time.
        return Ok((outcome, false));
    }
    conn.prepare_cached(
        "UPDATE imports SET kind = ?2, records = ?3, duplicates = ?4, rejected = ?5 WHERE id = ?1",
    )
    .and_then(|mut update| {
        update.execute(params![
            import_id,
            outcome.kind(),
            sql_int(outcome.records),
            sql_int(outcome.duplicates),
            sql_int(outcome.rejected)
        ])
    })
    .map_err(sql)?;
    Ok((outcome, true))
}

/// Prepared statements kept per connection while importing.
const STATEMENTS: usize = 32;

/// DMARC rows inserted by one statement (a report's rows are many, and a statement per row
/// costs more than its row).
const ROWS_AT_ONCE: usize = 16;

/// Inserts `rows` (a power of two up to [`ROWS_AT_ONCE`] of them, all checked) into
/// `dmarc_rows`.
fn insert_rows(
    conn: &rusqlite::Connection,
    report: i64,
    rows: &[dmarc::Row],
) -> Result<(), rusqlite::Error> {
    // One statement text per size, made once.
    static SQL: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let texts = SQL.get_or_init(|| {
        let tuple = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
        (0..=ROWS_AT_ONCE)
            .map(|n| {
                format!(
                    "INSERT INTO dmarc_rows (report, source_ip, count, disposition, dkim, spf,
                     header_from, envelope_from, envelope_to, dkim_results, spf_results, reasons)
                     VALUES {}",
                    vec![tuple; n].join(", ")
                )
            })
            .collect()
    });
    let Some(sql) = texts.get(rows.len()).filter(|_| !rows.is_empty()) else {
        return Ok(());
    };
    let mut insert = conn.prepare_cached(sql)?;
    let mut at = 0;
    let mut bind = |value: &dyn rusqlite::ToSql| {
        at += 1;
        insert.raw_bind_parameter(at, value)
    };
    for row in rows {
        // Only rows that were checked are pending.
        let Ok((ip, count)) = &row.checked else {
            continue;
        };
        bind(&report)?;
        bind(ip)?;
        bind(&sql_int(*count))?;
        bind(&row.disposition)?;
        bind(&row.dkim)?;
        bind(&row.spf)?;
        bind(&row.header_from)?;
        bind(&row.envelope_from)?;
        bind(&row.envelope_to)?;
        bind(&row.dkim_results)?;
        bind(&row.spf_results)?;
        bind(&row.reasons)?;
    }
    insert.raw_execute()?;
    Ok(())
}

/// Runs each statement, prepared once per connection (savepoints are taken twice per file).
fn run_cached(conn: &rusqlite::Connection, statements: &[&str]) -> Result<(), rusqlite::Error> {
    for statement in statements {
        conn.prepare_cached(statement)?.execute([])?;
    }
    Ok(())
}

fn sql_error(path: &Path, database: &Path, e: impl std::fmt::Display) -> ImportError {
    ImportError::History {
        path: path.to_path_buf(),
        source: HistoryError::Sql {
            path: database.to_path_buf(),
            message: e.to_string(),
        },
    }
}

fn sql_int(n: u64) -> i64 {
    crate::warmup::import::sql_int(n)
}

/// `at, what` (or `what` when `at` is the file itself).
pub(crate) fn within(at: &str, what: impl std::fmt::Display) -> String {
    if at.is_empty() {
        what.to_string()
    } else {
        format!("{at}, {what}")
    }
}

/// One file being imported: its transaction and what has been found so far.
pub(crate) struct Session<'a> {
    tx: &'a rusqlite::Connection,
    pub path: &'a Path,
    database: &'a Path,
    import_id: i64,
    pub opts: &'a ImportOptions,
    pub outcome: FileOutcome,
}

impl Session<'_> {
    fn sql(&self, e: rusqlite::Error) -> ImportError {
        sql_error(self.path, self.database, e)
    }

    /// A report or record not imported.
    pub fn reject(&mut self, at: &str, message: impl Into<String>) {
        self.outcome.rejected += 1;
        if self.outcome.problems.len() < MAX_PROBLEMS {
            self.outcome.problems.push(Problem {
                at: at.to_string(),
                message: message.into(),
            });
        }
    }

    pub fn note(&mut self, note: String) {
        if self.outcome.notes.len() < MAX_PROBLEMS {
            self.outcome.notes.push(note);
        }
    }

    /// Stores what a worker read ahead, in its order.
    fn replay(&mut self, actions: Vec<prefetch::Action>) -> Result<(), ImportError> {
        for action in actions {
            match action {
                prefetch::Action::Reject { at, message } => self.reject(&at, message),
                prefetch::Action::Dmarc { at, report } => self.stored_dmarc(*report, &at)?,
                prefetch::Action::Tls { at, json } => self.read_tls(&json, &at)?,
            }
        }
        Ok(())
    }

    fn begin_report(&self) -> Result<(), ImportError> {
        run_cached(self.tx, &["SAVEPOINT report"]).map_err(|e| self.sql(e))
    }

    fn end_report(&self, keep: bool) -> Result<(), ImportError> {
        let end: &[&str] = if keep {
            &["RELEASE report"]
        } else {
            &["ROLLBACK TO report", "RELEASE report"]
        };
        run_cached(self.tx, end).map_err(|e| self.sql(e))
    }

    /// Reads one DMARC aggregate report from `input` and stores it (once). A report of up to
    /// [`dmarc::MAX_IN_MEMORY`] bytes (nearly all) is read whole and parsed without copying;
    /// a larger one, or one whose reading fails, is streamed.
    fn read_dmarc(&mut self, input: &mut dyn Read, at: &str) -> Result<(), ImportError> {
        self.begin_report()?;
        match Head::read(input) {
            Head::Whole(bytes) => {
                let (text, replaced) = dmarc::to_text(&bytes);
                self.store_dmarc(&mut dmarc::Parser::in_memory(&text, replaced), at, true)
            }
            Head::Larger(bytes) => {
                let input = io::Cursor::new(bytes).chain(input);
                self.store_dmarc(&mut dmarc::Parser::new(input), at, true)
            }
            Head::Failed(bytes, e) => self.store_dmarc(&mut Head::failed(bytes, e), at, true),
        }
    }

    /// Stores a DMARC aggregate report read ahead of time.
    fn stored_dmarc(&mut self, report: dmarc::Parsed, at: &str) -> Result<(), ImportError> {
        // A report read to its end without an error cannot break half-way: it needs no
        // savepoint of its own (an SQL error fails the whole file, in the file's).
        let whole = report.is_whole();
        if !whole {
            self.begin_report()?;
        }
        let mut report = report;
        self.store_dmarc(&mut report, at, !whole)
    }

    /// Stores the report `parser` reads (once), inside the savepoint the caller began
    /// (`savepoint`) or needing none.
    fn store_dmarc<P: dmarc::ReadReport>(
        &mut self,
        parser: &mut P,
        at: &str,
        savepoint: bool,
    ) -> Result<(), ImportError> {
        let stored = self.dmarc_report(parser, at);
        let (truncated, replaced) = (parser.truncated(), parser.replaced());
        let end = |session: &Session<'_>, keep: bool| {
            if savepoint {
                session.end_report(keep)
            } else {
                Ok(())
            }
        };
        match stored {
            Ok(Some((rejects, more))) => {
                end(self, true)?;
                for (where_, why) in rejects {
                    self.reject(&where_, why);
                }
                self.outcome.rejected += more;
                let n = |x: u64| usize::try_from(x).unwrap_or(usize::MAX);
                if truncated > 0 {
                    self.note(format!(
                        "{}: {} over {} bytes (or auth results over {} a record) {} cut",
                        display_at(at),
                        crate::words::count(n(truncated), "value", "values"),
                        dmarc::MAX_TEXT,
                        dmarc::MAX_AUTH_RESULTS,
                        crate::words::agree(n(truncated), "was", "were"),
                    ));
                }
                if replaced > 0 {
                    self.note(format!(
                        "{}: {} that {} not UTF-8 {} read as U+FFFD",
                        display_at(at),
                        crate::words::count(n(replaced), "byte sequence", "byte sequences"),
                        crate::words::agree(n(replaced), "is", "are"),
                        crate::words::agree(n(replaced), "was", "were"),
                    ));
                }
            }
            Ok(None) => {
                end(self, true)?;
                self.outcome.duplicates += 1;
            }
            Err(Stop::Parse(e)) => {
                end(self, false)?;
                self.reject(
                    &within(at, format!("line {}", e.line)),
                    format!("report not imported: {}", e.message),
                );
            }
            Err(Stop::Sql(e)) => return Err(self.sql(e)),
        }
        Ok(())
    }

    /// Stores the report; `None` when it was stored before. The rejected records (the first
    /// [`MAX_PROBLEMS`] with their place and reason, and how many more) come back to be counted
    /// only if the report is kept.
    fn dmarc_report<P: dmarc::ReadReport>(
        &mut self,
        parser: &mut P,
        at: &str,
    ) -> Result<Option<RecordRejects>, Stop> {
        let header = parser.header()?;
        let m = &header.metadata;
        let p = &header.policy;
        // A report already stored (same reporter, same id) is a duplicate: the insert does
        // nothing for it, and only for it (any other constraint still fails the statement).
        let inserted = self
            .tx
            .prepare_cached(
                "INSERT INTO dmarc_reports (org_name, report_id, email, domain, begin, end, p, sp,
                 np, pct, adkim, aspf, flavour, import_id, rows, messages)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, 0, 0)
                 ON CONFLICT (org_name, report_id) DO NOTHING",
            )?
            .execute(params![
                m.org_name,
                m.report_id,
                m.email,
                p.domain,
                m.begin,
                m.end,
                p.p,
                p.sp,
                p.np,
                p.pct,
                p.adkim,
                p.aspf,
                header.flavour.id(),
                self.import_id
            ])?;
        if inserted == 0 {
            return Ok(None);
        }
        let report = self.tx.last_insert_rowid();
        let (mut rows, mut messages) = (0u64, 0u64);
        let (mut rejects, mut more) = (Vec::new(), 0u64);
        let mut pending: Vec<dmarc::Row> = Vec::with_capacity(ROWS_AT_ONCE);
        while let Some(row) = parser.next_row()? {
            let count = match &row.checked {
                Ok((_, count)) => *count,
                Err(why) => {
                    if rejects.len() < MAX_PROBLEMS {
                        rejects.push((
                            within(at, format!("record {} (line {})", row.index, row.line)),
                            format!("record not imported: {why}"),
                        ));
                    } else {
                        more += 1;
                    }
                    continue;
                }
            };
            rows += 1;
            messages = messages.saturating_add(count);
            pending.push(row);
            if pending.len() == ROWS_AT_ONCE {
                insert_rows(self.tx, report, &pending)?;
                pending.clear();
            }
        }
        // The rest in halves, quarters …: 20 rows are two statements.
        let mut rest: &[dmarc::Row] = &pending;
        let mut size = ROWS_AT_ONCE / 2;
        while !rest.is_empty() && size > 0 {
            if rest.len() >= size {
                let (now, later) = rest.split_at(size);
                insert_rows(self.tx, report, now)?;
                rest = later;
            }
            size /= 2;
        }
        self.tx
            .prepare_cached("UPDATE dmarc_reports SET rows = ?2, messages = ?3 WHERE id = ?1")?
            .execute(params![report, sql_int(rows), sql_int(messages)])?;
        self.outcome.dmarc_reports += 1;
        self.outcome.reports += 1;
        self.outcome.records += rows;
        self.outcome.messages = self.outcome.messages.saturating_add(messages);
        Ok(Some((rejects, more)))
    }

    /// Parses one TLS report's JSON and stores it (once).
    fn read_tls(&mut self, bytes: &[u8], at: &str) -> Result<(), ImportError> {
        let report = match tls::parse(bytes) {
            Ok(report) => report,
            Err(why) => {
                self.reject(at, format!("report not imported: {why}"));
                return Ok(());
            }
        };
        self.store_tls(&report).map_err(|e| self.sql(e))
    }

    fn store_tls(&mut self, report: &tls::TlsReport) -> Result<(), rusqlite::Error> {
        // As for DMARC reports: a report already stored is a duplicate, found by its insert.
        let inserted = self.tx.execute(
            "INSERT INTO tls_reports (org_name, report_id, contact, begin, end, import_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (org_name, report_id) DO NOTHING",
            params![
                report.org_name,
                report.report_id,
                report.contact,
                report.begin,
                report.end,
                self.import_id
            ],
        )?;
        if inserted == 0 {
            self.outcome.duplicates += 1;
            return Ok(());
        }
        let id = self.tx.last_insert_rowid();
        let mut insert = self.tx.prepare_cached(
            "INSERT INTO tls_policies (report, policy_type, policy_domain, mx_hosts,
             policy_strings, success, failure, failure_details)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        for p in &report.policies {
            insert.execute(params![
                id,
                p.policy_type,
                p.policy_domain,
                p.mx_hosts,
                p.policy_strings,
                sql_int(p.success),
                sql_int(p.failure),
                p.failure_details
            ])?;
        }
        self.outcome.tls_reports += 1;
        self.outcome.reports += 1;
        self.outcome.records += report.policies.len() as u64;
        Ok(())
    }
}

impl container::Sink for Session<'_> {
    fn path(&self) -> &Path {
        self.path
    }

    fn max_report_bytes(&self) -> u64 {
        self.opts.max_report_bytes
    }

    fn reject(&mut self, at: &str, message: String) {
        Session::reject(self, at, message);
    }

    fn dmarc(&mut self, input: &mut dyn Read, at: &str) -> Result<(), ImportError> {
        self.read_dmarc(input, at)
    }

    fn tls(&mut self, bytes: &[u8], at: &str) -> Result<(), ImportError> {
        self.read_tls(bytes, at)
    }
}

/// A DMARC report's XML as first read: whole (up to [`dmarc::MAX_IN_MEMORY`] bytes, nearly
/// every report), the start of a larger one, or what was read before the reading failed.
enum Head {
    Whole(Vec<u8>),
    Larger(Vec<u8>),
    Failed(Vec<u8>, io::Error),
}

impl Head {
    fn read(input: &mut dyn Read) -> Head {
        let mut bytes = Vec::new();
        let limit = dmarc::MAX_IN_MEMORY as u64 + 1;
        match input.take(limit).read_to_end(&mut bytes) {
            Ok(n) if n <= dmarc::MAX_IN_MEMORY => Head::Whole(bytes),
            Ok(_) => Head::Larger(bytes),
            Err(e) => Head::Failed(bytes, e),
        }
    }

    /// The streaming reader over what was read, then the error, which it reports at its line.
    fn failed(
        bytes: Vec<u8>,
        e: io::Error,
    ) -> dmarc::Parser<dmarc::Streamed<io::Chain<io::Cursor<Vec<u8>>, Failing>>> {
        dmarc::Parser::new(io::Cursor::new(bytes).chain(Failing(Some(e))))
    }
}

/// A reader that fails with the error it holds, once: the rest of an input whose reading failed.
struct Failing(Option<io::Error>);

impl Read for Failing {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        self.0.take().map_or(Ok(0), Err)
    }
}

/// `at` for a note (`the report` when it is the file itself).
fn display_at(at: &str) -> &str {
    if at.is_empty() {
        "the report"
    } else {
        at
    }
}

/// Records of a report that were not imported: place and reason of the first ones, and how
/// many more.
type RecordRejects = (Vec<(String, String)>, u64);

/// Why storing a report stopped.
enum Stop {
    Parse(dmarc::ParseError),
    Sql(rusqlite::Error),
}

impl From<dmarc::ParseError> for Stop {
    fn from(e: dmarc::ParseError) -> Stop {
        Stop::Parse(e)
    }
}

impl From<rusqlite::Error> for Stop {
    fn from(e: rusqlite::Error) -> Stop {
        Stop::Sql(e)
    }
}

/// The file's kind for errors about it.
pub(crate) const KIND: FileKind = FileKind::Feedback;
