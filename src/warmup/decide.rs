//! The daily decision: for each cohort and mailbox provider, replay the days since the cohort
//! started, judge each day's evidence against the thresholds, and move along the schedule —
//! advance a step on a clean day, stay on a held one, go back a step on a back-off.
//!
//! Receivers throttle separately, so each provider of a cohort has its own step. A day is
//! judged on the platform's counts (bounces, blocks, deferrals, complaints, and whether the day
//! sent enough of its plan to prove anything), and on the mailbox providers' own view: for
//! Gmail, Postmaster Tools' user-reported spam ratio replaces the platform's complaint count
//! (Gmail sends no per-message complaints to most platforms) and its domain and IP reputation
//! count; for Microsoft, SNDS' filter result, trap hits and complaint rate for the cohort's IPs.
//! A cohort is finished after `clean_days` days in a row at full volume on which every
//! provider advanced; the next cohort starts the day after, unless the plan fixes its start.
//! Days without evidence change nothing (a weekend without sends).

use super::evidence::{snds_complaint_rate, DayCounts, Evidence};
use super::model::{Cohort, Provider, Split, Thresholds, WarmupPlan};
use crate::plan::IpPool;
use chrono::NaiveDate;
use serde::Serialize;
use std::net::IpAddr;

/// What a day's evidence says about tomorrow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Decision {
    /// Clean: the next step's volume.
    Advance,
    /// No evidence for the day: the same step.
    NoData,
    /// Not clean enough to grow: the same volume again.
    Hold,
    /// Receivers are pushing back: the previous step's volume.
    BackOff,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Advance => "advance",
            Decision::NoData => "no data",
            Decision::Hold => "hold",
            Decision::BackOff => "back off",
        }
    }
}

/// The day's rates (fractions).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rates {
    pub hard_bounce: f64,
    /// Complaints over delivered, from the platform's counts.
    pub complaint: f64,
    pub deferral: f64,
    pub block: f64,
    /// Sent over planned.
    pub volume_share: f64,
}

/// The mailbox provider's own view of the day, where imported.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Signals {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postmaster_spam_ratio: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postmaster_domain_reputation: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postmaster_ip_reputation: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postmaster_temporary_errors: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snds_filter: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snds_trap_hits: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snds_complaint_rate: Option<f64>,
}

/// One judged day of one provider of a cohort.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DayRow {
    pub day: NaiveDate,
    /// The schedule step the day was planned at (0 is the first).
    pub step: usize,
    pub planned: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counts: Option<DayCounts>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rates: Option<Rates>,
    pub signals: Signals,
    pub decision: Decision,
    /// Why, one line per rule that fired (empty for a clean day).
    pub reasons: Vec<String>,
}

/// Where a provider's share of the cohort came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ShareSource {
    /// `split` in the plan.
    Plan,
    /// The plan gives none: [`Split::ASSUMED`].
    Assumed,
}

/// One mailbox provider of a cohort.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProviderTrack {
    pub provider: Provider,
    pub share: f64,
    pub share_source: ShareSource,
    /// The step today's volume is at.
    pub step: usize,
    pub planned_today: u64,
    pub thresholds: Thresholds,
    pub days: Vec<DayRow>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CohortState {
    /// Not started: the cohort before it has not finished, or its start is to come.
    Waiting,
    Warming,
    Finished,
}

/// One cohort's warmup as of a day.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CohortStatus {
    pub name: String,
    pub size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
    pub state: CohortState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started: Option<NaiveDate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished: Option<NaiveDate>,
    /// Clean days in a row at full volume, up to the last day with evidence.
    pub clean_streak: usize,
    /// The decision of the latest day with evidence: the worst of its providers'.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
    /// The day that decision is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided_on: Option<NaiveDate>,
    /// The decision and its reasons in one line.
    pub summary: String,
    /// Today's allowed volume, all providers.
    pub planned_today: u64,
    pub full_volume: u64,
    pub providers: Vec<ProviderTrack>,
}

