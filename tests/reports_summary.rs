//! `mailshift reports PLAN` and the `dmarc-enforced` requirement on the demo's reports
//! (`fixtures/demo/reports/`: 18 days from Google, Yahoo and Outlook.com while Northwind's mail
//! moved from Mailchimp to SendGrid): every source attributed without a manual mapping, the
//! spoofer and a forgotten sender told apart, and enforcement judged from the reports.

mod support;

use serde_json::Value;
use std::path::{Path, PathBuf};
use support::{fixtures, json, mailshift};

fn plan() -> PathBuf {
    fixtures().join("plans/northwind.toml")
}

/// The demo's fixed zones, plus reverse DNS for a Mailchimp address outside servers.mcsv.net's
/// networks (forward-confirmed) and for a spoofer claiming Mailchimp (not confirmed).
fn zones(dir: &Path, dmarc: &str) -> PathBuf {
    let zones = dir.join("zones");
    std::fs::create_dir_all(&zones).unwrap();
    for entry in std::fs::read_dir(fixtures().join("demo/after")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap().replace(
            "_dmarc  IN TXT  \"v=DMARC1; p=none;",
            &format!("_dmarc  IN TXT  \"v=DMARC1; p={dmarc};"),
        );
        std::fs::write(zones.join(path.file_name().unwrap()), text).unwrap();
    }
    std::fs::write(
        zones.join("113.0.203.in-addr.arpa.zone"),
        "$ORIGIN 113.0.203.in-addr.arpa.\n$TTL 3600\n\
         @ IN SOA ns1 hostmaster ( 1 3600 600 86400 300 )\n@ IN NS ns1\n\
         7 IN PTR mail7.suw21.mcdlv.net.\n\
         66 IN PTR mail66.suw21.mcdlv.net.\n",
    )
    .unwrap();
    std::fs::write(
        zones.join("mcdlv.net.zone"),
        "$ORIGIN mcdlv.net.\n$TTL 3600\n@ IN SOA ns1 hostmaster ( 1 3600 600 86400 300 )\n\
         @ IN NS ns1\nmail7.suw21 IN A 203.0.113.7\nmail66.suw21 IN A 205.201.131.66\n",
    )
    .unwrap();
    zones
}

/// One Outlook.com-style report for `day` (2026-11-DD) with the given records.
fn extra_report(dir: &Path, id: &str, day: u32, records: &str) -> PathBuf {
    let begin = 1_793_577_600 + (u64::from(day) - 2) * 86_400; // 2026-11-02T00:00:00Z
    let path = dir.join(format!("{id}.xml"));
    std::fs::write(
        &path,
        format!(
            "<?xml version=\"1.0\"?><feedback><report_metadata><org_name>Outlook.com</org_name>\
             <email>dmarcreport@microsoft.com</email><report_id>{id}</report_id><date_range>\
             <begin>{begin}</begin><end>{}</end></date_range></report_metadata>\
             <policy_published><domain>northwind.example</domain><p>none</p></policy_published>\
             {records}</feedback>",
            begin + 86_399
        ),
    )
    .unwrap();
    path
}

fn record(ip: &str, count: u32, dkim_domain: &str, dkim: &str, policy_dkim: &str) -> String {
    format!(
        "<record><row><source_ip>{ip}</source_ip><count>{count}</count><policy_evaluated>\
         <disposition>none</disposition><dkim>{policy_dkim}</dkim><spf>fail</spf>\
         </policy_evaluated></row><identifiers><header_from>northwind.example</header_from>\
         </identifiers><auth_results><dkim><domain>{dkim_domain}</domain><result>{dkim}</result>\
         </dkim><spf><domain>{dkim_domain}</domain><result>softfail</result></spf></auth_results>\
         </record>"
    )
}

fn import(state: &Path, files: &[PathBuf]) {
    let out = mailshift()
        .args(["reports", "import"])
        .arg(plan())
        .args(files)
        .arg("--state")
        .arg(state)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

fn demo_reports() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixtures().join("demo/reports"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e != "py"))
        .collect();
    files.sort();
    files
}

