//! What reaches a terminal is escaped: ESC/BEL sequences from a hostile TXT record or message
//! header are shown as `\027` in every human format (tables, Markdown, GitHub annotations,
//! JUnit), with or without colour; JSON keeps the exact string.

mod support;

use support::{fixtures, json, mailshift};

/// Raw bytes a terminal would act on: ESC not starting a colour (SGR) sequence, BEL, and any
/// SGR that hides text (`ESC [ 8 m`).
fn assert_terminal_safe(output: &[u8], what: &str) {
    let text = String::from_utf8_lossy(output);
    assert!(!text.contains('\u{7}'), "{what}: raw BEL in\n{text}");
    assert!(!text.contains("\u{1b}]"), "{what}: raw OSC in\n{text}");
    assert!(
        !text.contains("\u{1b}[2J"),
        "{what}: raw clear-screen in\n{text}"
    );
    assert!(
        !text.contains("\u{1b}[8m"),
        "{what}: raw conceal in\n{text}"
    );
    for (i, _) in text.match_indices('\u{1b}') {
        let rest = &text[i + 1..];
        let sgr = rest.strip_prefix('[').and_then(|r| {
            let end = r.find(|c: char| !(c.is_ascii_digit() || c == ';'))?;
            r[end..].starts_with('m').then_some(())
        });
        assert!(
            sgr.is_some(),
            "{what}: a non-colour escape sequence in\n{text}"
        );
    }
}

#[test]
fn hostile_txt_records_are_escaped_in_tables_and_exact_in_json() {
    for color in ["always", "never"] {
        let out = mailshift()
            .args([
                "check",
                "hostile-escape.test",
                "--offline",
                "--format",
                "table",
            ])
            .args(["--color", color, "--verbose", "--zone"])
            .arg(fixtures().join("zones/hostile-escape.test.zone"))
            .assert()
            .code(1)
            .get_output()
            .stdout
            .clone();
        assert_terminal_safe(&out, &format!("check --color {color}"));
        let text = String::from_utf8_lossy(&out);
        assert!(text.contains("\\027]0;pwned\\007\\027[2J"), "{text}");
        assert!(text.contains("\\027[8mhidden"), "{text}");
    }
    let out = mailshift()
        .args([
            "check",
            "hostile-escape.test",
            "--offline",
            "--format",
            "json",
            "--zone",
        ])
        .arg(fixtures().join("zones/hostile-escape.test.zone"))
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.contains("\\u001b]0;pwned\\u0007"),
        "JSON keeps the bytes: {text}"
    );
    let report = json(&out);
    let spf = report["domains"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "spf.syntax" || f["id"] == "spf.include-missing")
        .unwrap_or_else(|| panic!("{report}"));
    assert!(
        spf.to_string().contains("\\u001b"),
        "the finding quotes the exact term: {spf}"
    );
}

#[test]
fn hostile_message_headers_are_escaped_in_the_verify_table() {
    let dir = tempfile::tempdir().unwrap();
    let message = dir.path().join("hostile.eml");
    std::fs::write(
        &message,
        "From: \u{1b}]0;pwned\u{7}<a@hostile-escape.test>\r\nTo: b@example.com\r\nSubject: \u{1b}[2J\u{1b}[8mhi\r\nMessage-ID: <x@hostile-escape.test>\r\nDate: Mon, 6 Jan 2025 10:00:00 +0000\r\n\r\nbody\r\n",
    )
    .unwrap();
    for color in ["always", "never"] {
        let out = mailshift()
            .arg("verify")
            .arg(&message)
            .args(["--offline", "--format", "table", "--color", color, "--zone"])
            .arg(fixtures().join("zones/hostile-escape.test.zone"))
            .assert()
            .code(1)
            .get_output()
            .stdout
            .clone();
        assert_terminal_safe(&out, &format!("verify --color {color}"));
        let text = String::from_utf8_lossy(&out);
        assert!(text.contains("Subject: \\027[2J\\027[8mhi"), "{text}");
    }
}

#[test]
fn hostile_plan_text_is_escaped_in_every_gate_format() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(fixtures().join("plans/mig-open.toml")).unwrap();
    let plan = dir.path().join("plan.toml");
    std::fs::write(
        &plan,
        text.replace(
            "name = \"mig-open.test: Google Workspace to SendGrid\"",
            "name = \"evil \\u001b]0;pwned\\u0007\\u001b[2J plan\"",
        ),
    )
    .unwrap();
    for format in ["table", "markdown", "github", "junit"] {
        let out = mailshift()
            .arg("gate")
            .arg(&plan)
            .args([
                "--stage",
                "dns-only",
                "--offline",
                "--no-record",
                "--color",
                "always",
            ])
            .args(["--format", format, "--zone"])
            .arg(fixtures().join("zones"))
            .assert()
            .get_output()
            .stdout
            .clone();
        assert_terminal_safe(&out, format);
        assert!(
            String::from_utf8_lossy(&out).contains("\\027]0;pwned"),
            "{format}: {}",
            String::from_utf8_lossy(&out)
        );
    }
    // A plan error quoting the hostile text is escaped on stderr too.
    std::fs::write(
        &plan,
        "[migration]\nname = \"\\u001b[2J\"\nfrom = \"\\u001b]0;x\\u0007\"\n",
    )
    .unwrap();
    let out = mailshift()
        .args(["plan", "validate"])
        .arg(&plan)
        .assert()
        .code(2)
        .get_output()
        .stderr
        .clone();
    assert_terminal_safe(&out, "plan validate stderr");
    assert!(String::from_utf8_lossy(&out).contains("\\027]0;x\\007"));
}
