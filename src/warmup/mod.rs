//! Warmup monitoring: after the seed gate opens, traffic moves to the new platform cohort by
//! cohort on a rising daily volume, and each morning the operator needs to know how much each
//! cohort may send today, to which mailbox providers, and whether to advance, hold or back off.
//!
//! [`model`] is the warmup a plan describes (cohorts, schedules, thresholds); [`import`] brings
//! the evidence of how each day went (platform events, daily totals, Postmaster Tools and SNDS
//! data) into the plan's history; [`evidence`] reads it back; [`decide`] replays the days and
//! decides; [`report`] and [`html`] render the decision.

pub mod decide;
pub mod evidence;
pub mod html;
pub mod import;
pub mod model;
pub mod report;

pub use model::{Cohort, Provider, Schedule, Split, ThresholdOverrides, Thresholds, WarmupPlan};
