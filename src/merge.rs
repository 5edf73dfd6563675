//! Joining the ndjson reports of a sharded run (`check --shard K/N`) into one report.
//!
//! Agencies and platforms that watch millions of domains split a run over machines or CI jobs:
//! each checks the domains whose stable hash falls in its part and writes ndjson. Merging reads
//! the shards' reports one line at a time (a report of a million domains is never held whole),
//! hands each domain's line on, and adds up the summaries. It also checks that the parts fit:
//! every shard of `1..=N` exactly once, all of the same `N`, each file ending with its summary —
//! a job that died half-way must not pass as a clean run.

use crate::engine::{DomainReport, Shard, Summary};
use crate::files::{self, FileError, FileKind};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};

/// The longest line a shard report may have (one domain's findings are a few kilobytes).
pub const MAX_REPORT_LINE: usize = 64 << 20;

/// What a merged summary joined.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergeInfo {
    /// Reports merged.
    pub files: usize,
    /// The number of shards of the run (N of `--shard K/N`), when the reports were sharded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shards: Option<u32>,
    /// Shards of `1..=N` with no report (only with `--allow-partial`).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub missing: Vec<u32>,
    /// Shards given more than once (only with `--allow-partial`; their domains count twice).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub repeated: Vec<u32>,
}

impl MergeInfo {
    /// True when some shard is missing or repeated.
    pub fn partial(&self) -> bool {
        !self.missing.is_empty() || !self.repeated.is_empty()
    }
}

/// Why reports cannot be merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error(transparent)]
    File(#[from] FileError),
    #[error("{path}:{line}: {message}")]
    Line {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{path}: no summary line at the end: the run that wrote it did not finish")]
    Unfinished { path: PathBuf },
    #[error("{0}")]
    Shards(String),
}

#[derive(Deserialize)]
struct SummaryLine {
    summary: Summary,
}

/// Reads every report in order, handing each domain's line (as written, for ndjson output) and
/// its parsed report to `on_domain`, and returns the merged summary. Fails on a malformed or
/// unfinished report, and on shards that do not fit together unless `allow_partial`.
pub fn merge(
    paths: &[PathBuf],
    allow_partial: bool,
    mut on_domain: impl FnMut(&str, DomainReport),
) -> Result<Summary, MergeError> {
    let mut total = Summary::default();
    let mut shards: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    let mut unsharded = 0usize;
    for path in paths {
        let summary = read_report(path, &mut on_domain)?;
        total.domains += summary.domains;
        total.pass += summary.pass;
        total.warn += summary.warn;
        total.fail += summary.fail;
        total.inconclusive += summary.inconclusive;
        total.invalid += summary.invalid;
        total.queries += summary.queries;
        total.zone_answers += summary.zone_answers;
        // The shards ran side by side: the run took as long as the slowest.
        total.elapsed_ms = total.elapsed_ms.max(summary.elapsed_ms);
        // A family one shard skipped is missing from the merged report's domains too.
        for family in &summary.skipped {
            if !total.skipped.contains(family) {
                total.skipped.push(*family);
            }
        }
        match summary.shard {
            Some(Shard { index, of }) => shards.entry(of).or_default().push(index),
            None => unsharded += 1,
        }
    }
    total.skipped.sort();
    let mut info = MergeInfo {
        files: paths.len(),
        ..MergeInfo::default()
    };
    let mut problems = Vec::new();
    if unsharded > 0 && !shards.is_empty() {
        problems.push(format!(
            "{} {} from a run without --shard, mixed with sharded ones",
            crate::words::count(unsharded, "report", "reports"),
            crate::words::agree(unsharded, "comes", "come")
        ));
    }
    if shards.len() > 1 {
        let ns: Vec<String> = shards.keys().map(|n| format!("/{n}")).collect();
        problems.push(format!(
            "the reports come from runs split differently ({})",
            ns.join(", ")
        ));
    }
    if let Some((&of, indexes)) = shards.iter().next() {
        info.shards = Some(of);
        for k in 1..=of {
            match indexes.iter().filter(|&&i| i == k).count() {
                0 => info.missing.push(k),
                1 => {}
                _ => info.repeated.push(k),
            }
        }
        if !info.missing.is_empty() {
            let list: Vec<String> = info.missing.iter().map(|k| format!("{k}/{of}")).collect();
            problems.push(format!(
                "{} {} {} no report",
                crate::words::agree(list.len(), "shard", "shards"),
                list.join(", "),
                crate::words::agree(list.len(), "has", "have")
            ));
        }
        if !info.repeated.is_empty() {
            let list: Vec<String> = info.repeated.iter().map(|k| format!("{k}/{of}")).collect();
            problems.push(format!(
                "{} {} {} given more than once (the domains would count twice)",
                crate::words::agree(list.len(), "shard", "shards"),
                list.join(", "),
                crate::words::agree(list.len(), "is", "are")
            ));
        }
    }
    if !problems.is_empty() && !allow_partial {
        return Err(MergeError::Shards(format!(
            "{} (use --allow-partial to merge anyway)",
            problems.join("; ")
        )));
    }
    total.merged = Some(info);
    Ok(total)
}

/// Streams one report: each domain line to `on_domain`, and its closing summary back.
fn read_report(
    path: &Path,
    on_domain: &mut impl FnMut(&str, DomainReport),
) -> Result<Summary, MergeError> {
    let (file, _) = files::open(path, FileKind::Report)?;
    let limit = files::limits().get(FileKind::Report);
    let mut reader = std::io::BufReader::with_capacity(
        256 * 1024,
        std::io::Read::take(file, limit.saturating_add(1)),
    );
    let mut buf = Vec::new();
    let mut number = 0usize;
    let mut summary: Option<Summary> = None;
    let line_error = |line: usize, message: String| MergeError::Line {
        path: path.to_path_buf(),
        line,
        message,
    };
    loop {
        buf.clear();
        let n = std::io::Read::take(&mut reader, MAX_REPORT_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(|e| line_error(number + 1, format!("cannot read: {e}")))?;
        if n == 0 {
            break;
        }
        number += 1;
        if buf.len() > MAX_REPORT_LINE {
            return Err(line_error(
                number,
                format!(
                    "a line longer than {}: not a mailshift report",
                    files::show_size(MAX_REPORT_LINE as u64)
                ),
            ));
        }
        let text = std::str::from_utf8(&buf)
            .map_err(|_| line_error(number, "not UTF-8: not a mailshift report".into()))?
            .trim_end_matches(['\r', '\n']);
        if text.trim().is_empty() {
            continue;
        }
        if summary.is_some() {
            return Err(line_error(
                number,
                "a line after the summary: reports cannot be concatenated; give each as its own file"
                    .into(),
            ));
        }
        // The summary line: `{"schema_version":2,"summary":…}`, or `{"summary":…}` from
        // reports written before documents carried a version.
        if text.starts_with("{\"summary\"") || text.starts_with("{\"schema_version\"") {
            let parsed: SummaryLine = serde_json::from_str(text)
                .map_err(|e| line_error(number, format!("not a mailshift summary: {e}")))?;
            summary = Some(parsed.summary);
            continue;
        }
        let report: DomainReport = serde_json::from_str(text).map_err(|e| {
            line_error(
                number,
                format!("not a domain report of `mailshift check --format ndjson`: {e}"),
            )
        })?;
        on_domain(text, report);
    }
    summary.ok_or_else(|| MergeError::Unfinished {
        path: path.to_path_buf(),
    })
}