fn summary(state: &Path, zones: &Path) -> Value {
    summary_of(&plan(), state, zones, &[])
}

fn summary_of(plan: &Path, state: &Path, zones: &Path, more: &[&str]) -> Value {
    let out = mailshift()
        .arg("reports")
        .arg(plan)
        .args(more)
        .args(["--format", "json", "--offline", "--state"])
        .arg(state)
        .arg("--zone")
        .arg(zones)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    json(&out.stdout)["reports"].clone()
}

fn gate(state: &Path, zones: &Path) -> (i32, Value) {
    gate_of(&plan(), state, zones)
}

fn gate_of(plan: &Path, state: &Path, zones: &Path) -> (i32, Value) {
    let out = mailshift()
        .arg("gate")
        .arg(plan)
        .args(["--stage", "enforce-dmarc", "--offline", "--no-record"])
        .args(["--format", "json", "--force", "reports test", "--state"])
        .arg(state)
        .arg("--zone")
        .arg(zones)
        .output()
        .unwrap();
    let report = json(&out.stdout);
    let requirement = report["requirements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["requirement"] == "dmarc-enforced")
        .cloned()
        .unwrap_or_else(|| panic!("{report:#}"));
    (out.status.code().unwrap(), requirement)
}

/// The demo plan's text, for a copy elsewhere: its relative paths (evidence, snapshot) made
/// absolute.
fn plan_text() -> String {
    std::fs::read_to_string(plan())
        .unwrap()
        .replace("\"../demo/", &format!("\"{}/demo/", fixtures().display()))
}

/// `plan validate` of `text` written to `bad.toml` in `dir`, which must be refused (exit 2):
/// its standard error.
fn refused_plan(dir: &Path, text: &str) -> String {
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, text).unwrap();
    let out = mailshift()
        .args(["plan", "validate"])
        .arg(&bad)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{err}");
    err
}

#[test]
fn every_source_is_attributed_and_the_shift_shows_day_by_day() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let zones = zones(dir.path(), "none");
    import(&state, &demo_reports());
    let r = summary(&state, &zones);
    assert_eq!(r["reports"], 54);
    let totals = &r["totals"];
    assert_eq!(totals["new:sendgrid"]["messages"], 2_084_400);
    assert_eq!(totals["old:mailchimp"]["messages"], 1_428_000);
    assert_eq!(totals["kept:google-workspace"]["messages"], 5_400);
    assert_eq!(totals["unknown"]["messages"], 120);
    // The old platform's share falls and the new one's rises.
    let first = &r["by_day"]["2026-10-20"];
    let last = &r["by_day"]["2026-11-05"];
    assert!(
        first["old:mailchimp"]["messages"].as_u64() > first["new:sendgrid"]["messages"].as_u64()
    );
    assert!(last["new:sendgrid"]["messages"].as_u64() > last["old:mailchimp"]["messages"].as_u64());
    assert!(r["by_day"]["2026-11-06"].get("old:mailchimp").is_none());
    // The spoofer: listed with its volume and when it was seen; it does not block enforcement.
    let unknown = r["unknown"].as_array().unwrap();
    assert_eq!(unknown.len(), 1);
    assert_eq!(unknown[0]["ip"], "203.0.113.66");
    assert_eq!(
        (
            &unknown[0]["failing"],
            &unknown[0]["first_seen"],
            &unknown[0]["last_seen"]
        ),
        (
            &Value::from(120),
            &Value::from("2026-10-24"),
            &Value::from("2026-10-26")
        )
    );
    assert_eq!(unknown[0]["looks_legitimate"], false);
    assert_eq!(r["enforcement"]["northwind.example"]["safe"], true);

    // CSV: a line per day and source.
    let out = mailshift()
        .arg("reports")
        .arg(plan())
        .args(["--format", "csv", "--offline", "--state"])
        .arg(&state)
        .arg("--zone")
        .arg(&zones)
        .output()
        .unwrap();
    let csv = String::from_utf8(out.stdout).unwrap();
    assert!(csv.starts_with(
        "day,side,platform,messages,dmarc_pass,dkim_aligned,spf_aligned,dmarc_pass_rate\n"
    ));
    assert!(
        csv.contains("\n2026-10-20,new,\"sendgrid\",24000,23940,23940,23940,0.9975\n"),
        "{csv}"
    );

    // HTML: a page of its own, with the same figures as data attributes.
    let out = mailshift()
        .arg("reports")
        .arg(plan())
        .args(["--format", "html", "--offline", "--state"])
        .arg(&state)
        .arg("--zone")
        .arg(&zones)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>") && page.trim_end().ends_with("</html>"));
    assert!(page.contains("data-reports=\"54\""), "{page}");
    assert!(
        page.contains("<tr data-source=\"new:sendgrid\" data-messages=\"2084400\""),
        "{page}"
    );
    assert!(
        page.contains("<tr data-ip=\"203.0.113.66\" data-failing=\"120\">"),
        "{page}"
    );
    assert!(page.contains("data-domain=\"northwind.example\" data-safe=\"true\""));
    // The per-day section is the one `warmup status --html` shows.
    assert!(page.contains("<tr data-day=\"2026-10-20\">"));
}

