//! The DNSSEC test zones of `fixtures/zones-dnssec`, signed when a test runs by the `sign.sh`
//! beside them (ldns-keygen and ldns-signzone; `.ci/run` installs ldnsutils), and served on
//! loopback.

use super::dns_server::TestDnsServer;
use super::fixtures;
use std::path::Path;
use std::process::Command;

/// Signs the zones of `source` (the fixture zones when `None`) into `out`: each zone in RFC
/// 3597 form, and the trust anchor `anchor.ds`. Then starts a DNS server for them.
pub fn sign_and_serve(out: &Path, source: Option<&Path>) -> TestDnsServer {
    let script = fixtures().join("zones-dnssec/sign.sh");
    let mut command = Command::new("bash");
    command.arg(&script).arg(out);
    if let Some(source) = source {
        command.env("ZONES_SRC", source);
    }
    let run = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        run.status.success(),
        "{} failed ({}): {}\nThe DNSSEC tests sign their zones with ldns-keygen and \
         ldns-signzone: install the Debian package ldnsutils (.ci/run does).",
        script.display(),
        run.status,
        String::from_utf8_lossy(&run.stderr)
    );
    // Every zone sign.sh wrote (`ZONE.rfc3597`), beside the anchor.
    let mut builder = TestDnsServer::builder();
    let mut files: Vec<_> = std::fs::read_dir(out)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.extension().is_some_and(|x| x == "rfc3597")
                && path.file_stem().is_some_and(|stem| stem != "anchor")
        })
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "sign.sh wrote no zones in {}",
        out.display()
    );
    for file in files {
        builder = builder.zone_file(file);
    }
    builder.start()
}
