//! `--format json`: one document, `{"domains":[…],"summary":{…}}`.
//!
//! The shape is a contract with CI users: fields are added, never renamed or removed.

use super::RunFormatter;
use crate::engine::CheckRun;

pub struct JsonFormatter;

impl RunFormatter for JsonFormatter {
    fn format(&self, run: &CheckRun) -> String {
        crate::output::pretty_json(run)
    }
}
