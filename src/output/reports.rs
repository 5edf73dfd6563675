//! `mailshift reports PLAN` as a table, as CSV and as an HTML page (JSON is the [`View`]
//! serialised): the platforms side by side over the days of the reports, the unknown sources,
//! and whether enforcing DMARC is safe.

use crate::attribution::Side;
use crate::output::csv::neutralise;
use crate::output::escape::text;
use crate::reports::summary::{Totals, View};
use crate::warmup::report::thousands;
use std::fmt::Write;

fn share(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "—".into();
    }
    format!("{:.1}%", part as f64 * 100.0 / whole as f64)
}

/// `new: sendgrid`, `old: mailchimp`, `kept: Help desk`, `unknown`.
fn source_name(view: &View, key: &str) -> String {
    match view.summary.sources.get(key) {
        Some(s) => match &s.platform {
            Some(p) => format!("{} ({})", text(p), s.side.word()),
            None => "unknown".into(),
        },
        None => text(key).into_owned(),
    }
}

/// Sources in the order a migration reads them: new, old, kept, unknown.
fn ordered(view: &View) -> Vec<&String> {
    let mut keys: Vec<&String> = view.summary.sources.keys().collect();
    keys.sort_by_key(|k| {
        (
            view.summary
                .sources
                .get(*k)
                .map_or(Side::Unknown, |s| s.side),
            (*k).clone(),
        )
    });
    keys
}

/// "54 DMARC aggregate reports from google.com, Yahoo, 2026-10-20 to 2026-11-06", each
/// reporter's name through `escape` (for a terminal or for HTML).
fn scope(view: &View, escape: impl Fn(&str) -> String) -> String {
    let mut out = crate::words::count(
        view.reports as usize,
        "DMARC aggregate report",
        "DMARC aggregate reports",
    );
    if !view.reporters.is_empty() {
        let names: Vec<String> = view.reporters.iter().map(|r| escape(r)).collect();
        let _ = write!(out, " from {}", names.join(", "));
    }
    if let (Some(a), Some(b)) = (view.first_day, view.last_day) {
        let _ = write!(out, ", {a} to {b}");
    }
    out
}

pub fn table(view: &View, width: Option<u16>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Reports for \"{}\": {}",
        text(&view.plan),
        scope(view, |t| text(t).into_owned())
    );
    if view.summary.totals.is_empty() && view.tls.is_empty() {
        out.push_str("\nNo report rows yet: `mailshift reports import PLAN FILES`.\n");
        return out;
    }
    tls_table(&mut out, view, width);
    if view.summary.totals.is_empty() {
        return out;
    }
    let keys = ordered(view);
    let mut t = crate::output::new_table(false, width);
    t.set_header([
        "source",
        "messages",
        "DMARC pass",
        "DKIM aligned",
        "SPF aligned",
    ]);
    for k in &keys {
        let x: &Totals = &view.summary.totals[*k];
        t.add_row([
            source_name(view, k),
            thousands(x.messages),
            share(x.dmarc_pass, x.messages),
            share(x.dkim_aligned, x.messages),
            share(x.spf_aligned, x.messages),
        ]);
    }
    let _ = writeln!(out, "\nAll days:\n{t}");

    // Per day: each source's messages and pass rate, the shift visible row by row.
    let mut t = crate::output::new_table(false, width);
    let mut header = vec!["day".to_string()];
    header.extend(keys.iter().map(|k| source_name(view, k)));
    t.set_header(header);
    for (day, per) in &view.summary.by_day {
        let mut row = vec![day.to_string()];
        for k in &keys {
            row.push(match per.get(*k) {
                Some(x) => format!(
                    "{} ({})",
                    thousands(x.messages),
                    share(x.dmarc_pass, x.messages)
                ),
                None => "—".into(),
            });
        }
        t.add_row(row);
    }
    let _ = writeln!(out, "\nPer day (messages, DMARC pass):\n{t}");

    let failing: Vec<_> = view.summary.unknown_failing().collect();
    if !failing.is_empty() {
        let mut t = crate::output::new_table(false, width);
        t.set_header([
            "source IP",
            "failing / messages",
            "first seen",
            "last seen",
            "as",
            "what it looks like",
        ]);
        for u in failing.iter().take(50) {
            t.add_row([
                match view.reverse_dns.get(&u.ip) {
                    Some(name) => format!("{} ({})", u.ip, text(name)),
                    None => u.ip.to_string(),
                },
                format!("{} / {}", thousands(u.failing), thousands(u.messages)),
                u.first_seen.to_string(),
                u.last_seen.to_string(),
                u.header_from
                    .iter()
                    .map(|h| text(h).into_owned())
                    .collect::<Vec<_>>()
                    .join(", "),
                if u.looks_legitimate {
                    "a sender the plan does not list (authenticates as another domain)".into()
                } else {
                    "spoofing or unauthenticated".to_string()
                },
            ]);
        }
        let _ = writeln!(
            out,
            "\nUnknown sources failing DMARC ({}):\n{t}",
            failing.len()
        );
        if failing.len() > 50 {
            let _ = writeln!(
                out,
                "… and {} more (--format json lists all)",
                failing.len() - 50
            );
        }
    }
    out.push_str("\nEnforcing DMARC (dmarc-enforced):\n");
    for (domain, e) in &view.enforcement {
        let _ = writeln!(
            out,
            "  {}: {} — {}",
            text(domain),
            if e.safe { "safe" } else { "not yet" },
            text(&e.reasons.join("; "))
        );
    }
    for note in &view.notes {
        let _ = writeln!(out, "note: {}", text(note));
    }
    out
}

