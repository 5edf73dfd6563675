//! `--format json`: the whole [`GateReport`] as one document.

use super::GateFormatter;
use crate::gate::GateReport;

pub struct JsonFormatter;

impl GateFormatter for JsonFormatter {
    fn format(&self, report: &GateReport) -> String {
        crate::output::pretty_json(report)
    }
}
