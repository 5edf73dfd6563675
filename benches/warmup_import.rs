//! Warmup import benchmark: does a million SendGrid events import in bounded memory, and how
//! fast, through `mailshift::warmup::import::import_file` into a fresh history?
//!
//! ```text
//! cargo bench --bench warmup_import                      # 1,000,000 events, ndjson and one JSON array
//! cargo bench --bench warmup_import -- --events 200000
//! ```
//!
//! The events are generated deterministically into a temporary file, once as ndjson (one event
//! a line) and once as one JSON array: 200,000 recipients at Gmail, Yahoo, Outlook.com,
//! Hotmail UK and company domains, in three cohorts (one of them given as a category, not a
//! custom argument), over seven days, each with `processed` and then `delivered`, a deferral,
//! a bounce, a block, a spam report, an open or a click, in the shapes the Event Webhook posts
//! (with `smtp-id`, `sg_message_id`, `ip`, `response`, `useragent`). Printed per file: its
//! size, the import's wall time and events per second, the peak resident memory of the import
//! (VmHWM, reset before it), and the time to find the same file already imported. The bench
//! checks every count against what it generated: an import that counted nothing would be fast
//! for nothing.

mod support;

use mailshift::history::History;
use mailshift::warmup::import::{import_file, EvidenceKind, ImportOptions};
use std::io::Write;
use std::time::Instant;
use support::{proc_status_kib, Rng};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const DOMAINS: [&str; 6] = [
    "gmail.com",
    "yahoo.com",
    "outlook.com",
    "hotmail.co.uk",
    "brightwater-legal.co.uk",
    "kingsbridge-dental.co.uk",
];

/// What the generator wrote, in the `daily` table's order: sent, delivered, hard bounces, soft
/// bounces, complaints, deferrals, blocks, opens, clicks.
#[derive(Default, Debug, PartialEq, Eq)]
struct Expected {
    counts: [i64; 9],
    events: u64,
}

fn event(rng: &mut Rng, i: u64, kind: &str, extra: &str) -> String {
    let recipient = i % 200_000;
    let domain = DOMAINS[(recipient % DOMAINS.len() as u64) as usize];
    let cohort = match recipient % 3 {
        0 => r#","category":["newsletter"],"cohort":"engaged-30d""#,
        1 => r#","category":["newsletter","engaged-90d"]"#,
        _ => r#","category":"newsletter","cohort":"rest""#,
    };
    let day = recipient % 7;
    let timestamp = 1_793_628_000 + day * 86_400 + rng.below(3_600);
    format!(
        r#"{{"email":"subscriber{recipient}@{domain}","timestamp":{timestamp},"smtp-id":"<m{recipient}@ismtpd0104p1iad2.sendgrid.net>","event":"{kind}"{cohort},"sg_event_id":"ZXZlbnQt{i:010}","sg_message_id":"m{recipient}.filterdrecv-7bf5c69d5-9xw2q-1-672F4A11-3C.0"{extra}}}"#
    )
}

/// Writes `n` events to `out` as ndjson or one array; returns what they count.
fn generate(out: &mut impl Write, n: u64, array: bool) -> std::io::Result<Expected> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut expected = Expected::default();
    const DELIVERED: &str = r#","ip":"198.51.100.25","response":"250 2.0.0 OK  1793628009 a640c23a62f3a-abc.123 - gsmtp","tls":1"#;
    if array {
        out.write_all(b"[\n")?;
    }
    for i in 0..n {
        let (kind, extra, counter) = match i % 20 {
            0..=7 if i % 2 == 0 => ("processed", "", Some(0)),
            0..=7 => ("delivered", DELIVERED, Some(1)),
            8..=12 => (
                "open",
                r#","ip":"66.249.84.17","useragent":"Mozilla/5.0 (via ggpht.com GoogleImageProxy)","sg_machine_open":false"#,
                Some(7),
            ),
            13 => (
                "click",
                r#","ip":"81.2.69.142","url":"https://www.bluefinprovisions.com/recipes/chowder""#,
                Some(8),
            ),
            14 => (
                "deferred",
                r#","response":"421 4.7.0 [TSS04] Messages temporarily deferred","attempt":"1""#,
                Some(5),
            ),
            15 => (
                "bounce",
                r#","type":"bounce","status":"5.1.1","reason":"550 5.1.1 User unknown""#,
                Some(2),
            ),
            16 => (
                "bounce",
                r#","type":"blocked","status":"5.7.1","reason":"550 5.7.1 blocked""#,
                Some(6),
            ),
            17 => ("spamreport", "", Some(4)),
            18 => ("unsubscribe", "", None),
            _ => (
                "dropped",
                r#","reason":"Bounced Address","status":"5.0.0""#,
                None,
            ),
        };
        if let Some(c) = counter {
            expected.counts[c] += 1;
        }
        expected.events += 1;
        if array && i > 0 {
            out.write_all(b",\n")?;
        }
        out.write_all(event(&mut rng, i, kind, extra).as_bytes())?;
        if !array {
            out.write_all(b"\n")?;
        }
    }
    if array {
        out.write_all(b"\n]\n")?;
    }
    Ok(expected)
}

