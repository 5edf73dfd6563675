//! Exit codes: the contract with CI.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | every check passed (warnings allowed unless `--fail-on warn`) |
//! | 1 | a check failed |
//! | 2 | bad invocation or input (unknown flag, invalid domain, malformed zone or file) |
//! | 3 | could not complete: a DNS lookup failed, so a verdict is inconclusive (and none failed) |

use crate::engine::Summary;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitStatus {
    Passed = 0,
    ChecksFailed = 1,
    BadInput = 2,
    Inconclusive = 3,
}

/// Which severity fails a run (`--fail-on`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum FailOn {
    /// Only failures fail the run.
    #[default]
    Fail,
    /// Warnings fail the run too.
    Warn,
}

impl ExitStatus {
    /// The exit status of a finished check run. Invalid inputs (kept with `--keep-going`) are
    /// bad input whatever the other verdicts; a failure outranks an inconclusive verdict.
    pub fn of(summary: &Summary, fail_on: FailOn) -> ExitStatus {
        if summary.invalid > 0 {
            ExitStatus::BadInput
        } else if summary.fail > 0 || (fail_on == FailOn::Warn && summary.warn > 0) {
            ExitStatus::ChecksFailed
        } else if summary.inconclusive > 0 {
            ExitStatus::Inconclusive
        } else {
            ExitStatus::Passed
        }
    }

    pub fn code(self) -> u8 {
        self as u8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence() {
        let s = |fail, warn, inconclusive, invalid| Summary {
            fail,
            warn,
            inconclusive,
            invalid,
            ..Default::default()
        };
        assert_eq!(
            ExitStatus::of(&s(0, 0, 0, 0), FailOn::Fail),
            ExitStatus::Passed
        );
        assert_eq!(
            ExitStatus::of(&s(0, 1, 0, 0), FailOn::Fail),
            ExitStatus::Passed
        );
        assert_eq!(
            ExitStatus::of(&s(0, 1, 0, 0), FailOn::Warn),
            ExitStatus::ChecksFailed
        );
        assert_eq!(
            ExitStatus::of(&s(1, 0, 1, 0), FailOn::Fail),
            ExitStatus::ChecksFailed
        );
        assert_eq!(
            ExitStatus::of(&s(0, 0, 1, 0), FailOn::Fail),
            ExitStatus::Inconclusive
        );
        assert_eq!(
            ExitStatus::of(&s(1, 0, 0, 1), FailOn::Fail),
            ExitStatus::BadInput
        );
    }
}