#[test]
fn reverse_dns_places_a_source_only_when_it_is_forward_confirmed() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let zones = zones(dir.path(), "none");
    let extra = extra_report(
        dir.path(),
        "ptr-1",
        3,
        &(record("203.0.113.7", 500, "northwind.example", "pass", "pass")
            + &record("203.0.113.66", 9, "", "none", "fail")),
    );
    import(&state, &[extra]);
    let r = summary(&state, &zones);
    // 203.0.113.7 is mail7.suw21.mcdlv.net, which resolves back to it: Mailchimp.
    assert_eq!(r["totals"]["old:mailchimp"]["messages"], 500);
    assert_eq!(r["reverse_dns"]["203.0.113.7"], "mail7.suw21.mcdlv.net");
    // 203.0.113.66 claims mail66.suw21.mcdlv.net, which is another address: unknown.
    assert_eq!(r["unknown"][0]["ip"], "203.0.113.66");
    assert!(r["reverse_dns"].get("203.0.113.66").is_none());
}

#[test]
fn the_plan_caps_the_reverse_lookups_of_every_command_that_attributes_sources() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let zones = zones(&dir.path().join("quarantine"), "quarantine");
    // Mailchimp sending from an address outside its SPF networks, signing as itself: only its
    // reverse DNS (mail7.suw21.mcdlv.net, forward-confirmed) says it is the old platform.
    let extra = extra_report(
        dir.path(),
        "ptr-cap-1",
        5,
        &record("203.0.113.7", 500, "mcsv.net", "pass", "fail"),
    );
    let mut files = demo_reports();
    files.push(extra);
    import(&state, &files);
    let text = plan_text();
    let capped = dir.path().join("capped.toml");
    std::fs::write(&capped, format!("{text}\n[dmarc]\nmax_ptr = 0\n")).unwrap();

    // By default it is looked up and placed: the old platform, and enforcing is safe.
    let r = summary(&state, &zones);
    assert_eq!(r["reverse_dns"]["203.0.113.7"], "mail7.suw21.mcdlv.net");
    let (code, req) = gate(&state, &zones);
    assert_eq!(code, 0, "{req:#}");

    // `max_ptr = 0`: no reverse lookup, so it is an unknown sender that authenticates, and
    // the summary says why it stayed unknown.
    let r = summary_of(&capped, &state, &zones, &[]);
    assert!(r["reverse_dns"].get("203.0.113.7").is_none(), "{r:#}");
    assert!(r["unknown"]
        .as_array()
        .unwrap()
        .iter()
        .any(|u| u["ip"] == "203.0.113.7"));
    let notes = r["notes"].to_string();
    assert!(notes.contains("over the cap of 0"), "{notes}");
    // The gate reads the same cap: enforcing would junk what may be the old platform's mail.
    let (code, req) = gate_of(&capped, &state, &zones);
    assert_eq!(code, 1, "{req:#}");
    let message = req["findings"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("203.0.113.7 sent 500 message(s)"),
        "{message}"
    );
    // So does warmup status, in what the receivers report.
    let out = mailshift()
        .args(["warmup", "status"])
        .arg(&capped)
        .args(["--as-of", "2026-11-06", "--format", "json", "--offline"])
        .arg("--state")
        .arg(&state)
        .arg("--zone")
        .arg(&zones)
        .output()
        .unwrap();
    let r = &json(&out.stdout)["receivers"];
    assert_eq!(
        r["by_day"]["2026-11-05"]["unknown"]["messages"], 500,
        "{r:#}"
    );
    assert!(
        r["notes"].to_string().contains("over the cap of 0"),
        "{r:#}"
    );
    // --max-ptr overrides the plan for one summary.
    let r = summary_of(&capped, &state, &zones, &["--max-ptr", "5"]);
    assert_eq!(r["reverse_dns"]["203.0.113.7"], "mail7.suw21.mcdlv.net");

    // A cap out of range is a plan error naming the field.
    let err = refused_plan(dir.path(), &format!("{text}\n[dmarc]\nmax_ptr = 1000001\n"));
    assert!(err.contains("dmarc.max_ptr"), "{err}");
}

