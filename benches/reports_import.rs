//! DMARC report import benchmark: how fast do many small reports import, and does one very
//! large report import in bounded memory, through `mailshift::reports` into a fresh history?
//! With `--compare-parsedmarc`, parsedmarc 11.1.0 `--offline` parses the same files in the same
//! run, for issue 10's targets: ≥ 50× its speed on both workloads, under 100 MB for (b).
//!
//! ```text
//! cargo bench --bench reports_import                       # 1,000 reports × 20 records; one of 100,000
//! cargo bench --bench reports_import -- --reports 200 --big 20000
//! cargo bench --bench reports_import -- --compare-parsedmarc   # + the mailshift command, parsedmarc
//! cargo bench --bench reports_import -- --compare-parsedmarc --runs 12 --parsedmarc-runs 3
//! #   parsedmarc three times, each after a third of the command's runs: the medians compared
//! cargo bench --bench reports_import -- --keep /tmp/reports-bench  # leave the files, to profile
//! # one-time setup for the comparison (parsedmarc in a venv under target/):
//! #   python3 -m venv target/bench-venv && target/bench-venv/bin/pip install parsedmarc==11.1.0
//! ```
//!
//! (a) 1,000 reports of 20 records each, in the shapes Google (zip), Yahoo (gzip) and
//! Outlook.com (XML with its namespaces, version and envelope fields) send, each of the three
//! also in the other containers, one file per report: imported with `import_paths` over the
//! directory. (b) One Google-style report of 100,000 records (about 62 MB of XML), gzipped:
//! imported with `import_file`. mailshift's imports run `--runs` times (5), each into a fresh
//! history, and the median is what counts (with the fastest and slowest beside it): a run of
//! a tenth of a second is at the mercy of the machine's moment, parsedmarc's runs of seconds
//! much less. Printed for each: the files' size, the import's wall time,
//! records per second and the peak resident memory of the import (VmHWM, reset before it). The
//! bench checks every count against what it generated, and that (b)'s peak stays under 100 MB.
//!
//! `--compare-parsedmarc` then runs, on the same files, (1) the `mailshift reports import`
//! command end to end (process start-up and its JSON output included; peak memory is the
//! child's ru_maxrss) and (2) parsedmarc, through `benches/compare_parsedmarc.py` with the
//! python of `--parsedmarc-python` (default `target/bench-venv/bin/python`): the
//! `parsedmarc --offline -s -o OUT` command (no geolocation, no reverse DNS, one process, its
//! JSON and CSV output written), timed with its start-up, which is also timed alone. The driver
//! reads parsedmarc's CSV back and the run only counts if it holds every generated report,
//! record and message. The ratios (parsedmarc's time over mailshift's in-process import, and
//! over the mailshift command) and the targets are printed at the end. The comparison is
//! skipped with a message when the python or parsedmarc is missing.

mod support;

use mailshift::history::History;
use mailshift::reports::{import_file, import_paths, ImportOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;
use support::{mib, proc_status_kib, reset_peak_rss, Rng};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Clone, Copy)]
enum Style {
    Google,
    Yahoo,
    Outlook,
}

const BEGIN: u64 = 1_764_547_200;

