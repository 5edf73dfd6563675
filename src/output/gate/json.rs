//! `--format json`: the whole [`GateReport`] as one document.

use super::GateFormatter;
use crate::gate::GateReport;

pub struct JsonFormatter;

impl GateFormatter for JsonFormatter {
    fn format(&self, report: &GateReport) -> String {
        let mut out = serde_json::to_string_pretty(report)
            .unwrap_or_else(|e| format!("{{\"error\":\"cannot serialise the report: {e}\"}}"));
        out.push('\n');
        out
    }
}