#[test]
fn dmarc_enforced_proposes_the_record_when_safe_and_holds_for_a_forgotten_sender() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let monitoring = zones(&dir.path().join("none"), "none");

    // No reports yet.
    let (code, req) = gate(&state, &monitoring);
    assert_eq!(code, 1);
    assert!(req["summary"]
        .as_str()
        .unwrap()
        .starts_with("no DMARC aggregate reports imported"));

    import(&state, &demo_reports());
    let (code, req) = gate(&state, &monitoring);
    assert_eq!(code, 1, "{req:#}");
    let apex = &req["findings"][0];
    assert_eq!(apex["id"], "dmarc-enforced.safe-to-enforce");
    assert_eq!(
        apex["fix"]["records"][0]["value"],
        "v=DMARC1; p=quarantine; rua=mailto:dmarc@northwind.example,mailto:agg@reports.reportly.example"
    );
    // news.northwind.example inherits the apex policy: the same record enforces it.
    assert_eq!(req["findings"][1]["domain"], "news.northwind.example");
    assert_eq!(
        req["findings"][1]["fix"]["records"][0]["value"],
        apex["fix"]["records"][0]["value"]
    );

    // plan records lists it, merged with the DNS check's own advice for the same record.
    let out = mailshift()
        .args(["plan", "records"])
        .arg(plan())
        .args([
            "--stage",
            "enforce-dmarc",
            "--offline",
            "--format",
            "json",
            "--state",
        ])
        .arg(&state)
        .arg("--zone")
        .arg(&monitoring)
        .output()
        .unwrap();
    let records = json(&out.stdout);
    let dmarc = records["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "_dmarc.northwind.example")
        .unwrap_or_else(|| panic!("{records:#}"));
    assert_eq!(dmarc["value"], apex["fix"]["records"][0]["value"]);
    assert!(dmarc["because"]
        .as_array()
        .unwrap()
        .iter()
        .any(|b| b["id"] == "dmarc-enforced.safe-to-enforce"));

    // Published: the gate opens.
    let enforcing = zones(&dir.path().join("quarantine"), "quarantine");
    let (code, req) = gate(&state, &enforcing);
    assert_eq!(code, 0, "{req:#}");
    assert_eq!(req["findings"][0]["id"], "dmarc-enforced.enforced");

    // A help desk nobody listed starts sending as northwind.example, signing as itself: its
    // mail fails DMARC but authenticates — enforcing would junk it, so the gate closes.
    let forgotten = extra_report(
        dir.path(),
        "helpdesk-1",
        5,
        &record(
            "192.0.2.44",
            310,
            "northwindoutfitters.helpdesk-cloud.example",
            "pass",
            "fail",
        ),
    );
    import(&state, &[forgotten]);
    let (code, req) = gate(&state, &enforcing);
    assert_eq!(code, 1);
    assert_eq!(req["findings"][0]["id"], "dmarc-enforced.not-yet");
    let message = req["findings"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("192.0.2.44 sent 310 message(s) as northwind.example"),
        "{message}"
    );
}