fn header(style: Style, id: &str, day: u64) -> String {
    let begin = BEGIN + day * 86_400;
    let end = begin + 86_399;
    match style {
        Style::Google => format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n<feedback>\n  <report_metadata>\n    <org_name>google.com</org_name>\n    <email>noreply-dmarc-support@google.com</email>\n    <extra_contact_info>https://support.google.com/a/answer/2466580</extra_contact_info>\n    <report_id>{id}</report_id>\n    <date_range>\n      <begin>{begin}</begin>\n      <end>{end}</end>\n    </date_range>\n  </report_metadata>\n  <policy_published>\n    <domain>bluefinprovisions.com</domain>\n    <adkim>r</adkim>\n    <aspf>r</aspf>\n    <p>none</p>\n    <sp>none</sp>\n    <pct>100</pct>\n    <np>none</np>\n  </policy_published>\n"
        ),
        Style::Yahoo => format!(
            "<?xml version=\"1.0\"?>\n<feedback>\n  <report_metadata>\n    <org_name>Yahoo</org_name>\n    <email>dmarchelp@yahooinc.com</email>\n    <report_id>{id}</report_id>\n    <date_range>\n      <begin>{begin}</begin>\n      <end>{end}</end>\n    </date_range>\n  </report_metadata>\n  <policy_published>\n    <domain>bluefinprovisions.com</domain>\n    <adkim>r</adkim>\n    <aspf>r</aspf>\n    <p>quarantine</p>\n    <pct>100</pct>\n  </policy_published>\n"
        ),
        Style::Outlook => format!(
            "<?xml version=\"1.0\"?>\n<feedback xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\n  <version>1.0</version>\n  <report_metadata>\n    <org_name>Outlook.com</org_name>\n    <email>dmarcreport@microsoft.com</email>\n    <report_id>{id}</report_id>\n    <date_range>\n      <begin>{begin}</begin>\n      <end>{end}</end>\n    </date_range>\n  </report_metadata>\n  <policy_published>\n    <domain>bluefinprovisions.com</domain>\n    <adkim>r</adkim>\n    <aspf>r</aspf>\n    <p>none</p>\n    <sp>none</sp>\n    <pct>100</pct>\n    <fo>0</fo>\n  </policy_published>\n"
        ),
    }
}

/// One record; returns its count too.
fn record(style: Style, rng: &mut Rng, i: u64) -> (String, u64) {
    let ip = format!("198.{}.{}.{}", 18 + (i >> 16) % 2, (i >> 8) & 255, i & 255);
    let count = 1 + rng.below(40);
    let (dkim, spf) = match rng.below(10) {
        0 => ("fail", "fail"),
        1 => ("fail", "pass"),
        _ => ("pass", "pass"),
    };
    let text = match style {
        Style::Google => format!(
            "  <record>\n    <row>\n      <source_ip>{ip}</source_ip>\n      <count>{count}</count>\n      <policy_evaluated>\n        <disposition>none</disposition>\n        <dkim>{dkim}</dkim>\n        <spf>{spf}</spf>\n      </policy_evaluated>\n    </row>\n    <identifiers>\n      <header_from>bluefinprovisions.com</header_from>\n    </identifiers>\n    <auth_results>\n      <dkim>\n        <domain>bluefinprovisions.com</domain>\n        <result>{dkim}</result>\n        <selector>s1</selector>\n      </dkim>\n      <spf>\n        <domain>em.bluefinprovisions.com</domain>\n        <result>{spf}</result>\n      </spf>\n    </auth_results>\n  </record>\n"
        ),
        Style::Yahoo => format!(
            "  <record>\n    <row>\n      <source_ip>{ip}</source_ip>\n      <count>{count}</count>\n      <policy_evaluated>\n        <disposition>none</disposition>\n        <dkim>{dkim}</dkim>\n        <spf>{spf}</spf>\n      </policy_evaluated>\n    </row>\n    <identifiers>\n      <header_from>bluefinprovisions.com</header_from>\n    </identifiers>\n    <auth_results>\n      <dkim>\n        <domain>bluefinprovisions.com</domain>\n        <selector>s1</selector>\n        <result>{dkim}</result>\n      </dkim>\n      <spf>\n        <domain>em.bluefinprovisions.com</domain>\n        <result>{spf}</result>\n      </spf>\n    </auth_results>\n  </record>\n"
        ),
        Style::Outlook => format!(
            "  <record>\n    <row>\n      <source_ip>{ip}</source_ip>\n      <count>{count}</count>\n      <policy_evaluated>\n        <disposition>none</disposition>\n        <dkim>{dkim}</dkim>\n        <spf>{spf}</spf>\n      </policy_evaluated>\n    </row>\n    <identifiers>\n      <envelope_to>outlook.com</envelope_to>\n      <envelope_from>em.bluefinprovisions.com</envelope_from>\n      <header_from>bluefinprovisions.com</header_from>\n    </identifiers>\n    <auth_results>\n      <spf>\n        <domain>em.bluefinprovisions.com</domain>\n        <scope>mfrom</scope>\n        <result>{spf}</result>\n      </spf>\n      <dkim>\n        <domain>bluefinprovisions.com</domain>\n        <selector>s1</selector>\n        <result>{dkim}</result>\n      </dkim>\n    </auth_results>\n  </record>\n"
        ),
    };
    (text, count)
}

