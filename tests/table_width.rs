//! Tables (and the lines around them) never run past one width when output is not a terminal:
//! 100 columns, or `COLUMNS`, whatever the colour setting, on stdout or in an `--output` file.

mod support;

use support::{fixtures, mailshift};
use unicode_width::UnicodeWidthStr;

/// Fixtures with long messages, fixes and evidence (an 11-include SPF tree, a 2048-bit key, a
/// TXT record of several kilobytes), and an invalid input whose error is a long line.
const DOMAINS: &[&str] = &[
    "spf-lookup-limit.test",
    "dkim-weak-512.test",
    "hostile-big-txt.test",
    "dmarc-rua-unauthorized.test",
    "https://www.example.com/a/very/long/path/that/someone/pasted/by/mistake/into/the/list",
];

/// The widest line, in display columns, once colour sequences are taken out.
fn widest(output: &[u8]) -> (usize, String) {
    let text = String::from_utf8_lossy(output);
    let sgr = regex::Regex::new("\u{1b}\\[[0-9;]*m").unwrap();
    sgr.replace_all(&text, "")
        .lines()
        .map(|l| (l.width(), l.to_string()))
        .max()
        .unwrap_or_default()
}

fn check_table(color: &str, columns: Option<&str>) -> Vec<u8> {
    let mut cmd = mailshift();
    cmd.args(["check", "--offline", "--keep-going", "--verbose", "--zone"])
        .arg(fixtures().join("zones"))
        .args(DOMAINS)
        .args(["--format", "table", "--color", color]);
    if let Some(c) = columns {
        cmd.env("COLUMNS", c);
    }
    cmd.assert().code(2).get_output().stdout.clone()
}

#[test]
fn piped_check_tables_are_100_columns_or_columns_wide_with_or_without_colour() {
    for color in ["never", "always", "auto"] {
        for (columns, limit) in [(None, 100), (Some("60"), 60), (Some("40"), 40)] {
            let out = check_table(color, columns);
            let (width, line) = widest(&out);
            // Equal, not just within: the long findings fill the width, so it was used.
            assert_eq!(
                width,
                limit,
                "--color {color}, COLUMNS={columns:?}: widest line {line:?} in\n{}",
                String::from_utf8_lossy(&out)
            );
            let text = String::from_utf8_lossy(&out);
            assert_eq!(
                text.contains('\u{1b}'),
                color == "always",
                "colour only with --color always in a pipe"
            );
            // At 40 columns even a check id is split over lines; from 60 on it is whole.
            if limit >= 60 {
                for expected in ["spf.lookup-limit", "URL;", "5 domains:"] {
                    assert!(text.contains(expected), "{expected:?} lost in wrapping");
                }
            }
        }
    }
}

#[test]
fn no_color_and_nonsense_columns_keep_the_fixed_width() {
    for columns in ["10", "0", "wide", "100000"] {
        let (width, line) = widest(&check_table("never", Some(columns)));
        assert_eq!(width, 100, "COLUMNS={columns}: {line:?}");
    }
    let out = mailshift()
        .args(["check", "--offline", "spf-lookup-limit.test", "--zone"])
        .arg(fixtures().join("zones"))
        .args(["--format", "table"])
        .env("NO_COLOR", "1")
        .env("COLUMNS", "72")
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    assert_eq!(widest(&out).0, 72);
}

#[test]
fn an_output_file_gets_the_same_width() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("report.txt");
    mailshift()
        .args(["check", "--offline", "spf-lookup-limit.test", "--zone"])
        .arg(fixtures().join("zones"))
        .args(["--format", "table", "--color", "always", "--output"])
        .arg(&file)
        .assert()
        .code(1);
    let written = std::fs::read(&file).unwrap();
    assert_eq!(widest(&written).0, 100);
}

#[test]
fn verify_and_gate_tables_keep_to_the_width_too() {
    let messages = fixtures().join("messages");
    for (columns, limit) in [(None, 100), (Some("60"), 60)] {
        let mut verify = mailshift();
        verify
            .arg("verify")
            .arg(&messages)
            .arg("--zone")
            .arg(messages.join("zones"))
            .args([
                "--offline",
                "--verbose",
                "--format",
                "table",
                "--color",
                "always",
            ]);
        let mut gate = mailshift();
        gate.arg("gate")
            .arg(fixtures().join("plans/northwind.toml"))
            .args(["--stage", "seed", "--offline", "--no-record", "--zone"])
            .arg(fixtures().join("demo/zones"))
            .args(["--format", "table", "--color", "never"]);
        for (what, cmd) in [("verify", &mut verify), ("gate", &mut gate)] {
            if let Some(c) = columns {
                cmd.env("COLUMNS", c);
            }
            let out = cmd.output().unwrap().stdout;
            let (width, line) = widest(&out);
            assert!(
                width <= limit && width > limit - 10,
                "{what}, COLUMNS={columns:?}: {width} columns: {line:?} in\n{}",
                String::from_utf8_lossy(&out)
            );
        }
    }
}

/// `script` (util-linux) runs a command on a pseudo-terminal; `stty` gives it a width.
#[test]
fn on_a_terminal_tables_wrap_to_its_width_with_or_without_colour() {
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: `script` (util-linux) is not installed");
        return;
    }
    let bin = assert_cmd::cargo::cargo_bin("mailshift");
    let zones = fixtures().join("zones");
    for (cols, expected) in [(80, 80), (130, 130), (20, 100)] {
        for (color, no_color) in [("never", false), ("always", false), ("auto", true)] {
            let shell = format!(
                "stty cols {cols} rows 50; exec '{}' check --offline --zone '{}' spf-lookup-limit.test --color {color}",
                bin.display(),
                zones.display()
            );
            let mut cmd = std::process::Command::new("script");
            cmd.args(["-qec", &shell, "/dev/null"])
                .env_remove("COLUMNS")
                .env("CI", "1");
            if no_color {
                cmd.env("NO_COLOR", "1");
            } else {
                cmd.env_remove("NO_COLOR");
            }
            let out = cmd.output().unwrap();
            let text = String::from_utf8_lossy(&out.stdout).replace('\r', "");
            // The default format on a terminal is the table.
            assert!(text.contains("spf.lookup-limit"), "{text}");
            assert_eq!(
                text.contains('\u{1b}'),
                color == "always",
                "--color {color}, NO_COLOR {no_color}: {text}"
            );
            let (width, line) = widest(text.as_bytes());
            // A terminal of 20 columns is not believed (pseudo-terminals report such sizes).
            assert_eq!(
                width, expected,
                "{cols}-column terminal, --color {color}: {line:?}"
            );
        }
    }
}
