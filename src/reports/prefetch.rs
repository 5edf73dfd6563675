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
//! at most [`AHEAD`] hand-overs ready, each file at most [`MAX_HELD`] of reports.

use super::container::{self, Sink};
use super::{dmarc, Digested, Head, ImportError, ImportOptions, KIND};
use crate::files;
use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

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

/// Calls `store` with each of `files` in order, and what one of `workers` made of it;
/// `known` holds the digests of the files imported before.
pub(super) fn each(
    files: &[PathBuf],
    workers: usize,
    opts: &ImportOptions,
    known: &HashSet<String>,
    mut store: impl FnMut(&Path, Prepared),
) {
    if workers == 0 {
        for path in files {
            store(path, Prepared::Later);
        }
        return;
    }
    std::thread::scope(|scope| {
        let mut ready = Vec::with_capacity(workers);
        for first in 0..workers {
            let (sender, receiver) = mpsc::sync_channel::<Vec<Prepared>>(AHEAD);
            ready.push(receiver);
            scope.spawn(move || {
                for chunk in files.chunks(CHUNK).skip(first).step_by(workers) {
                    let mut handed = Vec::with_capacity(chunk.len());
                    let mut held = 0;
                    for path in chunk {
                        let (prepared, bytes) = prepare(path, opts, known);
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
                store(path, prepared);
            }
        }
    });
}

/// Reads, hashes and parses one file, or leaves it for later.
/// Also returns the report text the file holds.
fn prepare(path: &Path, opts: &ImportOptions, known: &HashSet<String>) -> (Prepared, usize) {
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
    if known.contains(&sha256) {
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
