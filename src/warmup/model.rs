//! The warmup as a plan describes it: cohorts in the order they move, each with its size, the
//! pool it sends from, a daily volume schedule and the thresholds that decide each day, per
//! mailbox provider.
//!
//! Defaults, and why (see `../README.md`, "Warmup"): a ramp from 1,000 messages a day per
//! dedicated IP of the cohort's pool, growing 1.5× a day up to the cohort's size — the gentle end
//! of the 1.5–2× daily growth platforms quote, reaching 50,000 a day per IP in about ten days
//! with clean days; complaints over 0.10% hold the cohort and 0.30% or more back it off (Gmail's
//! target and ceiling, the only published numbers); hard bounces over 2%, blocks over 1% back
//! off, deferrals over 5% hold (receivers throttle before they block); a day that sent less than
//! 80% of its plan proves too little to grow on. Each can be set per plan, per cohort and per
//! mailbox provider.

use chrono::NaiveDate;
use serde::Serialize;
use std::fmt;

/// The mailbox providers receivers throttle separately, and `other` for the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Gmail,
    Yahoo,
    Microsoft,
    Other,
}

impl Provider {
    pub const ALL: [Provider; 4] = [
        Provider::Gmail,
        Provider::Yahoo,
        Provider::Microsoft,
        Provider::Other,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Provider::Gmail => "gmail",
            Provider::Yahoo => "yahoo",
            Provider::Microsoft => "microsoft",
            Provider::Other => "other",
        }
    }

    /// What the provider is called in reports.
    pub fn name(self) -> &'static str {
        match self {
            Provider::Gmail => "Gmail",
            Provider::Yahoo => "Yahoo/AOL",
            Provider::Microsoft => "Microsoft",
            Provider::Other => "other",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn parse(text: &str) -> Option<Provider> {
        let t = text.trim().to_ascii_lowercase();
        Some(match t.as_str() {
            "gmail" | "google" | "googlemail" => Provider::Gmail,
            "yahoo" | "aol" | "yahoo/aol" | "verizon" => Provider::Yahoo,
            "microsoft" | "outlook" | "hotmail" | "msn" | "live" => Provider::Microsoft,
            "other" | "others" | "rest" => Provider::Other,
            _ => return None,
        })
    }

    /// The provider of a recipient's domain (`gmail.com`, `hotmail.co.uk`). Consumer domains
    /// only: a company on Google Workspace or Microsoft 365 counts as `other`, because its MX is
    /// not what the consumer filters judge.
    pub fn of_domain(domain: &str) -> Provider {
        let d = domain.trim().trim_end_matches('.').to_ascii_lowercase();
        let base = d.split('.').next().unwrap_or_default();
        match base {
            "gmail" | "googlemail" => Provider::Gmail,
            "yahoo" | "ymail" | "rocketmail" | "aol" | "aim" | "verizon" | "sbcglobal" | "att"
            | "bellsouth" | "frontier" | "netscape" | "love" | "wow" | "games" | "ygm" => {
                Provider::Yahoo
            }
            "outlook" | "hotmail" | "live" | "msn" | "passport" | "windowslive" => {
                Provider::Microsoft
            }
            _ => Provider::Other,
        }
    }

    /// The provider of a recipient address (`ann@gmail.com`).
    pub fn of_address(address: &str) -> Provider {
        let domain = address
            .trim()
            .trim_matches(['<', '>'])
            .rsplit_once('@')
            .map_or("", |(_, d)| d);
        Provider::of_domain(domain)
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// The limits that decide a day. Rates are fractions (0.001 is 0.1%).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Thresholds {
    /// Hard bounces over sent: above it, back off (list quality).
    pub hard_bounce_rate: f64,
    /// Complaints over delivered: above it, hold (Gmail's 0.10% target).
    pub complaint_rate: f64,
    /// Complaints over delivered: at or above it, back off (Gmail's 0.30% ceiling).
    pub complaint_ceiling: f64,
    /// Deferrals (4xx, throttling) over sent: above it, hold.
    pub deferral_rate: f64,
    /// Blocks (5xx policy rejections) over sent: above it, back off.
    pub block_rate: f64,
    /// A day that sent less than this share of its planned volume proves too little: hold.
    pub min_volume_share: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            hard_bounce_rate: 0.02,
            complaint_rate: 0.001,
            complaint_ceiling: 0.003,
            deferral_rate: 0.05,
            block_rate: 0.01,
            min_volume_share: 0.8,
        }
    }
}

