//! The plan's `[warmup]` section and its `[[cohort]]`s, read into [`crate::warmup::WarmupPlan`]:
//! every problem reported at its place, like the rest of the plan.

use super::fields::{List, Typed};
use super::{relative_to, IpPool, Problems, Text};
use crate::warmup::model::{
    Cohort, Provider, Schedule, Split, ThresholdOverrides, Thresholds, WarmupPlan,
};
use chrono::NaiveDate;
use serde::Deserialize;
use std::ops::Range;
use std::path::Path;
use toml::Spanned;

#[derive(Debug, Deserialize, Default)]
pub(super) struct RawWarmup {
    platform: Option<Text>,
    start: Option<Typed<toml::Value>>,
    clean_days: Option<Typed<u64>>,
    utc_offset: Option<Text>,
    #[serde(default)]
    evidence: List<Text>,
    thresholds: Option<Spanned<RawThresholds>>,
}

#[derive(Debug, Deserialize, Default)]
pub(super) struct RawThresholds {
    hard_bounce_rate: Option<Typed<f64>>,
    complaint_rate: Option<Typed<f64>>,
    complaint_ceiling: Option<Typed<f64>>,
    deferral_rate: Option<Typed<f64>>,
    block_rate: Option<Typed<f64>>,
    min_volume_share: Option<Typed<f64>>,
    gmail: Option<Spanned<RawProviderThresholds>>,
    yahoo: Option<Spanned<RawProviderThresholds>>,
    microsoft: Option<Spanned<RawProviderThresholds>>,
    other: Option<Spanned<RawProviderThresholds>>,
}

/// The thresholds of one mailbox provider (no further nesting).
#[derive(Debug, Deserialize, Default)]
pub(super) struct RawProviderThresholds {
    hard_bounce_rate: Option<Typed<f64>>,
    complaint_rate: Option<Typed<f64>>,
    complaint_ceiling: Option<Typed<f64>>,
    deferral_rate: Option<Typed<f64>>,
    block_rate: Option<Typed<f64>>,
    min_volume_share: Option<Typed<f64>>,
}

impl RawThresholds {
    fn own(&self) -> RawProviderThresholds {
        RawProviderThresholds {
            hard_bounce_rate: self.hard_bounce_rate.clone(),
            complaint_rate: self.complaint_rate.clone(),
            complaint_ceiling: self.complaint_ceiling.clone(),
            deferral_rate: self.deferral_rate.clone(),
            block_rate: self.block_rate.clone(),
            min_volume_share: self.min_volume_share.clone(),
        }
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct RawCohort {
    name: Option<Text>,
    size: Option<Typed<u64>>,
    pool: Option<Text>,
    start: Option<Typed<toml::Value>>,
    schedule: Option<Spanned<RawSchedule>>,
    split: Option<Spanned<RawSplit>>,
    thresholds: Option<Spanned<RawThresholds>>,
}

#[derive(Debug, Deserialize)]
pub(super) struct RawSchedule {
    start: Option<Typed<u64>>,
    growth: Option<Typed<f64>>,
    cap: Option<Typed<u64>>,
    #[serde(default)]
    days: List<Typed<u64>>,
}

#[derive(Debug, Deserialize)]
pub(super) struct RawSplit {
    gmail: Option<Typed<f64>>,
    yahoo: Option<Typed<f64>>,
    microsoft: Option<Typed<f64>>,
    other: Option<Typed<f64>>,
}

/// The keys each table of the warmup knows (for unknown keys and "did you mean").
pub(super) fn known_keys(path: &[&str]) -> Option<&'static [&'static str]> {
    const THRESHOLDS: &[&str] = &[
        "hard_bounce_rate",
        "complaint_rate",
        "complaint_ceiling",
        "deferral_rate",
        "block_rate",
        "min_volume_share",
        "gmail",
        "yahoo",
        "microsoft",
        "other",
    ];
    Some(match path {
        ["warmup"] => &[
            "platform",
            "start",
            "clean_days",
            "utc_offset",
            "evidence",
            "thresholds",
        ],
        ["warmup" | "cohort", "thresholds"] => THRESHOLDS,
        ["warmup" | "cohort", "thresholds", "gmail" | "yahoo" | "microsoft" | "other"] => {
            &THRESHOLDS[..6]
        }
        ["cohort"] => &[
            "name",
            "size",
            "pool",
            "start",
            "schedule",
            "split",
            "thresholds",
        ],
        ["cohort", "schedule"] => &["start", "growth", "cap", "days"],
        ["cohort", "split"] => &["gmail", "yahoo", "microsoft", "other"],
        _ => return None,
    })
}

/// A date written as a TOML date (`2026-12-07`) or a string.
fn date(value: &Typed<toml::Value>, field: &str, problems: &mut Problems<'_>) -> Option<NaiveDate> {
    let raw = problems.value(value, field)?;
    let text = match raw {
        toml::Value::Datetime(d) => d.to_string(),
        toml::Value::String(s) => s.clone(),
        other => {
            problems.at(
                value.span.clone(),
                field,
                format!("expected a date (2026-12-07), found a {}", other.type_str()),
            );
            return None;
        }
    };
    match NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d") {
        Ok(d) => Some(d),
        Err(_) => {
            problems.at(
                value.span.clone(),
                field,
                format!("`{text}` is not a date (write it as 2026-12-07)"),
            );
            None
        }
    }
}

