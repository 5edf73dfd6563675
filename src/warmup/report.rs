//! The warmup's decision in the formats operators read it in: a table per cohort, the JSON of
//! [`WarmupStatus`], Prometheus text exposition for node_exporter's textfile collector, and
//! today's volumes for the platform.
//!
//! Prometheus metric names (all gauges, labelled with `plan`, and `cohort` / `provider` where
//! they apply): `mailshift_warmup_planned_messages` (today's allowed volume),
//! `mailshift_warmup_sent_messages` (the latest judged day's), `mailshift_warmup_rate` (label
//! `rate`: hard_bounce, complaint, deferral, block, volume_share), `mailshift_warmup_threshold`
//! (label `threshold`: the six limits), `mailshift_warmup_decision` (0 advance, 1 no data,
//! 2 hold, 3 back off), `mailshift_warmup_step`, `mailshift_warmup_cohort_state` (0 waiting,
//! 1 warming, 2 finished), `mailshift_warmup_clean_streak_days`,
//! `mailshift_warmup_postmaster_spam_ratio`, `mailshift_warmup_finished` (1 when every cohort is).

use super::decide::{pct, CohortState, CohortStatus, Decision, WarmupStatus};
use super::model::Provider;
use std::fmt::Write;

/// `1,234,567`.
pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn state_word(state: CohortState) -> &'static str {
    match state {
        CohortState::Waiting => "WAITING",
        CohortState::Warming => "WARMING",
        CohortState::Finished => "FINISHED",
    }
}

/// Human tables: per cohort its state and decision, then its latest `days` judged days per
/// provider.
pub fn table(plan: &str, status: &WarmupStatus, days: usize, width: Option<u16>) -> String {
    let mut out = format!(
        "Warmup of \"{}\" as of {} ({} clean days at full volume finish a cohort)\n",
        crate::output::escape::text(plan),
        status.as_of,
        status.clean_days
    );
    for c in &status.cohorts {
        let _ = writeln!(
            out,
            "\n{} — {} recipients{}: {}",
            c.name,
            thousands(c.size),
            c.pool
                .as_ref()
                .map_or(String::new(), |p| format!(", pool {p}")),
            state_word(c.state)
        );
        let _ = writeln!(out, "  {}", crate::output::escape::text(&c.summary));
        if c.state == CohortState::Waiting {
            continue;
        }
        let _ = writeln!(
            out,
            "  Today: {} in all ({}); full volume {}",
            thousands(c.planned_today),
            today_by_provider(c),
            thousands(c.full_volume)
        );
        let mut table = crate::output::new_table(false, width);
        table.set_header(vec![
            "day",
            "provider",
            "planned → sent",
            "rates",
            "provider's view",
            "decision",
        ]);
        let mut rows: Vec<(&chrono::NaiveDate, Provider, &super::decide::DayRow)> = c
            .providers
            .iter()
            .flat_map(|t| t.days.iter().map(move |d| (&d.day, t.provider, d)))
            .collect();
        rows.sort_by(|a, b| a.0.cmp(b.0).then(a.1.cmp(&b.1)));
        if rows.is_empty() {
            let _ = writeln!(out, "  No day judged yet.");
            continue;
        }
        let judged_days: Vec<&chrono::NaiveDate> = {
            let mut ds: Vec<&chrono::NaiveDate> = rows.iter().map(|r| r.0).collect();
            ds.dedup();
            ds
        };
        let from = judged_days
            .len()
            .checked_sub(days)
            .and_then(|i| judged_days.get(i).copied());
        for (day, provider, row) in rows {
            if from.is_some_and(|f| day < f) {
                continue;
            }
            let (volume, rates) = match (&row.counts, &row.rates) {
                (Some(c), Some(r)) => (
                    format!("{} → {}", thousands(row.planned), thousands(c.sent)),
                    format!(
                        "bounces {}\ncomplaints {}\ndeferrals {}\nblocks {}",
                        pct(r.hard_bounce),
                        pct(r.complaint),
                        pct(r.deferral),
                        pct(r.block)
                    ),
                ),
                _ => (format!("{} → —", thousands(row.planned)), "—".into()),
            };
            let mut view = Vec::new();
            if let Some(r) = row.signals.postmaster_spam_ratio {
                view.push(format!("spam {}", pct(r)));
            }
            if let Some(r) = &row.signals.postmaster_domain_reputation {
                view.push(format!("domain {r}"));
            }
            if let Some(r) = &row.signals.postmaster_ip_reputation {
                view.push(format!("IP {r}"));
            }
            if let Some(f) = &row.signals.snds_filter {
                view.push(format!("SNDS {f}"));
            }
            if let Some(t) = row.signals.snds_trap_hits.filter(|t| *t > 0) {
                view.push(format!("traps {t}"));
            }
            let mut decision = row.decision.as_str().to_string();
            if !row.reasons.is_empty() && row.decision != Decision::NoData {
                decision.push_str(&format!(": {}", row.reasons.join("; ")));
            }
            table.add_row(crate::output::row([
                day.to_string(),
                provider.name().to_string(),
                volume,
                rates,
                view.join("\n"),
                decision,
            ]));
        }
        let _ = writeln!(out, "{table}");
    }
    out
}