/// Threshold values a plan sets at one level (plan, cohort, provider); unset ones inherit.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ThresholdOverrides {
    pub hard_bounce_rate: Option<f64>,
    pub complaint_rate: Option<f64>,
    pub complaint_ceiling: Option<f64>,
    pub deferral_rate: Option<f64>,
    pub block_rate: Option<f64>,
    pub min_volume_share: Option<f64>,
}

impl ThresholdOverrides {
    /// `base` with these values set.
    pub fn over(&self, base: Thresholds) -> Thresholds {
        Thresholds {
            hard_bounce_rate: self.hard_bounce_rate.unwrap_or(base.hard_bounce_rate),
            complaint_rate: self.complaint_rate.unwrap_or(base.complaint_rate),
            complaint_ceiling: self.complaint_ceiling.unwrap_or(base.complaint_ceiling),
            deferral_rate: self.deferral_rate.unwrap_or(base.deferral_rate),
            block_rate: self.block_rate.unwrap_or(base.block_rate),
            min_volume_share: self.min_volume_share.unwrap_or(base.min_volume_share),
        }
    }
}

/// How a cohort's daily volume rises, step by step (a step is a clean day).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Schedule {
    /// Day-by-day volumes, as written; past the last one, the last.
    Days { days: Vec<u64> },
    /// From `start`, times `growth` each step, up to `cap`.
    Ramp { start: u64, growth: f64, cap: u64 },
}

impl Schedule {
    /// The volume of step `step` (0 is the first day).
    pub fn volume(&self, step: usize) -> u64 {
        match self {
            Schedule::Days { days } => days.get(step).or_else(|| days.last()).copied().unwrap_or(0),
            Schedule::Ramp { start, growth, cap } => {
                let mut v = *start as f64;
                for _ in 0..step {
                    v *= growth;
                    if v >= *cap as f64 {
                        return *cap;
                    }
                }
                (v.round() as u64).min(*cap)
            }
        }
    }

    /// The step at which the schedule reaches its full volume (its last step).
    pub fn last_step(&self) -> usize {
        match self {
            Schedule::Days { days } => days.len().saturating_sub(1),
            Schedule::Ramp { start, growth, cap } => {
                if *start >= *cap || *growth <= 1.0 {
                    return 0;
                }
                let mut v = *start as f64;
                let mut step = 0;
                // Bounded: growth > 1 reaches any u64 cap in fewer than 2^16 steps unless the
                // growth is minute; the plan's validation keeps it above 1.01.
                while v < *cap as f64 && step < 10_000 {
                    v *= growth;
                    step += 1;
                }
                step
            }
        }
    }

    /// The full volume.
    pub fn full_volume(&self) -> u64 {
        self.volume(self.last_step())
    }
}

/// The share of a cohort's volume each provider gets.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Split(pub [f64; 4]);

impl Split {
    /// The shares assumed when the plan gives none: a consumer list weighted to Gmail. Set
    /// `split` from the cohort's recipient domains for a list that differs (a B2B list is
    /// mostly Microsoft and `other`).
    pub const ASSUMED: Split = Split([0.45, 0.15, 0.2, 0.2]);

    pub fn share(&self, provider: Provider) -> f64 {
        self.0.get(provider.index()).copied().unwrap_or(0.0)
    }
}

