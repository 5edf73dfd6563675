//! Shared helpers for integration tests (`mod support;`).
#![allow(dead_code)]

pub mod dns_server;

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
