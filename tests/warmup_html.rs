//! `mailshift warmup status --html`: the page is written beside the chosen format, and headless
//! Chromium renders it from the file alone, with charts that show the history's evidence.
//!
//! Chromium is Debian's `chromium` package, which `.ci/run` installs: without it this test fails
//! (it is part of CI), unless `MAILSHIFT_SKIP_CHROMIUM=1` is set outside CI, which skips only the
//! browser half. Chromium runs with every host name unresolvable and a dead loopback proxy, so
//! nothing it might try to fetch leaves the machine.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{fixtures, json, mailshift};

/// The days of the fixture warmup of `engaged-30d` (warmup-report.toml: 2,000 a day, ×1.6, up to its
/// 40,000 recipients) and each provider's planned volume [Gmail, Yahoo/AOL, Microsoft, other],
/// worked out by hand from the schedule and the assumed 45/15/20/20 mix (the plan gives no split). Microsoft backs
/// off on 2026-11-06 and climbs back a step behind the others.
const PLANNED: [(&str, [u64; 4]); 10] = [
    ("2026-11-02", [900, 300, 400, 400]),
    ("2026-11-03", [1440, 480, 640, 640]),
    ("2026-11-04", [2304, 768, 1024, 1024]),
    ("2026-11-05", [3686, 1229, 1638, 1638]),
    ("2026-11-06", [5898, 1966, 2621, 2621]),
    ("2026-11-07", [9437, 3146, 1638, 4194]),
    ("2026-11-08", [15099, 5033, 2621, 6711]),
    ("2026-11-09", [18000, 6000, 4194, 8000]),
    ("2026-11-10", [18000, 6000, 6711, 8000]),
    ("2026-11-11", [18000, 6000, 8000, 8000]),
];
const PROVIDERS: [&str; 4] = ["gmail", "yahoo", "microsoft", "other"];
const SPIKE_DAY: &str = "2026-11-06";
/// Microsoft's complaints on the spike day, over 2,504 delivered: 0.68%, over the 0.30% ceiling.
const SPIKE_COMPLAINTS: u64 = 17;

/// Each day sends 96% of its plan; 0.5% hard bounces, 1% deferrals, complaints 0.04% of
/// delivered, but for Microsoft's spike.
fn counts(day: &str, provider: &str, planned: u64) -> (u64, u64, u64, u64, u64) {
    let sent = planned * 96 / 100;
    let hard = sent / 200;
    let delivered = sent - hard;
    let complaints = if day == SPIKE_DAY && provider == "microsoft" {
        SPIKE_COMPLAINTS
    } else {
        delivered / 2500
    };
    (sent, delivered, hard, complaints, sent / 100)
}

/// A history with the fixture evidence, as an import would leave it.
fn fixture_history(state: &Path) {
    let mut history = mailshift::history::History::open_dir(state).unwrap();
    let tx = history.write().unwrap();
    for (day, planned) in PLANNED {
        for (provider, planned) in PROVIDERS.iter().zip(planned) {
            let (sent, delivered, hard, complaints, deferrals) = counts(day, provider, planned);
            tx.execute(
                "INSERT INTO daily (day, cohort, provider, source, sent, delivered, hard_bounces,
                                    soft_bounces, complaints, deferrals, blocks)
                 VALUES (?1, 'engaged-30d', ?2, 'metrics', ?3, ?4, ?5, 0, ?6, ?7, 0)",
                rusqlite::params![
                    day,
                    provider,
                    sent as i64,
                    delivered as i64,
                    hard as i64,
                    complaints as i64,
                    deferrals as i64
                ],
            )
            .unwrap();
        }
    }
    // Microsoft's own view of the spike day, for the plan's sending IP.
    tx.execute(
        "INSERT INTO snds (day, ip, filter, complaint_rate, trap_hits, recipients)
         VALUES (?1, '198.51.100.25', 'YELLOW', '0.5%', 0, 2516)",
        [SPIKE_DAY],
    )
    .unwrap();
    tx.commit().unwrap();
}

/// The start tags `<NAME …>` of `html`.
fn tags<'a>(html: &'a str, name: &str) -> Vec<&'a str> {
    let open = format!("<{name} ");
    html.match_indices(&open)
        .filter_map(|(i, _)| html.get(i..))
        .filter_map(|rest| rest.split('>').next())
        .collect()
}

/// The value of `attr` in a start tag.
fn attr<'a>(tag: &'a str, attr: &str) -> Option<&'a str> {
    let key = format!(" {attr}=\"");
    let at = tag.find(&key)? + key.len();
    tag.get(at..)?.split('"').next()
}