/// Writes a report of `records` records to `out`; returns the messages it counts.
fn report(
    out: &mut impl Write,
    style: Style,
    id: &str,
    day: u64,
    records: u64,
    rng: &mut Rng,
) -> std::io::Result<u64> {
    out.write_all(header(style, id, day).as_bytes())?;
    let mut messages = 0;
    for i in 0..records {
        let (text, count) = record(style, rng, i);
        out.write_all(text.as_bytes())?;
        messages += count;
    }
    out.write_all(b"</feedback>\n")?;
    Ok(messages)
}

fn gzip(xml: &[u8], path: &Path) -> std::io::Result<()> {
    let mut gz = flate2::write::GzEncoder::new(
        std::io::BufWriter::new(std::fs::File::create(path)?),
        flate2::Compression::default(),
    );
    gz.write_all(xml)?;
    gz.finish()?.flush()
}

fn zip(xml: &[u8], name: &str, path: &Path) -> std::io::Result<()> {
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path)?);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    zip.start_file(name, options)
        .map_err(std::io::Error::other)?;
    zip.write_all(xml)?;
    zip.finish().map_err(std::io::Error::other)?;
    Ok(())
}

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// Issue 10's targets: parsedmarc's time over mailshift's, and (b)'s peak memory.
const TARGET_RATIO: f64 = 50.0;
const TARGET_PEAK_BYTES: u64 = 100_000_000;

const USAGE: &str = "usage: --reports N --records N --big N [--runs N] [--compare-parsedmarc] \
                     [--parsedmarc-runs N] [--parsedmarc-python PATH] [--keep DIR]";

struct Args {
    reports: u64,
    per_report: u64,
    big: u64,
    /// mailshift's imports (in-process and command) are run this many times, each into a fresh
    /// history, and the median is reported: a run of a tenth of a second is at the mercy of
    /// the machine's moment, parsedmarc's runs of seconds are not.
    runs: usize,
    compare_parsedmarc: bool,
    /// parsedmarc runs this many times (the median counts), each after its share of the
    /// mailshift command's runs, so a change in the machine's speed falls on both alike.
    parsedmarc_runs: usize,
    parsedmarc_python: Option<PathBuf>,
    keep: Option<PathBuf>,
}

fn parse_args() -> Args {
    let mut parsed = Args {
        reports: 1_000,
        per_report: 20,
        big: 100_000,
        runs: 5,
        compare_parsedmarc: false,
        parsedmarc_runs: 1,
        parsedmarc_python: None,
        keep: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .unwrap_or_else(|| panic!("{name} needs a value ({USAGE})"))
        };
        let mut number = |name: &str| -> u64 {
            value(name)
                .replace('_', "")
                .parse()
                .unwrap_or_else(|_| panic!("{name} needs a number ({USAGE})"))
        };
        match arg.as_str() {
            "--reports" => parsed.reports = number("--reports"),
            "--records" => parsed.per_report = number("--records"),
            "--big" => parsed.big = number("--big"),
            "--runs" => parsed.runs = number("--runs").max(1) as usize,
            "--compare-parsedmarc" => parsed.compare_parsedmarc = true,
            "--parsedmarc-runs" => {
                parsed.parsedmarc_runs = number("--parsedmarc-runs").max(1) as usize
            }
            "--parsedmarc-python" => {
                parsed.parsedmarc_python = Some(PathBuf::from(value("--parsedmarc-python")))
            }
            "--keep" => parsed.keep = Some(PathBuf::from(value("--keep"))),
            "--bench" => {}
            other => panic!("unknown argument {other} ({USAGE})"),
        }
    }
    parsed
}

