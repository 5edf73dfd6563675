//! `mailshift reports import`: DMARC aggregate and SMTP TLS reports from every container (XML,
//! JSON, gzip, gzip in gzip, zip, report emails, mboxes, Maildirs), each file and each report
//! once, the malformed ones reported with their reason and place while the rest are imported,
//! unreadable files refused by name, and a broken or killed import leaving nothing of its file.

mod support;

use mailshift::history::History;
use mailshift::reports::{import_file, import_paths, ImportOptions};
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use support::{fixtures, json, mailshift};

fn plan() -> PathBuf {
    fixtures().join("plans/warmup-import.toml")
}

fn report(name: &str) -> PathBuf {
    fixtures().join("reports").join(name)
}

/// Runs `reports import` of `files` into `state`: exit code, stdout, stderr.
fn import(state: &Path, files: &[&Path], extra: &[&str]) -> (i32, String, String) {
    let out = mailshift()
        .args(["reports", "import"])
        .arg(plan())
        .args(files)
        .arg("--state")
        .arg(state)
        .args(extra)
        .timeout(std::time::Duration::from_secs(120))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Like [`import`] with `--format json`: the exit code and the files' outcomes, by file name.
fn import_json(state: &Path, files: &[&Path]) -> (i32, Vec<(String, Value)>) {
    let (code, stdout, stderr) = import(state, files, &["--format", "json"]);
    assert!(stderr.is_empty() || code != -1, "{stderr}");
    let doc = json(stdout.as_bytes());
    let files = doc["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let name = Path::new(f["path"].as_str().unwrap())
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (name, f.clone())
        })
        .collect();
    (code, files)
}

fn outcome<'a>(files: &'a [(String, Value)], name: &str) -> &'a Value {
    &files
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no outcome for {name}: {files:?}"))
        .1
}

fn query(state: &Path, sql: &str) -> Vec<String> {
    let conn = rusqlite::Connection::open(state.join("history.db")).unwrap();
    let mut stmt = conn.prepare(sql).unwrap();
    let n = stmt.column_count();
    let rows = stmt
        .query_map([], |r| {
            let mut cells = Vec::new();
            for i in 0..n {
                let v: rusqlite::types::Value = r.get(i)?;
                cells.push(match v {
                    rusqlite::types::Value::Null => "-".to_string(),
                    rusqlite::types::Value::Integer(i) => i.to_string(),
                    rusqlite::types::Value::Real(f) => f.to_string(),
                    rusqlite::types::Value::Text(t) => t,
                    rusqlite::types::Value::Blob(_) => "<blob>".to_string(),
                });
            }
            Ok(cells.join(" "))
        })
        .unwrap();
    rows.map(Result::unwrap).collect()
}

fn count(state: &Path, sql: &str) -> i64 {
    query(state, sql)[0].parse().unwrap()
}

