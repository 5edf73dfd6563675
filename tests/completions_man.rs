//! `mailshift completions SHELL` and `mailshift man`: generated from the clap definition, they
//! must name the real subcommands and flags, and the pages must carry the exit codes.

mod support;

use support::mailshift;

fn stdout_of(args: &[&str]) -> String {
    let out = mailshift().args(args).assert().code(0).get_output().clone();
    String::from_utf8(out.stdout).expect("generated text is UTF-8")
}

#[test]
fn bash_completion_offers_the_subcommands_and_their_flags() {
    let script = stdout_of(&["completions", "bash"]);
    let top = script
        .lines()
        .find(|l| l.contains("opts=") && l.contains("--max-file-size"))
        .unwrap_or_else(|| panic!("no top-level option list in\n{script}"));
    for sub in ["check", "gate", "verify", "completions", "man"] {
        assert!(
            top.split_whitespace().any(|w| w.trim_matches('"') == sub),
            "`{sub}` missing from {top}"
        );
    }
    let check = script
        .lines()
        .find(|l| l.contains("opts=") && l.contains("--domains-file"))
        .unwrap_or_else(|| panic!("no option list for `check` in\n{script}"));
    for flag in ["--format", "--fail-on", "--offline"] {
        assert!(check.contains(flag), "`{flag}` missing from {check}");
    }
}

#[test]
fn every_shell_gets_a_script_and_zsh_starts_with_compdef() {
    let zsh = stdout_of(&["completions", "zsh"]);
    assert!(zsh.starts_with("#compdef mailshift"), "{zsh}");
    for shell in ["fish", "elvish", "powershell"] {
        let script = stdout_of(&["completions", shell]);
        assert!(
            script.contains("check") && script.contains("format"),
            "{shell}: {script}"
        );
    }
}

#[test]
fn an_unknown_shell_is_a_usage_error() {
    let out = mailshift()
        .args(["completions", "tcsh"])
        .assert()
        .code(2)
        .get_output()
        .clone();
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("invalid value 'tcsh'") && stderr.contains("bash"),
        "{stderr}"
    );
}

#[test]
fn the_man_page_has_a_title_subcommands_and_exit_codes() {
    let page = stdout_of(&["man"]);
    assert!(page.contains(".TH mailshift 1"), "{page}");
    assert!(page.contains(".SH SUBCOMMANDS"), "{page}");
    assert!(page.contains("mailshift\\-check(1)"), "{page}");
    let status = page
        .split(".SH \"EXIT STATUS\"")
        .nth(1)
        .unwrap_or_else(|| panic!("no EXIT STATUS section in\n{page}"));
    assert!(
        status.contains("2 bad invocation or input") && status.contains("3 could not complete"),
        "{status}"
    );
}

#[test]
fn man_output_writes_a_page_per_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("man1");
    mailshift()
        .args(["man", "--output"])
        .arg(&target)
        .assert()
        .code(0)
        .stdout("");
    let read = |name: &str| {
        std::fs::read_to_string(target.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    assert!(read("mailshift.1").contains(".TH mailshift 1"));
    let check = read("mailshift-check.1");
    assert!(check.contains(".TH mailshift-check 1"), "{check}");
    assert!(check.contains("\\-\\-format"), "{check}");
    assert!(read("mailshift-check-merge.1").contains("\\-\\-allow\\-partial"));
    // A command with exit codes of its own has them on its page.
    assert!(read("mailshift-gate.1").contains("0 the gate is open"));
    for name in [
        "mailshift-verify.1",
        "mailshift-seed-send.1",
        "mailshift-man.1",
    ] {
        assert!(target.join(name).is_file(), "{name} not written");
    }
    assert!(
        !target.join("mailshift-help.1").exists(),
        "the implicit help subcommand has no page"
    );
}

#[test]
fn man_output_into_a_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let out = mailshift()
        .args(["man", "--output"])
        .arg(&file)
        .assert()
        .code(2)
        .get_output()
        .clone();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot create the directory"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