/// A rate: a fraction between 0 and 1.
fn rate(value: &Option<Typed<f64>>, field: &str, problems: &mut Problems<'_>) -> Option<f64> {
    let typed = value.as_ref()?;
    let v = *problems.value(typed, field)?;
    if !(0.0..=1.0).contains(&v) || !v.is_finite() {
        problems.at(
            typed.span.clone(),
            field,
            format!("{v} is not a rate: write a fraction from 0 to 1 (0.001 is 0.1%)"),
        );
        return None;
    }
    Some(v)
}

fn overrides(
    raw: &RawProviderThresholds,
    field: &str,
    problems: &mut Problems<'_>,
) -> ThresholdOverrides {
    ThresholdOverrides {
        hard_bounce_rate: rate(
            &raw.hard_bounce_rate,
            &format!("{field}.hard_bounce_rate"),
            problems,
        ),
        complaint_rate: rate(
            &raw.complaint_rate,
            &format!("{field}.complaint_rate"),
            problems,
        ),
        complaint_ceiling: rate(
            &raw.complaint_ceiling,
            &format!("{field}.complaint_ceiling"),
            problems,
        ),
        deferral_rate: rate(
            &raw.deferral_rate,
            &format!("{field}.deferral_rate"),
            problems,
        ),
        block_rate: rate(&raw.block_rate, &format!("{field}.block_rate"), problems),
        min_volume_share: rate(
            &raw.min_volume_share,
            &format!("{field}.min_volume_share"),
            problems,
        ),
    }
}

/// Thresholds per provider from one level (`raw`, with its per-provider tables) over `base`.
fn thresholds_over(
    raw: Option<&Spanned<RawThresholds>>,
    field: &str,
    base: [Thresholds; 4],
    problems: &mut Problems<'_>,
) -> [Thresholds; 4] {
    let Some(raw) = raw else {
        return base;
    };
    let span = raw.span();
    let raw = raw.get_ref();
    let level = overrides(&raw.own(), field, problems);
    let mut out = base;
    let mut conflicting: Vec<(&str, f64, f64)> = Vec::new();
    for p in Provider::ALL {
        let per = match p {
            Provider::Gmail => &raw.gmail,
            Provider::Yahoo => &raw.yahoo,
            Provider::Microsoft => &raw.microsoft,
            Provider::Other => &raw.other,
        };
        let Some(slot) = out.get_mut(p.index()) else {
            continue;
        };
        *slot = level.over(*slot);
        if let Some(per) = per {
            *slot = overrides(per.get_ref(), &format!("{field}.{}", p.id()), problems).over(*slot);
        }
        if slot.complaint_rate > slot.complaint_ceiling {
            conflicting.push((p.name(), slot.complaint_rate, slot.complaint_ceiling));
        }
    }
    if let Some((_, rate, ceiling)) = conflicting.first() {
        let names: Vec<&str> = conflicting.iter().map(|(n, _, _)| *n).collect();
        problems.at(
            span,
            format!("{field}.complaint_rate"),
            format!(
                "for {} the complaint rate that holds ({rate}) is above the ceiling that backs off ({ceiling})",
                names.join(", ")
            ),
        );
    }
    out
}