#[test]
fn every_sample_is_imported_or_rejected_with_its_reason_and_the_rest_kept() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let aggregate = report("parsedmarc/aggregate");
    let upper = report("parsedmarc/aggregate_invalid/report_with_upper_cased_pass.xml");
    let empty = report("parsedmarc/empty.xml");
    let plain = report("avvertix/plain.txt");
    let hardfail = report("cry-inc/hardfail.xml");
    let (code, files) = import_json(&state, &[&aggregate, &upper, &empty, &plain, &hardfail]);
    assert_eq!(code, 2);
    // The one report that is not well-formed XML is rejected at its line, nothing of it kept.
    let invalid = outcome(&files, "invalid_xml.xml");
    assert_eq!(invalid["rejected"], 1);
    assert_eq!(invalid["dmarc_reports"], 0);
    let problem = &invalid["problems"][0];
    assert_eq!(problem["at"], "line 5", "{problem}");
    assert!(
        problem["message"]
            .as_str()
            .unwrap()
            .contains("not well-formed XML"),
        "{problem}"
    );
    // Files that are no report are refused by name, with what they start with.
    let e = outcome(&files, "empty.xml")["error"].as_str().unwrap();
    assert!(
        e.contains("empty.xml") && e.contains("the file is empty"),
        "{e}"
    );
    let e = outcome(&files, "plain.txt")["error"].as_str().unwrap();
    assert!(e.contains("A text file"), "{e}");
    // Everything else is imported: plain, gzip, zip, report emails (a zip attachment, a gzip
    // attachment with trailing bytes), RFC 9990, the old draft, a report wrapped in xs:schema.
    for (name, o) in &files {
        if ["invalid_xml.xml", "empty.xml", "plain.txt"].contains(&name.as_str()) {
            continue;
        }
        assert_eq!(o["rejected"], 0, "{name}: {o}");
        assert_eq!(
            o["dmarc_reports"].as_u64().unwrap() + o["duplicates"].as_u64().unwrap(),
            1,
            "{name}: {o}"
        );
    }
    assert_eq!(
        outcome(&files, "!large-example.com!1711897200!1711983600.xml")["records"],
        2286
    );
    // Result words are lower-cased; a value outside the schema is kept as written.
    assert_eq!(
        query(
            &state,
            "SELECT disposition, r.dkim, r.spf, dkim_results, spf_results FROM dmarc_rows r
             JOIN dmarc_reports d ON d.id = r.report
             WHERE d.report_id = 'aggr_report_example.com_20191202_1638'"
        ),
        [r#"none pass pass [["example.com","","pass"]] [["example.com","","pass"]]"#]
    );
    assert!(
        query(&state, "SELECT spf_results FROM dmarc_rows")
            .iter()
            .any(|r| r.contains(r#","hardfail"]"#)),
        "hardfail kept"
    );
    // The flavours.
    assert_eq!(
        query(
            &state,
            "SELECT flavour, count(*) FROM dmarc_reports GROUP BY flavour ORDER BY flavour"
        ),
        ["rfc7489 6", "rfc9990 2", "unversioned 11"]
    );
    // Imported files are recorded with their counts (the rejected and the unreadable are not).
    assert_eq!(
        count(
            &state,
            "SELECT count(*) FROM imports WHERE kind = 'dmarc' AND rejected = 0"
        ),
        files.len() as i64 - 3
    );
    // And `mailshift history` lists them.
    let out = mailshift()
        .args(["history"])
        .arg(plan())
        .arg("--state")
        .arg(&state)
        .args(["--format", "json"])
        .output()
        .unwrap();
    let history = json(&out.stdout);
    assert!(history["imports"]
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i["kind"] == "dmarc" && i["records"] == 2286));
}

#[test]
fn a_bad_byte_is_replaced_and_the_report_kept() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let (code, files) = import_json(&state, &[&report("parsedmarc/aggregate/invalid_utf_8.xml")]);
    assert_eq!(code, 0, "{files:?}");
    let o = outcome(&files, "invalid_utf_8.xml");
    assert_eq!(o["dmarc_reports"], 1);
    assert!(o["notes"][0].as_str().unwrap().contains("U+FFFD"), "{o}");
    assert_eq!(
        query(&state, "SELECT header_from FROM dmarc_rows"),
        ["bad_byte\u{FFFD}"]
    );
}

#[test]
fn the_same_file_or_the_same_report_in_another_container_counts_once() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let xml = report("tierpod/test.xml");
    let (code, stdout, _) = import(&state, &[&xml], &[]);
    assert_eq!(code, 0, "{stdout}");
    assert!(
        stdout.contains("DMARC reports 1, TLS reports 0, records 2, messages 7"),
        "{stdout}"
    );
    let (code, stdout, _) = import(&state, &[&xml], &[]);
    assert_eq!(code, 0);
    assert!(stdout.contains("already imported on"), "{stdout}");
    // The same report as gzip, gzip in gzip and zip: duplicates, nothing added.
    let (code, files) = import_json(
        &state,
        &[
            &report("tierpod/test.xml.gz"),
            &report("tierpod/test.xml.gz.gz"),
            &report("tierpod/test.xml.zip"),
        ],
    );
    assert_eq!(code, 0);
    for (name, o) in &files {
        assert_eq!(
            (o["duplicates"].as_u64(), o["records"].as_u64()),
            (Some(1), Some(0)),
            "{name}"
        );
    }
    assert_eq!(count(&state, "SELECT count(*) FROM dmarc_reports"), 1);
    assert_eq!(count(&state, "SELECT count(*) FROM dmarc_rows"), 2);
    // The zip whose member has no name.
    let (code, files) = import_json(&state, &[&report("mail-dmarc/test_dmarc.xml.zip")]);
    assert_eq!(code, 0);
    assert_eq!(outcome(&files, "test_dmarc.xml.zip")["dmarc_reports"], 1);
}

