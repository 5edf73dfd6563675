//! Shared helpers for integration tests (`mod support;`).
#![allow(dead_code)]

pub mod dns_server;
pub mod inbox;

use std::path::PathBuf;

/// `fixtures/` of this crate.
pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// The names the fixture server answers SERVFAIL for.
pub const SERVFAIL_DOMAIN: &str = "hostile-servfail.test";

/// A DNS server on loopback serving `fixtures/zones/`, with the hostile behaviours the tests
/// expect (SERVFAIL for everything under `hostile-servfail.test`).
pub fn fixture_server() -> dns_server::TestDnsServer {
    dns_server::TestDnsServer::builder()
        .zone_dir(fixtures().join("zones"))
        .servfail(SERVFAIL_DOMAIN)
        .start()
}

/// The `mailshift` binary, with a deterministic environment: no colour override, no width
/// override (tables are 100 columns wide in a pipe), no GitHub step summary, and `CI` set (so
/// no progress bar).
pub fn mailshift() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("mailshift").unwrap();
    cmd.env_remove("NO_COLOR")
        .env_remove("COLUMNS")
        .env_remove("GITHUB_STEP_SUMMARY")
        .env("CI", "1");
    cmd
}

/// Runs `cmd`, asserts its exit code, and parses its standard output as JSON.
pub fn run_json(cmd: &mut assert_cmd::Command, code: i32) -> serde_json::Value {
    json(&cmd.assert().code(code).get_output().stdout)
}

/// Parses command output as JSON, showing the output when it is not.
pub fn json(output: &[u8]) -> serde_json::Value {
    serde_json::from_slice(output)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(output)))
}

/// A findings array as `id:severity` strings, in order.
pub fn id_severities(findings: &serde_json::Value) -> Vec<String> {
    findings
        .as_array()
        .unwrap_or_else(|| panic!("not a findings array: {findings}"))
        .iter()
        .map(|f| {
            format!(
                "{}:{}",
                f["id"].as_str().unwrap(),
                f["severity"].as_str().unwrap()
            )
        })
        .collect()
}
