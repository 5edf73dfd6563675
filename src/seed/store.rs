//! The seed store: which seed messages were sent, and what arrived, in one SQLite file.
//!
//! `seed send` records each token it sends; the inbox records each message that arrives with its
//! verdict, *durably, before it answers 250*: a message the inbox acknowledged is never lost, even
//! if the process is killed right after. Durability without an fsync per message comes from group
//! commit: one writer thread owns the connection and commits everything queued since its last
//! commit in one transaction (WAL, `synchronous=FULL`), then releases all those senders at once.
//!
//! Strangers can send to the inbox too, so what they send is kept only up to a quota
//! ([`StoreLimits`]): messages without a token `seed send` recorded (and repeats of a known
//! token beyond the first few) are kept up to a number and a total size, the oldest dropped
//! first; the drops are counted in the store and reported by `seed results`. Seeds are never
//! dropped.

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;
use tokio::sync::oneshot;

/// Storage problems, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("seed store {path}: {message}")]
    Sql { path: PathBuf, message: String },
    #[error("seed store {path}: the writer stopped")]
    Closed { path: PathBuf },
}

/// A seed message that was sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SentSeed {
    pub token: String,
    pub stage: String,
    pub recipient: String,
    pub from: String,
    pub message_id: String,
    /// RFC 3339.
    pub sent_at: String,
    /// The relay's answer, or why sending failed.
    pub relay_response: String,
    /// The relay accepted it.
    pub accepted: bool,
}

/// A message the inbox accepted.
#[derive(Debug, Clone, Serialize)]
pub struct Arrival {
    pub id: i64,
    /// The seed token, when the message carries one.
    pub token: Option<String>,
    /// RFC 3339.
    pub received_at: String,
    pub remote_ip: String,
    pub helo: String,
    pub mail_from: String,
    pub rcpt: String,
    /// The session was encrypted (STARTTLS).
    pub tls: bool,
    pub size: usize,
    /// The verdict, as JSON (`verify::MessageVerdict`).
    pub verdict: serde_json::Value,
    /// The verdict's status (`pass`, `warn`, `fail`, `inconclusive`).
    pub status: String,
}

/// What the inbox hands the writer for one message.
#[derive(Debug, Clone)]
pub struct NewArrival {
    pub token: Option<String>,
    pub received_at: String,
    pub remote_ip: String,
    pub helo: String,
    pub mail_from: String,
    pub rcpt: String,
    pub tls: bool,
    pub message: Vec<u8>,
    pub verdict: serde_json::Value,
    pub status: String,
}

/// How much of what strangers send the store keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreLimits {
    /// Messages without a known token kept at most (the oldest go first).
    pub unknown_messages: u64,
    /// Their total size kept at most, in bytes.
    pub unknown_bytes: u64,
}

impl Default for StoreLimits {
    fn default() -> Self {
        StoreLimits {
            unknown_messages: 1000,
            unknown_bytes: 256 << 20,
        }
    }
}

/// Arrivals of one known token kept outside the quota: a seed arrives once (a relay may
/// retry); more than this is someone replaying a token.
const ARRIVALS_PER_TOKEN: i64 = 5;

/// What the quota dropped so far.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Dropped {
    pub messages: u64,
    pub bytes: u64,
    /// When the first and the last of them had arrived (RFC 3339).
    pub first_received_at: Option<String>,
    pub last_received_at: Option<String>,
}

enum Job {
    Arrival(Box<NewArrival>, oneshot::Sender<Result<i64, String>>),
    Sent(SentSeed, oneshot::Sender<Result<i64, String>>),
}