#[test]
fn tls_reports_show_failed_sessions_per_mx_and_result() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let zones = zones(dir.path(), "none");
    import(
        &state,
        &[fixtures().join("reports/tls-rpt/cry-inc/rfc-example.json")],
    );
    let r = summary(&state, &zones);
    let day = &r["tls"][0];
    assert_eq!(day["day"], "2016-04-01");
    assert_eq!(day["policy_domain"], "company-y.example");
    assert_eq!(
        (&day["successful_sessions"], &day["failed_sessions"]),
        (&Value::from(5326), &Value::from(303))
    );
    let failures: Vec<String> = day["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            format!(
                "{} {} {}",
                f["mx"].as_str().unwrap(),
                f["result_type"].as_str().unwrap(),
                f["sessions"]
            )
        })
        .collect();
    assert_eq!(
        failures,
        [
            "mx-backup.mail.company-y.example validation-failure 3",
            "mx1.mail.company-y.example certificate-expired 100",
            "mx2.mail.company-y.example starttls-not-supported 200"
        ]
    );
}

#[test]
fn warmup_status_shows_what_the_receivers_report_up_to_the_day_judged() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let zones = zones(dir.path(), "none");
    import(&state, &demo_reports());
    let page = dir.path().join("warmup.html");
    let out = mailshift()
        .args(["warmup", "status"])
        .arg(plan())
        .args([
            "--as-of",
            "2026-10-28",
            "--format",
            "json",
            "--offline",
            "--state",
        ])
        .arg(&state)
        .arg("--zone")
        .arg(&zones)
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
    let r = &json(&out.stdout)["receivers"];
    // Only the days before the one judged.
    let days: Vec<&String> = r["by_day"].as_object().unwrap().keys().collect();
    assert_eq!(days.first().map(|d| d.as_str()), Some("2026-10-20"));
    assert_eq!(days.last().map(|d| d.as_str()), Some("2026-10-27"));
    assert_eq!(
        r["by_day"]["2026-10-27"]["new:sendgrid"]["messages"],
        99_600
    );
    assert_eq!(
        r["by_day"]["2026-10-27"]["old:mailchimp"]["messages"],
        93_500
    );
    // The page carries the same figures.
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(
        html.contains("<h2>What the receivers report</h2>"),
        "no section"
    );
    assert!(
        html.contains("<td class=\"num\" data-source=\"new:sendgrid\" data-messages=\"99600\""),
        "the 2026-10-27 cell"
    );
    // Without reports, the key is there and empty: no DNS is asked.
    let out = mailshift()
        .args(["warmup", "status"])
        .arg(plan())
        .args(["--as-of", "2026-10-28", "--format", "json", "--state"])
        .arg(dir.path().join("empty"))
        .output()
        .unwrap();
    assert_eq!(json(&out.stdout)["receivers"], Value::Null);
}

#[test]
fn the_plan_sets_what_enforcement_asks_of_the_reports() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let zones = zones(dir.path(), "none");
    import(&state, &demo_reports());
    // The plan lives elsewhere: its relative paths (evidence, snapshot) are made absolute.
    let text = plan_text();
    let strict = dir.path().join("strict.toml");
    std::fs::write(
        &strict,
        format!("{text}\n[dmarc]\nenforce_after_days = 20\nmin_pass_rate = 0.99\n"),
    )
    .unwrap();
    let out = mailshift()
        .arg("reports")
        .arg(&strict)
        .args(["--format", "json", "--offline", "--state"])
        .arg(&state)
        .arg("--zone")
        .arg(&zones)
        .output()
        .unwrap();
    let e = &json(&out.stdout)["reports"]["enforcement"]["northwind.example"];
    assert_eq!(e["safe"], false);
    assert_eq!(
        e["reasons"][0],
        "the reports show the new platform on 18 of the 20 days needed"
    );

    let err = refused_plan(
        dir.path(),
        &format!("{text}\n[dmarc]\nenforce_after_days = 0\nmin_pass_rate = 98\n"),
    );
    assert!(err.contains("dmarc.enforce_after_days"), "{err}");
    assert!(err.contains("dmarc.min_pass_rate"), "{err}");
}

