//! The progress bar for bulk runs: on stderr, only on a terminal, never in CI.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// A bar for `total` domains, or a silent one when stderr is not a terminal, `CI` is set,
    /// or there is only one domain.
    pub fn new(total: usize) -> Progress {
        let wanted =
            total > 1 && std::io::stderr().is_terminal() && std::env::var_os("CI").is_none();
        if !wanted {
            return Progress { bar: None };
        }
        let bar = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(
            "{spinner} checking [{bar:30}] {pos}/{len} domains, {per_sec}, eta {eta}  {msg}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        Progress { bar: Some(bar) }
    }

    pub fn tick(&self, domain: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(domain.to_string());
            bar.inc(1);
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