/// The whole warmup as of a day.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WarmupStatus {
    /// Days before this one are judged; this is the day volumes are planned for.
    pub as_of: NaiveDate,
    pub clean_days: usize,
    /// Every cohort has finished.
    pub finished: bool,
    pub cohorts: Vec<CohortStatus>,
}

/// `0.12%`.
pub fn pct(f: f64) -> String {
    let p = f * 100.0;
    if p != 0.0 && p.abs() < 0.1 {
        format!("{p:.3}%")
    } else {
        format!("{p:.2}%")
    }
}

/// Judges every cohort of `plan` with the evidence, for the day `as_of`.
pub fn judge(
    plan: &WarmupPlan,
    pools: &[IpPool],
    plan_domains: &[String],
    evidence: &Evidence,
    as_of: NaiveDate,
) -> WarmupStatus {
    let mut cohorts = Vec::new();
    // The day the next cohort may start: the first cohort on the warmup's start.
    let mut next_start: Option<NaiveDate> = Some(plan.start);
    for cohort in &plan.cohorts {
        let start = cohort.start.or(next_start);
        let ips: Vec<IpAddr> = cohort
            .pool
            .as_ref()
            .and_then(|p| pools.iter().find(|x| &x.name == p))
            .map(|p| p.ips.clone())
            .unwrap_or_default();
        let status = judge_cohort(plan, cohort, &ips, plan_domains, evidence, start, as_of);
        next_start = status.finished.and_then(|f| f.succ_opt());
        cohorts.push(status);
    }
    WarmupStatus {
        as_of,
        clean_days: plan.clean_days,
        finished: !cohorts.is_empty() && cohorts.iter().all(|c| c.state == CohortState::Finished),
        cohorts,
    }
}

/// The provider shares of a cohort: the plan's, else [`Split::ASSUMED`].
///
/// The mix is the recipient list's, so it is never read back from what was sent: each provider
/// is throttled on its own, and a provider held or backed off sends less than its share, which
/// would shrink its plan again the next day.
fn shares(cohort: &Cohort) -> (Split, ShareSource) {
    match cohort.split {
        Some(split) => (split, ShareSource::Plan),
        None => (Split::ASSUMED, ShareSource::Assumed),
    }
}

