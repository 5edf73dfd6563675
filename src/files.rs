//! Reading the files a user, a plan, a zone file or a pull request names: regular files only, each
//! kind with a size cap.
//!
//! In CI the plan and the zone files come from a pull request, so every path mailshift opens on
//! someone's say-so is untrusted: it may be `/dev/zero`, a FIFO that never delivers a byte, a
//! symlink to a device, or simply huge. Every such file is opened here, through one function per
//! need ([`read`], [`read_text`], [`open`]): the file is opened without blocking (a FIFO cannot
//! hang the open), must be a regular file once opened (symlinks are followed, then judged), and
//! is read through a cap for its [`FileKind`] (a file that grows, or a `/proc` file that reports
//! no size, still stops at the cap). Errors name the file, its kind and what to do. The caps are
//! documented in README ("File size limits") and can be raised per kind with
//! `--max-file-size KIND=SIZE` (or `MAILSHIFT_MAX_FILE_SIZE`), which sets [`set_limits`].

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// What a file is for; each kind has its own size cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FileKind {
    /// A migration plan (TOML).
    Plan,
    /// An RFC 1035 zone file given with `--zone`, `$INCLUDE`d by one, or a snapshot.
    Zone,
    /// A plan's gate state (`PLAN.state.json`).
    State,
    /// A provider profile or policy under `--checks-dir`.
    Checks,
    /// A `--domains-file`.
    Domains,
    /// One message given to `verify` (an mbox is read message by message, each under this cap).
    Message,
    /// A PEM key, certificate or CA bundle.
    Pem,
    /// A password file named by a plan.
    Secret,
    /// The SQLite seed store: SQLite reads only the pages it needs, so only its type is checked.
    Store,
    /// A report mailshift wrote (the ndjson of a shard, for `check merge`): streamed, so the
    /// cap is on the whole file and each line is capped apart.
    Report,
    /// Warmup evidence (metrics CSV/JSON, platform event exports, Postmaster Tools and SNDS
    /// data): streamed, so the cap is on the whole file and each line or record apart.
    Evidence,
    /// The SQLite history of a plan's state directory: like the seed store, only its type is
    /// checked.
    History,
    /// A DMARC aggregate or SMTP TLS report file given to `reports import` (XML, gzip, zip, an
    /// email, an mbox): streamed, so the cap is on the whole file; what it decompresses to is
    /// capped apart, per report.
    Feedback,
}

impl FileKind {
    pub const ALL: [FileKind; 13] = [
        FileKind::Plan,
        FileKind::Zone,
        FileKind::State,
        FileKind::Checks,
        FileKind::Domains,
        FileKind::Message,
        FileKind::Pem,
        FileKind::Secret,
        FileKind::Store,
        FileKind::Report,
        FileKind::Evidence,
        FileKind::History,
        FileKind::Feedback,
    ];

    /// The name used in `--max-file-size KIND=SIZE`.
    pub fn id(self) -> &'static str {
        match self {
            FileKind::Plan => "plan",
            FileKind::Zone => "zone",
            FileKind::State => "state",
            FileKind::Checks => "checks",
            FileKind::Domains => "domains",
            FileKind::Message => "message",
            FileKind::Pem => "pem",
            FileKind::Secret => "secret",
            FileKind::Store => "store",
            FileKind::Report => "report",
            FileKind::Evidence => "evidence",
            FileKind::History => "history",
            FileKind::Feedback => "feedback",
        }
    }

    /// What the file is, in words (`the plan`, `the zone file`).
    pub fn noun(self) -> &'static str {
        match self {
            FileKind::Plan => "plan",
            FileKind::Zone => "zone file",
            FileKind::State => "state file",
            FileKind::Checks => "checks file",
            FileKind::Domains => "domains file",
            FileKind::Message => "message",
            FileKind::Pem => "PEM file",
            FileKind::Secret => "password file",
            FileKind::Store => "seed store",
            FileKind::Report => "report",
            FileKind::Evidence => "evidence file",
            FileKind::History => "history database",
            FileKind::Feedback => "DMARC or TLS report",
        }
    }

    /// The default cap, in bytes: far above any real file of the kind, far below what would hurt.
    pub fn default_limit(self) -> u64 {
        const MIB: u64 = 1 << 20;
        match self {
            FileKind::Plan => MIB,
            // A large hosting provider's zone is tens of megabytes.
            FileKind::Zone => 256 * MIB,
            FileKind::State => 16 * MIB,
            FileKind::Checks => MIB,
            // About 20 million domain names.
            FileKind::Domains => 512 * MIB,
            FileKind::Message => crate::verify::MAX_MESSAGE_BYTES as u64,
            FileKind::Pem => MIB,
            FileKind::Secret => 64 * 1024,
            FileKind::Store => u64::MAX,
            // A million domains' ndjson is a few gigabytes.
            FileKind::Report => 64 << 30,
            // A month of a large sender's events is tens of gigabytes.
            FileKind::Evidence => 64 << 30,
            FileKind::History => u64::MAX,
            // A year of a large receiver's reports in one mbox is a few gigabytes.
            FileKind::Feedback => 4 << 30,
        }
    }

    fn parse(text: &str) -> Option<FileKind> {
        FileKind::ALL
            .into_iter()
            .filter(|k| !matches!(k, FileKind::Store | FileKind::History))
            .find(|k| k.id().eq_ignore_ascii_case(text.trim()))
    }
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.noun())
    }
}

