//! The history of a plan: one SQLite database in the plan's state directory that keeps every
//! gate opening and decision, every attestation, all imported warmup evidence and the DMARC
//! aggregate and SMTP TLS reports imported for it.
//!
//! A plan's state directory defaults to `<plan-stem>.state/` beside the plan (`--state DIR`);
//! the database is `history.db` in it. The schema grows by numbered migrations (`PRAGMA
//! user_version`), each applied in its own transaction, so a database from an older mailshift is
//! brought up to date when opened and one from a newer mailshift is refused rather than
//! misread. Two processes may use it at once (two CI jobs): WAL journaling lets readers go on
//! while one writes, writers wait for each other (`busy_timeout`), and every change that belongs
//! together — an import, a gate opening — is one `BEGIN IMMEDIATE` transaction, so a crash leaves
//! either all of it or none of it.

use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Problems with the history database, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("history {path}: {message}")]
    Sql { path: PathBuf, message: String },
    #[error(
        "history {path} has schema version {found}, newer than this mailshift knows ({known}): use a newer mailshift"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("{0}")]
    File(#[from] crate::files::FileError),
}

/// The migrations, in order: entry `i` brings the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: gate openings and decisions, attestations, imports and the warmup evidence.
    r#"
    CREATE TABLE openings (
        stage TEXT PRIMARY KEY,
        plan TEXT NOT NULL,
        opened_at TEXT NOT NULL,
        records_digest TEXT,
        records_seen INTEGER NOT NULL DEFAULT 0,
        forced TEXT,
        mailshift TEXT
    );
    CREATE TABLE decisions (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        kind TEXT NOT NULL,
        subject TEXT NOT NULL,
        decision TEXT NOT NULL,
        summary TEXT NOT NULL,
        digest TEXT,
        detail TEXT
    );
    CREATE INDEX decisions_at ON decisions(at);
    CREATE TABLE attestations (
        id INTEGER PRIMARY KEY,
        step TEXT NOT NULL,
        by TEXT NOT NULL,
        note TEXT NOT NULL,
        at TEXT NOT NULL
    );
    CREATE TABLE imports (
        id INTEGER PRIMARY KEY,
        sha256 TEXT NOT NULL UNIQUE,
        path TEXT NOT NULL,
        kind TEXT NOT NULL,
        imported_at TEXT NOT NULL,
        records INTEGER NOT NULL,
        duplicates INTEGER NOT NULL,
        rejected INTEGER NOT NULL
    );
    -- Delivery counts per day, cohort and mailbox provider. `source` keeps a metrics file's
    -- totals (the latest import of a day replaces them) apart from counts aggregated from
    -- platform events (which add up, each event once).
    CREATE TABLE daily (
        day TEXT NOT NULL,
        cohort TEXT NOT NULL,
        provider TEXT NOT NULL,
        source TEXT NOT NULL,
        sent INTEGER NOT NULL DEFAULT 0,
        delivered INTEGER NOT NULL DEFAULT 0,
        hard_bounces INTEGER NOT NULL DEFAULT 0,
        soft_bounces INTEGER NOT NULL DEFAULT 0,
        complaints INTEGER NOT NULL DEFAULT 0,
        deferrals INTEGER NOT NULL DEFAULT 0,
        blocks INTEGER NOT NULL DEFAULT 0,
        opens INTEGER,
        clicks INTEGER,
        PRIMARY KEY (day, cohort, provider, source)
    );
    -- A 64-bit digest of each platform event's id: the same event in two files counts once.
    CREATE TABLE seen_events (h INTEGER PRIMARY KEY) WITHOUT ROWID;
    CREATE TABLE postmaster (
        day TEXT NOT NULL,
        domain TEXT NOT NULL,
        spam_ratio REAL,
        domain_reputation TEXT,
        ip_reputations TEXT,
        spf_success REAL,
        dkim_success REAL,
        dmarc_success REAL,
        delivery_errors TEXT,
        PRIMARY KEY (day, domain)
    );
    CREATE TABLE snds (
        day TEXT NOT NULL,
        ip TEXT NOT NULL,
        rcpt INTEGER,
        data INTEGER,
        recipients INTEGER,
        filter TEXT,
        complaint_rate TEXT,
        trap_hits INTEGER,
        PRIMARY KEY (day, ip)
    );
    "#,
    // 2: DMARC aggregate reports (RFC 7489, RFC 9990) and SMTP TLS reports (RFC 8460). A
    // report is known by its reporter and id: the same report in two files counts once.
    r#"
    CREATE TABLE dmarc_reports (
        id INTEGER PRIMARY KEY,
        org_name TEXT NOT NULL,
        report_id TEXT NOT NULL,
        email TEXT,
        domain TEXT NOT NULL,
        begin INTEGER,
        end INTEGER,
        p TEXT,
        sp TEXT,
        np TEXT,
        pct INTEGER,
        adkim TEXT,
        aspf TEXT,
        -- `rfc9990` (the dmarc-2.0 namespace or version 2), `rfc7489` (version 1), `unversioned`.
        flavour TEXT NOT NULL,
        import_id INTEGER REFERENCES imports(id),
        rows INTEGER NOT NULL,
        messages INTEGER NOT NULL,
        UNIQUE (org_name, report_id)
    );
    -- One row of a report: a source IP's messages and how they were judged. Result words are
    -- lower case; auth results and override reasons are JSON arrays.
    CREATE TABLE dmarc_rows (
        report INTEGER NOT NULL REFERENCES dmarc_reports(id) ON DELETE CASCADE,
        source_ip TEXT NOT NULL,
        count INTEGER NOT NULL,
        disposition TEXT,
        dkim TEXT,
        spf TEXT,
        header_from TEXT,
        envelope_from TEXT,
        envelope_to TEXT,
        dkim_results TEXT NOT NULL,
        spf_results TEXT NOT NULL,
        reasons TEXT NOT NULL
    );
    CREATE INDEX dmarc_rows_report ON dmarc_rows(report);
    CREATE TABLE tls_reports (
        id INTEGER PRIMARY KEY,
        org_name TEXT NOT NULL,
        report_id TEXT NOT NULL,
        contact TEXT,
        begin INTEGER,
        end INTEGER,
        import_id INTEGER REFERENCES imports(id),
        UNIQUE (org_name, report_id)
    );
    -- One policy of a TLS report: its sessions and, as JSON, its strings and failure details.
    CREATE TABLE tls_policies (
        report INTEGER NOT NULL REFERENCES tls_reports(id) ON DELETE CASCADE,
        policy_type TEXT NOT NULL,
        policy_domain TEXT NOT NULL,
        mx_hosts TEXT NOT NULL,
        policy_strings TEXT NOT NULL,
        success INTEGER NOT NULL,
        failure INTEGER NOT NULL,
        failure_details TEXT NOT NULL
    );
    CREATE INDEX tls_policies_report ON tls_policies(report);
    "#,
    // 3: what each check or gate run read, for drift (the next run says what changed). Only a
    // run that read something different from the one before is kept, and the newest
    // KEPT_OBSERVATIONS per scope.
    r#"
    CREATE TABLE observations (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        scope TEXT NOT NULL,
        digest TEXT NOT NULL,
        observed TEXT NOT NULL
    );
    CREATE INDEX observations_scope ON observations(scope, id);
    -- `check --state DIR`: the latest records read per domain.
    CREATE TABLE check_observations (
        domain TEXT PRIMARY KEY,
        at TEXT NOT NULL,
        observed TEXT NOT NULL
    );
    "#,
    // 4: a DMARC row's auth results as arrays, `[domain, selector, result]` for DKIM and
    // `[domain, scope, result]` for SPF, instead of objects naming each field: the names were
    // a fifth of the database, written and checkpointed with every report.
    r#"
    UPDATE dmarc_rows SET
        dkim_results = (
            SELECT json_group_array(json_array(json_extract(value, '$.domain'),
                json_extract(value, '$.selector'), json_extract(value, '$.result')) ORDER BY key)
            FROM json_each(dmarc_rows.dkim_results)),
        spf_results = (
            SELECT json_group_array(json_array(json_extract(value, '$.domain'),
                json_extract(value, '$.scope'), json_extract(value, '$.result')) ORDER BY key)
            FROM json_each(dmarc_rows.spf_results))
    WHERE dkim_results LIKE '[{%' OR spf_results LIKE '[{%';
    "#,
];