/// Reads `[warmup]` and `[[cohort]]`; `None` when the plan has neither (or after reporting why
/// the warmup cannot be used).
#[allow(clippy::too_many_arguments)]
pub(super) fn warmup(
    raw: Option<&Spanned<RawWarmup>>,
    raw_cohorts: &List<Spanned<RawCohort>>,
    plan_path: &Path,
    new_platform: &str,
    pools: &[IpPool],
    catalog: &crate::catalog::Catalog,
    problems: &mut Problems<'_>,
) -> Option<WarmupPlan> {
    let cohorts_given = !raw_cohorts.is_empty();
    let (span, w): (Range<usize>, Option<&RawWarmup>) = match raw {
        Some(r) => (r.span(), Some(r.get_ref())),
        None if cohorts_given => {
            let first = raw_cohorts.iter().next().map(|c| c.span()).unwrap_or(0..0);
            problems.at(
                first,
                "warmup",
                "the plan has cohorts but no [warmup] section (start at least)",
            );
            return None;
        }
        None => return None,
    };
    let w = w?;
    let platform = match problems.optional(&w.platform, "warmup.platform") {
        Some(p) => {
            let id = p.trim().to_ascii_lowercase();
            if catalog.provider(&id).is_none() {
                if let Some(t) = &w.platform {
                    problems.at(
                        t.span.clone(),
                        "warmup.platform",
                        super::unknown_provider(&id, catalog),
                    );
                }
            }
            id
        }
        None => new_platform.to_string(),
    };
    let start = match &w.start {
        Some(s) => date(s, "warmup.start", problems),
        None => {
            problems.at(
                span.clone(),
                "warmup.start",
                "missing `start` (the first cohort's first day, 2026-12-07)",
            );
            None
        }
    };
    let clean_days = problems
        .optional(&w.clean_days, "warmup.clean_days")
        .copied()
        .unwrap_or(3);
    if clean_days == 0 || clean_days > 60 {
        if let Some(t) = &w.clean_days {
            problems.at(
                t.span.clone(),
                "warmup.clean_days",
                "clean_days is a number of days from 1 to 60",
            );
        }
    }
    let utc_offset_minutes = match problems.optional(&w.utc_offset, "warmup.utc_offset") {
        None => 0,
        Some(text) => match parse_offset(text) {
            Some(m) => m,
            None => {
                if let Some(t) = &w.utc_offset {
                    problems.at(
                        t.span.clone(),
                        "warmup.utc_offset",
                        format!("`{text}` is not an offset from UTC (+01:00, -05:00, Z)"),
                    );
                }
                0
            }
        },
    };
    let evidence = problems
        .strings(&w.evidence, "warmup.evidence")
        .into_iter()
        .map(|(_, _, text)| relative_to(plan_path, text))
        .collect();
    let base = thresholds_over(
        w.thresholds.as_ref(),
        "warmup.thresholds",
        [Thresholds::default(); 4],
        problems,
    );
    let mut cohorts: Vec<Cohort> = Vec::new();
    for (i, c) in problems.list(raw_cohorts, "cohort").iter().enumerate() {
        let cspan = c.span();
        let c = c.get_ref();
        let field = format!("cohort[{i}]");
        let Some(name) = problems
            .required(&c.name, &cspan, &format!("{field}.name"))
            .map(|n| n.trim().to_string())
        else {
            continue;
        };
        if cohorts.iter().any(|o| o.name == name) {
            if let Some(t) = &c.name {
                problems.at(
                    t.span.clone(),
                    format!("{field}.name"),
                    format!("a cohort `{name}` is already defined"),
                );
            }
            continue;
        }
        let Some(size) = problems
            .required(&c.size, &cspan, &format!("{field}.size"))
            .copied()
        else {
            continue;
        };
        if size == 0 {
            if let Some(t) = &c.size {
                problems.at(
                    t.span.clone(),
                    format!("{field}.size"),
                    "a cohort of 0 recipients sends nothing",
                );
            }
            continue;
        }
        // The pool: named, or the warmed platform's dedicated pools (the first of them).
        let pool = match problems.optional(&c.pool, &format!("{field}.pool")) {
            Some(p) => {
                let p = p.trim().to_string();
                if !pools.iter().any(|x| x.name == p) {
                    let known: Vec<&str> = pools.iter().map(|x| x.name.as_str()).collect();
                    if let Some(t) = &c.pool {
                        problems.at(
                            t.span.clone(),
                            format!("{field}.pool"),
                            format!(
                                "no pool `{p}` in the plan (pools: {})",
                                if known.is_empty() {
                                    "none".to_string()
                                } else {
                                    known.join(", ")
                                }
                            ),
                        );
                    }
                }
                Some(p)
            }
            None => pools
                .iter()
                .find(|x| x.dedicated && x.platform == platform)
                .map(|x| x.name.clone()),
        };
        let ips = pool
            .as_ref()
            .and_then(|p| pools.iter().find(|x| &x.name == p))
            .filter(|x| x.dedicated)
            .map_or(1, |x| x.ips.len().max(1)) as u64;
        let schedule = schedule(c.schedule.as_ref(), &field, size, ips, problems);
        let split = c.split.as_ref().and_then(|s| split(s, &field, problems));
        let start = c
            .start
            .as_ref()
            .and_then(|s| date(s, &format!("{field}.start"), problems));
        let thresholds = thresholds_over(
            c.thresholds.as_ref(),
            &format!("{field}.thresholds"),
            base,
            problems,
        );
        cohorts.push(Cohort {
            name,
            size,
            pool,
            schedule,
            split,
            start,
            thresholds,
        });
    }
    if cohorts.is_empty() && !cohorts_given {
        problems.at(
            span.clone(),
            "cohort",
            "a [warmup] needs at least one [[cohort]] (name, size)",
        );
    }
    Some(WarmupPlan {
        platform,
        start: start?,
        clean_days: clean_days.clamp(1, 60) as usize,
        utc_offset_minutes,
        evidence,
        cohorts,
    })
}