/// The size cap of each kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    caps: [u64; FileKind::ALL.len()],
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            caps: FileKind::ALL.map(FileKind::default_limit),
        }
    }
}

impl Limits {
    pub fn get(&self, kind: FileKind) -> u64 {
        self.caps[kind as usize]
    }

    pub fn set(&mut self, kind: FileKind, bytes: u64) {
        self.caps[kind as usize] = bytes;
    }

    /// Applies `KIND=SIZE` settings (`zone=1GiB`, `plan=2MiB`, `message=100000000`).
    pub fn apply(&mut self, setting: &str) -> Result<(), String> {
        let (kind, size) = setting
            .split_once('=')
            .ok_or_else(|| format!("`{setting}` is not KIND=SIZE (e.g. zone=512MiB)"))?;
        let kind = FileKind::parse(kind).ok_or_else(|| {
            let known: Vec<&str> = FileKind::ALL
                .iter()
                .filter(|k| **k != FileKind::Store)
                .map(|k| k.id())
                .collect();
            format!("`{kind}` is not a file kind (known: {})", known.join(", "))
        })?;
        self.set(kind, parse_size(size)?);
        Ok(())
    }
}

static LIMITS: OnceLock<Limits> = OnceLock::new();

/// Sets the caps for the whole process (the CLI does it once, from `--max-file-size`). Returns
/// false when they were already set or used.
pub fn set_limits(limits: Limits) -> bool {
    LIMITS.set(limits).is_ok()
}

/// The caps in force.
pub fn limits() -> &'static Limits {
    LIMITS.get_or_init(Limits::default)
}

/// `1048576`, `512KiB`, `64MiB`, `1GiB`, `2G`, `10MB` → bytes (K/M/G are binary, as in `ls -h`).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let number: u64 = digits
        .parse()
        .map_err(|_| format!("`{text}` is not a size (e.g. 64MiB, 1GiB, 1048576)"))?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => {
            return Err(format!(
                "`{text}`: unknown unit `{unit}` (use KiB, MiB or GiB)"
            ))
        }
    };
    number
        .checked_mul(factor)
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("`{text}` is not a usable size"))
}

/// `52428800` → `50 MiB`.
pub fn show_size(bytes: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, size) in UNITS {
        if bytes >= size {
            return if bytes % size == 0 {
                format!("{} {unit}", bytes / size)
            } else {
                format!("{:.1} {unit}", bytes as f64 / size as f64)
            };
        }
    }
    format!("{bytes} bytes")
}

/// A file that cannot be used, naming it and saying why.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The reason is part of the message, so it is not also the error's `source()` (which
    /// `{:#}` would print a second time).
    #[error("cannot read the {kind} {path}: {error}")]
    Open {
        path: PathBuf,
        kind: FileKind,
        error: std::io::Error,
    },
    #[error("{path}: the {kind} is {what}, not a regular file")]
    NotRegular {
        path: PathBuf,
        kind: FileKind,
        what: &'static str,
    },
    #[error(
        "{path}: the {kind} is {} or more; {kind}s are limited to {} \
         (raise it with --max-file-size {}=SIZE)",
        show_size(*.size), show_size(*.limit), .kind.id()
    )]
    TooLarge {
        path: PathBuf,
        kind: FileKind,
        /// The size seen (at least this much: reading stops at the cap).
        size: u64,
        limit: u64,
    },
    #[error("{path}: the {kind} is not UTF-8 text (first bad byte at offset {offset})")]
    NotText {
        path: PathBuf,
        kind: FileKind,
        offset: usize,
    },
}

impl FileError {
    /// True when the file does not exist (callers for which absence is normal check this).
    pub fn is_not_found(&self) -> bool {
        matches!(self, FileError::Open { error, .. } if error.kind() == std::io::ErrorKind::NotFound)
    }

    pub fn path(&self) -> &Path {
        match self {
            FileError::Open { path, .. }
            | FileError::NotRegular { path, .. }
            | FileError::TooLarge { path, .. }
            | FileError::NotText { path, .. } => path,
        }
    }
}