/// What a workload's import took: mailshift in-process, the mailshift command, parsedmarc.
struct Workload {
    name: &'static str,
    records: u64,
    mailshift: Run,
    command: Option<Run>,
    parsedmarc: Option<Parsedmarc>,
}

struct Run {
    seconds: f64,
    peak_kib: Option<u64>,
    /// The fastest and slowest of the runs the median was taken from.
    spread: (f64, f64),
}

impl Run {
    fn once(seconds: f64, peak_kib: Option<u64>) -> Run {
        Run {
            seconds,
            peak_kib,
            spread: (seconds, seconds),
        }
    }

    /// The median time of `runs` (the upper one of an even count), their highest peak.
    fn median(mut runs: Vec<Run>) -> Option<Run> {
        runs.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
        let (first, last) = (runs.first()?.seconds, runs.last()?.seconds);
        let peak_kib = runs.iter().filter_map(|r| r.peak_kib).max();
        let middle = runs.get(runs.len() / 2)?;
        Some(Run {
            seconds: middle.seconds,
            peak_kib,
            spread: (first, last),
        })
    }

    fn spread(&self) -> String {
        format!("{:.3}–{:.3} s", self.spread.0, self.spread.1)
    }
}

struct Parsedmarc {
    version: String,
    seconds: f64,
    startup_seconds: Option<f64>,
    peak_mib: Option<f64>,
    /// How many runs the median was taken from, the fastest and the slowest.
    runs: (usize, f64, f64),
}

impl Parsedmarc {
    /// The run of median time (the upper one of an even count), the highest peak.
    fn median(mut runs: Vec<Parsedmarc>) -> Option<Parsedmarc> {
        runs.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
        let (first, last) = (runs.first()?.seconds, runs.last()?.seconds);
        let peak_mib = runs.iter().filter_map(|r| r.peak_mib).reduce(f64::max);
        let count = runs.len();
        let middle = runs.swap_remove(count / 2);
        Some(Parsedmarc {
            peak_mib,
            runs: (count, first, last),
            ..middle
        })
    }
}

