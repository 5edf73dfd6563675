//! `--format ndjson`: one JSON object per domain, written as soon as the domain is done, then
//! `{"schema_version":2,"summary":{…}}` as the last line. Lets CI and scripts stream thousands of domains.

use super::RunFormatter;
use crate::engine::{CheckRun, DomainReport, Summary};

pub struct NdjsonFormatter;

/// One domain's line (with the newline).
pub fn domain_line(report: &DomainReport) -> String {
    let mut line = serde_json::to_string(report)
        .unwrap_or_else(|e| format!("{{\"error\":\"cannot serialise the report: {e}\"}}"));
    line.push('\n');
    line
}

/// The closing summary line.
pub fn summary_line(summary: &Summary) -> String {
    let mut line =
        serde_json::json!({ "schema_version": super::SCHEMA_VERSION, "summary": summary })
            .to_string();
    line.push('\n');
    line
}

impl RunFormatter for NdjsonFormatter {
    fn format(&self, run: &CheckRun) -> String {
        let mut out: String = run.domains.iter().map(domain_line).collect();
        out.push_str(&summary_line(&run.summary));
        out
    }
}
