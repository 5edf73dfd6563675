//! DMARC report import benchmark: how fast do many small reports import, and does one very
//! large report import in bounded memory, through `mailshift::reports` into a fresh history?
//!
//! ```text
//! cargo bench --bench reports_import                       # 1,000 reports × 20 records; one of 100,000
//! cargo bench --bench reports_import -- --reports 200 --big 20000
//! ```
//!
//! (a) 1,000 reports of 20 records each, in the shapes Google (zip), Yahoo (gzip) and
//! Outlook.com (XML with its namespaces, version and envelope fields) send, each of the three
//! also in the other containers, one file per report: imported with `import_paths` over the
//! directory. (b) One Google-style report of 100,000 records (about 50 MB of XML), gzipped:
//! imported with `import_file`. Printed for each: the files' size, the import's wall time,
//! records per second and the peak resident memory of the import (VmHWM, reset before it). The
//! bench checks every count against what it generated, and that (b)'s peak stays under 100 MB.

mod support;

use mailshift::history::History;
use mailshift::reports::{import_file, import_paths, ImportOptions};
use std::io::Write;
use std::path::Path;
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

fn main() {
    let (mut reports, mut per_report, mut big) = (1_000u64, 20u64, 100_000u64);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number = || {
            args.next()
                .and_then(|v| v.replace('_', "").parse().ok())
                .expect("a number")
        };
        match arg.as_str() {
            "--reports" => reports = number(),
            "--records" => per_report = number(),
            "--big" => big = number(),
            "--bench" => {}
            other => {
                panic!("unknown argument {other} (usage: --reports N --records N --big N)")
            }
        }
    }
    let opts = ImportOptions::default();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);

    // (a) Many small reports, mixed containers.
    let dir = tempfile::tempdir().expect("temporary directory");
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
    let mut history = History::open_dir(&dir.path().join("state")).expect("history");
    reset_peak_rss();
    let start = Instant::now();
    let results = import_paths(&mut history, std::slice::from_ref(&files), &opts);
    let elapsed = start.elapsed().as_secs_f64();
    let peak = proc_status_kib("VmHWM:");
    let (mut stored, mut records, mut messages) = (0, 0, 0);
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
    println!(
        "{reports} reports × {per_report} records (zip, gzip, XML; Google, Yahoo, Outlook.com), {:.1} MB: {:.2} s, {:.0} records/s, {:.0} reports/s, peak RSS {}",
        size as f64 / 1e6,
        elapsed,
        records as f64 / elapsed,
        reports as f64 / elapsed,
        mib(peak)
    );
    drop(history);
    drop(dir);

    // (b) One very large Google report, gzipped.
    let dir = tempfile::tempdir().expect("temporary directory");
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
    let mut history = History::open_dir(&dir.path().join("state")).expect("history");
    reset_peak_rss();
    let start = Instant::now();
    let outcome = import_file(&mut history, &path, &opts).expect("import");
    let elapsed = start.elapsed().as_secs_f64();
    let peak = proc_status_kib("VmHWM:");
    assert_eq!(outcome.rejected, 0, "{:?}", outcome.problems.first());
    assert_eq!((outcome.records, outcome.messages), (big, expected));
    let start = Instant::now();
    let again = import_file(&mut history, &path, &opts).expect("again");
    let skipped = start.elapsed().as_secs_f64();
    assert!(again.already_imported.is_some());
    println!(
        "one Google report of {big} records ({:.1} MB of XML, {:.1} MB gzipped): {:.2} s, {:.0} records/s, peak RSS {}; already imported: {:.3} s",
        xml_bytes as f64 / 1e6,
        size as f64 / 1e6,
        elapsed,
        big as f64 / elapsed,
        mib(peak),
        skipped
    );
    if let Some(kib) = peak {
        assert!(
            kib < 100 * 1024,
            "peak RSS {} over the 100 MB target",
            mib(peak)
        );
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