/// `From ` line, then the message.
fn mbox_entry(message: &[u8]) -> Vec<u8> {
    let mut out = b"From MAILER-DAEMON Thu Jan  1 00:00:00 2026\n".to_vec();
    out.extend_from_slice(message);
    if !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    out.push(b'\n');
    out
}

#[test]
fn an_mbox_is_read_message_by_message_and_a_bad_message_does_not_stop_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let google = std::fs::read(report("mail-auth/dmarc-feedback/100.eml")).unwrap();
    let twilight = std::fs::read(report("parsedmarc/aggregate/twilight.eml")).unwrap();
    let unused = b"From: dmarc@example.net\nSubject: Report domain: example.com\nContent-Type: text/plain\n\nunused\n";
    let tls = std::fs::read(report("tls-rpt/mail-auth/rpt01.eml")).unwrap();
    let mut mbox = Vec::new();
    for message in [&google[..], unused, &twilight[..], &google[..], &tls[..]] {
        mbox.extend(mbox_entry(message));
    }
    let path = dir.path().join("reports.mbox");
    std::fs::write(&path, &mbox).unwrap();
    let (code, files) = import_json(&state, &[&path]);
    assert_eq!(code, 2);
    let o = outcome(&files, "reports.mbox");
    assert_eq!(o["dmarc_reports"], 2, "{o}");
    assert_eq!(o["tls_reports"], 1, "{o}");
    assert_eq!(o["reports"], 3, "{o}");
    assert_eq!(o["duplicates"], 1, "{o}");
    assert_eq!(o["rejected"], 1, "{o}");
    let problem = &o["problems"][0];
    // The first message's `From ` line, its lines (a line break added when it has none at the
    // end) and the blank line after it.
    let line = 1
        + google.iter().filter(|&&b| b == b'\n').count()
        + usize::from(!google.ends_with(b"\n"))
        + 2;
    assert_eq!(
        problem["at"],
        format!("message 2 (line {line})"),
        "{problem}"
    );
    assert!(
        problem["message"]
            .as_str()
            .unwrap()
            .contains("no DMARC or TLS report in the message"),
        "{problem}"
    );
    // The file was recorded: importing it again counts nothing.
    let (code, stdout, _) = import(&state, &[&path], &[]);
    assert_eq!(code, 0);
    assert!(stdout.contains("already imported"), "{stdout}");
}

#[test]
fn a_maildir_is_its_cur_and_new_messages() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let maildir = dir.path().join("Maildir");
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(maildir.join(sub)).unwrap();
    }
    std::fs::copy(
        report("mail-auth/dmarc-feedback/101.eml"),
        maildir.join("cur/1700000000.1.host:2,S"),
    )
    .unwrap();
    std::fs::copy(
        report("parsedmarc/aggregate/mimecast-weird-gzip.eml"),
        maildir.join("new/1700000001.2.host"),
    )
    .unwrap();
    std::fs::copy(
        report("tls-rpt/mail-auth/rpt02.eml"),
        maildir.join("new/1700000002.3.host"),
    )
    .unwrap();
    // A message still being delivered is not read.
    std::fs::write(maildir.join("tmp/1700000003.4.host"), b"partial").unwrap();
    let (code, files) = import_json(&state, &[&maildir]);
    assert_eq!(code, 0, "{files:?}");
    assert_eq!(files.len(), 3);
    assert_eq!(count(&state, "SELECT count(*) FROM dmarc_reports"), 2);
    assert_eq!(count(&state, "SELECT count(*) FROM tls_reports"), 1);
}

#[test]
fn a_zip_with_a_malformed_member_keeps_the_good_one_and_names_the_bad() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let path = dir.path().join("reports.zip");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, file) in [
        ("good.xml", "cry-inc/google.xml"),
        ("bad.xml", "parsedmarc/aggregate/invalid_xml.xml"),
        ("README.txt", "avvertix/plain.txt"),
    ] {
        zip.start_file(name, options).unwrap();
        zip.write_all(&std::fs::read(report(file)).unwrap())
            .unwrap();
    }
    zip.finish().unwrap();
    let (code, files) = import_json(&state, &[&path]);
    assert_eq!(code, 2);
    let o = outcome(&files, "reports.zip");
    assert_eq!(
        (o["dmarc_reports"].as_u64(), o["rejected"].as_u64()),
        (Some(1), Some(1)),
        "{o}"
    );
    assert_eq!(o["problems"][0]["at"], "zip entry bad.xml, line 5", "{o}");
}

