//! Warmup status benchmark: how long does the daily decision take over a long warmup's history?
//!
//! ```text
//! cargo bench --bench warmup_status                  # 90 days × 4 cohorts × 4 providers
//! cargo bench --bench warmup_status -- --days 365
//! ```
//!
//! A plan with four cohorts warming side by side from 2026-01-05 (each with its own `start`, so
//! every cohort has a row for every day), and a history with each day's metrics per cohort and
//! mailbox provider (90 × 4 × 4 = 1,440 rows), Postmaster Tools traffic stats for the domain and
//! SNDS rows for two IPs per day. The evidence carries incidents (a Postmaster spam-ratio spike,
//! a Microsoft complaint spike, Yahoo deferrals, an SNDS YELLOW day) so the replay holds and
//! backs off as a real one would. Printed: the library's cost per step (open the history, load
//! the evidence, judge, render table / JSON / Prometheus / HTML), and the whole command
//! `mailshift warmup status PLAN --format json` as a process, median and worst of the runs.
//! The decisions are checked so a judge that skipped the work would not pass for fast.

use mailshift::history::History;
use mailshift::warmup::decide::judge;
use mailshift::warmup::evidence::Evidence;
use std::time::{Duration, Instant};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const COHORTS: [&str; 4] = ["engaged-30d", "engaged-90d", "lapsed-180d", "rest"];
const PROVIDERS: [&str; 4] = ["gmail", "yahoo", "microsoft", "other"];
const SHARE: [f64; 4] = [0.45, 0.15, 0.2, 0.2];
const RUNS: usize = 30;

fn plan_text(start: chrono::NaiveDate) -> String {
    let mut text = format!(
        r#"[migration]
name = "Bench: Mailchimp to SendGrid"
from = "mailchimp"
to = "sendgrid"
new_sending_ips = ["198.51.100.25", "198.51.100.26"]

[[domain]]
name = "news.lakeside-books.co.uk"

[[stage]]
name = "cutover"
requires = ["warmup"]

[warmup]
start = {start}
clean_days = 3
"#
    );
    for (i, cohort) in COHORTS.iter().enumerate() {
        // Sizes no 90-day warmup reaches, so every cohort is judged on every day.
        text.push_str(&format!(
            "\n[[cohort]]\nname = \"{cohort}\"\nsize = {}\nstart = {start}\nschedule = {{ start = {}, growth = 1.03 }}\n",
            50_000_000 * (i + 1),
            1_000 * (i + 1),
        ));
    }
    text
}

/// Fills the history: per day, cohort and provider what the schedule allowed (roughly), with
/// incidents on fixed days.
fn fill(history: &mut History, start: chrono::NaiveDate, days: i64) -> usize {
    let tx = history.write().unwrap();
    let mut rows = 0;
    for d in 0..days {
        let day = start + chrono::Duration::days(d);
        for (c, cohort) in COHORTS.iter().enumerate() {
            let volume = 1_000.0 * (c + 1) as f64 * 1.03f64.powi(d as i32);
            for (p, provider) in PROVIDERS.iter().enumerate() {
                let sent = (volume * SHARE[p]).round() as i64;
                let hard = sent / 400;
                let delivered = sent - hard;
                let complaints = if *provider == "microsoft" && d % 29 == 11 {
                    delivered * 4 / 1000
                } else {
                    delivered * 3 / 10_000
                };
                let deferrals = if *provider == "yahoo" && d % 17 == 6 {
                    sent * 7 / 100
                } else {
                    sent / 100
                };
                tx.execute(
                    "INSERT INTO daily (day, cohort, provider, source, sent, delivered,
                         hard_bounces, soft_bounces, complaints, deferrals, blocks, opens, clicks)
                     VALUES (?1, ?2, ?3, 'metrics', ?4, ?5, ?6, ?7, ?8, ?9, 0, ?10, ?11)",
                    rusqlite::params![
                        day.to_string(),
                        cohort,
                        provider,
                        sent,
                        delivered,
                        hard,
                        sent / 250,
                        complaints,
                        deferrals,
                        delivered / 5,
                        delivered / 33
                    ],
                )
                .unwrap();
                rows += 1;
            }
        }
        let spam = if d % 23 == 9 { 0.0012 } else { 0.0004 };
        tx.execute(
            "INSERT INTO postmaster (day, domain, spam_ratio, domain_reputation, ip_reputations,
                 spf_success, dkim_success, dmarc_success, delivery_errors)
             VALUES (?1, 'news.lakeside-books.co.uk', ?2, 'HIGH',
                 '[{\"reputation\":\"HIGH\",\"ipCount\":\"2\"}]', 1.0, 1.0, 1.0, '[]')",
            rusqlite::params![day.to_string(), spam],
        )
        .unwrap();
        for ip in ["198.51.100.25", "198.51.100.26"] {
            let filter = if d % 31 == 20 { "YELLOW" } else { "GREEN" };
            tx.execute(
                "INSERT INTO snds (day, ip, rcpt, data, recipients, filter, complaint_rate, trap_hits)
                 VALUES (?1, ?2, 5000, 5000, 5000, ?3, '< 0.1%', 0)",
                rusqlite::params![day.to_string(), ip, filter],
            )
            .unwrap();
        }
    }
    tx.commit().unwrap();
    rows
}