fn main() {
    let args = parse_args();
    let (reports, per_report, big) = (args.reports, args.per_report, args.big);
    let opts = ImportOptions::default();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut workloads = Vec::new();

    // (a) Many small reports, mixed containers.
    let dir = WorkDir::new(&args.keep, "many");
    let files = dir.path().join("reports");
    std::fs::create_dir(&files).expect("create");
    let mut expected_messages = 0;
    for n in 0..reports {
        let style = [Style::Google, Style::Yahoo, Style::Outlook][(n % 3) as usize];
        let (org, id) = match style {
            Style::Google => (
                "google.com",
                format!("{}", 11_000_000_000_000_000_000u64 + n),
            ),
            Style::Yahoo => ("yahoo.com", format!("1764547200.{n:06}")),
            Style::Outlook => ("outlook.com", format!("{n:08x}ab4c4e1f9d2e7c3a5b6d8e0f")),
        };
        let mut xml = Vec::new();
        expected_messages +=
            report(&mut xml, style, &id, n % 30, per_report, &mut rng).expect("generate");
        let base = format!("{org}!bluefinprovisions.com!{}!{}", BEGIN, n);
        match (n / 3) % 3 {
            0 => zip(
                &xml,
                &format!("{base}.xml"),
                &files.join(format!("{base}.zip")),
            ),
            1 => gzip(&xml, &files.join(format!("{base}.xml.gz"))),
            _ => std::fs::write(files.join(format!("{base}.xml")), &xml),
        }
        .expect("write report");
    }
    let size = dir_size(&files);
    let mut runs = Vec::new();
    let mut records = 0;
    for run in 0..args.runs {
        let mut history =
            History::open_dir(&dir.path().join(format!("state-{run}"))).expect("history");
        reset_peak_rss();
        let start = Instant::now();
        let results = import_paths(&mut history, std::slice::from_ref(&files), &opts);
        let elapsed = start.elapsed().as_secs_f64();
        let peak = proc_status_kib("VmHWM:");
        let (mut stored, mut messages) = (0, 0);
        records = 0;
        for result in &results {
            let o = result.as_ref().expect("imported");
            assert_eq!(o.rejected, 0, "{:?}", o.problems.first());
            stored += o.dmarc_reports;
            records += o.records;
            messages += o.messages;
        }
        assert_eq!(
            (stored, records, messages),
            (reports, reports * per_report, expected_messages)
        );
        drop(history);
        runs.push(Run::once(elapsed, peak));
    }
    let mailshift = Run::median(runs).expect("at least one run");
    println!(
        "{reports} reports × {per_report} records (zip, gzip, XML; Google, Yahoo, Outlook.com), {:.1} MB: {:.3} s (median of {}: {}), {:.0} records/s, {:.0} reports/s, peak RSS {}",
        size as f64 / 1e6,
        mailshift.seconds,
        args.runs,
        mailshift.spread(),
        records as f64 / mailshift.seconds,
        reports as f64 / mailshift.seconds,
        mib(mailshift.peak_kib)
    );
    let mut workload = Workload {
        name: "(a) many reports",
        records,
        mailshift,
        command: None,
        parsedmarc: None,
    };
    if args.compare_parsedmarc {
        let expect = (reports, records, expected_messages);
        (workload.command, workload.parsedmarc) =
            run_commands_interleaved(&args, dir.path(), &files, expect);
    }
    workloads.push(workload);
    drop(dir);

    // (b) One very large Google report, gzipped.
    let dir = WorkDir::new(&args.keep, "big");
    let path = dir
        .path()
        .join("google.com!bluefinprovisions.com!big.xml.gz");
    let mut gz = flate2::write::GzEncoder::new(
        std::io::BufWriter::new(std::fs::File::create(&path).expect("create")),
        flate2::Compression::default(),
    );
    let mut counter = CountingWriter {
        inner: &mut gz,
        bytes: 0,
    };
    let expected =
        report(&mut counter, Style::Google, "big-1", 0, big, &mut rng).expect("generate");
    let xml_bytes = counter.bytes;
    gz.finish().expect("gzip").flush().expect("flush");
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let mut runs = Vec::new();
    let mut skipped = 0.0;
    for run in 0..args.runs {
        let mut history =
            History::open_dir(&dir.path().join(format!("state-{run}"))).expect("history");
        reset_peak_rss();
        let start = Instant::now();
        let outcome = import_file(&mut history, &path, &opts).expect("import");
        let elapsed = start.elapsed().as_secs_f64();
        let peak = proc_status_kib("VmHWM:");
        assert_eq!(outcome.rejected, 0, "{:?}", outcome.problems.first());
        assert_eq!((outcome.records, outcome.messages), (big, expected));
        let start = Instant::now();
        let again = import_file(&mut history, &path, &opts).expect("again");
        skipped = start.elapsed().as_secs_f64();
        assert!(again.already_imported.is_some());
        drop(history);
        runs.push(Run::once(elapsed, peak));
    }
    let mailshift = Run::median(runs).expect("at least one run");
    println!(
        "one Google report of {big} records ({:.1} MB of XML, {:.1} MB gzipped): {:.3} s (median of {}: {}), {:.0} records/s, peak RSS {}; already imported: {:.3} s",
        xml_bytes as f64 / 1e6,
        size as f64 / 1e6,
        mailshift.seconds,
        args.runs,
        mailshift.spread(),
        big as f64 / mailshift.seconds,
        mib(mailshift.peak_kib),
        skipped
    );
    let peak = mailshift.peak_kib;
    let mut workload = Workload {
        name: "(b) one big report",
        records: big,
        mailshift,
        command: None,
        parsedmarc: None,
    };
    if args.compare_parsedmarc {
        let expect = (1, big, expected);
        (workload.command, workload.parsedmarc) =
            run_commands_interleaved(&args, dir.path(), &path, expect);
    }
    workloads.push(workload);
    drop(dir);

    if args.compare_parsedmarc {
        compare(&workloads);
    }
    if let Some(kib) = peak {
        assert!(
            kib * 1024 < TARGET_PEAK_BYTES,
            "peak RSS {} over the 100 MB target",
            mib(peak)
        );
    }
}

