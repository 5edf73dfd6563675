//! Reading report files ahead, on worker threads, while the importing thread stores the files
//! before them: SQLite takes one writer, but reading, hashing, decompressing and parsing a
//! thousand small reports need not wait for it.
//!
//! A worker reads a small file whole, hashes it, skips it when the history already holds its
//! digest, and otherwise parses its reports into memory ([`Recorder`]): what the importing
//! thread would have stored, rejected or noted, in order. The importing thread then stores the
//! files one by one in the order they were named, exactly as it stores a file it reads itself,
//! so the outcome does not depend on the threads. Whatever a worker cannot settle in bounded
//! memory — a large file, a report over [`dmarc::MAX_IN_MEMORY`], a file it cannot open or
//! that is no report — is left to the importing thread, which reads it as if there were no
//! workers and reports its errors (without hashing it again when the worker could). Each
//! worker reads [`CHUNK`] consecutive files at a time and hands them over together, and holds
//! at most [`AHEAD`] hand-overs ready, each file at most [`MAX_HELD`] of reports. Workers run
//! at a lower priority than the importing thread, the pipeline's critical path.

use super::container::{self, Sink};
use super::{dmarc, Digested, Head, ImportError, ImportOptions, KIND};
use crate::files;
use std::collections::HashSet;
use std::io::Read;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, OnceLock};

/// Files larger than this are read by the importing thread, streamed.
const MAX_FILE: u64 = 1 << 20;
/// The most report text one file read ahead may hold (its XML and JSON, before parsing).
const MAX_HELD: usize = 4 << 20;
/// Consecutive files a worker reads as one chunk and hands over at once: each hand-over may
/// wake a sleeping thread (on a virtual machine, tens of microseconds), so one per file would
/// cost as much as reading the file.
const CHUNK: usize = 8;
/// A chunk is handed over in parts once the files read hold this much report text.
const CHUNK_HELD: usize = 1 << 20;
/// Hand-overs each worker keeps ready ahead of the importing thread.
const AHEAD: usize = 2;
/// At most this many workers, whatever the machine.
const MAX_WORKERS: usize = 4;

/// A file as a worker left it.
pub(super) enum Prepared {
    /// Hashed, and parsed unless the importing thread is to read it.
    Ready(Box<Digested>),
    /// For the importing thread to hash and read.
    Later,
}

/// What reading the file found, in order.
pub(super) enum Action {
    Reject {
        at: String,
        message: String,
    },
    Dmarc {
        at: String,
        report: Box<dmarc::Parsed>,
    },
    Tls {
        at: String,
        json: Vec<u8>,
    },
}

/// How many workers read `files` files ahead: none unless there are files enough to share.
pub(super) fn workers(opts: &ImportOptions, files: usize) -> usize {
    let cores = || std::thread::available_parallelism().map_or(1, |n| n.get());
    opts.workers
        .unwrap_or_else(cores)
        .min(MAX_WORKERS)
        .min(files / 2)
}

/// Calls `store` with what `start` returned, each of `files` in order, and what one of
/// `workers` made of it, until `store` says to stop; returns what `start` returned. `start`
/// runs on this thread once the workers are reading, before the first file is stored: opening
/// the history overlaps their first files. `known` holds the digests of the files imported
/// before, once `start` has set it; until then a worker parses every file (the importing
/// thread looks each digest up again anyway).
pub(super) fn each<S>(
    files: &[PathBuf],
    workers: usize,
    opts: &ImportOptions,
    known: &OnceLock<HashSet<String>>,
    start: impl FnOnce() -> S,
    mut store: impl FnMut(&S, &Path, Prepared) -> ControlFlow<()>,
) -> S {
    if workers == 0 {
        let state = start();
        for path in files {
            if store(&state, path, Prepared::Later).is_break() {
                break;
            }
        }
        return state;
    }
    std::thread::scope(|scope| {
        let mut ready = Vec::with_capacity(workers);
        for first in 0..workers {
            let (sender, receiver) = mpsc::sync_channel::<Vec<Prepared>>(AHEAD);
            ready.push(receiver);
            scope.spawn(move || {
                yield_to_importer();
                for chunk in files.chunks(CHUNK).skip(first).step_by(workers) {
                    let mut handed = Vec::with_capacity(chunk.len());
                    let mut held = 0;
                    for path in chunk {
                        let (prepared, bytes) = prepare(path, opts, known.get());
                        handed.push(prepared);
                        held += bytes;
                        if held >= CHUNK_HELD {
                            if sender.send(std::mem::take(&mut handed)).is_err() {
                                return;
                            }
                            held = 0;
                        }
                    }
                    if !handed.is_empty() && sender.send(handed).is_err() {
                        return;
                    }
                }
            });
        }
        let state = start();
        for (c, chunk) in files.chunks(CHUNK).enumerate() {
            // Chunk c is worker (c mod workers)'s next one, handed over whole or in parts that
            // never run into the next chunk; a worker that is gone leaves its files to this
            // thread.
            let receiver = ready.get(c % workers);
            let mut handed = Vec::new().into_iter();
            for path in chunk {
                let prepared = match handed.next() {
                    Some(prepared) => prepared,
                    None => {
                        handed = receiver
                            .and_then(|r| r.recv().ok())
                            .unwrap_or_default()
                            .into_iter();
                        handed.next().unwrap_or(Prepared::Later)
                    }
                };
                if store(&state, path, prepared).is_break() {
                    // The receivers go with `ready`: each worker stops at its next hand-over.
                    drop(ready);
                    return state;
                }
            }
        }
        state
    })
}

