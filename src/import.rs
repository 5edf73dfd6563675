//! What stops the import of one file into the history altogether, for every importer (DMARC
//! and TLS reports, warmup evidence): the file cannot be read, is of no format the importer
//! knows, is malformed where nothing of it can be trusted, changed while it was read, or the
//! history refused it. Each names the file, and nothing of the file was imported; what can be
//! rejected piece by piece (a report, a record, a line) is a problem of the file's outcome
//! instead, and the rest of the file is kept.

use crate::files::FileError;
use crate::history::HistoryError;
use std::path::{Path, PathBuf};

/// A file that could not be imported at all (nothing of it was).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{0}")]
    File(#[from] FileError),
    #[error("{}: {message}", path.display())]
    Format { path: PathBuf, message: String },
    #[error("{}:{line}: {message}; nothing of the file was imported", path.display())]
    Malformed {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error(
        "{}: the file changed while it was being imported; nothing of it was imported (import it again once it is complete)",
        path.display()
    )]
    Changed { path: PathBuf },
    #[error("{}: {source}", path.display())]
    History { path: PathBuf, source: HistoryError },
}

impl ImportError {
    /// The file it is about.
    pub fn path(&self) -> &Path {
        match self {
            ImportError::File(e) => e.path(),
            ImportError::Format { path, .. }
            | ImportError::Malformed { path, .. }
            | ImportError::Changed { path }
            | ImportError::History { path, .. } => path,
        }
    }
}
