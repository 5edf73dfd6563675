//! Files named by a plan, a zone file or a flag are untrusted input (in CI they come from a pull
//! request): `/dev/zero`, FIFOs and symlinks to devices as plan, zone, `$INCLUDE`, state,
//! `--checks-dir` entries, snapshot, domains file and messages are refused by name at once —
//! never read without bound, never waited on — and an oversized message in an mbox is streamed
//! past, reported with its real size, while the rest of the mbox is verified.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;
use support::{fixtures, json, mailshift};

/// Every command here must end quickly: a hang is a failure, not a slow test.
const LIMIT: Duration = Duration::from_secs(30);

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}

/// A copy of the open migration plan in `dir`, with `edit` applied to its text.
fn plan_copy(dir: &Path, edit: impl Fn(String) -> String) -> PathBuf {
    let text = std::fs::read_to_string(fixtures().join("plans/mig-open.toml")).unwrap();
    let path = dir.join("plan.toml");
    std::fs::write(&path, edit(text)).unwrap();
    path
}

/// Runs the command, asserts exit 2 within the limit, returns stderr.
fn refused(cmd: &mut assert_cmd::Command) -> String {
    let out = cmd.timeout(LIMIT).assert().code(2).get_output().clone();
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn plans_that_are_devices_or_name_devices_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let err = refused(mailshift().args(["plan", "validate", "/dev/zero"]));
    assert!(
        err.contains("/dev/zero: the plan is a character device, not a regular file"),
        "{err}"
    );
    // snapshot = "/dev/zero": `plan validate` names the field; `gate` never reads it.
    let plan = plan_copy(dir.path(), |t| {
        t.replace(
            "snapshot = \"mig-open-before.zone\"",
            "snapshot = \"/dev/zero\"",
        )
    });
    let err = refused(mailshift().args(["plan", "validate"]).arg(&plan));
    assert!(
        err.contains("migration.snapshot: /dev/zero: the zone file is a character device"),
        "{err}"
    );
    let err = refused(mailshift().arg("gate").arg(&plan).args([
        "--stage",
        "setup",
        "--offline",
        "--no-record",
    ]));
    assert!(err.contains("migration.snapshot"), "{err}");
    // A seed store or password file that is a FIFO.
    let fifo = dir.path().join("fifo");
    mkfifo(&fifo);
    let plan = plan_copy(dir.path(), |t| {
        t.replace(
            "password_env = \"MAILSHIFT_TEST_SENDGRID_KEY\"",
            "password_file = \"fifo\"\nstore = \"fifo\"",
        )
    });
    let err = refused(mailshift().args(["plan", "validate"]).arg(&plan));
    assert!(
        err.contains("seed.password_file:") && err.contains("seed.store:"),
        "{err}"
    );
    assert!(err.contains("a FIFO (named pipe)"), "{err}");
}

#[test]
fn zones_and_their_includes_that_are_devices_or_fifos_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let err = refused(mailshift().args(["check", "x.test", "--offline", "--zone", "/dev/zero"]));
    assert!(
        err.contains("/dev/zero: the zone file is a character device"),
        "{err}"
    );
    let fifo = dir.path().join("pipe.db");
    mkfifo(&fifo);
    for (target, expect) in [("/dev/zero", "character device"), ("pipe.db", "FIFO")] {
        let zone = dir.path().join("inc.test.zone");
        std::fs::write(
            &zone,
            format!("$TTL 300\n@ IN SOA ns1 hostmaster 1 3600 600 86400 300\n$INCLUDE {target}\n"),
        )
        .unwrap();
        let err = refused(
            mailshift()
                .args(["check", "inc.test", "--offline", "--zone"])
                .arg(&zone),
        );
        assert!(err.contains("inc.test.zone:3: $INCLUDE"), "{err}");
        assert!(err.contains(expect), "{err}");
    }
    // A FIFO among a zone directory's files is named, not waited on or skipped.
    let zones = dir.path().join("zones");
    std::fs::create_dir(&zones).unwrap();
    std::fs::write(
        zones.join("ok.test.zone"),
        "$TTL 300\n@ IN SOA ns1 hostmaster 1 3600 600 86400 300\n",
    )
    .unwrap();
    mkfifo(&zones.join("stuck.test.zone"));
    let err = refused(
        mailshift()
            .args(["check", "ok.test", "--offline", "--zone"])
            .arg(&zones),
    );
    assert!(
        err.contains("stuck.test.zone: the zone file is a FIFO"),
        "{err}"
    );
}