/// Sessions to the domain's MX per day, from SMTP TLS reports.
fn tls_table(out: &mut String, view: &View, width: Option<u16>) {
    if view.tls.is_empty() {
        return;
    }
    let mut t = crate::output::new_table(false, width);
    t.set_header([
        "day",
        "policy domain",
        "policy",
        "sessions ok",
        "failed",
        "failures per MX",
    ]);
    for d in &view.tls {
        t.add_row([
            d.day.to_string(),
            text(&d.policy_domain).into_owned(),
            d.policy_types.join(", "),
            thousands(d.successful_sessions),
            thousands(d.failed_sessions),
            d.failures
                .iter()
                .map(|f| {
                    format!(
                        "{} {} {}",
                        text(&f.mx),
                        text(&f.result_type),
                        thousands(f.sessions)
                    )
                })
                .collect::<Vec<_>>()
                .join("\n"),
        ]);
    }
    let _ = writeln!(out, "\nSMTP TLS reports (sessions to your MX):\n{t}");
}

/// One line per day and source.
pub fn csv(view: &View) -> String {
    let mut out = String::from(
        "day,side,platform,messages,dmarc_pass,dkim_aligned,spf_aligned,dmarc_pass_rate\n",
    );
    for (day, per) in &view.summary.by_day {
        for (key, x) in per {
            let (side, platform) = match view.summary.sources.get(key) {
                Some(s) => (s.side.word(), s.platform.clone().unwrap_or_default()),
                None => ("unknown", String::new()),
            };
            let platform = neutralise(&platform).replace('"', "\"\"");
            let _ = writeln!(
                out,
                "{day},{side},\"{platform}\",{},{},{},{},{}",
                x.messages,
                x.dmarc_pass,
                x.dkim_aligned,
                x.spf_aligned,
                x.pass_rate().map_or(String::new(), |r| format!("{r:.4}"))
            );
        }
    }
    out
}

/// The receivers' view under `warmup status`: the latest `days` days of the reports, each
/// source's messages and pass rate and the new platform's share, then TLS failures per MX.
pub fn receivers(view: &View, days: usize, width: Option<u16>) -> String {
    let mut out = String::from("\nWhat the receivers report (DMARC aggregate reports):\n");
    let keys = ordered(view);
    if !keys.is_empty() {
        let mut t = crate::output::new_table(false, width);
        let mut header = vec!["day".to_string(), "new platform's share".to_string()];
        header.extend(keys.iter().map(|k| source_name(view, k)));
        t.set_header(header);
        let shown: Vec<_> = view.summary.by_day.iter().rev().take(days).collect();
        for (day, per) in shown.into_iter().rev() {
            let total: u64 = per.values().map(|x| x.messages).sum();
            let new: u64 = per
                .iter()
                .filter(|(k, _)| {
                    view.summary
                        .sources
                        .get(*k)
                        .is_some_and(|s| s.side == Side::New)
                })
                .map(|(_, x)| x.messages)
                .sum();
            let mut row = vec![day.to_string(), share(new, total)];
            for k in &keys {
                row.push(match per.get(*k) {
                    Some(x) => format!(
                        "{} ({} pass)",
                        thousands(x.messages),
                        share(x.dmarc_pass, x.messages)
                    ),
                    None => "—".into(),
                });
            }
            t.add_row(row);
        }
        let _ = writeln!(out, "{t}");
    }
    let failing = view.summary.unknown_failing().count();
    if failing > 0 {
        let _ = writeln!(
            out,
            "{} failing DMARC (`mailshift reports PLAN` lists them)",
            crate::words::count(failing, "unknown source", "unknown sources")
        );
    }
    let mut tls = View {
        tls: view.tls.iter().rev().take(days).rev().cloned().collect(),
        ..view.clone()
    };
    tls.summary = Default::default();
    tls_table(&mut out, &tls, width);
    out
}