/// How much lower than the importing thread's the workers' scheduling priority is (a nice
/// value, added to the process's).
const WORKER_NICE: i32 = 5;

/// Lowers the calling worker's scheduling priority by [`WORKER_NICE`]. The importing thread
/// is the import's critical path (SQLite takes one writer): with a worker per core, it shared
/// its core with a worker at two thirds of its speed, and a thousand small reports imported
/// about a tenth slower than with the workers taking only the time it leaves. Best effort:
/// elsewhere than Linux, or where it is refused, nothing changes.
fn yield_to_importer() {
    #[cfg(target_os = "linux")]
    // SAFETY: plain integers in, an integer out. On Linux, PRIO_PROCESS with a thread id
    // applies to that thread alone (setpriority(2), "BUGS"), and raising a nice value is
    // always allowed.
    unsafe {
        let me = libc::gettid();
        let now = libc::getpriority(libc::PRIO_PROCESS, me as libc::id_t);
        let _ = libc::setpriority(libc::PRIO_PROCESS, me as libc::id_t, now + WORKER_NICE);
    }
}

/// Reads, hashes and parses one file, or leaves it for later.
/// Also returns the report text the file holds.
fn prepare(
    path: &Path,
    opts: &ImportOptions,
    known: Option<&HashSet<String>>,
) -> (Prepared, usize) {
    let Ok((file, _)) = files::open(path, KIND) else {
        return (Prepared::Later, 0);
    };
    let Ok(meta) = file.metadata() else {
        return (Prepared::Later, 0);
    };
    if meta.len() > MAX_FILE {
        return (Prepared::Later, 0);
    }
    let print = (meta.len(), meta.modified().ok());
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0) + 1);
    match file.take(MAX_FILE + 1).read_to_end(&mut bytes) {
        Ok(n) if n as u64 <= MAX_FILE => {}
        _ => return (Prepared::Later, 0),
    }
    let sha256 = container::hex_digest(&bytes);
    // Imported before: stored as such unless it is no longer (then read by the importer).
    let unread = |sha256| {
        Prepared::Ready(Box::new(Digested {
            sha256,
            print,
            actions: None,
        }))
    };
    if known.is_some_and(|known| known.contains(&sha256)) {
        return (unread(sha256), 0);
    }
    let mut recorder = Recorder {
        path,
        opts,
        actions: Vec::new(),
        held: 0,
        over: false,
    };
    let read = container::import_bytes(&mut recorder, &bytes);
    // What was read must be what the file holds now, as for a file read by the importer.
    if container::fingerprint(path).ok() != Some(print) {
        return (Prepared::Later, 0);
    }
    // A file that is no report, or holds more than a worker keeps, is the importer's to read
    // (and report on), under the digest taken here.
    if read.is_err() || recorder.over {
        return (unread(sha256), 0);
    }
    let prepared = Prepared::Ready(Box::new(Digested {
        sha256,
        print,
        actions: Some(recorder.actions),
    }));
    (prepared, recorder.held)
}

/// A [`Sink`] that keeps what it is given, parsed, up to [`MAX_HELD`].
pub(super) struct Recorder<'a> {
    path: &'a Path,
    opts: &'a ImportOptions,
    actions: Vec<Action>,
    held: usize,
    /// Over [`MAX_HELD`], or a report over [`dmarc::MAX_IN_MEMORY`]: the file is left for later.
    over: bool,
}

impl Recorder<'_> {
    fn hold(&mut self, bytes: usize) -> bool {
        self.held = self.held.saturating_add(bytes);
        self.over |= self.held > MAX_HELD;
        !self.over
    }
}

impl Sink for Recorder<'_> {
    fn path(&self) -> &Path {
        self.path
    }

    fn max_report_bytes(&self) -> u64 {
        self.opts.max_report_bytes
    }

    fn reject(&mut self, at: &str, message: String) {
        self.actions.push(Action::Reject {
            at: at.to_string(),
            message,
        });
    }

    fn dmarc(&mut self, input: &mut dyn Read, at: &str) -> Result<(), ImportError> {
        if self.over {
            return Ok(());
        }
        let (report, held) = match Head::read(input) {
            Head::Whole(bytes) => {
                let (text, replaced) = dmarc::to_text(&bytes);
                let report = dmarc::Parsed::read(dmarc::Parser::in_memory(&text, replaced));
                (report, bytes.len())
            }
            Head::Larger(_) => {
                self.over = true;
                return Ok(());
            }
            // As the importer would: what was read, then the error, at its line.
            Head::Failed(bytes, e) => {
                let held = bytes.len();
                (dmarc::Parsed::read(Head::failed(bytes, e)), held)
            }
        };
        if self.hold(held) {
            self.actions.push(Action::Dmarc {
                at: at.to_string(),
                report: Box::new(report),
            });
        }
        Ok(())
    }

    fn tls(&mut self, bytes: &[u8], at: &str) -> Result<(), ImportError> {
        if self.hold(bytes.len()) {
            self.actions.push(Action::Tls {
                at: at.to_string(),
                json: bytes.to_vec(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A worker yields to the importing thread, and only the worker does.
    #[cfg(target_os = "linux")]
    #[test]
    fn workers_run_below_the_importing_thread() {
        let nice =
            || unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) };
        let importer = nice();
        let worker = std::thread::spawn(move || {
            yield_to_importer();
            nice()
        })
        .join()
        .unwrap();
        assert_eq!(worker, (importer + WORKER_NICE).min(19));
        assert_eq!(nice(), importer);
    }
}
