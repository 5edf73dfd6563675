//! The DNSSEC test zones of `fixtures/zones-dnssec`, signed when a test runs by the `sign.sh`
//! beside them (ldns-keygen and ldns-signzone; `.ci/run` installs ldnsutils), and served on
//! loopback.

use super::dns_server::TestDnsServer;
use super::fixtures;
use std::path::Path;
use std::process::Command;

/// The zones `sign.sh` writes.
pub const ZONES: [&str; 8] = [
    "bryggeri.se",
    "post.bryggeri.se",
    "lager.bryggeri.se",
    "kall.lager.bryggeri.se",
    "osignerad.bryggeri.se",
    "utgangen.bryggeri.se",
    "fel-ds.bryggeri.se",
    "andrad.bryggeri.se",
];

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
    let mut builder = TestDnsServer::builder();
    for zone in ZONES {
        builder = builder.zone_file(out.join(format!("{zone}.rfc3597")));
    }
    builder.start()
}