/// `+01:00`, `-0530`, `Z`: minutes east of UTC.
fn parse_offset(text: &str) -> Option<i32> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("z") || t.eq_ignore_ascii_case("utc") {
        return Some(0);
    }
    let (sign, rest) = match t.as_bytes().first()? {
        b'+' => (1, t.get(1..)?),
        b'-' => (-1, t.get(1..)?),
        _ => return None,
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if digits.len() != 4 || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let h: i32 = digits.get(..2)?.parse().ok()?;
    let m: i32 = digits.get(2..)?.parse().ok()?;
    (h <= 14 && m < 60).then_some(sign * (h * 60 + m))
}

fn schedule(
    raw: Option<&Spanned<RawSchedule>>,
    field: &str,
    size: u64,
    ips: u64,
    problems: &mut Problems<'_>,
) -> Schedule {
    let default = Schedule::Ramp {
        start: (1000 * ips).min(size),
        growth: 1.5,
        cap: size,
    };
    let Some(raw) = raw else {
        return default;
    };
    let span = raw.span();
    let s = raw.get_ref();
    let f = format!("{field}.schedule");
    if !s.days.is_empty() {
        if s.start.is_some() || s.growth.is_some() {
            problems.at(
                span.clone(),
                &f,
                "give either `days` or `start`/`growth`/`cap`, not both",
            );
        }
        let days: Vec<u64> = problems
            .list(&s.days, &format!("{f}.days"))
            .iter()
            .enumerate()
            .filter_map(|(i, d)| problems.value(d, &format!("{f}.days[{i}]")).copied())
            .collect();
        if days.windows(2).any(|w| matches!(w, [a, b] if b < a)) {
            problems.at(span.clone(), format!("{f}.days"), "the daily volumes must not go down (a back-off is decided from the evidence, not planned)");
        }
        if days.contains(&0) {
            problems.at(
                span.clone(),
                format!("{f}.days"),
                "a day of 0 messages warms nothing",
            );
        }
        return Schedule::Days { days };
    }
    let start = problems
        .optional(&s.start, &format!("{f}.start"))
        .copied()
        .unwrap_or(match &default {
            Schedule::Ramp { start, .. } => *start,
            Schedule::Days { .. } => 1000,
        });
    let growth = problems
        .optional(&s.growth, &format!("{f}.growth"))
        .copied()
        .unwrap_or(1.5);
    if !(1.01..=10.0).contains(&growth) {
        if let Some(t) = &s.growth {
            problems.at(t.span.clone(), format!("{f}.growth"), format!("a daily growth of {growth} is not a ramp: use 1.01 to 10 (1.5 is half again each clean day)"));
        }
    }
    let cap = problems
        .optional(&s.cap, &format!("{f}.cap"))
        .copied()
        .unwrap_or(size);
    if start == 0 || cap == 0 || start > cap {
        problems.at(
            span.clone(),
            &f,
            format!("a ramp from {start} to {cap} does not rise"),
        );
    }
    Schedule::Ramp {
        start,
        growth: growth.clamp(1.01, 10.0),
        cap,
    }
}