fn judge_cohort(
    plan: &WarmupPlan,
    cohort: &Cohort,
    ips: &[IpAddr],
    plan_domains: &[String],
    evidence: &Evidence,
    start: Option<NaiveDate>,
    as_of: NaiveDate,
) -> CohortStatus {
    let (split, share_source) = shares(cohort);
    let last_step = cohort.schedule.last_step();
    let full_volume = cohort.schedule.full_volume();
    let mut tracks: Vec<ProviderTrack> = Provider::ALL
        .iter()
        .map(|p| ProviderTrack {
            provider: *p,
            share: split.share(*p),
            share_source,
            step: 0,
            planned_today: 0,
            thresholds: cohort.thresholds(*p),
            days: Vec::new(),
        })
        .collect();
    let waiting = |summary: String| CohortStatus {
        name: cohort.name.clone(),
        size: cohort.size,
        pool: cohort.pool.clone(),
        state: CohortState::Waiting,
        started: None,
        finished: None,
        clean_streak: 0,
        decision: None,
        decided_on: None,
        summary,
        planned_today: 0,
        full_volume,
        providers: Vec::new(),
    };
    let Some(start) = start else {
        return waiting("waiting for the cohort before it to finish".into());
    };
    if start > as_of {
        return waiting(format!("starts on {start}"));
    }
    let mut clean_streak = 0;
    let mut finished = None;
    let mut latest: Option<(NaiveDate, Decision, Vec<String>)> = None;
    let mut day = start;
    while day < as_of && finished.is_none() {
        let mut any_evidence = false;
        let mut day_clean = true;
        let mut worst = Decision::Advance;
        let mut reasons: Vec<String> = Vec::new();
        for track in tracks.iter_mut() {
            let planned = planned(cohort, track.step, track.share);
            let counts = evidence
                .daily
                .get(&(day, cohort.name.clone(), track.provider))
                .copied();
            if planned == 0 && counts.is_none_or(|c| c.sent == 0) {
                continue;
            }
            let signals = signals(track.provider, day, ips, plan_domains, evidence);
            let (decision, rates, why) =
                judge_day(track.provider, counts, planned, &track.thresholds, &signals);
            if decision != Decision::NoData {
                any_evidence = true;
            }
            let at_full = track.step >= last_step;
            if decision != Decision::Advance || !at_full {
                day_clean = false;
            }
            if decision > worst {
                worst = decision;
                reasons.clear();
            }
            if decision == worst && decision != Decision::Advance {
                reasons.extend(
                    why.iter()
                        .map(|r| format!("{}: {r}", track.provider.name())),
                );
            }
            track.days.push(DayRow {
                day,
                step: track.step,
                planned,
                counts,
                rates,
                signals,
                decision,
                reasons: why,
            });
            track.step = match decision {
                Decision::Advance => (track.step + 1).min(last_step),
                Decision::NoData | Decision::Hold => track.step,
                Decision::BackOff => track.step.saturating_sub(1),
            };
        }
        if any_evidence {
            clean_streak = if day_clean { clean_streak + 1 } else { 0 };
            latest = Some((day, worst, reasons));
            if clean_streak >= plan.clean_days {
                finished = Some(day);
            }
        }
        let Some(next) = day.succ_opt() else { break };
        day = next;
    }
    for track in tracks.iter_mut() {
        track.planned_today = if finished.is_some() {
            planned(cohort, last_step, track.share)
        } else {
            planned(cohort, track.step, track.share)
        };
    }
    let planned_today = tracks.iter().map(|t| t.planned_today).sum();
    let (decision, decided_on, summary) = match (&finished, &latest) {
        (Some(f), _) => (
            Some(Decision::Advance),
            Some(*f),
            format!(
                "finished on {f}: {} clean days in a row at full volume",
                plan.clean_days
            ),
        ),
        (None, Some((d, decision, reasons))) => {
            let text = match decision {
                Decision::Advance => format!(
                    "{d} was clean: advance ({} clean at full volume)",
                    crate::words::count(clean_streak, "day", "days")
                ),
                _ => format!("{d}: {}: {}", decision.as_str(), reasons.join("; ")),
            };
            (Some(*decision), Some(*d), text)
        }
        (None, None) => (
            None,
            None,
            format!("started on {start}; no evidence imported yet"),
        ),
    };
    CohortStatus {
        name: cohort.name.clone(),
        size: cohort.size,
        pool: cohort.pool.clone(),
        state: if finished.is_some() {
            CohortState::Finished
        } else {
            CohortState::Warming
        },
        started: Some(start),
        finished,
        clean_streak,
        decision,
        decided_on,
        summary,
        planned_today,
        full_volume,
        providers: tracks,
    }
}

fn planned(cohort: &Cohort, step: usize, share: f64) -> u64 {
    (cohort.schedule.volume(step) as f64 * share).round() as u64
}

