//! Bulk runs past one machine: `check --shard K/N` splits the domains by a stable hash, and
//! `check merge` joins the shards' ndjson into one report whose summary equals an unsharded
//! run's — and refuses shards that do not fit together.

mod support;

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use support::{fixtures, json, mailshift};

/// Every fixture domain, as a domains file.
fn domains_file(dir: &Path) -> (PathBuf, usize) {
    let mut names: Vec<String> = std::fs::read_dir(fixtures().join("zones"))
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            let domain = name.strip_suffix(".zone")?.to_string();
            (domain.ends_with(".test") && domain != "test").then_some(domain)
        })
        .collect();
    names.sort();
    let path = dir.join("domains.txt");
    std::fs::write(&path, names.join("\n") + "\n").unwrap();
    (path, names.len())
}

fn check(domains: &Path, extra: &[&str], out: &Path) -> i32 {
    mailshift()
        .args([
            "check",
            "--offline",
            "--format",
            "ndjson",
            "--selector",
            "s1",
            "--zone",
        ])
        .arg(fixtures().join("zones"))
        .arg("--domains-file")
        .arg(domains)
        .args(extra)
        .arg("-o")
        .arg(out)
        .output()
        .unwrap()
        .status
        .code()
        .unwrap()
}

fn lines(path: &Path) -> (Vec<String>, Value) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut domains = Vec::new();
    let mut summary = Value::Null;
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        if v.get("summary").is_some() {
            summary = v["summary"].clone();
        } else {
            domains.push(v["domain"].as_str().unwrap().to_string());
        }
    }
    (domains, summary)
}

#[test]
fn shards_cover_every_domain_once_and_merge_into_the_unsharded_summary() {
    let dir = tempfile::tempdir().unwrap();
    let (domains, count) = domains_file(dir.path());
    assert!(count > 50, "{count} fixture domains");
    let whole = dir.path().join("whole.ndjson");
    let whole_code = check(&domains, &[], &whole);
    let (all, whole_summary) = lines(&whole);
    assert_eq!(all.len(), count);

    let mut seen = BTreeSet::new();
    let mut shard_files = Vec::new();
    for k in 1..=3 {
        let out = dir.path().join(format!("shard{k}.ndjson"));
        check(&domains, &["--shard", &format!("{k}/3")], &out);
        let (names, summary) = lines(&out);
        assert_eq!(summary["shard"], serde_json::json!({"index": k, "of": 3}));
        assert!(
            !names.is_empty(),
            "shard {k} is empty: the hash does not spread"
        );
        for n in names {
            assert!(seen.insert(n.clone()), "{n} is in two shards");
        }
        // Stable: the same shard again holds the same domains.
        let again = dir.path().join(format!("again{k}.ndjson"));
        check(&domains, &["--shard", &format!("{k}/3")], &again);
        let mut a = lines(&out).0;
        let mut b = lines(&again).0;
        a.sort();
        b.sort();
        assert_eq!(a, b);
        shard_files.push(out);
    }
    assert_eq!(seen.len(), count, "the shards together hold every domain");

    let merged = dir.path().join("merged.ndjson");
    let code = mailshift()
        .args(["check", "merge"])
        .args(&shard_files)
        .arg("-o")
        .arg(&merged)
        .output()
        .unwrap()
        .status
        .code()
        .unwrap();
    assert_eq!(
        code, whole_code,
        "the merged run exits as the whole run did"
    );
    let (merged_names, summary) = lines(&merged);
    assert_eq!(merged_names.len(), count);
    for key in ["domains", "pass", "warn", "fail", "inconclusive", "invalid"] {
        assert_eq!(summary[key], whole_summary[key], "{key}: {summary}");
    }
    assert_eq!(
        summary["merged"],
        serde_json::json!({"files": 3, "shards": 3})
    );
    // JSON and table output of the merge.
    let out = mailshift()
        .args(["check", "merge", "--format", "json"])
        .args(&shard_files)
        .output()
        .unwrap();
    let doc = json(&out.stdout);
    assert_eq!(doc["domains"].as_array().unwrap().len(), count);
    let out = mailshift()
        .args(["check", "merge", "--format", "table"])
        .args(&shard_files)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("{count} domains:")));
}

