//! The warmup as one self-contained HTML page, to read in a browser or attach to a change
//! ticket: per cohort its state, decision and today's volume, a chart of planned against sent
//! volume per day, a chart of each day's rates against their thresholds with the day's decision
//! marked, and a table of the latest days.
//!
//! The page must open anywhere, offline and years later, so it loads nothing: the CSS is inline,
//! the charts are SVG drawn here, and there is no script (hover text is SVG `<title>`). Its
//! Content-Security-Policy forbids every load and every script, a second layer under the
//! escaping: cohort names, reasons and the plan's name are outside text, escaped with
//! [`crate::output::escape::html`] wherever they appear. Every chart element carries its values
//! as `data-` attributes (`data-day`, `data-value`, `data-decision`), so what a chart shows can
//! be checked without reading pixels.

use super::decide::{pct, CohortState, CohortStatus, DayRow, Decision, WarmupStatus};
use super::model::{Provider, Thresholds};
use super::report::thousands;
use crate::output::escape::html as esc;
use chrono::NaiveDate;
use std::collections::BTreeMap;
use std::fmt::Write;

/// The page's styles. Colours carry meaning twice over (the decision is also written out), so
/// the page reads in greyscale and to a screen reader too.
const STYLE: &str = r#"
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Liberation Sans", sans-serif;
  color: #1f2328; background: #fff; margin: 0 auto; max-width: 1080px; padding: 1.5rem; }