/// [`run_mailshift_command`] `--runs` times, each into a fresh state directory, and
/// parsedmarc `--parsedmarc-runs` times, each after its share of the command's runs: the
/// medians. The two alternate so that the machine's speed, which drifts from minute to
/// minute, falls on both alike.
fn run_commands_interleaved(
    args: &Args,
    dir: &Path,
    input: &Path,
    expect: (u64, u64, u64),
) -> (Option<Run>, Option<Parsedmarc>) {
    let rounds = args.parsedmarc_runs.max(1);
    let (mut commands, mut parsedmarcs) = (Vec::new(), Vec::new());
    let (mut command_failed, mut parsedmarc_failed) = (false, false);
    for round in 0..rounds {
        let share = args.runs * (round + 1) / rounds - args.runs * round / rounds;
        for _ in 0..share {
            if command_failed {
                break;
            }
            match run_mailshift_command(dir, input, expect, commands.len()) {
                Some(run) => commands.push(run),
                None => command_failed = true,
            }
        }
        if !parsedmarc_failed {
            match run_parsedmarc(args, input, expect) {
                Some(run) => parsedmarcs.push(run),
                None => parsedmarc_failed = true,
            }
        }
    }
    let command = if command_failed {
        None
    } else {
        Run::median(commands)
    };
    let parsedmarc = if parsedmarc_failed {
        None
    } else {
        Parsedmarc::median(parsedmarcs)
    };
    (command, parsedmarc)
}

/// Runs `mailshift reports import` on `input` into a fresh state directory under `dir`,
/// checking its JSON against `(reports, records, messages)`.
fn run_mailshift_command(
    dir: &Path,
    input: &Path,
    expect: (u64, u64, u64),
    run: usize,
) -> Option<Run> {
    let plan = dir.join("bench-plan.toml");
    std::fs::write(
        &plan,
        "[migration]\nname = \"Bench: reports import\"\nfrom = \"mailchimp\"\nto = \"sendgrid\"\n\n[[domain]]\nname = \"bluefinprovisions.com\"\n\n[[stage]]\nname = \"cutover\"\ncutover = true\nrequires = [\"dns\"]\n",
    )
    .expect("write plan");
    let state = dir.join(format!("command-state-{run}"));
    let stdout = dir.join("command-stdout.json");
    let mut command = Command::new(env!("CARGO_BIN_EXE_mailshift"));
    command
        .args(["reports", "import"])
        .arg(&plan)
        .arg(input)
        .arg("--state")
        .arg(&state)
        .args(["--format", "json"]);
    let (seconds, code, peak_kib) = match run_measured(&mut command, &stdout) {
        Ok(run) => run,
        Err(e) => {
            println!("  mailshift command: cannot run it: {e}");
            return None;
        }
    };
    let text = std::fs::read_to_string(&stdout).unwrap_or_default();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    let files = doc["files"].as_array().cloned().unwrap_or_default();
    let sum = |field: &str| -> u64 { files.iter().filter_map(|f| f[field].as_u64()).sum() };
    let got = (sum("dmarc_reports"), sum("records"), sum("messages"));
    let rejected = sum("rejected");
    if code != Some(0) || got != expect || rejected > 0 {
        println!(
            "  mailshift command: exit {code:?}, {got:?} (reports, records, messages) where {expect:?} was expected, {rejected} rejected; not counted. Output: {}",
            text.chars().take(400).collect::<String>()
        );
        return None;
    }
    Some(Run::once(seconds, peak_kib))
}