#[test]
fn shards_that_do_not_fit_together_are_refused_unless_partial_is_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let (domains, _) = domains_file(dir.path());
    let shard = |k: u32| {
        let out = dir.path().join(format!("s{k}.ndjson"));
        check(&domains, &["--shard", &format!("{k}/3")], &out);
        out
    };
    let (one, three) = (shard(1), shard(3));
    let out = mailshift()
        .args(["check", "merge"])
        .arg(&one)
        .arg(&three)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("shard 2/3 has no report"), "{err}");
    let out = mailshift()
        .args(["check", "merge", "--allow-partial"])
        .arg(&one)
        .arg(&one)
        .arg(&three)
        .output()
        .unwrap();
    let (_, summary) = {
        let path = dir.path().join("partial.ndjson");
        std::fs::write(&path, &out.stdout).unwrap();
        lines(&path)
    };
    assert_eq!(summary["merged"]["missing"], serde_json::json!([2]));
    assert_eq!(summary["merged"]["repeated"], serde_json::json!([1]));
    assert_ne!(out.status.code(), Some(0), "a partial merge never passes");

    // A shard whose job died half-way (no summary line), and a line that is not a report.
    let text = std::fs::read_to_string(&one).unwrap();
    let cut = dir.path().join("cut.ndjson");
    std::fs::write(&cut, text.lines().next().unwrap().to_string() + "\n").unwrap();
    let out = mailshift()
        .args(["check", "merge"])
        .arg(&cut)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cut.ndjson: no summary line"));
    let garbage = dir.path().join("garbage.ndjson");
    std::fs::write(&garbage, "{\"domain\": 1}\n").unwrap();
    let out = mailshift()
        .args(["check", "merge"])
        .arg(&garbage)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("garbage.ndjson:1: not a domain report"));

    for bad in ["0/3", "4/3", "x/3", "3", "1/0"] {
        let out = mailshift()
            .args(["check", "example.com", "--offline", "--shard", bad])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "--shard {bad}");
    }
}

#[test]
fn invalid_lines_are_found_before_anything_is_checked_and_belong_to_one_shard() {
    let dir = tempfile::tempdir().unwrap();
    let domains = dir.path().join("mixed.txt");
    std::fs::write(
        &domains,
        "clean.test\nhttps://www.example.com/\nspf-missing.test\nnot a domain\n\u{1b}[2J.example\n",
    )
    .unwrap();
    let out = mailshift()
        .args(["check", "--offline", "--zone"])
        .arg(fixtures().join("zones"))
        .arg("--domains-file")
        .arg(&domains)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("mixed.txt:2:") && err.contains("mixed.txt:4:"),
        "{err}"
    );
    assert!(!err.contains('\u{1b}'), "escaped: {err}");
    assert!(out.stdout.is_empty(), "nothing was checked");
    // With --keep-going across shards, each invalid line is reported by exactly one shard.
    let mut invalid = 0;
    for k in 1..=2 {
        let out = dir.path().join(format!("k{k}.ndjson"));
        check(
            &domains,
            &["--keep-going", "--shard", &format!("{k}/2")],
            &out,
        );
        invalid += lines(&out).1["invalid"].as_u64().unwrap();
    }
    assert_eq!(invalid, 3);
}

/// Shards that left families out (a domains file checks MTA-STS, TLS-RPT and BIMI only when
/// `--with` asks): the merged summary names every family any shard skipped, since the merged
/// report's domains may lack them.
#[test]
fn a_merge_names_the_families_any_shard_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let (domains, _) = domains_file(dir.path());
    let one = dir.path().join("one.ndjson");
    let two = dir.path().join("two.ndjson");
    check(
        &domains,
        &["--shard", "1/2", "--with", "mta-sts,tls-rpt"],
        &one,
    );
    check(&domains, &["--shard", "2/2", "--with", "tls-rpt"], &two);
    assert_eq!(lines(&one).1["skipped"], serde_json::json!(["bimi"]));
    let merged = dir.path().join("merged.ndjson");
    mailshift()
        .args(["check", "merge"])
        .args([&one, &two])
        .arg("-o")
        .arg(&merged)
        .output()
        .unwrap();
    assert_eq!(
        lines(&merged).1["skipped"],
        serde_json::json!(["mta-sts", "bimi"])
    );
    let out = mailshift()
        .args(["check", "merge", "--format", "table"])
        .args([&one, &two])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("Not checked: mta-sts, bimi (left out with --skip, or by a domains file"),
        "{table}"
    );
}