/// Today's allowed volume per cohort, pool and provider.
pub fn next_table(plan: &str, status: &WarmupStatus, width: Option<u16>) -> String {
    let mut table = crate::output::new_table(false, width);
    table.set_header(vec![
        "cohort",
        "pool",
        "provider",
        "messages today",
        "step",
        "why",
    ]);
    for c in &status.cohorts {
        if c.state == CohortState::Waiting {
            table.add_row(crate::output::row([
                c.name.as_str(),
                c.pool.as_deref().unwrap_or("—"),
                "all",
                "0",
                "—",
                c.summary.as_str(),
            ]));
            continue;
        }
        for t in c.providers.iter().filter(|t| t.planned_today > 0) {
            let why = match t.days.last() {
                Some(d) if d.decision == Decision::Advance => {
                    format!("{} was clean", d.day)
                }
                Some(d) => format!(
                    "{} {}: {}",
                    d.day,
                    d.decision.as_str(),
                    d.reasons.join("; ")
                ),
                None => "first day".to_string(),
            };
            let why = if c.state == CohortState::Finished {
                "finished: full volume".to_string()
            } else {
                why
            };
            table.add_row(crate::output::row([
                c.name.clone(),
                c.pool.clone().unwrap_or_else(|| "—".into()),
                t.provider.name().to_string(),
                thousands(t.planned_today),
                (t.step + 1).to_string(),
                why,
            ]));
        }
    }
    format!(
        "Volumes for {} of \"{}\": set these in the platform.\n{table}\n",
        status.as_of,
        crate::output::escape::text(plan)
    )
}