h1 { font-size: 1.6rem; margin: 0 0 .25rem; }
h2 { font-size: 1.3rem; margin: 0 0 .5rem; }
h3 { font-size: 1.05rem; margin: 1.25rem 0 .25rem; }
.lead { color: #57606a; margin-top: 0; }
section.cohort { border-top: 2px solid #d0d7de; padding-top: 1rem; margin-top: 1.5rem; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; margin: .5rem 0; }
dl.facts dt { font-weight: 600; }
dl.facts dd { margin: 0; }
.badge { display: inline-block; padding: 0 .5em; border-radius: 1em; font-size: .8rem;
  font-weight: 600; vertical-align: middle; color: #fff; background: #6e7781; }
.badge.warming { background: #0969da; }
.badge.finished { background: #1a7f37; }
.badge.advance { background: #1a7f37; }
.badge.hold { background: #9a6700; }
.badge.back-off { background: #cf222e; }
.badge.no-data { background: #6e7781; }
figure { margin: .5rem 0 1rem; }
figcaption { color: #57606a; font-size: .85rem; }
svg.chart { display: block; width: 100%; height: auto; }
svg.chart text { font-size: 11px; fill: #57606a; }
svg.chart text.panel { font-size: 12px; font-weight: 600; fill: #1f2328; }
svg.chart text.on-strip { fill: #fff; font-weight: 600; text-anchor: middle; }
.grid line { stroke: #d8dee4; stroke-width: 1; }
line.axis { stroke: #8c959f; stroke-width: 1; }
rect.sent { fill: #7aa6d6; }
path.planned { fill: none; stroke: #1f2328; stroke-width: 2; }
circle.planned-point { fill: #fff; stroke: #1f2328; stroke-width: 2; }
circle.planned-point.today { fill: #1f2328; }
rect.decision.advance, circle.rate.advance { fill: #1a7f37; }
rect.decision.hold, circle.rate.hold { fill: #9a6700; }
rect.decision.back-off, circle.rate.back-off { fill: #cf222e; }
rect.decision.no-data, circle.rate.no-data { fill: #6e7781; }
rect.day-band { fill: none; }
rect.day-band.hold { fill: #fff8c5; }
rect.day-band.back-off { fill: #ffebe9; }
line.threshold { stroke-width: 1.5; stroke-dasharray: 6 4; }
line.threshold.hold { stroke: #9a6700; }
line.threshold.back-off { stroke: #cf222e; }
text.threshold-label { font-size: 10px; }
path.rate-line { fill: none; stroke-width: 1.5; }
circle.rate { stroke-width: 1.5; }
.p-gmail { stroke: #0969da; } .p-yahoo { stroke: #8250df; }
.p-microsoft { stroke: #1b7c83; } .p-other { stroke: #57606a; }
.legend { display: flex; flex-wrap: wrap; gap: .25rem 1rem; font-size: .85rem; color: #57606a;
  list-style: none; padding: 0; margin: .25rem 0; }
.swatch { display: inline-block; width: .9em; height: .9em; vertical-align: -.1em; margin-right: .3em;
  border-radius: 2px; }
.swatch.sent { background: #7aa6d6; } .swatch.planned { background: #1f2328; height: .2em; vertical-align: .25em; }
.swatch.gmail { background: #0969da; } .swatch.yahoo { background: #8250df; }
.swatch.microsoft { background: #1b7c83; } .swatch.other { background: #57606a; }
.swatch.advance { background: #1a7f37; } .swatch.hold { background: #9a6700; }
.swatch.back-off { background: #cf222e; } .swatch.no-data { background: #6e7781; }
table.days { border-collapse: collapse; width: 100%; font-size: .85rem; }
table.days th, table.days td { border-bottom: 1px solid #d8dee4; padding: .25rem .4rem;
  text-align: left; vertical-align: top; }
table.days td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.days td.day { white-space: nowrap; }
table.days tr.back-off td { background: #ffebe9; }
table.days tr.hold td { background: #fff8c5; }
.scroll { overflow-x: auto; }
"#;

/// The width of every chart (SVG user units; the browser scales it to the page).
const WIDTH: f64 = 760.0;
/// Room for the value axis on the left and the threshold labels on the right.
const LEFT: f64 = 64.0;
const RIGHT: f64 = 104.0;

/// The rates the second chart shows, each against its own limits.
#[derive(Clone, Copy)]
enum Rate {
    Complaint,
    HardBounce,
    Deferral,
    Block,
}

impl Rate {
    const ALL: [Rate; 4] = [
        Rate::Complaint,
        Rate::HardBounce,
        Rate::Deferral,
        Rate::Block,
    ];

    fn id(self) -> &'static str {
        match self {
            Rate::Complaint => "complaint",
            Rate::HardBounce => "hard-bounce",
            Rate::Deferral => "deferral",
            Rate::Block => "block",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Rate::Complaint => "Complaints",
            Rate::HardBounce => "Hard bounces",
            Rate::Deferral => "Deferrals",
            Rate::Block => "Blocks",
        }
    }

    /// The value the day was judged on: for Gmail, Postmaster's user-reported spam ratio
    /// replaces the platform's complaints when imported, as it does in the decision.
    fn value(self, provider: Provider, row: &DayRow) -> Option<f64> {
        let rates = row.rates.as_ref()?;
        Some(match self {
            Rate::Complaint => match (provider, row.signals.postmaster_spam_ratio) {
                (Provider::Gmail, Some(r)) => r,
                _ => rates.complaint,
            },
            Rate::HardBounce => rates.hard_bounce,
            Rate::Deferral => rates.deferral,
            Rate::Block => rates.block,
        })
    }

    /// (threshold id, its value, the decision it triggers, how it reads).
    fn limits(self, t: &Thresholds) -> Vec<(&'static str, f64, Decision, &'static str)> {
        match self {
            Rate::Complaint => vec![
                ("complaint_rate", t.complaint_rate, Decision::Hold, "target"),
                (
                    "complaint_ceiling",
                    t.complaint_ceiling,
                    Decision::BackOff,
                    "ceiling",
                ),
            ],
            Rate::HardBounce => vec![(
                "hard_bounce_rate",
                t.hard_bounce_rate,
                Decision::BackOff,
                "limit",
            )],
            Rate::Deferral => vec![("deferral_rate", t.deferral_rate, Decision::Hold, "limit")],
            Rate::Block => vec![("block_rate", t.block_rate, Decision::BackOff, "limit")],
        }
    }
}

/// `back-off`: the decision as a class name and a `data-decision` value.
fn decision_id(d: Decision) -> &'static str {
    match d {
        Decision::Advance => "advance",
        Decision::NoData => "no-data",
        Decision::Hold => "hold",
        Decision::BackOff => "back-off",
    }
}

fn state_id(s: CohortState) -> &'static str {
    match s {
        CohortState::Waiting => "waiting",
        CohortState::Warming => "warming",
        CohortState::Finished => "finished",
    }
}

/// One judged day of a cohort, all providers together.
struct Day<'a> {
    day: NaiveDate,
    planned: u64,
    /// `None` when no provider has counts for the day.
    sent: Option<u64>,
    /// The worst of the providers' decisions, as the cohort's own decision is.
    decision: Decision,
    rows: Vec<(Provider, &'a DayRow)>,
}

impl Day<'_> {
    /// The reasons of the providers whose decision is the day's.
    fn why(&self) -> String {
        let reasons: Vec<String> = self
            .rows
            .iter()
            .filter(|(_, r)| r.decision == self.decision && r.decision != Decision::Advance)
            .flat_map(|(p, r)| {
                r.reasons
                    .iter()
                    .map(move |why| format!("{}: {why}", p.name()))
            })
            .collect();
        reasons.join("; ")
    }
}

fn days_of(c: &CohortStatus) -> Vec<Day<'_>> {
    let mut days: BTreeMap<NaiveDate, Day<'_>> = BTreeMap::new();
    for track in &c.providers {
        for row in &track.days {
            let day = days.entry(row.day).or_insert_with(|| Day {
                day: row.day,
                planned: 0,
                sent: None,
                decision: Decision::Advance,
                rows: Vec::new(),
            });
            day.planned += row.planned;
            if let Some(counts) = &row.counts {
                day.sent = Some(day.sent.unwrap_or(0) + counts.sent);
            }
            day.decision = day.decision.max(row.decision);
            day.rows.push((track.provider, row));
        }
    }
    days.into_values().collect()
}

/// Positions along the day axis, shared by every chart of a cohort so its days line up.
struct DayAxis {
    slots: usize,
}

impl DayAxis {
    fn band(&self) -> f64 {
        (WIDTH - LEFT - RIGHT) / self.slots.max(1) as f64
    }

    fn center(&self, i: usize) -> f64 {
        LEFT + self.band() * (i as f64 + 0.5)
    }

    /// Every day labelled while they fit; past a dozen, every n-th.
    fn labelled(&self, i: usize) -> bool {
        let every = self.slots.div_ceil(12).max(1);
        i % every == 0
    }
}

/// A round number at or above `v`, for the top of a value axis.
fn nice_ceiling(v: f64) -> f64 {
    if !(v.is_finite() && v > 0.0) {
        return 1.0;
    }
    let magnitude = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|top| *top >= v)
        .unwrap_or(10.0 * magnitude)
}

/// A coordinate, short.
fn n(v: f64) -> String {
    format!("{v:.1}")
}

fn short_day(d: NaiveDate) -> String {
    d.format("%m-%d").to_string()
}

/// The whole page: per cohort its facts, its charts, and its latest `days` judged days.
pub fn page(plan: &str, status: &WarmupStatus, days: usize) -> String {
    let mut out = String::new();
    let title = format!("Warmup of {} as of {}", esc(plan), status.as_of);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         style-src 'unsafe-inline'; img-src data:\">\n\
         <meta name=\"generator\" content=\"mailshift {}\">\n<title>{title}</title>\n\
         <style>{STYLE}</style>\n</head>\n<body>\n<header>\n<h1>{title}</h1>\n",
        env!("CARGO_PKG_VERSION")
    );
    let finished = status
        .cohorts
        .iter()
        .filter(|c| c.state == CohortState::Finished)
        .count();
    let _ = writeln!(
        out,
        "<p class=\"lead\">The days before {as_of} are judged; today's volumes are planned for \
         {as_of}. A cohort finishes after {clean} clean days in a row at full volume. {done}</p>",
        as_of = status.as_of,
        clean = status.clean_days,
        done = if status.finished {
            "Every cohort has finished.".to_string()
        } else {
            format!("{finished} of {} cohorts finished.", status.cohorts.len())
        }
    );
    if status.cohorts.len() > 1 {
        out.push_str("<nav aria-label=\"Cohorts\"><ul class=\"legend\">");
        for (i, c) in status.cohorts.iter().enumerate() {
            let _ = write!(
                out,
                "<li><a href=\"#cohort-{i}\">{}</a> <span class=\"badge {}\">{}</span></li>",
                esc(&c.name),
                state_id(c.state),
                state_id(c.state)
            );
        }
        out.push_str("</ul></nav>\n");
    }
    out.push_str("</header>\n<main>\n");
    for (i, c) in status.cohorts.iter().enumerate() {
        cohort(&mut out, i, c, status, days);
    }
    out.push_str("</main>\n</body>\n</html>\n");
    out
}

fn cohort(out: &mut String, index: usize, c: &CohortStatus, status: &WarmupStatus, days: usize) {
    let as_of = status.as_of;
    let name = esc(&c.name);
    let state = state_id(c.state);
    let _ = write!(
        out,
        "<section class=\"cohort\" id=\"cohort-{index}\" data-cohort=\"{name}\" \
         data-state=\"{state}\"{decision}>\n<h2>{name} <span class=\"badge {state}\">{state}</span></h2>\n\
         <dl class=\"facts\">\n<dt>Recipients</dt><dd>{size}{pool}</dd>\n",
        decision = c
            .decision
            .map_or(String::new(), |d| format!(" data-decision=\"{}\"", decision_id(d))),
        size = thousands(c.size),
        pool = c
            .pool
            .as_ref()
            .map_or(String::new(), |p| format!(", pool {}", esc(p))),
    );
    if let Some(d) = c.decision {
        let _ = writeln!(
            out,
            "<dt>Decision</dt><dd><span class=\"badge {id}\">{word}</span>{on}</dd>",
            id = decision_id(d),
            word = d.as_str(),
            on = c
                .decided_on
                .map_or(String::new(), |day| format!(" on the evidence of {day}")),
        );
    }
    let _ = writeln!(
        out,
        "<dt>Summary</dt><dd class=\"summary\">{}</dd>",
        esc(&c.summary)
    );
    if let Some(started) = c.started {
        let _ = writeln!(
            out,
            "<dt>Started</dt><dd>{started}{}</dd>",
            c.finished
                .map_or(String::new(), |f| format!("; finished on {f}"))
        );
    }
    if c.state != CohortState::Waiting {
        let _ = writeln!(
            out,
            "<dt>Today ({as_of})</dt><dd><strong class=\"today\" data-value=\"{}\">{}</strong> \
             messages ({}); full volume {}</dd>\n\
             <dt>Clean streak</dt><dd>{} at full volume, of {} needed</dd>",
            c.planned_today,
            thousands(c.planned_today),
            super::report::today_by_provider(c),
            thousands(c.full_volume),
            crate::words::count(c.clean_streak, "day", "days"),
            status.clean_days,
        );
    }
    out.push_str("</dl>\n");
    let judged = days_of(c);
    if c.state == CohortState::Waiting {
        out.push_str("<p>Nothing to chart until the cohort starts.</p>\n</section>\n");
        return;
    }
    if judged.is_empty() {
        out.push_str("<p>No day judged yet.</p>\n</section>\n");
        return;
    }
    // A warming cohort's next slot is today's planned volume, where the line is heading.
    let today = (c.state == CohortState::Warming).then_some((as_of, c.planned_today));
    let axis = DayAxis {
        slots: judged.len() + usize::from(today.is_some()),
    };
    volume_chart(out, c, &judged, today, &axis);
    rates_chart(out, c, &judged, &axis);
    days_table(out, &judged, days);
    out.push_str("</section>\n");
}

/// The day labels under a chart, at `y`.
fn day_labels(out: &mut String, axis: &DayAxis, days: &[NaiveDate], y: f64) {
    out.push_str("<g class=\"days\">");
    for (i, d) in days.iter().enumerate() {
        if axis.labelled(i) {
            let _ = write!(
                out,
                "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                n(axis.center(i)),
                n(y),
                short_day(*d)
            );
        }
    }
    out.push_str("</g>");
}

/// Horizontal grid lines and their labels for a value axis from 0 to `top`.
fn grid(out: &mut String, top: f64, y: impl Fn(f64) -> f64, label: impl Fn(f64) -> String) {
    out.push_str("<g class=\"grid\">");
    for k in 0..=4 {
        let v = top * f64::from(k) / 4.0;
        let _ = write!(
            out,
            "<line x1=\"{l}\" x2=\"{r}\" y1=\"{y}\" y2=\"{y}\"/>\
             <text x=\"{lx}\" y=\"{ty}\" text-anchor=\"end\">{}</text>",
            label(v),
            l = n(LEFT),
            r = n(WIDTH - RIGHT),
            y = n(y(v)),
            lx = n(LEFT - 6.0),
            ty = n(y(v) + 4.0),
        );
    }
    out.push_str("</g>");
}

/// Chart 1: sent per day as bars, planned as a line (with today's planned volume last).
fn volume_chart(
    out: &mut String,
    c: &CohortStatus,
    days: &[Day<'_>],
    today: Option<(NaiveDate, u64)>,
    axis: &DayAxis,
) {
    const HEIGHT: f64 = 260.0;
    const TOP: f64 = 12.0;
    const BOTTOM: f64 = 32.0;
    let plot = HEIGHT - TOP - BOTTOM;
    let most = days
        .iter()
        .flat_map(|d| [d.planned, d.sent.unwrap_or(0)])
        .chain(today.map(|(_, v)| v))
        .max()
        .unwrap_or(0);
    let top = nice_ceiling(most as f64);
    let y = |v: f64| TOP + plot - v / top * plot;
    let (first, last) = (
        days.first().map(|d| d.day),
        today.map(|t| t.0).or(days.last().map(|d| d.day)),
    );
    let label = format!(
        "Planned and sent messages per day for cohort {}{}",
        esc(&c.name),
        match (first, last) {
            (Some(f), Some(l)) => format!(", {f} to {l}"),
            _ => String::new(),
        }
    );
    let _ = write!(
        out,
        "<h3>Volume: planned and sent</h3>\n<figure>\n\
         <svg class=\"chart volume\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"{label}\">",
        w = WIDTH,
        h = HEIGHT
    );
    grid(out, top, y, |v| thousands(v.round() as u64));
    for (i, d) in days.iter().enumerate() {
        let Some(sent) = d.sent else { continue };
        let width = axis.band() * 0.6;
        let _ = write!(
            out,
            "<rect class=\"sent\" data-day=\"{day}\" data-value=\"{sent}\" data-planned=\"{planned}\" \
             data-decision=\"{decision}\" x=\"{x}\" y=\"{top}\" width=\"{width}\" height=\"{height}\">\
             <title>{day}: {sent_t} sent of {planned_t} planned ({word})</title></rect>",
            day = d.day,
            planned = d.planned,
            decision = decision_id(d.decision),
            x = n(axis.center(i) - width / 2.0),
            top = n(y(sent as f64)),
            width = n(width),
            height = n(y(0.0) - y(sent as f64)),
            sent_t = thousands(sent),
            planned_t = thousands(d.planned),
            word = d.decision.as_str(),
        );
    }
    let mut points: Vec<(NaiveDate, u64, bool)> =
        days.iter().map(|d| (d.day, d.planned, false)).collect();
    if let Some((day, v)) = today {
        points.push((day, v, true));
    }
    let path: Vec<String> = points
        .iter()
        .enumerate()
        .map(|(i, (_, v, _))| {
            format!(
                "{}{} {}",
                if i == 0 { "M" } else { "L" },
                n(axis.center(i)),
                n(y(*v as f64))
            )
        })
        .collect();
    let data: Vec<String> = points.iter().map(|(d, v, _)| format!("{d}:{v}")).collect();
    let _ = write!(
        out,
        "<path class=\"planned\" d=\"{}\" data-points=\"{}\"><title>Planned messages per day</title></path>",
        path.join(" "),
        data.join(" ")
    );
    for (i, (day, v, is_today)) in points.iter().enumerate() {
        let _ = write!(
            out,
            "<circle class=\"planned-point{}\" data-day=\"{day}\" data-value=\"{v}\" cx=\"{}\" cy=\"{}\" r=\"3.5\">\
             <title>{day}: {} planned{}</title></circle>",
            if *is_today { " today" } else { "" },
            n(axis.center(i)),
            n(y(*v as f64)),
            thousands(*v),
            if *is_today { " (today)" } else { "" },
        );
    }
    let _ = write!(
        out,
        "<line class=\"axis\" x1=\"{}\" x2=\"{}\" y1=\"{b}\" y2=\"{b}\"/>",
        n(LEFT),
        n(WIDTH - RIGHT),
        b = n(y(0.0))
    );
    let labels: Vec<NaiveDate> = points.iter().map(|p| p.0).collect();
    day_labels(out, axis, &labels, HEIGHT - 10.0);
    out.push_str(
        "</svg>\n<figcaption><ul class=\"legend\">\
         <li><span class=\"swatch sent\"></span>sent (all providers)</li>\
         <li><span class=\"swatch planned\"></span>planned by the schedule; the filled point is today</li>\
         </ul></figcaption>\n</figure>\n",
    );
}

/// Chart 2: a strip of each day's decision, then one panel per rate with each provider's
/// values, coloured by that provider's decision, against the thresholds as dashed lines.
fn rates_chart(out: &mut String, c: &CohortStatus, days: &[Day<'_>], axis: &DayAxis) {
    const STRIP: f64 = 30.0;
    const PANEL: f64 = 120.0;
    const PANEL_TOP: f64 = 20.0;
    const PANEL_BOTTOM: f64 = 8.0;
    let height = STRIP + PANEL * Rate::ALL.len() as f64 + 24.0;
    let index: BTreeMap<NaiveDate, usize> =
        days.iter().enumerate().map(|(i, d)| (d.day, i)).collect();
    let tracks: Vec<_> = c
        .providers
        .iter()
        .filter(|t| t.days.iter().any(|r| r.rates.is_some()))
        .collect();
    let _ = write!(
        out,
        "<h3>Rates against their thresholds</h3>\n<figure>\n\
         <svg class=\"chart rates\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"\
         Complaint, hard bounce, deferral and block rates per day and mailbox provider for \
         cohort {name}, against their thresholds, with each day's decision\">",
        w = WIDTH,
        h = n(height),
        name = esc(&c.name),
    );
    // The decision strip: one cell per day, its word on it, its reasons on hover.
    out.push_str("<g class=\"decisions\">");
    for (i, d) in days.iter().enumerate() {
        let width = axis.band() * 0.94;
        let why = d.why();
        let _ = write!(
            out,
            "<rect class=\"decision {id}\" data-day=\"{day}\" data-decision=\"{id}\" x=\"{x}\" y=\"4\" \
             width=\"{width}\" height=\"20\" rx=\"3\"><title>{day}: {word}{why}</title></rect>",
            id = decision_id(d.decision),
            day = d.day,
            x = n(axis.center(i) - width / 2.0),
            width = n(width),
            word = d.decision.as_str(),
            why = if why.is_empty() {
                String::new()
            } else {
                format!(" — {}", esc(&why))
            },
        );
        if axis.band() >= 44.0 {
            let _ = write!(
                out,
                "<text class=\"on-strip\" x=\"{}\" y=\"18\" aria-hidden=\"true\">{}</text>",
                n(axis.center(i)),
                d.decision.as_str()
            );
        }
    }
    out.push_str("</g>");
    for (k, rate) in Rate::ALL.iter().enumerate() {
        let origin = STRIP + PANEL * k as f64;
        let plot = PANEL - PANEL_TOP - PANEL_BOTTOM;
        let base = origin + PANEL_TOP + plot;
        // Thresholds, grouped where providers share a value (the usual case: one line each).
        let mut limits: Vec<(&str, f64, Decision, &str, Vec<Provider>)> = Vec::new();
        for t in &tracks {
            for (id, v, d, word) in rate.limits(&t.thresholds) {
                match limits.iter_mut().find(|l| l.0 == id && l.1 == v) {
                    Some(l) => l.4.push(t.provider),
                    None => limits.push((id, v, d, word, vec![t.provider])),
                }
            }
        }
        let values: Vec<f64> = tracks
            .iter()
            .flat_map(|t| t.days.iter().filter_map(|r| rate.value(t.provider, r)))
            .collect();
        let most = values
            .iter()
            .chain(limits.iter().map(|l| &l.1))
            .fold(0.0f64, |a, b| a.max(*b));
        let top = nice_ceiling(most * 1.15);
        let y = |v: f64| base - v.clamp(0.0, top) / top * plot;
        let _ = write!(
            out,
            "<g class=\"panel\" data-rate=\"{id}\"><text class=\"panel\" x=\"{x}\" y=\"{ty}\">{title}</text>",
            id = rate.id(),
            x = n(LEFT),
            ty = n(origin + 14.0),
            title = rate.title(),
        );
        for (i, d) in days.iter().enumerate() {
            if matches!(d.decision, Decision::Hold | Decision::BackOff) {
                let _ = write!(
                    out,
                    "<rect class=\"day-band {}\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"/>",
                    decision_id(d.decision),
                    n(axis.center(i) - axis.band() / 2.0),
                    n(origin + PANEL_TOP),
                    n(axis.band()),
                    n(plot)
                );
            }
        }
        grid(out, top, y, pct);
        let all_providers = limits.len() <= rate.limits(&Thresholds::default()).len();
        let mut label_ys: Vec<f64> = Vec::new();
        for (id, v, decision, word, providers) in &limits {
            let names: Vec<&str> = providers.iter().map(|p| p.name()).collect();
            let ids: Vec<&str> = providers.iter().map(|p| p.id()).collect();
            let ly = {
                // Keep labels of near lines apart; the lines themselves stay exact.
                let mut ly = y(*v) + 3.5;
                while label_ys.iter().any(|o| (o - ly).abs() < 10.0) {
                    ly -= 10.0;
                }
                label_ys.push(ly);
                ly
            };
            let _ = write!(
                out,
                "<line class=\"threshold {cls}\" data-rate=\"{rate}\" data-threshold=\"{id}\" \
                 data-value=\"{v}\" data-providers=\"{ids}\" x1=\"{l}\" x2=\"{r}\" y1=\"{y}\" y2=\"{y}\">\
                 <title>{title} {word} {p}: over it, {act} ({names})</title></line>\
                 <text class=\"threshold-label\" x=\"{lx}\" y=\"{ly}\">{word} {p}{who}</text>",
                cls = decision_id(*decision),
                rate = rate.id(),
                ids = ids.join(" "),
                l = n(LEFT),
                r = n(WIDTH - RIGHT),
                y = n(y(*v)),
                title = rate.title(),
                p = pct(*v),
                act = decision.as_str(),
                names = names.join(", "),
                lx = n(WIDTH - RIGHT + 6.0),
                ly = n(ly),
                who = if all_providers {
                    String::new()
                } else {
                    format!(" {}", names.join("/"))
                },
            );
        }
        for t in &tracks {
            let mut path = String::new();
            let mut data = Vec::new();
            let mut points = String::new();
            let mut previous: Option<usize> = None;
            for row in &t.days {
                let (Some(v), Some(&i)) = (rate.value(t.provider, row), index.get(&row.day)) else {
                    continue;
                };
                // A day without evidence breaks the line rather than bridging it.
                let verb = if previous.is_some_and(|p| p + 1 == i) {
                    "L"
                } else {
                    "M"
                };
                let _ = write!(path, "{verb}{} {} ", n(axis.center(i)), n(y(v)));
                previous = Some(i);
                data.push(format!("{}:{v}", row.day));
                let reasons = if row.reasons.is_empty() {
                    String::new()
                } else {
                    format!(": {}", esc(&row.reasons.join("; ")))
                };
                let _ = write!(
                    points,
                    "<circle class=\"rate {d} p-{p}\" data-rate=\"{rate}\" data-provider=\"{p}\" \
                     data-day=\"{day}\" data-value=\"{v}\" data-decision=\"{d}\" cx=\"{x}\" cy=\"{cy}\" r=\"3.5\">\
                     <title>{day} {name}: {what} {shown} — {word}{reasons}</title></circle>",
                    d = decision_id(row.decision),
                    p = t.provider.id(),
                    rate = rate.id(),
                    day = row.day,
                    x = n(axis.center(i)),
                    cy = n(y(v)),
                    name = t.provider.name(),
                    what = rate.title().to_lowercase(),
                    shown = pct(v),
                    word = row.decision.as_str(),
                );
            }
            if data.is_empty() {
                continue;
            }
            let _ = write!(
                out,
                "<path class=\"rate-line p-{p}\" data-rate=\"{rate}\" data-provider=\"{p}\" d=\"{d}\" \
                 data-points=\"{pts}\"><title>{name}</title></path>{points}",
                p = t.provider.id(),
                rate = rate.id(),
                d = path.trim_end(),
                pts = data.join(" "),
                name = t.provider.name(),
            );
        }
        let _ = write!(
            out,
            "<line class=\"axis\" x1=\"{}\" x2=\"{}\" y1=\"{b}\" y2=\"{b}\"/></g>",
            n(LEFT),
            n(WIDTH - RIGHT),
            b = n(base)
        );
    }
    let labels: Vec<NaiveDate> = days.iter().map(|d| d.day).collect();
    day_labels(out, axis, &labels, height - 8.0);
    out.push_str("</svg>\n<figcaption><ul class=\"legend\">");
    for t in &tracks {
        let _ = write!(
            out,
            "<li><span class=\"swatch {}\"></span>{}</li>",
            t.provider.id(),
            t.provider.name()
        );
    }
    for d in [
        Decision::Advance,
        Decision::Hold,
        Decision::BackOff,
        Decision::NoData,
    ] {
        let _ = write!(
            out,
            "<li><span class=\"swatch {}\"></span>{}</li>",
            decision_id(d),
            d.as_str()
        );
    }
    out.push_str(
        "<li>dashed lines: thresholds (amber holds, red backs off)</li>\
         <li>Gmail's complaints are Postmaster's user-reported spam ratio where imported</li>\
         </ul></figcaption>\n</figure>\n",
    );
}

/// The latest `days` judged days, one row per provider.
fn days_table(out: &mut String, days: &[Day<'_>], shown: usize) {
    let from = days.len().saturating_sub(shown.max(1));
    let latest = days.get(from..).unwrap_or_default();
    let _ = write!(
        out,
        "<h3>The last {}</h3>\n<div class=\"scroll\"><table class=\"days\">\n<thead><tr>\
         <th scope=\"col\">Day</th><th scope=\"col\">Provider</th><th scope=\"col\">Step</th>\
         <th scope=\"col\">Planned</th><th scope=\"col\">Sent</th><th scope=\"col\">Hard bounces</th>\
         <th scope=\"col\">Complaints</th><th scope=\"col\">Deferrals</th><th scope=\"col\">Blocks</th>\
         <th scope=\"col\">Provider's view</th><th scope=\"col\">Decision</th><th scope=\"col\">Why</th>\
         </tr></thead>\n<tbody>\n",
        crate::words::count(latest.len(), "day", "days")
    );
    for d in latest.iter().rev() {
        for (provider, row) in &d.rows {
            let id = decision_id(row.decision);
            let (sent, rates) = match (&row.counts, &row.rates) {
                (Some(c), Some(r)) => (
                    thousands(c.sent),
                    [r.hard_bounce, r.complaint, r.deferral, r.block].map(pct),
                ),
                _ => ("—".to_string(), ["—", "—", "—", "—"].map(String::from)),
            };
            let mut view = Vec::new();
            if let Some(r) = row.signals.postmaster_spam_ratio {
                view.push(format!("Postmaster spam {}", pct(r)));
            }
            if let Some(r) = &row.signals.postmaster_domain_reputation {
                view.push(format!("domain {}", esc(r)));
            }
            if let Some(r) = &row.signals.postmaster_ip_reputation {
                view.push(format!("IP {}", esc(r)));
            }
            if let Some(f) = &row.signals.snds_filter {
                view.push(format!("SNDS {}", esc(f)));
            }
            if let Some(t) = row.signals.snds_trap_hits.filter(|t| *t > 0) {
                view.push(format!("traps {t}"));
            }
            let why = if row.decision == Decision::Advance {
                String::new()
            } else {
                esc(&row.reasons.join("; ")).into_owned()
            };
            let [hard, complaint, deferral, block] = &rates;
            let _ = writeln!(
                out,
                "<tr class=\"{id}\" data-day=\"{day}\" data-provider=\"{pid}\" data-decision=\"{id}\">\
                 <td class=\"day\">{day}</td><td>{pname}</td><td class=\"num\">{step}</td><td class=\"num\">{planned}</td>\
                 <td class=\"num\">{sent}</td><td class=\"num\">{hard}</td><td class=\"num\">{complaint}</td>\
                 <td class=\"num\">{deferral}</td><td class=\"num\">{block}</td><td>{view}</td>\
                 <td><span class=\"badge {id}\">{word}</span></td><td>{why}</td></tr>",
                day = d.day,
                pid = provider.id(),
                pname = provider.name(),
                step = row.step + 1,
                planned = thousands(row.planned),
                view = view.join(", "),
                word = row.decision.as_str(),
            );
        }
    }
    out.push_str("</tbody>\n</table></div>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::warmup::decide::judge;
    use crate::warmup::evidence::{DayCounts, Evidence};
    use crate::warmup::model::{Cohort, Schedule, Split, WarmupPlan};

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn plan(names: &[&str]) -> WarmupPlan {
        WarmupPlan {
            platform: "sendgrid".into(),
            start: d("2026-11-02"),
            clean_days: 3,
            utc_offset_minutes: 0,
            evidence: Vec::new(),
            cohorts: names
                .iter()
                .map(|name| Cohort {
                    name: (*name).into(),
                    size: 8000,
                    pool: Some("new_sending_ips".into()),
                    schedule: Schedule::Ramp {
                        start: 1000,
                        growth: 2.0,
                        cap: 8000,
                    },
                    // Gmail 60%, Microsoft 40%.
                    split: Some(Split([0.6, 0.0, 0.4, 0.0])),
                    start: None,
                    thresholds: [Thresholds::default(); 4],
                })
                .collect(),
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

    /// Three days of `name`: clean, a Microsoft complaint spike (5 of 800: 0.625%), clean.
    fn status_of(name: &str) -> WarmupStatus {
        let mut ev = Evidence::default();
        for (day, gmail, microsoft, ms_complaints) in [
            ("2026-11-02", 600, 400, 0),
            ("2026-11-03", 1150, 800, 5),
            ("2026-11-04", 2400, 400, 0),
        ] {
            ev.daily
                .insert((d(day), name.into(), Provider::Gmail), counts(gmail, 0));
            ev.daily.insert(
                (d(day), name.into(), Provider::Microsoft),
                counts(microsoft, ms_complaints),
            );
        }
        judge(&plan(&[name, "later"]), &[], &[], &ev, d("2026-11-05"))
    }

    /// The opening tag of the element with `class` and `data-day` (and more attributes).
    fn tag<'a>(page: &'a str, start: &str, day: &str) -> &'a str {
        let at = page
            .match_indices(start)
            .map(|(i, _)| i)
            .find(|i| {
                page[*i..]
                    .split('>')
                    .next()
                    .is_some_and(|t| t.contains(&format!("data-day=\"{day}\"")))
            })
            .unwrap_or_else(|| panic!("no {start} for {day} in:\n{page}"));
        page[at..].split('>').next().unwrap()
    }

    #[test]
    fn bars_points_and_decisions_carry_the_days_values() {
        let status = status_of("engaged-30d");
        let page = page("Northwind", &status, 7);
        // Day 2: 1,150 + 800 sent of 1,200 + 800 planned; Microsoft backed off.
        let bar = tag(&page, "<rect class=\"sent\"", "2026-11-03");
        assert!(bar.contains("data-value=\"1950\""), "{bar}");
        assert!(bar.contains("data-planned=\"2000\""), "{bar}");
        assert!(bar.contains("data-decision=\"back-off\""), "{bar}");
        let strip = tag(&page, "<rect class=\"decision", "2026-11-03");
        assert!(strip.contains("back-off"), "{strip}");
        assert!(tag(&page, "<rect class=\"decision", "2026-11-02").contains("advance"));
        let spike = tag(
            &page,
            "<circle class=\"rate back-off p-microsoft\" data-rate=\"complaint\"",
            "2026-11-03",
        );
        assert!(spike.contains("data-value=\"0.00625\""), "{spike}");
        // Gmail advanced to 2,400 on day 3; Microsoft went back to its first step (400); today
        // Gmail doubles again and Microsoft climbs back to 800.
        assert!(
            page.contains(
                "data-points=\"2026-11-02:1000 2026-11-03:2000 2026-11-04:2800 2026-11-05:5600\""
            ),
            "{page}"
        );
        let today = tag(&page, "<circle class=\"planned-point today\"", "2026-11-05");
        assert!(today.contains("data-value=\"5600\""), "{today}");
        // Thresholds: Gmail's ceiling as a back-off line, its target as a hold line.
        assert!(page.contains(
            "<line class=\"threshold back-off\" data-rate=\"complaint\" data-threshold=\"complaint_ceiling\" data-value=\"0.003\" data-providers=\"gmail microsoft\""
        ));
        assert!(page.contains("data-threshold=\"complaint_rate\" data-value=\"0.001\""));
        // The table names the reason; the waiting cohort has no charts.
        assert!(
            page.contains("complaints 0.62% at or over the 0.30% ceiling"),
            "{page}"
        );
        assert_eq!(page.matches("<svg class=\"chart volume\"").count(), 1);
        assert!(page.contains("data-cohort=\"later\" data-state=\"waiting\""));
        assert!(page.contains("role=\"img\" aria-label=\"Planned and sent messages per day for cohort engaged-30d, 2026-11-02 to 2026-11-05\""));
    }

    #[test]
    fn a_hostile_cohort_name_is_text() {
        let name = "<script>alert(1)</script>\"><img src=x onerror=alert(2)>";
        let page = page("Plan </title><script>", &status_of(name), 7);
        assert!(!page.contains("<script"), "{page}");
        assert!(!page.contains("<img"), "{page}");
        assert!(page.contains(
            "<h2>&lt;script&gt;alert(1)&lt;/script&gt;&quot;&gt;&lt;img src=x onerror=alert(2)&gt; "
        ));
        assert!(page.contains("data-cohort=\"&lt;script&gt;alert(1)&lt;/script&gt;&quot;&gt;"));
        assert!(page.contains("<title>Warmup of Plan &lt;/title&gt;&lt;script&gt; as of"));
    }

    #[test]
    fn the_page_loads_nothing_from_anywhere() {
        let page = page("Northwind", &status_of("engaged-30d"), 7);
        for external in [
            "http://", "https://", "src=", "url(", "@import", "<script", "<link",
        ] {
            assert!(!page.contains(external), "{external} in the page");
        }
        assert!(page.contains("content=\"default-src 'none'; style-src 'unsafe-inline'"));
        // Every chart is labelled for assistive technology.
        assert_eq!(
            page.matches("<svg ").count(),
            page.matches("role=\"img\" aria-label=\"").count()
        );
    }

    #[test]
    fn round_axis_tops() {
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(3200.0), 5000.0);
        assert_eq!(nice_ceiling(40000.0), 50000.0);
        assert_eq!(nice_ceiling(10000.0), 10000.0);
        assert!((nice_ceiling(0.0054) - 0.01).abs() < 1e-12);
        assert!((nice_ceiling(0.0023) - 0.0025).abs() < 1e-12);
    }
}