fn split(raw: &Spanned<RawSplit>, field: &str, problems: &mut Problems<'_>) -> Option<Split> {
    let span = raw.span();
    let s = raw.get_ref();
    let f = format!("{field}.split");
    let mut shares = [0.0; 4];
    for p in Provider::ALL {
        let value = match p {
            Provider::Gmail => &s.gmail,
            Provider::Yahoo => &s.yahoo,
            Provider::Microsoft => &s.microsoft,
            Provider::Other => &s.other,
        };
        if let (Some(v), Some(slot)) = (
            rate(value, &format!("{f}.{}", p.id()), problems),
            shares.get_mut(p.index()),
        ) {
            *slot = v;
        }
    }
    let total: f64 = shares.iter().sum();
    if (total - 1.0).abs() > 0.01 {
        problems.at(span, f, format!("the shares add up to {total:.2}, not 1"));
        return None;
    }
    Some(Split(shares))
}

#[cfg(test)]
mod tests {
    use crate::catalog::Catalog;
    use crate::plan::Plan;
    use crate::warmup::model::{Provider, Schedule};
    use std::path::Path;

    const BASE: &str = r#"
[migration]
name = "Lakeside Books: Mailchimp to SendGrid"
from = "mailchimp"
to = "sendgrid"
new_sending_ips = ["198.51.100.25", "198.51.100.26"]

[[domain]]
name = "lakeside-books.co.uk"

[[stage]]
name = "cutover"
cutover = true
requires = ["warmup"]
"#;