/// What the mailbox provider itself reported for the day.
fn signals(
    provider: Provider,
    day: NaiveDate,
    ips: &[IpAddr],
    plan_domains: &[String],
    evidence: &Evidence,
) -> Signals {
    let mut s = Signals::default();
    let rank = |r: &str| match r {
        "BAD" => 3,
        "LOW" => 2,
        "MEDIUM" => 1,
        _ => 0,
    };
    match provider {
        Provider::Gmail => {
            let days = evidence.postmaster.get(&day);
            for pm in days.into_iter().flatten().filter(|pm| {
                plan_domains.is_empty()
                    || plan_domains
                        .iter()
                        .any(|d| d.eq_ignore_ascii_case(&pm.domain))
            }) {
                if let Some(r) = pm.spam_ratio {
                    s.postmaster_spam_ratio = Some(s.postmaster_spam_ratio.map_or(r, |x| x.max(r)));
                }
                if let Some(rep) = &pm.domain_reputation {
                    if s.postmaster_domain_reputation
                        .as_deref()
                        .is_none_or(|x| rank(rep) > rank(x))
                    {
                        s.postmaster_domain_reputation = Some(rep.clone());
                    }
                }
                for (rep, sample) in &pm.ip_reputations {
                    let ours = sample
                        .iter()
                        .any(|ip| ip.parse::<IpAddr>().is_ok_and(|ip| ips.contains(&ip)));
                    if ours
                        && s.postmaster_ip_reputation
                            .as_deref()
                            .is_none_or(|x| rank(rep) > rank(x))
                    {
                        s.postmaster_ip_reputation = Some(rep.clone());
                    }
                }
                if let Some(t) = pm.temporary_error_ratio {
                    s.postmaster_temporary_errors =
                        Some(s.postmaster_temporary_errors.map_or(t, |x| x.max(t)));
                }
            }
        }
        Provider::Microsoft => {
            let frank = |f: &str| match f {
                "RED" => 2,
                "YELLOW" => 1,
                _ => 0,
            };
            for ip in ips {
                let Some(row) = evidence.snds.get(&(day, *ip)) else {
                    continue;
                };
                if let Some(f) = &row.filter {
                    if s.snds_filter.as_deref().is_none_or(|x| frank(f) > frank(x)) {
                        s.snds_filter = Some(f.clone());
                    }
                }
                if let Some(t) = row.trap_hits {
                    s.snds_trap_hits = Some(s.snds_trap_hits.unwrap_or(0) + t);
                }
                if let Some(r) = row.complaint_rate.as_deref().and_then(snds_complaint_rate) {
                    s.snds_complaint_rate = Some(s.snds_complaint_rate.map_or(r, |x| x.max(r)));
                }
            }
        }
        Provider::Yahoo | Provider::Other => {}
    }
    s
}