/// The one start tag `<NAME …>` whose attributes include every `(attr, value)` of `with`.
fn the<'a>(html: &'a str, name: &str, with: &[(&str, &str)]) -> &'a str {
    let found: Vec<&str> = tags(html, name)
        .into_iter()
        .filter(|t| with.iter().all(|(a, v)| attr(t, a) == Some(*v)))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected one <{name}> with {with:?}, found {found:#?}"
    );
    found[0]
}

/// What the charts must show for the fixture, checked on the file and again on Chromium's DOM.
fn assert_charts_show_the_fixture(html: &str, what: &str) {
    let volume = html
        .split("<svg class=\"chart volume\"")
        .nth(1)
        .and_then(|rest| rest.split("</svg>").next())
        .unwrap_or_else(|| panic!("{what}: no volume chart in:\n{html}"));
    let mut points = Vec::new();
    for (day, planned) in PLANNED {
        let sent: u64 = PROVIDERS
            .iter()
            .zip(planned)
            .map(|(p, planned)| counts(day, p, planned).0)
            .sum();
        let planned: u64 = planned.iter().sum();
        let bar = the(volume, "rect", &[("class", "sent"), ("data-day", day)]);
        assert_eq!(attr(bar, "data-value"), Some(&*sent.to_string()), "{what}");
        assert_eq!(
            attr(bar, "data-planned"),
            Some(&*planned.to_string()),
            "{what}"
        );
        let height: f64 = attr(bar, "height").unwrap().parse().unwrap();
        assert!(height > 0.0, "{what}: {bar}");
        points.push(format!("{day}:{planned}"));
    }
    // Today, 2026-11-12: every provider at full volume again.
    points.push("2026-11-12:40000".into());
    let planned = the(volume, "path", &[("class", "planned")]);
    assert_eq!(
        attr(planned, "data-points"),
        Some(&*points.join(" ")),
        "{what}"
    );
    assert_eq!(
        tags(volume, "rect").len(),
        PLANNED.len(),
        "{what}: one bar a day"
    );
    // The spike day is marked back off, in the strip and on Microsoft's complaint point.
    for (day, _) in PLANNED {
        let strip = the(html, "rect", &[("data-day", day), ("y", "4")]);
        let expected = if day == SPIKE_DAY {
            "back-off"
        } else {
            "advance"
        };
        assert_eq!(
            attr(strip, "data-decision"),
            Some(expected),
            "{what}: {day}"
        );
    }
    let spike = the(
        html,
        "circle",
        &[
            ("data-rate", "complaint"),
            ("data-provider", "microsoft"),
            ("data-day", SPIKE_DAY),
        ],
    );
    let rate = SPIKE_COMPLAINTS as f64 / 2504.0;
    assert_eq!(
        attr(spike, "data-value"),
        Some(&*rate.to_string()),
        "{what}"
    );
    assert_eq!(attr(spike, "data-decision"), Some("back-off"), "{what}");
    let ceiling = the(
        html,
        "line",
        &[
            ("data-rate", "complaint"),
            ("data-threshold", "complaint_ceiling"),
        ],
    );
    assert_eq!(attr(ceiling, "data-value"), Some("0.003"), "{what}");
    assert_eq!(
        attr(ceiling, "data-providers"),
        Some("gmail yahoo microsoft other")
    );
    let spike_row = the(
        html,
        "tr",
        &[("data-day", SPIKE_DAY), ("data-provider", "microsoft")],
    );
    assert_eq!(attr(spike_row, "data-decision"), Some("back-off"), "{what}");
}

/// `chromium` or `chromium-browser` on PATH.
fn find_chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| ["chromium", "chromium-browser"].map(|name| dir.join(name)))
        .find(|p| p.is_file())
}

/// Runs headless Chromium on `page` with `args`, with nothing reachable but the file; its
/// standard output.
fn run_chromium(chromium: &Path, profile: &Path, page: &Path, args: &[&str]) -> String {
    let url = format!("file://{}", page.display());
    let mut child = Command::new(chromium)
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-default-apps",
            "--disable-extensions",
            "--disable-sync",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--proxy-server=127.0.0.1:9",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(&url)
        .env("HOME", profile)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromium.display()));
    // Both pipes are drained while the browser runs: a DOM larger than the pipe's buffer would
    // otherwise block Chromium's write and look like a hang.
    let drain = |mut pipe: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    // A browser that hangs must not hang the suite.
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium {args:?} {url} did not finish in 120 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = stdout.join().unwrap();
    let stderr = stderr.join().unwrap();
    assert!(
        status.success(),
        "chromium {args:?} failed ({status}): {}",
        String::from_utf8_lossy(&stderr)
    );
    String::from_utf8_lossy(&stdout).into_owned()
}