    fn parse(extra: &str) -> Result<Plan, String> {
        let catalog = Catalog::embedded().unwrap();
        Plan::parse(&format!("{BASE}{extra}"), Path::new("plan.toml"), &catalog)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_warmup_takes_its_defaults_from_the_pool_and_the_plan() {
        let plan = parse(
            r#"
[warmup]
start = 2026-12-07
utc_offset = "+01:00"
[warmup.thresholds]
complaint_rate = 0.0008
[warmup.thresholds.microsoft]
block_rate = 0.005

[[cohort]]
name = "engaged-30d"
size = 50000

[[cohort]]
name = "rest"
size = 200000
schedule = { days = [5000, 10000, 20000, 40000] }
split = { gmail = 0.5, yahoo = 0.2, microsoft = 0.2, other = 0.1 }
"#,
        )
        .unwrap();
        let w = plan.warmup.unwrap();
        assert_eq!(w.platform, "sendgrid");
        assert_eq!(w.utc_offset_minutes, 60);
        assert_eq!(w.clean_days, 3);
        let first = &w.cohorts[0];
        // Two dedicated IPs in the implied pool: 2,000 a day to start, ×1.5, up to the size.
        assert_eq!(first.pool.as_deref(), Some("new_sending_ips"));
        assert_eq!(
            first.schedule,
            Schedule::Ramp {
                start: 2000,
                growth: 1.5,
                cap: 50000
            }
        );
        assert_eq!(first.thresholds(Provider::Gmail).complaint_rate, 0.0008);
        assert_eq!(first.thresholds(Provider::Microsoft).block_rate, 0.005);
        assert_eq!(first.thresholds(Provider::Gmail).block_rate, 0.01);
        assert_eq!(w.cohorts[1].schedule.full_volume(), 40000);
    }

    #[test]
    fn every_warmup_mistake_is_reported_with_its_field() {
        let err = parse(
            r#"
[warmup]
start = "7 December"
clean_days = 0
utc_offset = "CET"
[warmup.thresholds]
complaint_rate = 0.5
complaint_ceiling = 0.003
bounce_rate = 0.02

[[cohort]]
name = "engaged-30d"
size = 50000
pool = "sendgrid-ips"
schedule = { start = 1000, growth = 0.9 }
split = { gmail = 0.5, yahoo = 0.2 }

[[cohort]]
name = "engaged-30d"
size = 1000

[[cohort]]
name = "rest"
size = 0

[[cohort]]
name = "late"
size = 100
schedule = { days = [500, 200] }
"#,
        )
        .unwrap_err();
        for expected in [
            "warmup.start: `7 December` is not a date",
            "warmup.clean_days: clean_days is a number of days from 1 to 60",
            "warmup.utc_offset: `CET` is not an offset from UTC",
            "warmup.thresholds.complaint_rate: for Gmail, Yahoo/AOL, Microsoft, other the complaint rate that holds (0.5) is above the ceiling",
            "warmup.thresholds: unknown field `bounce_rate`",
            "cohort[0].pool: no pool `sendgrid-ips` in the plan (pools: new_sending_ips)",
            "cohort[0].schedule.growth: a daily growth of 0.9 is not a ramp",
            "cohort[0].split: the shares add up to 0.70, not 1",
            "cohort[1].name: a cohort `engaged-30d` is already defined",
            "cohort[2].size: a cohort of 0 recipients sends nothing",
            "cohort[3].schedule.days: the daily volumes must not go down",
        ] {
            assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
        }
        // A [warmup] with mistakes is still one: no "no [warmup] section" on top.
        assert!(!err.contains("no [warmup] section"), "{err}");
        // A stage requiring warmup without one, and a cohort that does not exist.
        let err = parse("").unwrap_err();
        assert!(
            err.contains("a stage requires warmup, but the plan has no [warmup] section"),
            "{err}"
        );
        let err = parse(
            "[warmup]\nstart = 2026-12-07\n[[cohort]]\nname = \"a\"\nsize = 10\n[[stage]]\nname = \"x\"\nrequires = [\"warmup:b\"]\n",
        )
        .unwrap_err();
        assert!(err.contains("no cohort `b` (cohorts: a)"), "{err}");
    }
}