#[test]
fn a_tls_report_is_stored_per_policy() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let (code, files) = import_json(
        &state,
        &[
            &report("tls-rpt/cry-inc/microsoft.json"),
            &report("tls-rpt/mail-auth/rpt01.eml"),
            &report("parsedmarc/smtp_tls/google.com_smtp_tls_report.eml"),
        ],
    );
    assert_eq!(code, 0, "{files:?}");
    assert_eq!(outcome(&files, "microsoft.json")["records"], 2);
    let policies = query(
        &state,
        "SELECT t.org_name, policy_type, policy_domain, success, failure FROM tls_policies p
         JOIN tls_reports t ON t.id = p.report ORDER BY t.org_name, policy_type",
    );
    assert!(policies.len() >= 4, "{policies:?}");
    assert!(
        policies.iter().any(|p| p.contains(" sts "))
            && policies.iter().any(|p| p.contains(" tlsa ")),
        "{policies:?}"
    );
    assert_eq!(
        query(&state, "SELECT DISTINCT kind FROM imports ORDER BY kind"),
        ["tls-rpt"]
    );
}

#[test]
fn a_report_that_breaks_half_way_leaves_none_of_its_records() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let good = std::fs::read_to_string(report("tierpod/test.xml")).unwrap();
    // The second report: a good record, then the file is cut short inside the next.
    let cut = std::fs::read_to_string(report("cry-inc/outlook.xml")).unwrap();
    let cut = &cut[..cut.rfind("</record>").unwrap()];
    let path = dir.path().join("two.mbox");
    let email = |xml: &str| {
        format!("From: a@b\nContent-Type: application/xml\nSubject: r\n\n{xml}\n").into_bytes()
    };
    let mut mbox = mbox_entry(&email(&good));
    mbox.extend(mbox_entry(&email(cut)));
    std::fs::write(&path, mbox).unwrap();
    let (code, files) = import_json(&state, &[&path]);
    assert_eq!(code, 2);
    let o = outcome(&files, "two.mbox");
    assert_eq!(
        (o["dmarc_reports"].as_u64(), o["rejected"].as_u64()),
        (Some(1), Some(1)),
        "{o}"
    );
    assert!(
        o["problems"][0]["message"]
            .as_str()
            .unwrap()
            .contains("cut short"),
        "{o}"
    );
    assert_eq!(count(&state, "SELECT count(*) FROM dmarc_reports"), 1);
    assert_eq!(count(&state, "SELECT count(*) FROM dmarc_rows"), 2);
}

#[test]
fn decompression_is_capped_per_report() {
    let dir = tempfile::tempdir().unwrap();
    let mut history = History::open_dir(&dir.path().join("state")).unwrap();
    let opts = ImportOptions {
        max_report_bytes: 1000,
        ..ImportOptions::default()
    };
    let files = ["tierpod/test.xml.gz", "tierpod/test.xml.zip"].map(report);
    for file in &files {
        let o = import_file(&mut history, file, &opts).unwrap();
        assert_eq!(o.rejected, 1, "{}: {o:?}", file.display());
        assert!(
            o.problems[0].message.contains("more than 1000 bytes"),
            "{}: {:?}",
            file.display(),
            o.problems
        );
    }
    // Read ahead on worker threads, the same.
    let ahead = ImportOptions {
        workers: Some(2),
        ..opts
    };
    for result in import_paths(&mut history, &files, &ahead) {
        let o = result.unwrap();
        assert_eq!(o.rejected, 1, "{o:?}");
        assert!(o.problems[0].message.contains("more than 1000 bytes"));
    }
    assert_eq!(history.imports().unwrap().len(), 0);
}

#[test]
fn a_fifo_or_a_device_is_refused_by_name_without_hanging() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let fifo = dir.path().join("reports.xml");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path; mkfifo does not keep the pointer.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let good = report("cry-inc/yahoo.xml");
    let (code, stdout, _) = import(&state, &[&fifo, Path::new("/dev/zero"), &good], &[]);
    assert_eq!(code, 2, "{stdout}");
    assert!(
        stdout.contains("reports.xml: the DMARC or TLS report is a FIFO"),
        "{stdout}"
    );
    assert!(
        stdout.contains("/dev/zero: the DMARC or TLS report is a character device"),
        "{stdout}"
    );
    assert_eq!(count(&state, "SELECT count(*) FROM dmarc_reports"), 1);
}