/// Runs `command` with stdout to `stdout` and stderr inherited: wall seconds, exit code, and
/// the child's peak RSS (ru_maxrss, KiB). The bench's high-water mark is reset first: Linux
/// carries the spawning process's into the child's ru_maxrss across exec, so the figure is at
/// least the bench's resident size at the time (about 10 MiB).
fn run_measured(
    command: &mut Command,
    stdout: &Path,
) -> std::io::Result<(f64, Option<i32>, Option<u64>)> {
    let out = std::fs::File::create(stdout)?;
    reset_peak_rss();
    let start = Instant::now();
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::inherit())
        .spawn()?;
    let mut status = 0;
    // SAFETY: rusage is plain data; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let seconds = start.elapsed().as_secs_f64();
    drop(child);
    if waited != pid {
        return Err(std::io::Error::last_os_error());
    }
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    Ok((seconds, code, u64::try_from(usage.ru_maxrss).ok()))
}

/// Runs `benches/compare_parsedmarc.py` on `input`; `None` (with the reason printed) when
/// parsedmarc is missing or its run does not hold `(reports, records, messages)`.
fn run_parsedmarc(args: &Args, input: &Path, expect: (u64, u64, u64)) -> Option<Parsedmarc> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let python = args
        .parsedmarc_python
        .clone()
        .unwrap_or_else(|| root.join("target/bench-venv/bin/python"));
    if !python.exists() {
        println!(
            "  parsedmarc: skipped, {} not found. Install it with:\n    \
             python3 -m venv target/bench-venv && target/bench-venv/bin/pip install parsedmarc==11.1.0",
            python.display()
        );
        return None;
    }
    let output = Command::new(&python)
        .arg(root.join("benches/compare_parsedmarc.py"))
        .arg(input)
        .arg("--expect-reports")
        .arg(expect.0.to_string())
        .arg("--expect-records")
        .arg(expect.1.to_string())
        .arg("--expect-messages")
        .arg(expect.2.to_string())
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output();
    let output = match output {
        Ok(o) => o,
        Err(e) => {
            println!("  parsedmarc: cannot run {}: {e}", python.display());
            return None;
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let doc: serde_json::Value = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_default();
    if doc["version"].is_null() {
        match doc["problems"][0].as_str() {
            Some(problem) => println!("  parsedmarc: skipped, {problem}"),
            None => println!(
                "  parsedmarc: skipped, no result from the driver ({})",
                output.status
            ),
        }
        return None;
    }
    if doc["ok"].as_bool() != Some(true) {
        println!("  parsedmarc: run not counted: {}", doc["problems"]);
        return None;
    }
    let seconds = doc["seconds"].as_f64()?;
    Some(Parsedmarc {
        version: doc["version"].as_str().unwrap_or("?").to_string(),
        seconds,
        startup_seconds: doc["startup_seconds"].as_f64(),
        peak_mib: doc["peak_rss_mib"].as_f64(),
        runs: (1, seconds, seconds),
    })
}

/// The figures side by side, the ratios and the targets.
fn compare(workloads: &[Workload]) {
    let version = workloads
        .iter()
        .find_map(|w| w.parsedmarc.as_ref().map(|p| p.version.clone()));
    println!(
        "\nmailshift vs parsedmarc {} --offline, same files, same run (ratio = parsedmarc's time / mailshift's):",
        version.as_deref().unwrap_or("(not run)")
    );
    let line = |what: &str, seconds: f64, records: u64, peak: String| {
        println!(
            "  {what:<34} {seconds:>8.3} s {:>11.0} records/s   peak RSS {peak}",
            records as f64 / seconds
        );
    };
    for w in workloads {
        println!("{}, {} records:", w.name, w.records);
        line(
            "mailshift (in-process import)",
            w.mailshift.seconds,
            w.records,
            format!(
                "{}, median, runs {}",
                mib(w.mailshift.peak_kib),
                w.mailshift.spread()
            ),
        );
        if let Some(c) = &w.command {
            line(
                "mailshift reports import (command)",
                c.seconds,
                w.records,
                format!("{}, median, runs {}", mib(c.peak_kib), c.spread()),
            );
        }
        let Some(p) = &w.parsedmarc else {
            println!("  parsedmarc: no figures (see above)");
            continue;
        };
        line("parsedmarc --offline (command)", p.seconds, w.records, {
            let peak = p.peak_mib.map_or("?".into(), |m| format!("{m:.1} MiB"));
            match p.runs {
                (1, _, _) => peak,
                (n, a, b) => format!("{peak}, median of {n}, runs {a:.3}–{b:.3} s"),
            }
        });
        let ratio = p.seconds / w.mailshift.seconds;
        let mut text = format!("  ratio {ratio:.0}× (in-process)");
        if let Some(c) = &w.command {
            text += &format!(", {:.0}× (command to command)", p.seconds / c.seconds);
        }
        if let Some(startup) = p.startup_seconds {
            text += &format!(
                ", {:.0}× without parsedmarc's {startup:.2} s start-up",
                (p.seconds - startup) / w.mailshift.seconds
            );
        }
        let worst = w
            .command
            .as_ref()
            .map_or(ratio, |c| ratio.min(p.seconds / c.seconds));
        println!(
            "{text}; target ≥ {TARGET_RATIO:.0}×: {}",
            if ratio >= TARGET_RATIO && worst >= TARGET_RATIO {
                "met"
            } else if ratio >= TARGET_RATIO {
                "met in-process, missed command to command"
            } else {
                "MISSED"
            }
        );
    }
    if let Some(big) = workloads.get(1) {
        let peak = big.mailshift.peak_kib.map(|k| k * 1024);
        println!(
            "  mailshift's peak RSS on (b): {} ({}); target < 100 MB: {}",
            mib(big.mailshift.peak_kib),
            peak.map_or("?".into(), |b| format!("{:.1} MB", b as f64 / 1e6)),
            match peak {
                Some(b) if b < TARGET_PEAK_BYTES => "met",
                Some(_) => "MISSED",
                None => "unknown",
            }
        );
    }
}

/// Where a workload is generated and imported: a temporary directory, or with `--keep DIR`
/// DIR/NAME (which must not exist), left in place to profile an import of the same files.
struct WorkDir {
    path: PathBuf,
    _temp: Option<tempfile::TempDir>,
}

impl WorkDir {
    fn new(keep: &Option<PathBuf>, name: &str) -> WorkDir {
        match keep {
            Some(root) => {
                let path = root.join(name);
                std::fs::create_dir_all(root).expect("create the --keep directory");
                std::fs::create_dir(&path).unwrap_or_else(|e| {
                    panic!(
                        "{}: {e} (--keep needs a directory without it)",
                        path.display()
                    )
                });
                WorkDir { path, _temp: None }
            }
            None => {
                let temp = tempfile::tempdir().expect("temporary directory");
                WorkDir {
                    path: temp.path().to_path_buf(),
                    _temp: Some(temp),
                }
            }
        }
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

/// Counts the bytes written through it.
struct CountingWriter<'a, W: Write> {
    inner: &'a mut W,
    bytes: u64,
}

impl<W: Write> Write for CountingWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