#[test]
fn state_files_and_checks_dirs_pointing_at_devices_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let plan = plan_copy(dir.path(), |t| t);
    // The history database of a state directory, and the state file of an earlier mailshift.
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    std::os::unix::fs::symlink("/dev/zero", state.join("history.db")).unwrap();
    let err = refused(
        mailshift()
            .arg("gate")
            .arg(&plan)
            .args(["--stage", "dns-only", "--offline", "--state"])
            .arg(&state),
    );
    assert!(
        err.contains("the history database is a character device"),
        "{err}"
    );
    let legacy = plan.with_extension("state.json");
    std::os::unix::fs::symlink("/dev/zero", &legacy).unwrap();
    let err =
        refused(
            mailshift()
                .arg("gate")
                .arg(&plan)
                .args(["--stage", "dns-only", "--offline"]),
        );
    assert!(
        err.contains("the state file is a character device"),
        "{err}"
    );

    let checks = dir.path().join("checks");
    std::fs::create_dir_all(checks.join("providers")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", checks.join("providers/zero.toml")).unwrap();
    let err = refused(
        mailshift()
            .arg("providers")
            .arg("--checks-dir")
            .arg(&checks),
    );
    assert!(
        err.contains("zero.toml: the checks file is a character device"),
        "{err}"
    );
    std::fs::remove_file(checks.join("providers/zero.toml")).unwrap();
    mkfifo(&checks.join("providers/pipe.toml"));
    let err = refused(
        mailshift()
            .arg("providers")
            .arg("--checks-dir")
            .arg(&checks),
    );
    assert!(
        err.contains("pipe.toml: the checks file is a FIFO"),
        "{err}"
    );
    let err = refused(
        mailshift()
            .args(["providers", "--checks-dir"])
            .arg(dir.path().join("no-such-dir")),
    );
    assert!(err.contains("not a directory"), "{err}");
}

#[test]
fn domains_files_and_messages_that_are_not_regular_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let err = refused(mailshift().args(["check", "--offline", "--domains-file", "/dev/zero"]));
    assert!(
        err.contains("the domains file is a character device"),
        "{err}"
    );
    let fifo = dir.path().join("message.eml");
    mkfifo(&fifo);
    let err = refused(mailshift().arg("verify").arg(&fifo).arg("--offline"));
    assert!(err.contains("message.eml: the message is a FIFO"), "{err}");
    // A FIFO inside a directory of messages is named too.
    let err = refused(mailshift().arg("verify").arg(dir.path()).arg("--offline"));
    assert!(err.contains("message.eml: the message is a FIFO"), "{err}");
    // Oversized files stop at the cap and say how to raise it.
    let big = dir.path().join("big.txt");
    std::fs::write(&big, "example.com\n".repeat(200)).unwrap();
    let err = refused(
        mailshift()
            .args([
                "--max-file-size",
                "domains=1KiB",
                "check",
                "--offline",
                "--domains-file",
            ])
            .arg(&big),
    );
    assert!(
        err.contains(
            "domains files are limited to 1 KiB (raise it with --max-file-size domains=SIZE)"
        ),
        "{err}"
    );
    let err = refused(mailshift().args(["--max-file-size", "zones=1", "providers"]));
    assert!(err.contains("`zones` is not a file kind"), "{err}");
}

#[test]
fn an_oversized_message_in_an_mbox_is_streamed_past_and_reported_with_its_size() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read(fixtures().join("messages/good.eml")).unwrap();
    let good = String::from_utf8(good).unwrap().replace("\r\n", "\n");
    let huge_line = "y".repeat(3 << 20);
    let big_message = format!("Subject: big\nFrom: a@example.com\n\n{huge_line}\n");
    let mbox = format!(
        "From a@example.com Mon Jan  6 10:00:00 2025\n{big_message}From b@example.com Mon Jan  6 10:00:01 2025\n{good}"
    );
    let path = dir.path().join("box.mbox");
    std::fs::write(&path, mbox).unwrap();
    let out = mailshift()
        .args([
            "--max-file-size",
            "message=1MiB",
            "verify",
            "--format",
            "json",
            "--zone",
        ])
        .arg(fixtures().join("messages/zones"))
        .arg("--offline")
        .arg(&path)
        .timeout(LIMIT)
        .assert()
        .code(2)
        .get_output()
        .stdout
        .clone();
    let report = json(&out);
    let messages = report["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2, "{report}");
    let error = messages[0]["verdict"]["error"].as_str().unwrap();
    assert!(
        error.contains(&format!("({} bytes)", big_message.len())) && error.contains("1 MiB"),
        "{error}"
    );
    assert!(messages[1]["source"]
        .as_str()
        .unwrap()
        .ends_with("box.mbox#2"));
    assert_ne!(messages[1]["verdict"]["status"], "error", "{report}");
}