/// Prometheus gauges of the latest reported day, per source (`side`, `platform` labels).
pub fn prometheus(view: &View) -> String {
    let mut out = String::new();
    let Some((day, per)) = view.summary.by_day.iter().next_back() else {
        return out;
    };
    let label = |v: &str| {
        v.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
    };
    let _ = writeln!(
        out,
        "# HELP mailshift_reports_latest_day_seconds The latest day the DMARC aggregate reports cover (its start, Unix time).\n# TYPE mailshift_reports_latest_day_seconds gauge\nmailshift_reports_latest_day_seconds{{plan=\"{}\"}} {}",
        label(&view.plan),
        day.and_hms_opt(0, 0, 0).map_or(0, |t| t.and_utc().timestamp())
    );
    out.push_str("# HELP mailshift_reports_messages Messages in the DMARC aggregate reports of the latest reported day, per source.\n# TYPE mailshift_reports_messages gauge\n");
    for (key, x) in per {
        let (side, platform) = match view.summary.sources.get(key) {
            Some(s) => (s.side.word(), s.platform.clone().unwrap_or_default()),
            None => ("unknown", String::new()),
        };
        let _ = writeln!(
            out,
            "mailshift_reports_messages{{plan=\"{}\",side=\"{side}\",platform=\"{}\"}} {}",
            label(&view.plan),
            label(&platform),
            x.messages
        );
    }
    out.push_str("# HELP mailshift_reports_dmarc_pass_ratio Share of those messages that passed DMARC.\n# TYPE mailshift_reports_dmarc_pass_ratio gauge\n");
    for (key, x) in per {
        let (side, platform) = match view.summary.sources.get(key) {
            Some(s) => (s.side.word(), s.platform.clone().unwrap_or_default()),
            None => ("unknown", String::new()),
        };
        if let Some(rate) = x.pass_rate() {
            let _ = writeln!(
                out,
                "mailshift_reports_dmarc_pass_ratio{{plan=\"{}\",side=\"{side}\",platform=\"{}\"}} {rate}",
                label(&view.plan),
                label(&platform),
            );
        }
    }
    out
}