/// A Google-style report of `n` records.
fn generated_report(n: usize) -> String {
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n<feedback>\n<report_metadata><org_name>google.com</org_name><email>noreply-dmarc-support@google.com</email><report_id>big</report_id><date_range><begin>1700000000</begin><end>1700086399</end></date_range></report_metadata>\n<policy_published><domain>example.com</domain><adkim>r</adkim><aspf>r</aspf><p>none</p><sp>none</sp><pct>100</pct></policy_published>\n",
    );
    for i in 0..n {
        xml.push_str(&format!(
            "<record><row><source_ip>10.{}.{}.{}</source_ip><count>1</count><policy_evaluated><disposition>none</disposition><dkim>pass</dkim><spf>pass</spf></policy_evaluated></row><identifiers><header_from>example.com</header_from></identifiers><auth_results><dkim><domain>example.com</domain><result>pass</result><selector>s</selector></dkim><spf><domain>example.com</domain><result>pass</result></spf></auth_results></record>\n",
            i >> 16 & 255,
            i >> 8 & 255,
            i & 255
        ));
    }
    xml.push_str("</feedback>\n");
    xml
}

#[test]
fn a_killed_import_leaves_all_of_its_file_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let file = dir.path().join("big.xml");
    let n = 60_000;
    std::fs::write(&file, generated_report(n)).unwrap();
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("mailshift"))
        .args(["reports", "import"])
        .arg(plan())
        .arg(&file)
        .arg("--state")
        .arg(&state)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Killed while it reads (or, on a fast machine, after it finished): never part of it.
    std::thread::sleep(std::time::Duration::from_millis(700));
    child.kill().unwrap();
    child.wait().unwrap();
    if state.join("history.db").exists() {
        let reports = count(&state, "SELECT count(*) FROM dmarc_reports");
        let rows = count(&state, "SELECT count(*) FROM dmarc_rows");
        let imports = count(&state, "SELECT count(*) FROM imports");
        assert!(
            (reports, rows, imports) == (0, 0, 0) || (reports, rows, imports) == (1, n as i64, 1),
            "a killed import left part of its file: {reports} reports, {rows} rows, {imports} imports"
        );
    }
    assert_eq!(import(&state, &[&file], &[]).0, 0);
    assert_eq!(count(&state, "SELECT count(*) FROM dmarc_rows"), n as i64);
}

/// Every fixture file under `fixtures/reports`, in a stable order.
fn all_fixture_reports() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&fixtures().join("reports"), &mut out);
    out
}

/// What a history holds of its imports, in the order stored (times left out).
fn stored(state: &Path) -> Vec<String> {
    [
        "SELECT sha256, path, kind, records, duplicates, rejected FROM imports ORDER BY id",
        "SELECT * FROM dmarc_reports ORDER BY id",
        "SELECT * FROM dmarc_rows ORDER BY rowid",
        "SELECT * FROM tls_reports ORDER BY id",
        "SELECT * FROM tls_policies ORDER BY rowid",
    ]
    .iter()
    .flat_map(|sql| query(state, sql))
    .collect()
}