fn summary(label: &str, mut times: Vec<Duration>) {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "  {label:<44} median {:>8.2} ms   worst {:>8.2} ms",
        ms(times[times.len() / 2]),
        ms(times[times.len() - 1])
    );
}

fn main() {
    let mut days: i64 = 90;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--days" {
            days = args.next().and_then(|d| d.parse().ok()).unwrap_or(days);
        }
    }
    let start = chrono::NaiveDate::from_ymd_opt(2026, 1, 5).unwrap();
    let as_of = start + chrono::Duration::days(days);
    let dir = std::env::temp_dir().join(format!("mailshift-warmup-status-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let plan_path = dir.join("bench.toml");
    std::fs::write(&plan_path, plan_text(start)).unwrap();
    let state = dir.join("bench.state");
    let rows = {
        let mut history = History::open_dir(&state).unwrap();
        fill(&mut history, start, days)
    };
    let catalog = mailshift::catalog::Catalog::embedded().unwrap();
    let plan = mailshift::plan::Plan::load(&plan_path, &catalog).unwrap();
    let warmup = plan.warmup.as_ref().unwrap();
    let domains: Vec<String> = plan.domains.iter().map(|d| d.name.to_string()).collect();
    println!(
        "warmup status over {days} days × {} cohorts × {} providers: {rows} daily rows, {days} Postmaster days, {} SNDS rows",
        COHORTS.len(),
        PROVIDERS.len(),
        days * 2
    );

    let (mut open, mut load, mut decide, mut table, mut json, mut prom, mut html, mut total) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    let mut status = None;
    for _ in 0..RUNS {
        let t0 = Instant::now();
        let history = History::open_existing(&state).unwrap().unwrap();
        let t1 = Instant::now();
        let evidence = Evidence::load(&history).unwrap();
        let t2 = Instant::now();
        let s = judge(warmup, &plan.pools, &domains, &evidence, as_of);
        let t3 = Instant::now();
        let t = mailshift::warmup::report::table(&plan.name, &s, 7, Some(120));
        let t4 = Instant::now();
        let j = serde_json::to_string(&s).unwrap();
        let t5 = Instant::now();
        let p = mailshift::warmup::report::prometheus(&plan.name, &s);
        let t6 = Instant::now();
        let h = mailshift::warmup::html::page(&plan.name, &s, 14);
        let t7 = Instant::now();
        assert!(!t.is_empty() && !j.is_empty() && !p.is_empty() && !h.is_empty());
        open.push(t1 - t0);
        load.push(t2 - t1);
        decide.push(t3 - t2);
        table.push(t4 - t3);
        json.push(t5 - t4);
        prom.push(t6 - t5);
        html.push(t7 - t6);
        total.push(t7 - t0);
        status = Some(s);
    }
    let status = status.unwrap();
    // The replay did the work: every cohort judged on every day, with holds and back-offs.
    let mut judged = 0;
    let mut held = 0;
    let mut backed_off = 0;
    for c in &status.cohorts {
        for p in &c.providers {
            judged += p.days.len();
            for d in &p.days {
                match d.decision {
                    mailshift::warmup::decide::Decision::Hold => held += 1,
                    mailshift::warmup::decide::Decision::BackOff => backed_off += 1,
                    _ => {}
                }
            }
        }
    }
    assert_eq!(
        judged as i64,
        days * 16,
        "every cohort, provider and day judged"
    );
    assert!(held > 0 && backed_off > 0, "the incidents were decided");
    println!("  judged {judged} cohort-provider-days: {held} held, {backed_off} backed off");
    summary("open the history", open);
    summary("load the evidence", load);
    summary("judge (replay every day)", decide);
    summary("render the table", table);
    summary("render JSON", json);
    summary("render Prometheus", prom);
    summary("render HTML", html);
    summary("all of the above", total);

    let binary = env!("CARGO_BIN_EXE_mailshift");
    let mut command = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        let out = std::process::Command::new(binary)
            .args(["warmup", "status"])
            .arg(&plan_path)
            .args(["--as-of", &as_of.to_string(), "--format", "json"])
            .output()
            .unwrap();
        command.push(t.elapsed());
        assert!(out.status.code().is_some_and(|c| c <= 1), "{out:?}");
        assert!(out.stdout.len() > 10_000);
    }
    summary("`mailshift warmup status --format json`", command);
    let _ = std::fs::remove_dir_all(&dir);
}