fn reset_peak() {
    // Writing 5 to clear_refs resets VmHWM (Linux 4.0+); without it the peak is the process's.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn main() {
    let mut events: u64 = 1_000_000;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--events" => {
                events = args
                    .next()
                    .and_then(|v| v.replace('_', "").parse().ok())
                    .expect("--events N")
            }
            "--bench" => {}
            other => panic!("unknown argument {other} (usage: --events N)"),
        }
    }
    let opts = ImportOptions {
        utc_offset_minutes: -300,
        cohorts: vec!["engaged-30d".into(), "engaged-90d".into(), "rest".into()],
        ..ImportOptions::default()
    };
    println!("warmup import: {events} SendGrid events into a fresh history");
    for array in [false, true] {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join(if array {
            "events.json"
        } else {
            "events.ndjson"
        });
        let mut file = std::io::BufWriter::new(std::fs::File::create(&path).expect("create"));
        let expected = generate(&mut file, events, array).expect("write events");
        file.flush().expect("flush");
        drop(file);
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let mut history = History::open_dir(&dir.path().join("state")).expect("history");
        reset_peak();
        let before = proc_status_kib("VmRSS:").unwrap_or(0);
        let start = Instant::now();
        let outcome = import_file(&mut history, &path, None, &opts).expect("import");
        let elapsed = start.elapsed().as_secs_f64();
        let peak = proc_status_kib("VmHWM:").unwrap_or(0);
        let start = Instant::now();
        let again = import_file(&mut history, &path, None, &opts).expect("import again");
        let skipped = start.elapsed().as_secs_f64();
        assert_eq!(outcome.kind, EvidenceKind::SendGrid);
        assert!(again.already_imported.is_some());
        assert_eq!(outcome.records, expected.events);
        assert_eq!(outcome.rejected, 0, "{:?}", outcome.problems.first());
        let mut got = [0i64; 9];
        let conn = history.conn();
        let sums = conn
            .query_row(
                "SELECT sum(sent), sum(delivered), sum(hard_bounces), sum(soft_bounces),
                 sum(complaints), sum(deferrals), sum(blocks), sum(opens), sum(clicks)
                 FROM daily WHERE source = 'events'",
                [],
                |r| {
                    for (i, slot) in got.iter_mut().enumerate() {
                        *slot = r.get(i)?;
                    }
                    Ok(())
                },
            )
            .map(|_| got);
        assert_eq!(
            sums.expect("sums"),
            expected.counts,
            "the counts in the history"
        );
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM daily", [], |r| r.get(0))
            .expect("rows");
        println!(
            "  {:<6} {:>7.1} MiB  {:>6.2} s  {:>9.0} events/s  peak RSS {:>6.1} MiB (at start {:.1})  \
             {} daily rows, {} dropped, {} ignored  already imported: {:.2} s",
            if array { "array" } else { "ndjson" },
            size as f64 / (1 << 20) as f64,
            elapsed,
            events as f64 / elapsed,
            peak as f64 / 1024.0,
            before as f64 / 1024.0,
            rows,
            outcome.dropped,
            outcome.ignored,
            skipped
        );
    }
}
