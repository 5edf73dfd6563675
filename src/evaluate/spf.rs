//! RFC 7208 `check_host()` for a sending IP, through mail-auth, fed by mailshift's resolver.
//!
//! (Being written; see `check_host`.)

use crate::dns::Resolver;
use std::net::IpAddr;

/// The SPF results of RFC 7208 §2.6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SpfResult {
    Pass,
    Fail,
    SoftFail,
    Neutral,
    None,
    TempError,
    PermError,
}

/// One evaluation: the connecting IP, the HELO name, and the MAIL FROM (or, when empty, the
/// HELO identity is checked, as RFC 7208 §2.3 says).
#[derive(Debug, Clone)]
pub struct SpfQuery {
    pub ip: IpAddr,
    /// The domain whose record is evaluated (MAIL FROM's domain, or the HELO name).
    pub domain: String,
    /// The full MAIL FROM address (`bounce@em123.example.com`); `postmaster@<domain>` when `None`.
    pub sender: Option<String>,
    pub helo: Option<String>,
}

/// The verdict, with mail-auth's explanation when the record has `exp=`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpfVerdict {
    pub result: SpfResult,
    pub explanation: Option<String>,
}

/// Evaluates `check_host(ip, domain, sender)`.
pub async fn check_host(_resolver: &Resolver, _query: &SpfQuery) -> SpfVerdict {
    SpfVerdict {
        result: SpfResult::TempError,
        explanation: Some("not implemented yet".into()),
    }
}