fn what_it_is(meta: &std::fs::Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    "not a regular file"
}

/// Opens `path` for reading without blocking on a FIFO, and checks that it is a regular file
/// (symlinks followed) within the cap. The file's size (from its metadata) is returned too.
pub fn open(path: &Path, kind: FileKind) -> Result<(File, u64), FileError> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever.
        // O_NOCTTY: a terminal device never becomes our controlling terminal.
        options.custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY);
    }
    let file = options.open(path).map_err(|source| FileError::Open {
        path: path.to_path_buf(),
        kind,
        error: source,
    })?;
    let meta = file.metadata().map_err(|source| FileError::Open {
        path: path.to_path_buf(),
        kind,
        error: source,
    })?;
    if !meta.is_file() {
        return Err(FileError::NotRegular {
            path: path.to_path_buf(),
            kind,
            what: what_it_is(&meta),
        });
    }
    let limit = limits().get(kind);
    if meta.len() > limit {
        return Err(FileError::TooLarge {
            path: path.to_path_buf(),
            kind,
            size: meta.len(),
            limit,
        });
    }
    Ok((file, meta.len()))
}

/// Reads a whole file of `kind`, never more than its cap.
pub fn read(path: &Path, kind: FileKind) -> Result<Vec<u8>, FileError> {
    let (file, size) = open(path, kind)?;
    read_capped(file, size, path, kind)
}

/// Reads at most the cap of `kind` from `reader` (`size_hint` preallocates); more is an error.
fn read_capped(
    reader: impl Read,
    size_hint: u64,
    path: &Path,
    kind: FileKind,
) -> Result<Vec<u8>, FileError> {
    let limit = limits().get(kind);
    let mut bytes = Vec::with_capacity(size_hint.min(limit) as usize);
    reader
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|source| FileError::Open {
            path: path.to_path_buf(),
            kind,
            error: source,
        })?;
    if bytes.len() as u64 > limit {
        return Err(FileError::TooLarge {
            path: path.to_path_buf(),
            kind,
            size: bytes.len() as u64,
            limit,
        });
    }
    Ok(bytes)
}

/// Reads standard input as a file of `kind` (`-` on the command line), within the cap.
pub fn read_stdin(kind: FileKind) -> Result<Vec<u8>, FileError> {
    read_capped(std::io::stdin().lock(), 0, Path::new("stdin"), kind)
}

/// Reads a whole file of `kind` as UTF-8 text, within the cap. A leading byte-order mark is
/// dropped (editors on Windows add one).
pub fn read_text(path: &Path, kind: FileKind) -> Result<String, FileError> {
    text(read(path, kind)?, path, kind)
}

/// Bytes as UTF-8 text, without a leading byte-order mark.
pub fn text(mut bytes: Vec<u8>, path: &Path, kind: FileKind) -> Result<String, FileError> {
    if bytes.starts_with(b"\xEF\xBB\xBF") {
        bytes.drain(..3);
    }
    String::from_utf8(bytes).map_err(|e| FileError::NotText {
        path: path.to_path_buf(),
        kind,
        offset: e.utf8_error().valid_up_to(),
    })
}

/// Checks that `path`, if it exists, is a regular file (for files opened by another library,
/// such as the SQLite seed store): absent is fine, a device or a FIFO is not.
pub fn check_regular_or_absent(path: &Path, kind: FileKind) -> Result<(), FileError> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(FileError::Open {
            path: path.to_path_buf(),
            kind,
            error: source,
        }),
        Ok(meta) if meta.is_file() => Ok(()),
        Ok(meta) => Err(FileError::NotRegular {
            path: path.to_path_buf(),
            kind,
            what: what_it_is(&meta),
        }),
    }
}