/// How many distinct observations are kept per scope.
const KEPT_OBSERVATIONS: i64 = 30;

/// The schema version this mailshift writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The name of the database in a state directory.
pub const DATABASE: &str = "history.db";

/// Where the state of `plan_path` is kept unless `--state` says otherwise:
/// `<plan-stem>.state/` beside the plan.
pub fn default_state_dir(plan_path: &Path) -> PathBuf {
    let mut name = plan_path
        .file_stem()
        .map(|s| s.to_os_string())
        .unwrap_or_default();
    name.push(".state");
    plan_path.with_file_name(name)
}

/// One gate opening.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Opening {
    pub stage: String,
    /// RFC 3339 time the gate opened.
    pub opened_at: String,
    /// The digest of the DNS answers the opening was based on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records_digest: Option<String>,
    #[serde(default)]
    pub records_seen: usize,
    /// The reason given with `--force` when the stage opened out of order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forced: Option<String>,
    /// The mailshift version that opened it (a new version may read records differently).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mailshift: Option<String>,
}

/// One decision kept in the timeline (a gate evaluation, a warmup day).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DecisionRecord {
    pub at: String,
    /// `gate` or `warmup`.
    pub kind: String,
    /// The stage, or the cohort.
    pub subject: String,
    /// `open`, `closed`, `inconclusive`; `advance`, `hold`, `back-off`.
    pub decision: String,
    pub summary: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