/// One cohort of recipients that moves to the new platform together.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cohort {
    pub name: String,
    /// Recipients in the cohort.
    pub size: u64,
    /// The plan's pool it sends from (its dedicated IPs), when named or implied.
    pub pool: Option<String>,
    pub schedule: Schedule,
    /// Per-provider shares, when the plan sets them.
    pub split: Option<Split>,
    /// The first day it sends, when the plan fixes it; otherwise the day after the cohort
    /// before it finished (the warmup's start for the first).
    pub start: Option<NaiveDate>,
    /// The thresholds per provider (index [`Provider::index`]).
    #[serde(serialize_with = "serialize_thresholds")]
    pub thresholds: [Thresholds; 4],
}

fn serialize_thresholds<S: serde::Serializer>(
    thresholds: &[Thresholds; 4],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = serializer.serialize_map(Some(4))?;
    for p in Provider::ALL {
        if let Some(t) = thresholds.get(p.index()) {
            map.serialize_entry(p.id(), t)?;
        }
    }
    map.end()
}

impl Cohort {
    pub fn thresholds(&self, provider: Provider) -> Thresholds {
        self.thresholds
            .get(provider.index())
            .copied()
            .unwrap_or_default()
    }
}

/// The plan's `[warmup]` and `[[cohort]]`s.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WarmupPlan {
    /// The platform being warmed (default: the plan's new platform).
    pub platform: String,
    /// The first cohort's first day.
    pub start: NaiveDate,
    /// Clean days in a row at full volume that finish a cohort.
    pub clean_days: usize,
    /// Minutes east of UTC of the day boundary events are counted on.
    pub utc_offset_minutes: i32,
    /// Evidence files imported before every status, plan or gate (relative to the plan).
    pub evidence: Vec<std::path::PathBuf>,
    pub cohorts: Vec<Cohort>,
}

impl WarmupPlan {
    pub fn cohort(&self, name: &str) -> Option<&Cohort> {
        self.cohorts.iter().find(|c| c.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ramp_grows_to_its_cap_and_days_hold_their_last() {
        let ramp = Schedule::Ramp {
            start: 2000,
            growth: 1.5,
            cap: 120_000,
        };
        assert_eq!(ramp.volume(0), 2000);
        assert_eq!(ramp.volume(1), 3000);
        assert_eq!(ramp.volume(2), 4500);
        assert_eq!(ramp.last_step(), 11);
        assert_eq!(ramp.volume(11), 120_000);
        assert_eq!(ramp.volume(50), 120_000);
        assert!(ramp.volume(10) < 120_000);
        let days = Schedule::Days {
            days: vec![50, 100, 500],
        };
        assert_eq!(days.volume(7), 500);
        assert_eq!(days.last_step(), 2);
    }

    #[test]
    fn recipients_are_sorted_by_the_filters_that_judge_them() {
        assert_eq!(Provider::of_address("Ann <ann@gmail.com>"), Provider::Gmail);
        assert_eq!(Provider::of_address("b@googlemail.com"), Provider::Gmail);
        assert_eq!(Provider::of_address("c@yahoo.co.uk"), Provider::Yahoo);
        assert_eq!(Provider::of_address("d@aol.com"), Provider::Yahoo);
        assert_eq!(Provider::of_address("e@hotmail.fr"), Provider::Microsoft);
        assert_eq!(Provider::of_address("f@outlook.com"), Provider::Microsoft);
        assert_eq!(Provider::of_address("g@harborandpine.com"), Provider::Other);
        assert_eq!(Provider::of_address("no-at-sign"), Provider::Other);
        assert_eq!(Provider::parse("Yahoo/AOL"), Some(Provider::Yahoo));
        assert_eq!(Provider::parse("icloud"), None);
    }

    #[test]
    fn thresholds_inherit_what_a_level_leaves_unset() {
        let cohort = ThresholdOverrides {
            complaint_rate: Some(0.0008),
            ..Default::default()
        };
        let t = cohort.over(Thresholds::default());
        assert_eq!(t.complaint_rate, 0.0008);
        assert_eq!(t.complaint_ceiling, 0.003);
    }
}