#[test]
fn files_read_ahead_on_worker_threads_are_stored_as_when_read_one_by_one() {
    // Every sample (the malformed, the unreadable, a report over the in-memory size, a
    // file named twice, a directory), read by this thread alone and with three workers.
    let dir = tempfile::tempdir().unwrap();
    let mut files = all_fixture_reports();
    files.push(report(
        "parsedmarc/aggregate/example.net!example.com!1529366400!1529452799.xml",
    ));
    files.push(report("parsedmarc/aggregate"));
    // A file over the read-ahead size, and a small gzip of a report over the in-memory size:
    // both left to the importing thread.
    let xml = generated_report(4000);
    assert!(xml.len() > 1 << 20);
    let plain = dir.path().join("big.xml");
    std::fs::write(&plain, &xml).unwrap();
    let gz = dir.path().join("big-2.xml.gz");
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder
        .write_all(
            xml.replace("<report_id>big<", "<report_id>big-2<")
                .as_bytes(),
        )
        .unwrap();
    std::fs::write(&gz, encoder.finish().unwrap()).unwrap();
    // A message with no report in it: rejected by the container reader, not the parser.
    let message = dir.path().join("no-report.eml");
    std::fs::write(
        &message,
        "From: a@example.com\r\nSubject: Hello\r\n\r\nNo report here.\r\n",
    )
    .unwrap();
    // Two reports of some 600 KB each, side by side in one worker's chunk of files: together
    // over what a worker hands over at once, so the chunk is handed over in two parts.
    let mut halves = Vec::new();
    for half in ["half-1", "half-2"] {
        let xml = generated_report(1500).replace("<report_id>big<", &format!("<report_id>{half}<"));
        assert!(xml.len() > 600_000 && xml.len() < 1 << 20);
        let path = dir.path().join(format!("{half}.xml.gz"));
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(xml.as_bytes()).unwrap();
        std::fs::write(&path, encoder.finish().unwrap()).unwrap();
        halves.push(path);
    }
    files.splice(3..3, [plain, gz, message]);
    files.splice(1..1, halves);
    let mut outcomes = Vec::new();
    for (name, workers) in [("alone", 0), ("ahead", 3)] {
        let state = dir.path().join(name);
        let mut history = History::open_dir(&state).unwrap();
        let opts = ImportOptions {
            workers: Some(workers),
            ..ImportOptions::default()
        };
        let results: Vec<String> = import_paths(&mut history, &files, &opts)
            .into_iter()
            .map(|r| match r {
                Ok(mut o) => {
                    o.already_imported = o.already_imported.map(|_| "before".into());
                    format!("{o:?}")
                }
                Err(e) => format!("error: {e}"),
            })
            .collect();
        drop(history);
        outcomes.push((results, stored(&state)));
    }
    let (alone, ahead) = (&outcomes[0], &outcomes[1]);
    assert!(
        alone.0.len() > files.len(),
        "the directory counts its files"
    );
    assert!(alone.0.iter().any(|o| o.starts_with("error: ")));
    assert!(alone.0.iter().any(|o| o.contains("rejected: 1")));
    assert!(alone
        .0
        .iter()
        .any(|o| o.contains("no DMARC or TLS report in the message")));
    assert!(alone.0.iter().any(|o| o.contains("already_imported: Some")));
    assert!(alone.1.len() > 2500, "{} rows stored", alone.1.len());
    for (a, b) in alone.0.iter().zip(&ahead.0) {
        assert_eq!(a, b);
    }
    assert_eq!(alone.0.len(), ahead.0.len());
    assert_eq!(alone.1, ahead.1);
}

/// The plan is read, and the history opened, while the workers read the first files: a plan
/// that is not valid still stops the import before anything is stored (exit 2, no history),
/// and a history that cannot be opened is the error returned, with nothing imported.
#[test]
fn a_bad_plan_or_history_stops_the_import_before_anything_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("broken.toml");
    std::fs::write(&plan, "[migration\nname = \"half a plan\"\n").unwrap();
    let state = dir.path().join("state");
    let out = mailshift()
        .args(["reports", "import"])
        .arg(&plan)
        .arg(report("parsedmarc/aggregate"))
        .arg("--state")
        .arg(&state)
        .timeout(std::time::Duration::from_secs(120))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("broken.toml"), "{stderr}");
    assert!(!state.join("history.db").exists());

    let files = all_fixture_reports();
    assert!(files.len() > 8, "enough files for the workers");
    for workers in [0, 2] {
        let opts = ImportOptions {
            workers: Some(workers),
            ..ImportOptions::default()
        };
        let result = mailshift::reports::import_paths_opening(
            || Err::<History, _>("no history here"),
            &files,
            &opts,
        );
        assert_eq!(result.err(), Some("no history here"), "{workers} workers");
    }
}