/// The files of `dir` whose names satisfy `wanted`, sorted. Hidden entries and subdirectories
/// are skipped (listing is not recursive); a wanted entry that is neither (a FIFO, a device, a
/// symlink to one) is an error, not silently skipped.
pub fn list_dir(
    dir: &Path,
    kind: FileKind,
    wanted: impl Fn(&Path) -> bool,
) -> Result<Vec<PathBuf>, FileError> {
    let open_error = |source| FileError::Open {
        path: dir.to_path_buf(),
        kind,
        error: source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(open_error)? {
        let entry = entry.map_err(open_error)?;
        let name = entry.file_name();
        if name.as_encoded_bytes().starts_with(b".") {
            continue;
        }
        let path = entry.path();
        if !wanted(&path) {
            continue;
        }
        // The directory says what most entries are (no system call per file, which a
        // thousand report files would pay); a symlink is followed below.
        match entry.file_type() {
            Ok(t) if t.is_file() => {
                files.push((name, path));
                continue;
            }
            Ok(t) if t.is_dir() => continue,
            _ => {}
        }
        // metadata() follows symlinks: a link to a regular file is fine, to a device is not.
        let meta = std::fs::metadata(&path).map_err(|source| FileError::Open {
            path: path.clone(),
            kind,
            error: source,
        })?;
        if meta.is_dir() {
            continue;
        }
        if !meta.is_file() {
            return Err(FileError::NotRegular {
                path,
                kind,
                what: what_it_is(&meta),
            });
        }
        files.push((name, path));
    }
    // One directory: its entries' order is their names', kept from the listing (a path's name
    // found again at each of a thousand files' ten comparisons cost a millisecond).
    files.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    Ok(files.into_iter().map(|(_, path)| path).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_show() {
        assert_eq!(parse_size("1048576").unwrap(), 1 << 20);
        assert_eq!(parse_size("64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_size("2 G").unwrap(), 2 << 30);
        assert_eq!(parse_size("512k").unwrap(), 512 << 10);
        assert!(parse_size("0").is_err());
        assert!(parse_size("lots").is_err());
        assert!(parse_size("5 parsecs").is_err());
        assert!(parse_size("99999999999999999999GiB").is_err());
        assert_eq!(show_size(50 << 20), "50 MiB");
        assert_eq!(show_size(1536), "1.5 KiB");
        assert_eq!(show_size(12), "12 bytes");
    }

    #[test]
    fn limits_are_set_per_kind() {
        let mut limits = Limits::default();
        limits.apply("zone=1GiB").unwrap();
        assert_eq!(limits.get(FileKind::Zone), 1 << 30);
        assert_eq!(limits.get(FileKind::Plan), 1 << 20);
        assert!(limits
            .apply("zones=1")
            .unwrap_err()
            .contains("known: plan, zone"));
        assert!(limits.apply("zone").is_err());
    }

    #[test]
    fn devices_fifos_directories_and_oversized_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = read(Path::new("/dev/zero"), FileKind::Plan).unwrap_err();
        assert!(
            err.to_string()
                .contains("a character device, not a regular file"),
            "{err}"
        );
        let err = read(dir.path(), FileKind::Zone).unwrap_err();
        assert!(err.to_string().contains("a directory"), "{err}");
        std::fs::create_dir(dir.path().join("sub.zone")).unwrap();
        let link = dir.path().join("link.toml");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        assert!(matches!(
            read(&link, FileKind::Checks),
            Err(FileError::NotRegular { .. })
        ));
        let fifo = dir.path().join("pipe.zone");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let err = read(&fifo, FileKind::Zone).unwrap_err();
        assert!(err.to_string().contains("FIFO"), "{err}");
        let big = dir.path().join("big.key");
        std::fs::write(
            &big,
            vec![b'a'; (FileKind::Secret.default_limit() + 1) as usize],
        )
        .unwrap();
        let err = read(&big, FileKind::Secret).unwrap_err();
        assert!(
            err.to_string().contains("--max-file-size secret=SIZE"),
            "{err}"
        );
        let missing = read(&dir.path().join("none"), FileKind::State).unwrap_err();
        assert!(missing.is_not_found());
        // A listed directory entry that is not a regular file is an error, not skipped.
        let err = list_dir(dir.path(), FileKind::Zone, |p| {
            p.extension().is_some_and(|x| x == "zone")
        })
        .unwrap_err();
        assert!(err.to_string().contains("pipe.zone"), "{err}");
    }

    #[test]
    fn a_listing_is_in_name_order_without_hidden_entries_or_subdirectories() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "b.xml",
            "a.xml",
            "10.xml",
            ".hidden.xml",
            "B.xml",
            "skip.txt",
        ] {
            std::fs::write(dir.path().join(name), "x").unwrap();
        }
        std::fs::create_dir(dir.path().join("c.xml")).unwrap();
        let files = list_dir(dir.path(), FileKind::Report, |p| {
            p.extension().is_some_and(|x| x == "xml")
        })
        .unwrap();
        let names: Vec<_> = files
            .iter()
            .map(|p| p.file_name().unwrap().to_str().unwrap())
            .collect();
        assert_eq!(names, ["10.xml", "B.xml", "a.xml", "b.xml"]);
        assert!(files.iter().all(|p| p.parent() == Some(dir.path())));
    }

    #[test]
    fn text_drops_a_byte_order_mark_and_names_bad_bytes() {
        let p = Path::new("x.zone");
        assert_eq!(
            text(b"\xEF\xBB\xBFabc".to_vec(), p, FileKind::Zone).unwrap(),
            "abc"
        );
        let err = text(b"ab\xFF".to_vec(), p, FileKind::Zone).unwrap_err();
        assert!(err.to_string().contains("offset 2"), "{err}");
    }
}