/// Who confirmed a step no DNS query can prove, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attestation {
    pub step: String,
    pub by: String,
    pub note: String,
    pub at: String,
}

/// One evidence file that was imported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportRecord {
    pub sha256: String,
    pub path: String,
    pub kind: String,
    pub imported_at: String,
    pub records: u64,
    pub duplicates: u64,
    pub rejected: u64,
}

/// The current time, RFC 3339 to the second.
pub fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// An open history database.
pub struct History {
    conn: Connection,
    path: PathBuf,
}

impl History {
    /// Opens (creating the directory and the database if needed) the history in `dir`.
    pub fn open_dir(dir: &Path) -> Result<History, HistoryError> {
        let path = dir.join(DATABASE);
        match std::fs::metadata(dir) {
            Ok(meta) if !meta.is_dir() => {
                return Err(HistoryError::Sql {
                    path,
                    message: format!("the state directory {} is not a directory", dir.display()),
                })
            }
            Ok(_) => {}
            Err(_) => std::fs::create_dir_all(dir).map_err(|e| HistoryError::Sql {
                path: path.clone(),
                message: format!("cannot create the state directory: {e}"),
            })?,
        }
        History::open(&path)
    }

    /// Opens the history in `dir` when it exists; `None` when there is none yet (nothing is
    /// created: for commands that only read).
    pub fn open_existing(dir: &Path) -> Result<Option<History>, HistoryError> {
        let path = dir.join(DATABASE);
        match std::fs::metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            _ => History::open(&path).map(Some),
        }
    }

    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<History, HistoryError> {
        crate::files::check_regular_or_absent(path, crate::files::FileKind::History)?;
        let sql = |e: rusqlite::Error| HistoryError::Sql {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        let conn = Connection::open(path).map_err(sql)?;
        conn.busy_timeout(OPEN_WAIT).map_err(sql)?;
        use_wal(&conn, OPEN_WAIT).map_err(sql)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(sql)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(sql)?;
        // Savepoints (one per imported report) journal in memory, not in temporary files.
        conn.pragma_update(None, "temp_store", "MEMORY")
            .map_err(sql)?;
        let mut history = History {
            conn,
            path: path.to_path_buf(),
        };
        history.migrate()?;
        Ok(history)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// An empty history in memory, thrown away when dropped (`gate --no-record` without a
    /// state directory yet).
    pub fn in_memory(label: &Path) -> Result<History, HistoryError> {
        let conn = Connection::open_in_memory().map_err(|e| HistoryError::Sql {
            path: label.to_path_buf(),
            message: e.to_string(),
        })?;
        let mut history = History {
            conn,
            path: label.to_path_buf(),
        };
        history.migrate()?;
        Ok(history)
    }

    /// A copy of this history in memory, to write to without touching the database (SQLite's
    /// online backup: a consistent copy while other processes write).
    pub fn scratch_copy(&self) -> Result<History, HistoryError> {
        let mut conn = Connection::open_in_memory().map_err(|e| self.error(e))?;
        rusqlite::backup::Backup::new(&self.conn, &mut conn)
            .and_then(|backup| backup.run_to_completion(256, std::time::Duration::ZERO, None))
            .map_err(|e| self.error(e))?;
        let mut history = History {
            conn,
            path: self.path.clone(),
        };
        history.migrate()?;
        Ok(history)
    }

    fn error(&self, e: rusqlite::Error) -> HistoryError {
        HistoryError::Sql {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }

    fn migrate(&mut self) -> Result<(), HistoryError> {
        let sql = |e: rusqlite::Error| HistoryError::Sql {
            path: self.path.clone(),
            message: e.to_string(),
        };
        // The version is read inside the write transaction, so two processes opening an old
        // database at once apply each migration once. Every pending step goes in that one
        // transaction: a new history is created with one commit, not one per step.
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql)?;
        let found: i64 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(sql)?;
        if found > SCHEMA_VERSION {
            return Err(HistoryError::TooNew {
                path: self.path.clone(),
                found,
                known: SCHEMA_VERSION,
            });
        }
        let mut version = found;
        while let Some(step) = usize::try_from(version)
            .ok()
            .and_then(|v| MIGRATIONS.get(v))
        {
            tx.execute_batch(step)
                .and_then(|_| tx.pragma_update(None, "user_version", version + 1))
                .map_err(|e| HistoryError::Sql {
                    path: self.path.clone(),
                    message: format!("migrating to schema version {}: {e}", version + 1),
                })?;
            version += 1;
        }
        if version == found {
            // Nothing to do: end the read without a commit.
            return tx.rollback().map_err(sql);
        }
        tx.commit().map_err(sql)
    }

    /// Every row `sql` returns, each through `row`.
    fn all<T>(
        &self,
        sql: &str,
        row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, HistoryError> {
        let mut stmt = self.conn.prepare(sql).map_err(|e| self.error(e))?;
        let rows = stmt.query_map([], row).map_err(|e| self.error(e))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.error(e))
    }

    /// A write transaction that takes the lock at once (`BEGIN IMMEDIATE`), so two writers
    /// queue instead of failing half-way.
    pub fn write(&mut self) -> Result<Transaction<'_>, HistoryError> {
        let path = self.path.clone();
        self.conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| HistoryError::Sql {
                path,
                message: e.to_string(),
            })
    }

    /// The connection, for reading.
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Wraps an SQLite error with the database's path.
    pub fn sql_error(&self, e: rusqlite::Error) -> HistoryError {
        self.error(e)
    }

    // ---- gate openings ------------------------------------------------------------------

    /// The stages whose gates have opened, in the order they opened.
    pub fn openings(&self) -> Result<Vec<Opening>, HistoryError> {
        self.all(
            "SELECT stage, opened_at, records_digest, records_seen, forced, mailshift
                 FROM openings ORDER BY opened_at, rowid",
            |r| {
                Ok(Opening {
                    stage: r.get(0)?,
                    opened_at: r.get(1)?,
                    records_digest: r.get(2)?,
                    records_seen: r.get::<_, i64>(3)?.try_into().unwrap_or(0),
                    forced: r.get(4)?,
                    mailshift: r.get(5)?,
                })
            },
        )
    }

    /// Records an opening; an opening already recorded for the stage is kept (the first one is
    /// what an audit needs). Returns whether it was new.
    pub fn record_opening(&mut self, plan: &str, opening: &Opening) -> Result<bool, HistoryError> {
        let path = self.path.clone();
        let tx = self.write()?;
        let added = tx
            .execute(
                "INSERT OR IGNORE INTO openings
                 (stage, plan, opened_at, records_digest, records_seen, forced, mailshift)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    opening.stage,
                    plan,
                    opening.opened_at,
                    opening.records_digest,
                    i64::try_from(opening.records_seen).unwrap_or(i64::MAX),
                    opening.forced,
                    opening.mailshift
                ],
            )
            .map_err(|e| HistoryError::Sql {
                path: path.clone(),
                message: e.to_string(),
            })?;
        tx.commit().map_err(|e| HistoryError::Sql {
            path,
            message: e.to_string(),
        })?;
        Ok(added > 0)
    }

    /// Brings the openings of a state file written by an earlier mailshift
    /// (`<plan>.state.json`) into the history, once: only when the history has none yet.
    /// Returns how many were brought in.
    pub fn adopt_legacy_state(&mut self, json: &Path) -> Result<usize, HistoryError> {
        if !self.openings()?.is_empty() {
            return Ok(0);
        }
        #[derive(serde::Deserialize)]
        struct Legacy {
            #[serde(default)]
            plan: String,
            #[serde(default)]
            passed: Vec<Opening>,
        }
        let text = match crate::files::read_text(json, crate::files::FileKind::State) {
            Ok(text) => text,
            Err(e) if e.is_not_found() => return Ok(0),
            Err(e) => return Err(e.into()),
        };
        let legacy: Legacy = serde_json::from_str(&text).map_err(|e| HistoryError::Sql {
            path: self.path.clone(),
            message: format!("{}: not a mailshift state file ({e})", json.display()),
        })?;
        let mut n = 0;
        for opening in &legacy.passed {
            if self.record_opening(&legacy.plan, opening)? {
                n += 1;
            }
        }
        Ok(n)
    }

    // ---- decisions and attestations -------------------------------------------------------

    /// Adds one decision to the timeline.
    pub fn record_decision(
        &mut self,
        record: &DecisionRecord,
        detail: Option<&serde_json::Value>,
    ) -> Result<(), HistoryError> {
        let path = self.path.clone();
        let tx = self.write()?;
        tx.execute(
            "INSERT INTO decisions (at, kind, subject, decision, summary, digest, detail)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                record.at,
                record.kind,
                record.subject,
                record.decision,
                record.summary,
                record.digest,
                detail.map(|d| d.to_string())
            ],
        )
        .and_then(|_| tx.commit())
        .map_err(|e| HistoryError::Sql {
            path,
            message: e.to_string(),
        })
    }

    /// Every decision, oldest first.
    pub fn decisions(&self) -> Result<Vec<DecisionRecord>, HistoryError> {
        self.all(
            "SELECT at, kind, subject, decision, summary, digest FROM decisions
                 ORDER BY at, id",
            |r| {
                Ok(DecisionRecord {
                    at: r.get(0)?,
                    kind: r.get(1)?,
                    subject: r.get(2)?,
                    decision: r.get(3)?,
                    summary: r.get(4)?,
                    digest: r.get(5)?,
                })
            },
        )
    }

    pub fn attest(&mut self, attestation: &Attestation) -> Result<(), HistoryError> {
        let path = self.path.clone();
        let tx = self.write()?;
        tx.execute(
            "INSERT INTO attestations (step, by, note, at) VALUES (?1, ?2, ?3, ?4)",
            params![
                attestation.step,
                attestation.by,
                attestation.note,
                attestation.at
            ],
        )
        .and_then(|_| tx.commit())
        .map_err(|e| HistoryError::Sql {
            path,
            message: e.to_string(),
        })
    }

    /// The latest observation of `scope` (`gate`, `check`): when, and what was read.
    pub fn last_observation(
        &self,
        scope: &str,
    ) -> Result<Option<(String, crate::drift::Observed)>, HistoryError> {
        let row: Option<(String, String)> = self
            .conn
            .query_row(
                "SELECT at, observed FROM observations WHERE scope = ?1 ORDER BY id DESC LIMIT 1",
                [scope],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| self.error(e))?;
        Ok(row.and_then(|(at, json)| {
            // An observation that does not parse (written by a future mailshift) is no basis
            // for drift; it is simply not compared.
            serde_json::from_str(&json).ok().map(|o| (at, o))
        }))
    }

    /// Keeps what a run read, unless it is what the latest observation of `scope` already
    /// holds; prunes to the newest [`KEPT_OBSERVATIONS`]. True when it was kept.
    pub fn record_observation(
        &mut self,
        scope: &str,
        observed: &crate::drift::Observed,
    ) -> Result<bool, HistoryError> {
        let json = serde_json::to_string(observed).map_err(|e| HistoryError::Sql {
            path: self.path.clone(),
            message: e.to_string(),
        })?;
        let digest = {
            use sha2::{Digest, Sha256};
            Sha256::digest(json.as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        };
        let path = self.path.clone();
        let sql = |e: rusqlite::Error| HistoryError::Sql {
            path: path.clone(),
            message: e.to_string(),
        };
        let tx = self.write()?;
        let last: Option<String> = tx
            .query_row(
                "SELECT digest FROM observations WHERE scope = ?1 ORDER BY id DESC LIMIT 1",
                [scope],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql)?;
        if last.as_deref() == Some(digest.as_str()) {
            return Ok(false);
        }
        tx.execute(
            "INSERT INTO observations (at, scope, digest, observed) VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![now(), scope, digest, json],
        )
        .map_err(sql)?;
        tx.execute(
            "DELETE FROM observations WHERE scope = ?1 AND id NOT IN
                 (SELECT id FROM observations WHERE scope = ?1 ORDER BY id DESC LIMIT ?2)",
            rusqlite::params![scope, KEPT_OBSERVATIONS],
        )
        .map_err(sql)?;
        tx.commit().map_err(sql)?;
        Ok(true)
    }

    /// What `check` last read for `domain`, and when.
    pub fn check_observation(
        &self,
        domain: &str,
    ) -> Result<Option<(String, crate::drift::Observed)>, HistoryError> {
        let row: Option<(String, String)> = self
            .conn
            .query_row(
                "SELECT at, observed FROM check_observations WHERE domain = ?1",
                [domain],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| self.error(e))?;
        Ok(row.and_then(|(at, json)| serde_json::from_str(&json).ok().map(|o| (at, o))))
    }

    /// Replaces what `check` keeps for `domain`.
    pub fn record_check_observation(
        &self,
        domain: &str,
        observed: &crate::drift::Observed,
    ) -> Result<(), HistoryError> {
        let json = serde_json::to_string(observed).map_err(|e| HistoryError::Sql {
            path: self.path.clone(),
            message: e.to_string(),
        })?;
        self.conn
            .execute(
                "INSERT INTO check_observations (domain, at, observed) VALUES (?1, ?2, ?3)
                 ON CONFLICT (domain) DO UPDATE SET at = excluded.at, observed = excluded.observed",
                rusqlite::params![domain, now(), json],
            )
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    /// Every attestation, oldest first.
    pub fn attestations(&self) -> Result<Vec<Attestation>, HistoryError> {
        self.all(
            "SELECT step, by, note, at FROM attestations ORDER BY at, id",
            |r| {
                Ok(Attestation {
                    step: r.get(0)?,
                    by: r.get(1)?,
                    note: r.get(2)?,
                    at: r.get(3)?,
                })
            },
        )
    }

    /// The imports, oldest first.
    pub fn imports(&self) -> Result<Vec<ImportRecord>, HistoryError> {
        self.all(
            "SELECT sha256, path, kind, imported_at, records, duplicates, rejected
                 FROM imports ORDER BY imported_at, id",
            import_record,
        )
    }

    /// The content digests of every file imported before (to skip them without parsing).
    pub fn import_digests(&self) -> Result<std::collections::HashSet<String>, HistoryError> {
        let mut statement = self
            .conn
            .prepare("SELECT sha256 FROM imports")
            .map_err(|e| self.error(e))?;
        let rows = statement
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(|e| self.error(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.error(e))
    }

    /// The import of a file with this content digest, if it was imported before.
    pub fn import_of(&self, sha256: &str) -> Result<Option<ImportRecord>, HistoryError> {
        self.conn
            .query_row(
                "SELECT sha256, path, kind, imported_at, records, duplicates, rejected
                 FROM imports WHERE sha256 = ?1",
                [sha256],
                import_record,
            )
            .optional()
            .map_err(|e| self.error(e))
    }
}

/// An `imports` row, its columns in the order the queries above select them.
fn import_record(r: &rusqlite::Row<'_>) -> rusqlite::Result<ImportRecord> {
    Ok(ImportRecord {
        sha256: r.get(0)?,
        path: r.get(1)?,
        kind: r.get(2)?,
        imported_at: r.get(3)?,
        records: r.get::<_, i64>(4)?.try_into().unwrap_or(0),
        duplicates: r.get::<_, i64>(5)?.try_into().unwrap_or(0),
        rejected: r.get::<_, i64>(6)?.try_into().unwrap_or(0),
    })
}

/// The history shared by `check`'s concurrent domains for drift: each domain's previous
/// observation is read and its new one kept under one lock (SQLite has one writer anyway).
pub struct DriftStore {
    history: std::sync::Mutex<History>,
}

impl std::fmt::Debug for DriftStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DriftStore")
    }
}

