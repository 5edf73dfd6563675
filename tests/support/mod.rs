//! Shared helpers for integration tests (`mod support;`).
#![allow(dead_code)]

pub mod dns_server;
pub mod https_server;
pub mod inbox;
pub mod server_thread;
pub mod signed_zones;
pub mod smtp_server;
pub mod vmc_certs;

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

/// Applies `plan records --format json` changes to a directory of zone files, as a DNS-as-code
/// tool would: each change goes to the zone whose origin is the longest suffix of its name; a
/// replaced or removed record is the line with that owner, type and value.
pub fn apply_changes(dir: &std::path::Path, changes: &[serde_json::Value]) {
    let zones: Vec<(String, std::path::PathBuf)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            let origin = p
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .trim_end_matches(".zone")
                .to_string();
            (origin, p)
        })
        .collect();
    for c in changes {
        let name = c["name"].as_str().unwrap();
        let rtype = c["type"].as_str().unwrap();
        let (origin, path) = zones
            .iter()
            .filter(|(o, _)| name == o || name.ends_with(&format!(".{o}")))
            .max_by_key(|(o, _)| o.len())
            .unwrap_or_else(|| panic!("no zone for {name}"));
        let text = std::fs::read_to_string(path).unwrap();
        let owner_of = |line: &str| -> Option<String> {
            let first = line.split_whitespace().next()?;
            if line.starts_with(char::is_whitespace) || first.starts_with(['$', ';', '(']) {
                return None;
            }
            Some(match first {
                "@" => origin.clone(),
                abs if abs.ends_with('.') => abs.trim_end_matches('.').to_string(),
                rel => format!("{rel}.{origin}"),
            })
        };
        let old = match c["action"].as_str().unwrap() {
            "replace" => c["old"].as_str(),
            "remove" => c["value"].as_str(),
            _ => None,
        };
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        if let Some(old) = old {
            let data = mailshift::fixes::zone_data(rtype, old);
            let before = lines.len();
            lines.retain(|l| {
                !(owner_of(l).as_deref() == Some(name)
                    && l.split_whitespace().any(|t| t == rtype)
                    && l.contains(&data))
            });
            assert_eq!(
                lines.len() + 1,
                before,
                "{name} {rtype} {old} not found once in {}",
                path.display()
            );
        }
        if c["action"] != "remove" {
            lines.push(format!(
                "{name}. IN {rtype} {}",
                mailshift::fixes::zone_data(rtype, c["value"].as_str().unwrap())
            ));
        }
        std::fs::write(path, lines.join("\n") + "\n").unwrap();
    }
}