#[test]
fn reports_the_plan_names_are_imported_before_they_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let zones = zones(dir.path(), "none");
    // A folder of this month's reports, as a mail rule might save them.
    let folder = dir.path().join("reports");
    std::fs::create_dir(&folder).unwrap();
    for file in demo_reports() {
        std::fs::copy(&file, folder.join(file.file_name().unwrap())).unwrap();
    }
    let text = plan_text();
    let named = dir.path().join("named.toml");
    std::fs::write(
        &named,
        format!(
            "{text}\n[dmarc]\nreports = [{:?}]\n",
            folder.display().to_string()
        ),
    )
    .unwrap();
    let run = || {
        mailshift()
            .arg("reports")
            .arg(&named)
            .args(["--format", "json", "--offline", "--state"])
            .arg(&state)
            .arg("--zone")
            .arg(&zones)
            .output()
            .unwrap()
    };
    let out = run();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_eq!(
        err.matches(": 1 DMARC and 0 TLS report(s)").count(),
        54,
        "{err}"
    );
    assert_eq!(json(&out.stdout)["reports"]["reports"], 54);
    // Each file once: the second run imports nothing.
    let out = run();
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("DMARC and"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(json(&out.stdout)["reports"]["reports"], 54);

    // A folder the plan names that is not there: named, exit 2.
    std::fs::write(
        &named,
        format!(
            "{text}\n[dmarc]\nreports = [\"{}/nowhere\"]\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let out = run();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("nowhere") && err.contains("could not be imported"),
        "{err}"
    );
}

/// An unknown source whose failing mail still passed DKIM or SPF for some domain "looks
/// legitimate" (a forgotten sender); one whose results all failed does not. The stored auth
/// results are arrays, `[domain, selector, result]`, and only the result counts: a selector or
/// domain that happens to read `pass` does not.
#[test]
fn only_an_auth_result_of_pass_makes_an_unknown_source_look_legitimate() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let zones = zones(dir.path(), "none");
    let auth = |ip: &str, domain: &str, selector: &str, result: &str| {
        format!(
            "<record><row><source_ip>{ip}</source_ip><count>7</count><policy_evaluated>\
             <disposition>none</disposition><dkim>fail</dkim><spf>fail</spf>\
             </policy_evaluated></row><identifiers><header_from>northwind.example</header_from>\
             </identifiers><auth_results><dkim><domain>{domain}</domain><selector>{selector}</selector>\
             <result>{result}</result></dkim><spf><domain>{domain}</domain><result>fail</result></spf>\
             </auth_results></record>"
        )
    };
    let records = [
        auth("203.0.113.80", "crm-vendor.example", "s1", "pass"),
        auth("203.0.113.90", "pass", "pass", "fail"),
    ]
    .concat();
    import(
        &state,
        &[extra_report(dir.path(), "elsewhere-1", 3, &records)],
    );
    let r = summary(&state, &zones);
    let unknown = r["unknown"].as_array().unwrap();
    let legitimate = |ip: &str| {
        unknown
            .iter()
            .find(|u| u["ip"] == ip)
            .unwrap_or_else(|| panic!("{ip}: {unknown:#?}"))["looks_legitimate"]
            .clone()
    };
    assert_eq!(legitimate("203.0.113.80"), true);
    assert_eq!(legitimate("203.0.113.90"), false);
}