impl DriftStore {
    pub fn new(history: History) -> DriftStore {
        DriftStore {
            history: std::sync::Mutex::new(history),
        }
    }

    /// What changed for `domain` since the last check, and keeps what was read now (a lookup
    /// that failed now keeps what was known). An error of the history is returned as text for
    /// the domain's report.
    pub fn exchange(
        &self,
        domain: &str,
        mut observed: crate::drift::Observed,
    ) -> Result<Vec<crate::drift::Drift>, String> {
        let history = self
            .history
            .lock()
            .map_err(|_| "the history lock was poisoned".to_string())?;
        let before = history
            .check_observation(domain)
            .map_err(|e| e.to_string())?;
        let drift = match &before {
            Some((since, before)) => {
                let drift = crate::drift::compare(before, &observed, since);
                observed.keep_known(before);
                drift
            }
            None => Vec::new(),
        };
        history
            .record_check_observation(domain, &observed)
            .map_err(|e| e.to_string())?;
        Ok(drift)
    }
}

/// How long opening the history waits for another process's lock.
const OPEN_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Puts a database in WAL mode, so readers never block the writer. Converting a new file
/// needs exclusive access, and SQLite does not run the busy handler for that: several
/// processes opening one new file at once got "database is locked". So the conversion is
/// retried, with growing pauses, until `budget` runs out. A file already in WAL mode (every
/// open after the first) needs no conversion and takes no lock.
pub(crate) fn use_wal(conn: &Connection, budget: std::time::Duration) -> rusqlite::Result<()> {
    let deadline = std::time::Instant::now() + budget;
    let mut pause = std::time::Duration::from_millis(2);
    loop {
        let current: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
        if current.eq_ignore_ascii_case("wal") {
            return Ok(());
        }
        let converted = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0));
        let retry = match &converted {
            Ok(mode) if mode.eq_ignore_ascii_case("wal") => return Ok(()),
            // Refused without an error: another connection holds the file.
            Ok(_) => true,
            Err(rusqlite::Error::SqliteFailure(e, _)) => matches!(
                e.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            ),
            Err(_) => false,
        };
        if !retry || std::time::Instant::now() >= deadline {
            return converted.and_then(|mode| {
                Err(rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                    Some(format!("the database stayed in {mode} mode, not WAL")),
                ))
            });
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(std::time::Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn many_connections_opening_one_new_history_all_get_it() {
        // Sixteen connections open one fresh file at once, twenty times over: each must get
        // a WAL-mode history (converting a new file to WAL does not wait on the busy handler).
        for round in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("history.db");
            let barrier = std::sync::Arc::new(std::sync::Barrier::new(16));
            let opened: Vec<Result<(), String>> = (0..16)
                .map(|_| {
                    let (path, barrier) = (path.clone(), barrier.clone());
                    std::thread::spawn(move || {
                        barrier.wait();
                        let history = History::open(&path).map_err(|e| e.to_string())?;
                        let mode: String = history
                            .conn()
                            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
                            .map_err(|e| e.to_string())?;
                        if mode == "wal" {
                            Ok(())
                        } else {
                            Err(format!("journal mode {mode}"))
                        }
                    })
                })
                .collect::<Vec<_>>()
                .into_iter()
                .map(|t| t.join().unwrap())
                .collect();
            let failed: Vec<&String> = opened.iter().filter_map(|r| r.as_ref().err()).collect();
            assert!(failed.is_empty(), "round {round}: {failed:?}");
        }
    }
    use super::*;

    #[test]
    fn a_new_database_is_migrated_and_a_newer_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        let history = History::open_dir(&dir.path().join("plan.state")).unwrap();
        let version: i64 = history
            .conn()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let path = history.path().to_path_buf();
        drop(history);
        // Reopening applies nothing twice.
        History::open(&path).unwrap();
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        drop(conn);
        let err = History::open(&path).err().unwrap().to_string();
        assert!(err.contains("newer than this mailshift knows"), "{err}");
    }

    #[test]
    fn a_version_1_database_gains_the_report_and_drift_tables_and_keeps_its_imports() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DATABASE);
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.execute(
            "INSERT INTO imports (sha256, path, kind, imported_at, records, duplicates, rejected)
             VALUES ('ab', 'events.ndjson', 'sendgrid', '2026-11-30T10:00:00Z', 3, 0, 0)",
            [],
        )
        .unwrap();
        drop(conn);
        let history = History::open(&path).unwrap();
        let version: i64 = history
            .conn()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        assert_eq!(history.imports().unwrap().len(), 1);
        for table in [
            "dmarc_reports",
            "dmarc_rows",
            "tls_reports",
            "tls_policies",
            "observations",
            "check_observations",
        ] {
            let n: i64 = history
                .conn()
                .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
                .unwrap();
            assert_eq!(n, 0, "{table}");
        }
    }

    #[test]
    fn a_version_3_database_keeps_its_dmarc_auth_results_as_arrays_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DATABASE);
        let conn = Connection::open(&path).unwrap();
        for step in &MIGRATIONS[..3] {
            conn.execute_batch(step).unwrap();
        }
        conn.pragma_update(None, "user_version", 3).unwrap();
        conn.execute_batch(
            r#"INSERT INTO imports (id, sha256, path, kind, imported_at, records, duplicates, rejected)
               VALUES (1, 'ab', 'r.xml', 'dmarc', '2026-11-30T10:00:00Z', 2, 0, 0);
               INSERT INTO dmarc_reports (id, org_name, report_id, domain, flavour, import_id, rows, messages)
               VALUES (1, 'google.com', 'r1', 'example.com', 'rfc7489', 1, 2, 3);
               INSERT INTO dmarc_rows (report, source_ip, count, disposition, dkim, spf, header_from,
                   dkim_results, spf_results, reasons)
               VALUES (1, '192.0.2.1', 1, 'none', 'pass', 'fail', 'example.com',
                   '[{"domain":"example.com","selector":"s1","result":"pass"},{"domain":"esp.example","selector":"k\"1","result":"fail"}]',
                   '[{"domain":"example.com","scope":"mfrom","result":"softfail"}]', '[]'),
                   (1, '192.0.2.2', 2, 'none', 'fail', 'fail', 'example.com', '[]', '[]', '[]');"#,
        )
        .unwrap();
        drop(conn);
        let history = History::open(&path).unwrap();
        let rows: Vec<(String, String)> = history
            .conn()
            .prepare("SELECT dkim_results, spf_results FROM dmarc_rows ORDER BY rowid")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            rows,
            [
                (
                    r#"[["example.com","s1","pass"],["esp.example","k\"1","fail"]]"#.to_string(),
                    r#"[["example.com","mfrom","softfail"]]"#.to_string()
                ),
                ("[]".to_string(), "[]".to_string())
            ]
        );
    }

    #[test]
    fn the_first_opening_of_a_stage_is_kept_and_a_legacy_state_file_adopted_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut history = History::open_dir(dir.path()).unwrap();
        let legacy = dir.path().join("plan.state.json");
        std::fs::write(
            &legacy,
            r#"{"plan":"p","passed":[{"stage":"setup","opened_at":"2026-11-30T10:00:00Z"}]}"#,
        )
        .unwrap();
        assert_eq!(history.adopt_legacy_state(&legacy).unwrap(), 1);
        assert_eq!(history.adopt_legacy_state(&legacy).unwrap(), 0);
        let later = Opening {
            stage: "setup".into(),
            opened_at: "2026-12-01T10:00:00Z".into(),
            records_digest: None,
            records_seen: 0,
            forced: None,
            mailshift: None,
        };
        assert!(!history.record_opening("p", &later).unwrap());
        let openings = history.openings().unwrap();
        assert_eq!(openings.len(), 1);
        assert_eq!(openings[0].opened_at, "2026-11-30T10:00:00Z");
    }

    #[test]
    fn a_fifo_is_not_opened_as_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join(DATABASE);
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path; mkfifo does not keep the pointer.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let err = History::open_dir(dir.path()).err().unwrap().to_string();
        assert!(
            err.contains("FIFO") || err.contains("not a regular file"),
            "{err}"
        );
    }
}
