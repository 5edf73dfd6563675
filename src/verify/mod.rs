//! Verifying a delivered message the way a receiver does: SPF, DKIM, DMARC, ARC, and the
//! bulk-sender header rules.
//!
//! (Being written. The types below are the contract the seed inbox, `mailshift verify` and the
//! seed gate build on.)

use crate::dns::Resolver;
use crate::finding::{Finding, Status};
use serde::Serialize;
use std::net::IpAddr;

/// What the receiving server knew about the message: the SMTP envelope.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Envelope {
    /// The connecting client's address.
    pub ip: Option<IpAddr>,
    /// The HELO/EHLO name.
    pub helo: Option<String>,
    /// MAIL FROM (`""` for the null sender).
    pub mail_from: Option<String>,
    /// RCPT TO addresses.
    pub rcpt: Vec<String>,
}

/// One authentication method's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MethodResult {
    /// `pass`, `fail`, `softfail`, `neutral`, `none`, `temperror`, `permerror`.
    pub result: String,
    /// The authenticated domain (SPF: MAIL FROM/HELO domain; DKIM: d=; DMARC: From domain).
    pub domain: Option<String>,
    /// Aligned with the From domain (DMARC identifier alignment).
    pub aligned: Option<bool>,
    /// Plain-words detail (which selector, why it failed, where the SPF inputs came from).
    pub detail: String,
}

/// The verdict on one message.
#[derive(Debug, Clone, Serialize)]
pub struct MessageVerdict {
    pub message_id: Option<String>,
    pub from: Option<String>,
    pub subject: Option<String>,
    pub spf: MethodResult,
    /// One per DKIM-Signature.
    pub dkim: Vec<MethodResult>,
    pub dmarc: MethodResult,
    pub arc: MethodResult,
    /// RFC 8058 one-click unsubscribe: List-Unsubscribe with an https URI and
    /// List-Unsubscribe-Post: List-Unsubscribe=One-Click, both covered by a passing DKIM signature.
    pub one_click_unsubscribe: bool,
    /// What receivers along the way said (Authentication-Results headers), as written.
    pub receiver_results: Vec<String>,
    /// Every problem (and pass) as findings, with ids `msg.*`.
    pub findings: Vec<Finding>,
    pub status: Status,
}

/// Verifies one message.
pub async fn verify_message(
    _resolver: &Resolver,
    _raw: &[u8],
    _envelope: &Envelope,
) -> MessageVerdict {
    let unknown = || MethodResult {
        result: "temperror".into(),
        domain: None,
        aligned: None,
        detail: "not implemented yet".into(),
    };
    MessageVerdict {
        message_id: None,
        from: None,
        subject: None,
        spf: unknown(),
        dkim: Vec::new(),
        dmarc: unknown(),
        arc: unknown(),
        one_click_unsubscribe: false,
        receiver_results: Vec::new(),
        findings: Vec::new(),
        status: Status::Inconclusive,
    }
}