/// The receivers' view as a section of the warmup's HTML page: per day each source's messages
/// and pass rate, with the figures as `data-` attributes.
pub fn html_section(view: &View) -> String {
    use crate::output::escape::html;
    let keys = ordered(view);
    let mut out = String::from(
        "<section class=\"receivers\">\n<h2>What the receivers report</h2>\n\
         <p>From the DMARC aggregate reports: each source's messages per day and the share that \
         passed DMARC.</p>\n<table class=\"days receivers\"><thead><tr><th>Day</th>",
    );
    for k in &keys {
        let _ = write!(out, "<th>{}</th>", html(&source_name(view, k)));
    }
    out.push_str("</tr></thead><tbody>\n");
    for (day, per) in &view.summary.by_day {
        let _ = write!(out, "<tr data-day=\"{day}\"><td class=\"day\">{day}</td>");
        for k in &keys {
            match per.get(*k) {
                Some(x) => {
                    let _ = write!(
                        out,
                        "<td class=\"num\" data-source=\"{}\" data-messages=\"{}\" data-pass=\"{}\">{} ({})</td>",
                        html(k),
                        x.messages,
                        x.dmarc_pass,
                        thousands(x.messages),
                        share(x.dmarc_pass, x.messages)
                    );
                }
                None => out.push_str("<td class=\"num\">—</td>"),
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table>\n");
    for d in &view.tls {
        for f in &d.failures {
            let _ = writeln!(
                out,
                "<p class=\"tls-failure\" data-day=\"{}\" data-mx=\"{}\">TLS: {} failed session(s) to {} ({}) on {}</p>",
                d.day,
                html(&f.mx),
                f.sessions,
                html(&f.mx),
                html(&f.result_type),
                d.day
            );
        }
    }
    out.push_str("</section>\n");
    out
}

/// The report as a page of its own (`--format html`): what a deliverability lead forwards.
/// Every text from the reports (reporters, domains, source names) is escaped; the figures are
/// also `data-` attributes, so a script or a test reads them without parsing the words.
pub fn html_page(view: &View) -> String {
    use crate::output::escape::html;
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>DMARC reports: {plan}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <h1>DMARC reports: {plan}</h1>\n",
        plan = html(&view.plan)
    );
    let _ = writeln!(
        out,
        "<p class=\"scope\" data-reports=\"{}\">{}</p>",
        view.reports,
        scope(view, |t| html(t).into_owned())
    );
    if view.summary.totals.is_empty() && view.tls.is_empty() {
        out.push_str("<p>No report rows yet: <code>mailshift reports import PLAN FILES</code>.</p>\n</body>\n</html>\n");
        return out;
    }
    let keys = ordered(view);
    out.push_str("<h2>All days</h2>\n<table class=\"totals\"><thead><tr><th>Source</th><th>Messages</th><th>DMARC pass</th><th>DKIM aligned</th><th>SPF aligned</th></tr></thead><tbody>\n");
    for k in &keys {
        let x: &Totals = &view.summary.totals[*k];
        let _ = writeln!(
            out,
            "<tr data-source=\"{}\" data-messages=\"{}\" data-pass=\"{}\"><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            html(k),
            x.messages,
            x.dmarc_pass,
            html(&source_name(view, k)),
            thousands(x.messages),
            share(x.dmarc_pass, x.messages),
            share(x.dkim_aligned, x.messages),
            share(x.spf_aligned, x.messages)
        );
    }
    out.push_str("</tbody></table>\n");
    out.push_str(&html_section(view));
    let failing: Vec<_> = view.summary.unknown_failing().collect();
    if !failing.is_empty() {
        let _ = writeln!(
            out,
            "<h2>Unknown sources failing DMARC ({})</h2>\n<table class=\"unknown\"><thead><tr><th>Source IP</th><th>Failing / messages</th><th>First seen</th><th>Last seen</th><th>As</th><th>What it looks like</th></tr></thead><tbody>",
            failing.len()
        );
        for u in &failing {
            let ip = match view.reverse_dns.get(&u.ip) {
                Some(name) => format!("{} ({})", u.ip, html(name)),
                None => u.ip.to_string(),
            };
            let _ = writeln!(
                out,
                "<tr data-ip=\"{}\" data-failing=\"{}\"><td>{ip}</td><td class=\"num\">{} / {}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                u.ip,
                u.failing,
                thousands(u.failing),
                thousands(u.messages),
                u.first_seen,
                u.last_seen,
                u.header_from
                    .iter()
                    .map(|h| html(h).into_owned())
                    .collect::<Vec<_>>()
                    .join(", "),
                if u.looks_legitimate {
                    "a sender the plan does not list (authenticates as another domain)"
                } else {
                    "spoofing or unauthenticated"
                }
            );
        }
        out.push_str("</tbody></table>\n");
    }
    out.push_str("<h2>Enforcing DMARC (dmarc-enforced)</h2>\n<ul class=\"enforcement\">\n");
    for (domain, e) in &view.enforcement {
        let _ = writeln!(
            out,
            "<li data-domain=\"{}\" data-safe=\"{}\"><strong>{}</strong>: {} — {}</li>",
            html(domain),
            e.safe,
            html(domain),
            if e.safe { "safe" } else { "not yet" },
            html(&e.reasons.join("; "))
        );
    }
    out.push_str("</ul>\n");
    for note in &view.notes {
        let _ = writeln!(out, "<p class=\"note\">{}</p>", html(note));
    }
    out.push_str("</body>\n</html>\n");
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2rem;color:#1d2430}\
table{border-collapse:collapse;margin:.5rem 0 1.5rem}\
th,td{border-bottom:1px solid #d8dde6;padding:.3rem .6rem;text-align:left}\
td.num{text-align:right;font-variant-numeric:tabular-nums}\
.note{color:#5a6472}";