/// Pixels of `rgb` in a PNG.
fn pixels_of(png_path: &Path, rgb: [u8; 3]) -> usize {
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(png_path).unwrap(),
    ));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = match info.color_type {
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        other => panic!("unexpected PNG colour type {other:?}"),
    };
    buf[..info.buffer_size()]
        .chunks_exact(channels)
        .filter(|px| px[..3] == rgb)
        .count()
}

#[test]
fn the_html_report_renders_in_chromium_with_the_fixture_evidence_in_its_charts() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    fixture_history(&state);
    let page = dir.path().join("warmup.html");
    let out = mailshift()
        .args(["warmup", "status"])
        .arg(fixtures().join("plans/warmup-report.toml"))
        .args(["--as-of", "2026-11-12", "--format", "json", "--state"])
        .arg(&state)
        .arg("--html")
        .arg(&page)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The chosen format is still written, and agrees with the page.
    let report = json(&out.stdout);
    let cohort = &report["warmup"]["cohorts"][0];
    assert_eq!(cohort["name"], "engaged-30d");
    assert_eq!(cohort["planned_today"], 40000);
    assert_eq!(cohort["decision"], "advance");
    let html = std::fs::read_to_string(&page).unwrap();
    assert_charts_show_the_fixture(&html, "the file");
    assert!(html.contains("<h2>engaged-30d <span class=\"badge warming\">warming</span></h2>"));
    assert!(html.contains("<strong class=\"today\" data-value=\"40000\">40,000</strong>"));
    assert!(html.contains("Microsoft: complaints 0.68% at or over the 0.30% ceiling"));
    assert!(
        html.contains("SNDS YELLOW"),
        "the provider's view is in the table"
    );
    for external in ["http://", "https://", "src=", "url(", "<script", "<link"] {
        assert!(!html.contains(external), "{external} in the page");
    }

    let Some(chromium) = find_chromium() else {
        if std::env::var("MAILSHIFT_SKIP_CHROMIUM").as_deref() == Ok("1")
            && std::env::var_os("CI").is_none()
        {
            eprintln!(
                "SKIPPED the browser half: MAILSHIFT_SKIP_CHROMIUM=1 and no chromium installed"
            );
            return;
        }
        panic!(
            "headless Chromium is not installed, and this test renders the HTML report in it: \
             .ci/run installs it (Debian's `chromium` package: apt-get install chromium), it is \
             part of CI. To skip the browser half locally, set MAILSHIFT_SKIP_CHROMIUM=1."
        );
    };
    let profile = dir.path().join("chromium-profile");
    std::fs::create_dir_all(&profile).unwrap();
    let dom = run_chromium(&chromium, &profile, &page, &["--dump-dom"]);
    assert!(
        dom.contains("<svg class=\"chart volume\""),
        "Chromium rendered no chart:\n{dom}"
    );
    assert_charts_show_the_fixture(&dom, "Chromium's DOM");

    let shot = dir.path().join("warmup.png");
    run_chromium(
        &chromium,
        &profile,
        &page,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1280,2000",
            "--hide-scrollbars",
        ],
    );
    let size = std::fs::metadata(&shot)
        .unwrap_or_else(|e| panic!("no screenshot at {}: {e}", shot.display()))
        .len();
    assert!(size > 20_000, "a near-empty screenshot: {size} bytes");
    // The charts were painted: the sent bars' blue and the back-off red are on the screen.
    let bars = pixels_of(&shot, [0x7a, 0xa6, 0xd6]);
    let back_off = pixels_of(&shot, [0xcf, 0x22, 0x2e]);
    assert!(bars > 2_000, "sent bars: {bars} pixels");
    assert!(back_off > 100, "back-off marks: {back_off} pixels");
    // To look at what was checked: MAILSHIFT_KEEP_REPORT=DIR keeps the page and the screenshot.
    if let Some(keep) = std::env::var_os("MAILSHIFT_KEEP_REPORT") {
        let keep = PathBuf::from(keep);
        std::fs::create_dir_all(&keep).unwrap();
        std::fs::copy(&page, keep.join("warmup.html")).unwrap();
        std::fs::copy(&shot, keep.join("warmup.png")).unwrap();
    }
}