/// A Prometheus label value, escaped as the text format requires.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Prometheus text exposition (version 0.0.4).
pub fn prometheus(plan: &str, status: &WarmupStatus) -> String {
    let plan = label(plan);
    let mut families: Vec<(&str, &str, Vec<String>)> = vec![
        (
            "mailshift_warmup_planned_messages",
            "Messages the schedule allows today.",
            Vec::new(),
        ),
        (
            "mailshift_warmup_sent_messages",
            "Messages sent on the latest judged day.",
            Vec::new(),
        ),
        (
            "mailshift_warmup_rate",
            "Rates of the latest judged day (fractions).",
            Vec::new(),
        ),
        (
            "mailshift_warmup_threshold",
            "The limits that decide a day (fractions).",
            Vec::new(),
        ),
        (
            "mailshift_warmup_decision",
            "Latest decision: 0 advance, 1 no data, 2 hold, 3 back off.",
            Vec::new(),
        ),
        (
            "mailshift_warmup_step",
            "The schedule step of today's volume (0 is the first).",
            Vec::new(),
        ),
        (
            "mailshift_warmup_cohort_state",
            "0 waiting, 1 warming, 2 finished.",
            Vec::new(),
        ),
        (
            "mailshift_warmup_clean_streak_days",
            "Clean days in a row at full volume.",
            Vec::new(),
        ),
        (
            "mailshift_warmup_postmaster_spam_ratio",
            "Postmaster Tools user-reported spam ratio of the latest judged day.",
            Vec::new(),
        ),
        (
            "mailshift_warmup_finished",
            "1 when every cohort has finished.",
            Vec::new(),
        ),
    ];
    let mut push = |family: &str, line: String| {
        if let Some((_, _, lines)) = families.iter_mut().find(|(n, _, _)| *n == family) {
            lines.push(line);
        }
    };
    for c in &status.cohorts {
        let cohort = label(&c.name);
        let state = match c.state {
            CohortState::Waiting => 0,
            CohortState::Warming => 1,
            CohortState::Finished => 2,
        };
        push(
            "mailshift_warmup_cohort_state",
            format!("mailshift_warmup_cohort_state{{plan=\"{plan}\",cohort=\"{cohort}\"}} {state}"),
        );
        push(
            "mailshift_warmup_clean_streak_days",
            format!(
                "mailshift_warmup_clean_streak_days{{plan=\"{plan}\",cohort=\"{cohort}\"}} {}",
                c.clean_streak
            ),
        );
        for t in &c.providers {
            let l = format!(
                "plan=\"{plan}\",cohort=\"{cohort}\",provider=\"{}\"",
                t.provider.id()
            );
            push(
                "mailshift_warmup_planned_messages",
                format!(
                    "mailshift_warmup_planned_messages{{{l}}} {}",
                    t.planned_today
                ),
            );
            push(
                "mailshift_warmup_step",
                format!("mailshift_warmup_step{{{l}}} {}", t.step),
            );
            let th = &t.thresholds;
            for (name, v) in [
                ("hard_bounce_rate", th.hard_bounce_rate),
                ("complaint_rate", th.complaint_rate),
                ("complaint_ceiling", th.complaint_ceiling),
                ("deferral_rate", th.deferral_rate),
                ("block_rate", th.block_rate),
                ("min_volume_share", th.min_volume_share),
            ] {
                push(
                    "mailshift_warmup_threshold",
                    format!("mailshift_warmup_threshold{{{l},threshold=\"{name}\"}} {v}"),
                );
            }
            let Some(day) = t.days.iter().rev().find(|d| d.decision != Decision::NoData) else {
                continue;
            };
            let decision = match day.decision {
                Decision::Advance => 0,
                Decision::NoData => 1,
                Decision::Hold => 2,
                Decision::BackOff => 3,
            };
            push(
                "mailshift_warmup_decision",
                format!("mailshift_warmup_decision{{{l}}} {decision}"),
            );
            if let Some(counts) = &day.counts {
                push(
                    "mailshift_warmup_sent_messages",
                    format!("mailshift_warmup_sent_messages{{{l}}} {}", counts.sent),
                );
            }
            if let Some(r) = &day.rates {
                for (name, v) in [
                    ("hard_bounce", r.hard_bounce),
                    ("complaint", r.complaint),
                    ("deferral", r.deferral),
                    ("block", r.block),
                    ("volume_share", r.volume_share),
                ] {
                    push(
                        "mailshift_warmup_rate",
                        format!("mailshift_warmup_rate{{{l},rate=\"{name}\"}} {v}"),
                    );
                }
            }
            if let Some(r) = day.signals.postmaster_spam_ratio {
                push(
                    "mailshift_warmup_postmaster_spam_ratio",
                    format!("mailshift_warmup_postmaster_spam_ratio{{{l}}} {r}"),
                );
            }
        }
    }
    push(
        "mailshift_warmup_finished",
        format!(
            "mailshift_warmup_finished{{plan=\"{plan}\"}} {}",
            u8::from(status.finished)
        ),
    );
    let mut out = String::new();
    for (name, help, lines) in families {
        if lines.is_empty() {
            continue;
        }
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} gauge");
        for line in lines {
            let _ = writeln!(out, "{line}");
        }
    }
    out
}

/// Today's volume per provider of a cohort: `Gmail 20,000, Yahoo/AOL 6,000, …` (providers
/// with none left out).
pub fn today_by_provider(c: &CohortStatus) -> String {
    c.providers
        .iter()
        .filter(|t| t.planned_today > 0)
        .map(|t| format!("{} {}", t.provider.name(), thousands(t.planned_today)))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_with_thousands_and_labels_are_escaped() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