/// Jobs committed together at most: bounds one transaction's latency under a flood.
const MAX_BATCH: usize = 512;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS sent (
    token TEXT PRIMARY KEY,
    stage TEXT NOT NULL,
    recipient TEXT NOT NULL,
    sender TEXT NOT NULL,
    message_id TEXT NOT NULL,
    sent_at TEXT NOT NULL,
    relay_response TEXT NOT NULL,
    accepted INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS received (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    token TEXT,
    received_at TEXT NOT NULL,
    remote_ip TEXT NOT NULL,
    helo TEXT NOT NULL,
    mail_from TEXT NOT NULL,
    rcpt TEXT NOT NULL,
    tls INTEGER NOT NULL,
    size INTEGER NOT NULL,
    message BLOB NOT NULL,
    verdict TEXT NOT NULL,
    status TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS received_token ON received(token);
CREATE TABLE IF NOT EXISTS dropped (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    messages INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    first_received_at TEXT,
    last_received_at TEXT
);
";

/// Added after the first version: stores created before get the column (every old row counts
/// as a seed, as it did then).
const QUOTA_COLUMN: &str = "
ALTER TABLE received ADD COLUMN quota INTEGER NOT NULL DEFAULT 0;
";
const QUOTA_INDEX: &str =
    "CREATE INDEX IF NOT EXISTS received_quota ON received(id) WHERE quota = 1;";

fn open(path: &Path) -> Result<Connection, StoreError> {
    let sql = |e: rusqlite::Error| StoreError::Sql {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    // The path comes from the plan: a device or a FIFO there must not reach SQLite.
    crate::files::check_regular_or_absent(path, crate::files::FileKind::Store).map_err(|e| {
        StoreError::Sql {
            path: path.to_path_buf(),
            message: e.to_string(),
        }
    })?;
    let conn = Connection::open(path).map_err(sql)?;
    let wait = std::time::Duration::from_secs(10);
    conn.busy_timeout(wait).map_err(sql)?;
    // WAL: readers (seed results, the gate) do not block the inbox's writer.
    crate::history::use_wal(&conn, wait).map_err(sql)?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(sql)?;
    conn.execute_batch(SCHEMA).map_err(sql)?;
    let has_quota: bool = conn
        .prepare("SELECT 1 FROM pragma_table_info('received') WHERE name = 'quota'")
        .and_then(|mut stmt| stmt.exists([]))
        .map_err(sql)?;
    if !has_quota {
        conn.execute_batch(QUOTA_COLUMN).map_err(sql)?;
    }
    conn.execute_batch(QUOTA_INDEX).map_err(sql)?;
    Ok(conn)
}

/// The writing side of a store: one thread, group commit.
pub struct Store {
    path: PathBuf,
    jobs: Option<mpsc::Sender<Job>>,
    writer: Option<JoinHandle<()>>,
}

impl Store {
    /// Opens (creating if needed) the store with the default quota and starts its writer.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Store::open_with(path, StoreLimits::default())
    }

    /// Opens (creating if needed) the store and starts its writer.
    pub fn open_with(path: &Path, limits: StoreLimits) -> Result<Store, StoreError> {
        let conn = open(path)?;
        let quota = Quota::load(&conn, limits).map_err(|e| StoreError::Sql {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let (jobs, queue) = mpsc::channel::<Job>();
        let writer = std::thread::Builder::new()
            .name("seed-store".into())
            .spawn(move || write_loop(conn, quota, queue))
            .map_err(|e| StoreError::Sql {
                path: path.to_path_buf(),
                message: format!("cannot start the writer: {e}"),
            })?;
        Ok(Store {
            path: path.to_path_buf(),
            jobs: Some(jobs),
            writer: Some(writer),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn submit(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<i64, String>>) -> Job,
    ) -> Result<i64, StoreError> {
        let closed = || StoreError::Closed {
            path: self.path.clone(),
        };
        let (tx, rx) = oneshot::channel();
        self.jobs
            .as_ref()
            .ok_or_else(closed)?
            .send(make(tx))
            .map_err(|_| closed())?;
        rx.await
            .map_err(|_| closed())?
            .map_err(|message| StoreError::Sql {
                path: self.path.clone(),
                message,
            })
    }

    /// Stores an arrival; returns once it is committed to disk. The id is the row id.
    pub async fn record_arrival(&self, arrival: NewArrival) -> Result<i64, StoreError> {
        self.submit(|tx| Job::Arrival(Box::new(arrival), tx)).await
    }

    /// Stores a sent seed; returns once it is committed.
    pub async fn record_sent(&self, sent: SentSeed) -> Result<(), StoreError> {
        self.submit(|tx| Job::Sent(sent, tx)).await.map(|_| ())
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        // Closing the channel ends the writer after it has committed what is queued.
        self.jobs.take();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

/// The writer's running count of what the quota applies to.
struct Quota {
    limits: StoreLimits,
    messages: u64,
    bytes: u64,
}

impl Quota {
    fn load(conn: &Connection, limits: StoreLimits) -> rusqlite::Result<Quota> {
        let (messages, bytes) = conn.query_row(
            "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM received WHERE quota = 1",
            [],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
        )?;
        Ok(Quota {
            limits,
            messages: messages.max(0) as u64,
            bytes: bytes.max(0) as u64,
        })
    }

    fn over(&self) -> bool {
        self.messages > self.limits.unknown_messages || self.bytes > self.limits.unknown_bytes
    }
}

fn write_loop(mut conn: Connection, mut quota: Quota, queue: mpsc::Receiver<Job>) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let result = commit(&mut conn, &mut quota, &batch);
        for (job, outcome) in batch.into_iter().zip(result) {
            let reply = match job {
                Job::Arrival(_, tx) | Job::Sent(_, tx) => tx,
            };
            let _ = reply.send(outcome);
        }
    }
}

/// Commits a batch in one transaction. On a transaction-level error every job gets it (nothing
/// was stored, so nobody may be told otherwise).
fn commit(conn: &mut Connection, quota: &mut Quota, batch: &[Job]) -> Vec<Result<i64, String>> {
    let before = (quota.messages, quota.bytes);
    let mut attempt = |quota: &mut Quota| -> Result<Vec<i64>, rusqlite::Error> {
        let tx = conn.transaction()?;
        let mut ids = Vec::with_capacity(batch.len());
        {
            let mut insert_arrival = tx.prepare_cached(
                "INSERT INTO received (token, received_at, remote_ip, helo, mail_from, rcpt, tls, size, message, verdict, status, quota)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )?;
            let mut is_sent = tx.prepare_cached("SELECT 1 FROM sent WHERE token = ?1")?;
            let mut arrivals_of =
                tx.prepare_cached("SELECT COUNT(*) FROM received WHERE token = ?1")?;
            let mut insert_sent = tx.prepare_cached(
                "INSERT OR REPLACE INTO sent (token, stage, recipient, sender, message_id, sent_at, relay_response, accepted)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            for job in batch {
                match job {
                    Job::Arrival(a, _) => {
                        // A seed (a token `seed send` recorded, its first few arrivals) is
                        // always kept; anything else counts against the quota.
                        let protected = match &a.token {
                            Some(token) => {
                                is_sent.exists(params![token])?
                                    && arrivals_of
                                        .query_row(params![token], |r| r.get::<_, i64>(0))?
                                        < ARRIVALS_PER_TOKEN
                            }
                            None => false,
                        };
                        if !protected {
                            quota.messages += 1;
                            quota.bytes += a.message.len() as u64;
                        }
                        insert_arrival.execute(params![
                            a.token,
                            a.received_at,
                            a.remote_ip,
                            a.helo,
                            a.mail_from,
                            a.rcpt,
                            a.tls,
                            a.message.len() as i64,
                            a.message,
                            a.verdict.to_string(),
                            a.status,
                            !protected,
                        ])?;
                        ids.push(tx.last_insert_rowid());
                    }
                    Job::Sent(s, _) => {
                        insert_sent.execute(params![
                            s.token,
                            s.stage,
                            s.recipient,
                            s.from,
                            s.message_id,
                            s.sent_at,
                            s.relay_response,
                            s.accepted,
                        ])?;
                        ids.push(0);
                    }
                }
            }
        }
        if quota.over() {
            enforce_quota(&tx, quota)?;
        }
        tx.commit()?;
        Ok(ids)
    };
    match attempt(quota) {
        Ok(ids) => ids.into_iter().map(Ok).collect(),
        Err(e) => {
            // Nothing was stored: the counts go back to what the disk holds.
            (quota.messages, quota.bytes) = before;
            batch.iter().map(|_| Err(e.to_string())).collect()
        }
    }
}

/// Drops the oldest messages under the quota until it holds again, and counts the drop.
fn enforce_quota(tx: &rusqlite::Transaction<'_>, quota: &mut Quota) -> rusqlite::Result<()> {
    let mut oldest = tx
        .prepare_cached("SELECT id, size, received_at FROM received WHERE quota = 1 ORDER BY id")?;
    let mut rows = oldest.query([])?;
    let (mut last_id, mut messages, mut bytes) = (None, 0u64, 0u64);
    let (mut first_at, mut last_at): (Option<String>, Option<String>) = (None, None);
    while quota.over() {
        let Some(row) = rows.next()? else { break };
        let size = row.get::<_, i64>(1)?.max(0) as u64;
        let at: String = row.get(2)?;
        last_id = Some(row.get::<_, i64>(0)?);
        quota.messages = quota.messages.saturating_sub(1);
        quota.bytes = quota.bytes.saturating_sub(size);
        messages += 1;
        bytes += size;
        first_at.get_or_insert_with(|| at.clone());
        last_at = Some(at);
    }
    drop(rows);
    let Some(last_id) = last_id else {
        return Ok(());
    };
    tx.execute(
        "DELETE FROM received WHERE quota = 1 AND id <= ?1",
        params![last_id],
    )?;
    tx.execute(
        "INSERT INTO dropped (id, messages, bytes, first_received_at, last_received_at)
         VALUES (1, ?1, ?2, ?3, ?4)
         ON CONFLICT(id) DO UPDATE SET
             messages = messages + excluded.messages,
             bytes = bytes + excluded.bytes,
             first_received_at = COALESCE(first_received_at, excluded.first_received_at),
             last_received_at = excluded.last_received_at",
        params![messages as i64, bytes as i64, first_at, last_at],
    )?;
    Ok(())
}

/// Read-only access for `seed results` and the gate.
pub struct StoreReader {
    path: PathBuf,
    conn: Connection,
}

impl StoreReader {
    /// Opens an existing store; a missing file is an empty store (nothing sent, nothing arrived).
    pub fn open(path: &Path) -> Result<Option<StoreReader>, StoreError> {
        if !path.exists() {
            return Ok(None);
        }
        Ok(Some(StoreReader {
            path: path.to_path_buf(),
            conn: open(path)?,
        }))
    }

    fn sql(&self, e: rusqlite::Error) -> StoreError {
        StoreError::Sql {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }

    /// Seeds sent, oldest first; only those for `stage` when given.
    pub fn sent(&self, stage: Option<&str>) -> Result<Vec<SentSeed>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT token, stage, recipient, sender, message_id, sent_at, relay_response, accepted FROM sent WHERE ?1 IS NULL OR stage = ?1 ORDER BY sent_at, token")
            .map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map(params![stage], |r| {
                Ok(SentSeed {
                    token: r.get(0)?,
                    stage: r.get(1)?,
                    recipient: r.get(2)?,
                    from: r.get(3)?,
                    message_id: r.get(4)?,
                    sent_at: r.get(5)?,
                    relay_response: r.get(6)?,
                    accepted: r.get(7)?,
                })
            })
            .map_err(|e| self.sql(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.sql(e))
    }

    fn arrival(r: &rusqlite::Row<'_>) -> rusqlite::Result<Arrival> {
        let verdict: String = r.get(10)?;
        Ok(Arrival {
            id: r.get(0)?,
            token: r.get(1)?,
            received_at: r.get(2)?,
            remote_ip: r.get(3)?,
            helo: r.get(4)?,
            mail_from: r.get(5)?,
            rcpt: r.get(6)?,
            tls: r.get(7)?,
            size: r.get::<_, i64>(8)? as usize,
            status: r.get(9)?,
            verdict: serde_json::from_str(&verdict).unwrap_or(serde_json::Value::Null),
        })
    }

    /// Every arrival, oldest first.
    pub fn arrivals(&self) -> Result<Vec<Arrival>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, token, received_at, remote_ip, helo, mail_from, rcpt, tls, size, status, verdict FROM received ORDER BY id")
            .map_err(|e| self.sql(e))?;
        let rows = stmt.query_map([], Self::arrival).map_err(|e| self.sql(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.sql(e))
    }

    /// The raw message of an arrival.
    pub fn message(&self, id: i64) -> Result<Option<Vec<u8>>, StoreError> {
        self.conn
            .query_row(
                "SELECT message FROM received WHERE id = ?1",
                params![id],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.sql(e))
    }

    /// What the quota on strangers' messages dropped so far.
    pub fn dropped(&self) -> Result<Dropped, StoreError> {
        self.conn
            .query_row(
                "SELECT messages, bytes, first_received_at, last_received_at FROM dropped WHERE id = 1",
                [],
                |r| {
                    Ok(Dropped {
                        messages: r.get::<_, i64>(0)?.max(0) as u64,
                        bytes: r.get::<_, i64>(1)?.max(0) as u64,
                        first_received_at: r.get(2)?,
                        last_received_at: r.get(3)?,
                    })
                },
            )
            .optional()
            .map(Option::unwrap_or_default)
            .map_err(|e| self.sql(e))
    }

    /// How many messages arrived.
    pub fn arrival_count(&self) -> Result<usize, StoreError> {
        self.conn
            .query_row("SELECT COUNT(*) FROM received", [], |r| r.get::<_, i64>(0))
            .map(|n| n as usize)
            .map_err(|e| self.sql(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arrival(token: &str) -> NewArrival {
        NewArrival {
            token: Some(token.into()),
            received_at: "2026-11-25T00:00:00Z".into(),
            remote_ip: "127.0.0.1".into(),
            helo: "client.test".into(),
            mail_from: "bounce@example.test".into(),
            rcpt: "seed@seeds.test".into(),
            tls: false,
            message: b"Subject: x\r\n\r\nbody\r\n".to_vec(),
            verdict: serde_json::json!({"status": "pass"}),
            status: "pass".into(),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_arrivals_are_all_committed_and_readable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seed.db");
        let store = std::sync::Arc::new(Store::open(&path).unwrap());
        let tasks: Vec<_> = (0..200)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move { store.record_arrival(arrival(&format!("t{i}"))).await })
            })
            .collect();
        for t in tasks {
            assert!(t.await.unwrap().unwrap() > 0);
        }
        store
            .record_sent(SentSeed {
                token: "t1".into(),
                stage: "seed".into(),
                recipient: "seed@seeds.test".into(),
                from: "news@example.test".into(),
                message_id: "<t1@example.test>".into(),
                sent_at: "2026-11-25T00:00:00Z".into(),
                relay_response: "250 ok".into(),
                accepted: true,
            })
            .await
            .unwrap();
        drop(store);
        let reader = StoreReader::open(&path).unwrap().unwrap();
        assert_eq!(reader.arrival_count().unwrap(), 200);
        let arrivals = reader.arrivals().unwrap();
        assert_eq!(arrivals[0].verdict["status"], "pass");
        assert_eq!(
            reader.message(arrivals[0].id).unwrap().unwrap(),
            b"Subject: x\r\n\r\nbody\r\n"
        );
        assert_eq!(reader.sent(Some("seed")).unwrap().len(), 1);
        assert!(reader.sent(Some("other")).unwrap().is_empty());
        assert!(StoreReader::open(&dir.path().join("none.db"))
            .unwrap()
            .is_none());
    }
}