/// Judges one provider's day: the decision, the rates, and why.
fn judge_day(
    provider: Provider,
    counts: Option<DayCounts>,
    planned: u64,
    t: &Thresholds,
    s: &Signals,
) -> (Decision, Option<Rates>, Vec<String>) {
    let Some(c) = counts.filter(|c| c.sent > 0) else {
        return (
            Decision::NoData,
            None,
            vec!["no delivery counts imported for this day".into()],
        );
    };
    let sent = c.sent as f64;
    let rates = Rates {
        hard_bounce: c.hard_bounces as f64 / sent,
        complaint: if c.delivered > 0 {
            c.complaints as f64 / c.delivered as f64
        } else {
            0.0
        },
        deferral: c.deferrals as f64 / sent,
        block: c.blocks as f64 / sent,
        volume_share: if planned > 0 {
            sent / planned as f64
        } else {
            1.0
        },
    };
    let mut back_off = Vec::new();
    let mut hold = Vec::new();
    // Gmail's complaints are what Postmaster Tools reports; the platform sees almost none.
    let (complaint, complaint_source) = match (provider, s.postmaster_spam_ratio) {
        (Provider::Gmail, Some(r)) => (r, "Postmaster user-reported spam"),
        _ => (rates.complaint, "complaints"),
    };
    if complaint >= t.complaint_ceiling {
        back_off.push(format!(
            "{complaint_source} {} at or over the {} ceiling",
            pct(complaint),
            pct(t.complaint_ceiling)
        ));
    } else if complaint > t.complaint_rate {
        hold.push(format!(
            "{complaint_source} {} over the {} target",
            pct(complaint),
            pct(t.complaint_rate)
        ));
    }
    if rates.hard_bounce > t.hard_bounce_rate {
        back_off.push(format!(
            "hard bounces {} over {} (list quality)",
            pct(rates.hard_bounce),
            pct(t.hard_bounce_rate)
        ));
    }
    if rates.block > t.block_rate {
        back_off.push(format!(
            "blocks {} over {}",
            pct(rates.block),
            pct(t.block_rate)
        ));
    }
    if rates.deferral > t.deferral_rate {
        hold.push(format!(
            "deferrals {} over {} (throttled)",
            pct(rates.deferral),
            pct(t.deferral_rate)
        ));
    }
    if planned > 0 && rates.volume_share < t.min_volume_share {
        hold.push(format!(
            "sent {} of {} planned: too little to grow on",
            c.sent, planned
        ));
    }
    for (what, rep) in [
        ("domain", &s.postmaster_domain_reputation),
        ("IP", &s.postmaster_ip_reputation),
    ] {
        match rep.as_deref() {
            Some("BAD") => back_off.push(format!("Postmaster {what} reputation BAD")),
            Some("LOW") => hold.push(format!("Postmaster {what} reputation LOW")),
            _ => {}
        }
    }
    if let Some(e) = s
        .postmaster_temporary_errors
        .filter(|e| *e > t.deferral_rate)
    {
        hold.push(format!(
            "Postmaster temporary errors {} over {}",
            pct(e),
            pct(t.deferral_rate)
        ));
    }
    match s.snds_filter.as_deref() {
        Some("RED") => back_off.push("SNDS filter result RED".into()),
        Some("YELLOW") => hold.push("SNDS filter result YELLOW".into()),
        _ => {}
    }
    if let Some(traps) = s.snds_trap_hits.filter(|t| *t > 0) {
        hold.push(format!(
            "SNDS {} (list hygiene)",
            crate::words::count(traps as usize, "trap hit", "trap hits")
        ));
    }
    if let Some(r) = s.snds_complaint_rate.filter(|r| *r > t.complaint_rate) {
        hold.push(format!("SNDS complaint rate {}", pct(r)));
    }
    if !back_off.is_empty() {
        (Decision::BackOff, Some(rates), back_off)
    } else if !hold.is_empty() {
        (Decision::Hold, Some(rates), hold)
    } else {
        (Decision::Advance, Some(rates), Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::warmup::evidence::PostmasterDay;
    use crate::warmup::model::Schedule;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn plan(cohorts: Vec<Cohort>) -> WarmupPlan {
        WarmupPlan {
            platform: "sendgrid".into(),
            start: d("2026-11-02"),
            clean_days: 2,
            utc_offset_minutes: 0,
            evidence: Vec::new(),
            cohorts,
        }
    }

    fn cohort(name: &str, split: Option<Split>) -> Cohort {
        Cohort {
            name: name.into(),
            size: 4000,
            pool: None,
            schedule: Schedule::Ramp {
                start: 1000,
                growth: 2.0,
                cap: 4000,
            },
            split,
            start: None,
            thresholds: [Thresholds::default(); 4],
        }
    }

    fn counts(sent: u64, complaints: u64) -> DayCounts {
        DayCounts {
            sent,
            delivered: sent,
            complaints,
            ..Default::default()
        }
    }

    const GMAIL_ONLY: Split = Split([1.0, 0.0, 0.0, 0.0]);

    #[test]
    fn clean_days_advance_to_full_volume_and_finish_the_cohort_so_the_next_starts() {
        let plan = plan(vec![
            cohort("engaged-30d", Some(GMAIL_ONLY)),
            cohort("rest", Some(GMAIL_ONLY)),
        ]);
        let mut ev = Evidence::default();
        // 1,000 → 2,000 → 4,000 (full) → 4,000: two clean days at full volume finish it.
        for (day, sent) in [
            ("2026-11-02", 1000),
            ("2026-11-03", 2000),
            ("2026-11-04", 4000),
            ("2026-11-05", 4000),
        ] {
            ev.daily.insert(
                (d(day), "engaged-30d".into(), Provider::Gmail),
                counts(sent, 0),
            );
        }
        let status = judge(&plan, &[], &[], &ev, d("2026-11-07"));
        let first = &status.cohorts[0];
        assert_eq!(first.state, CohortState::Finished, "{first:#?}");
        assert_eq!(first.finished, Some(d("2026-11-05")));
        let rest = &status.cohorts[1];
        assert_eq!(rest.started, Some(d("2026-11-06")));
        assert_eq!(rest.state, CohortState::Warming);
        assert_eq!(
            rest.planned_today, 1000,
            "no evidence on its first day: same step"
        );
        assert!(!status.finished);
    }

    #[test]
    fn a_complaint_spike_backs_off_and_a_throttled_day_holds() {
        let plan = plan(vec![cohort("engaged-30d", Some(GMAIL_ONLY))]);
        let mut ev = Evidence::default();
        ev.daily.insert(
            (d("2026-11-02"), "engaged-30d".into(), Provider::Gmail),
            counts(1000, 0),
        );
        // 2,000 sent, 8 complaints = 0.40%: back off to 1,000.
        ev.daily.insert(
            (d("2026-11-03"), "engaged-30d".into(), Provider::Gmail),
            counts(2000, 8),
        );
        let status = judge(&plan, &[], &[], &ev, d("2026-11-04"));
        let c = &status.cohorts[0];
        assert_eq!(c.decision, Some(Decision::BackOff));
        assert_eq!(c.planned_today, 1000);
        assert!(
            c.summary
                .contains("complaints 0.40% at or over the 0.30% ceiling"),
            "{}",
            c.summary
        );
        // Deferrals over 5% hold at the same volume.
        let mut ev = Evidence::default();
        let mut throttled = counts(1000, 0);
        throttled.deferrals = 80;
        ev.daily.insert(
            (d("2026-11-02"), "engaged-30d".into(), Provider::Gmail),
            throttled,
        );
        let status = judge(&plan, &[], &[], &ev, d("2026-11-03"));
        assert_eq!(status.cohorts[0].decision, Some(Decision::Hold));
        assert_eq!(status.cohorts[0].planned_today, 1000);
    }

    #[test]
    fn gmail_is_judged_on_postmasters_spam_ratio() {
        let plan = plan(vec![cohort("engaged-30d", Some(GMAIL_ONLY))]);
        let mut ev = Evidence::default();
        // The platform saw no complaints; Postmaster says 0.35% of Gmail users marked it spam.
        ev.daily.insert(
            (d("2026-11-02"), "engaged-30d".into(), Provider::Gmail),
            counts(1000, 0),
        );
        ev.postmaster.insert(
            d("2026-11-02"),
            vec![PostmasterDay {
                domain: "northwind.example".into(),
                spam_ratio: Some(0.0035),
                domain_reputation: Some("MEDIUM".into()),
                ip_reputations: Vec::new(),
                temporary_error_ratio: None,
            }],
        );
        let status = judge(
            &plan,
            &[],
            &["northwind.example".into()],
            &ev,
            d("2026-11-03"),
        );
        let c = &status.cohorts[0];
        assert_eq!(c.decision, Some(Decision::BackOff));
        assert!(
            c.summary.contains("Postmaster user-reported spam 0.35%"),
            "{}",
            c.summary
        );
    }

    #[test]
    fn without_a_split_the_assumed_mix_plans_each_provider_whatever_was_sent() {
        let plan = plan(vec![cohort("engaged-30d", None)]);
        let mut ev = Evidence::default();
        // Microsoft sent far under its share (it was held): the plan keeps its share.
        ev.daily.insert(
            (d("2026-11-02"), "engaged-30d".into(), Provider::Gmail),
            counts(450, 0),
        );
        ev.daily.insert(
            (d("2026-11-02"), "engaged-30d".into(), Provider::Microsoft),
            counts(20, 0),
        );
        let status = judge(&plan, &[], &[], &ev, d("2026-11-03"));
        let c = &status.cohorts[0];
        let gmail = &c.providers[Provider::Gmail.index()];
        let microsoft = &c.providers[Provider::Microsoft.index()];
        assert_eq!(gmail.share_source, ShareSource::Assumed);
        assert_eq!((gmail.share, microsoft.share), (0.45, 0.2));
        assert_eq!(
            (gmail.days[0].planned, microsoft.days[0].planned),
            (450, 200)
        );
        assert_eq!(gmail.days[0].decision, Decision::Advance);
        assert_eq!(microsoft.days[0].decision, Decision::Hold);
    }
}