#[test]
fn a_tls_report_seen_again_in_another_file_is_a_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let plain = report("tls-rpt/cry-inc/google.json");
    // The same report gzipped: another file (another digest), the same reporter and report id.
    let gzipped = dir.path().join("google.json.gz");
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut encoder, &std::fs::read(&plain).unwrap()).unwrap();
    std::fs::write(&gzipped, encoder.finish().unwrap()).unwrap();
    let (code, files) = import_json(&state, &[&plain, &gzipped]);
    assert_eq!(code, 0, "{files:?}");
    let first = outcome(&files, "google.json");
    assert_eq!(first["tls_reports"], 1, "{first}");
    assert_eq!(first["duplicates"], 0, "{first}");
    let again = outcome(&files, "google.json.gz");
    assert_eq!(again["tls_reports"], 0, "{again}");
    assert_eq!(again["duplicates"], 1, "{again}");
    assert_eq!(count(&state, "SELECT count(*) FROM tls_reports"), 1);
    let policies = count(&state, "SELECT count(*) FROM tls_policies");
    assert!(policies >= 1, "{policies}");
    // Imported once more, nothing changes: both files are known by their digests.
    let (code, files) = import_json(&state, &[&plain, &gzipped]);
    assert_eq!(code, 0, "{files:?}");
    assert_eq!(count(&state, "SELECT count(*) FROM tls_reports"), 1);
    assert_eq!(count(&state, "SELECT count(*) FROM tls_policies"), policies);
}

/// A file name that is not UTF-8 (a Linux file name is bytes) is outside input like any other:
/// the JSON output names the file with U+FFFD for the bad bytes, whether it was imported or
/// refused, and the command does not panic (it did: serde refuses such a `Path`).
#[test]
fn a_file_name_that_is_not_utf8_is_named_in_the_json_output() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let good = dir
        .path()
        .join(std::ffi::OsStr::from_bytes(b"google-\xff-report.xml"));
    std::fs::copy(report("avvertix/dmarc.xml"), &good).unwrap();
    let bad = dir
        .path()
        .join(std::ffi::OsStr::from_bytes(b"not-a-report-\xfe.xml"));
    std::fs::write(&bad, "not a report").unwrap();
    let state = dir.path().join("state");
    let (code, stdout, stderr) = import(&state, &[&good, &bad], &["--format", "json"]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let doc = json(stdout.as_bytes());
    let files = doc["files"].as_array().unwrap();
    assert_eq!(files.len(), 2, "{doc:#}");
    assert_eq!(
        files[0]["path"],
        format!("{}/google-\u{fffd}-report.xml", dir.path().display())
    );
    assert_eq!(files[0]["dmarc_reports"], 1, "{doc:#}");
    assert!(files[1]["path"]
        .as_str()
        .unwrap()
        .ends_with("not-a-report-\u{fffd}.xml"));
    assert!(files[1]["error"]
        .as_str()
        .unwrap()
        .contains("not a DMARC aggregate"));
}

/// A many-file import copies each committed batch into the database on a connection of its
/// own while the next batch is stored, and hands the history back as it found it: when the
/// import returns, every page in the WAL is already in the database (nothing is left for the
/// close to copy), the writer's automatic checkpoints are back at SQLite's default, and what
/// was imported reads back whole through another connection.
#[test]
fn a_many_file_import_checkpoints_beside_the_writer_and_restores_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> = (0..600)
        .map(|i| {
            let path = dir.path().join(format!("r{i}.xml"));
            let xml = generated_report(5).replace(
                "<report_id>big</report_id>",
                &format!("<report_id>r-{i}</report_id>"),
            );
            std::fs::write(&path, xml).unwrap();
            path
        })
        .collect();
    let state = dir.path().join("state");
    let mut history = History::open_dir(&state).unwrap();
    let results = import_paths(&mut history, &files, &ImportOptions::default());
    assert!(results.iter().all(Result::is_ok));
    let conn = history.conn();
    let autocheckpoint: i64 = conn
        .query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0))
        .unwrap();
    assert_eq!(autocheckpoint, 1000);
    // Every page of the database is in its file, not only in the WAL: the file is as long as
    // the database is (without the checkpoints it stays the size of the empty schema, since
    // 600 small reports are fewer than SQLite's 1,000 pages before it copies them itself).
    let pages: u64 = conn
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .unwrap();
    let page_size: u64 = conn
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .unwrap();
    let on_disk = std::fs::metadata(state.join("history.db")).unwrap().len();
    assert!(pages > 100, "{pages} pages");
    assert_eq!(
        on_disk,
        pages * page_size,
        "{pages} pages of {page_size} bytes"
    );
    drop(history);
    assert_eq!(count(&state, "SELECT count(*) FROM dmarc_reports"), 600);
    assert_eq!(count(&state, "SELECT count(*) FROM dmarc_rows"), 3000);
}
