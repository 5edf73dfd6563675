//! Verifying a delivered message the way a receiver does: SPF, DKIM, DMARC, ARC, and the
//! bulk-sender header rules.
//!
//! [`verify_message`] parses the message with mail-auth, then
//! * fetches what it can know from the headers through mailshift's [`Resolver`], concurrently:
//!   every DKIM and ARC key (`s._domainkey.d`), the author's DMARC tree walk, and the SPF policy
//!   tree of the client (see [`crate::evaluate`]);
//! * verifies every DKIM signature and the ARC chain with mail-auth, evaluates SPF for the
//!   envelope ([`Envelope`], or what the trace fields say when it is not given) and DMARC with
//!   identifier alignment (RFC 9989);
//! * checks the header rules of the bulk-sender policies: RFC 8058 one-click unsubscribe covered
//!   by a passing DKIM signature, one valid Message-ID, Date and From;
//! * reads the Authentication-Results fields receivers added, to show beside its own verdict.
//!
//! mail-auth never resolves anything itself: its evaluators run on caches filled from mailshift's
//! resolver (so `--zone` overlays, `--offline` and the run's cache apply) with a resolver that has
//! no server. The one shared piece of state is that evaluator (built once per process); each
//! message needs nothing else set up, so the SMTP seed inbox can call this for every arriving
//! message with its one resolver.
//!
//! Garbage (not a message, binary, truncated header sections, headers over 1 MiB, messages over
//! 64 MiB) gives a verdict with status `error` and one `msg.parse` finding; it never panics.

pub mod auth_results;
pub mod headers;
pub mod input;
pub mod report;

use crate::dns::Resolver;
use crate::evaluate::dkim::{
    arc_structure_problem, key_questions, verify_arc, verify_as_of, verify_dkim,
};
use crate::evaluate::dmarc::{from_domain, side, verify_dmarc, walk_names, DmarcEvaluation};
use crate::evaluate::records::{Question, RecordCache, TxtKind};
use crate::evaluate::spf::{evaluate as spf_evaluate, SpfEvaluation, SpfQuery, SpfResult};
use crate::finding::{Finding, Severity, Status};
use auth_results::ReceiverResults;
use headers::{RawHeader, Unsubscribe};
use mail_auth::common::crypto::Algorithm;
use mail_auth::dkim::{Canonicalization, DkimError};
use mail_auth::{
    ArcOutput, AuthenticatedMessage, DkimOutput, DkimResult, DnsError, Error, SpfOutput,
};
use serde::Serialize;
use std::borrow::Cow;
use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

/// Messages larger than this are not verified by default (receivers refuse them long before);
/// `--max-file-size message=SIZE` changes it.
pub const MAX_MESSAGE_BYTES: usize = 64 << 20;
/// Header sections larger than this are not verified (Postfix refuses 100 KB by default).
pub const MAX_HEADER_BYTES: usize = 1 << 20;
/// At most this many DKIM signatures of a message are verified (in header order).
pub const MAX_DKIM_SIGNATURES: usize = 16;

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

impl MethodResult {
    fn new(result: &str, domain: Option<String>, detail: impl Into<String>) -> MethodResult {
        MethodResult {
            result: result.to_string(),
            domain,
            aligned: None,
            detail: detail.into(),
        }
    }
}

/// The SPF inputs used, and where each came from (`envelope`, `Received header #2`,
/// `Received-SPF header #1`, `Return-Path header`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SpfInputs {
    pub ip: Option<IpAddr>,
    pub ip_source: Option<String>,
    pub helo: Option<String>,
    pub helo_source: Option<String>,
    pub mail_from: Option<String>,
    pub mail_from_source: Option<String>,
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
    /// The SPF inputs and their sources.
    pub spf_inputs: SpfInputs,
    /// The DMARC policy that applies to this message (`none`, `quarantine`, `reject`), after
    /// `sp`/`np` and `t=y`.
    pub dmarc_policy: Option<String>,
    /// The receivers' Authentication-Results fields, parsed (top first).
    pub receivers: Vec<ReceiverResults>,
    /// DKIM signatures beyond the first [`MAX_DKIM_SIGNATURES`] that were not verified. When
    /// there are any, nothing that depends on DKIM (DKIM itself, DMARC, one-click unsubscribe)
    /// is judged failed: an unverified signature might pass, so such verdicts are inconclusive.
    #[serde(skip_serializing_if = "is_zero")]
    pub dkim_not_verified: usize,
    /// Why the input is not a message (status `error`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Options for [`verify_message_with`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VerifyOptions {
    /// Judge signature expiry (`x=`) and Date as of this Unix time instead of now: for archived
    /// messages and time-stamped test vectors. DNS answers are current either way.
    pub as_of: Option<u64>,
}

/// Builds the process-wide state verification shares (mail-auth's evaluator and the TLS
/// configuration hickory requires, about 8 ms once) now rather than on the first message. Optional:
/// [`verify_message`] builds it when first needed. An error means no message can be verified
/// (the verdicts would say so).
pub fn prepare() -> Result<(), String> {
    crate::evaluate::cache::null_authenticator().map(|_| ())
}

/// Verifies one message.
pub async fn verify_message(
    resolver: &Resolver,
    raw: &[u8],
    envelope: &Envelope,
) -> MessageVerdict {
    verify_message_with(resolver, raw, envelope, &VerifyOptions::default()).await
}

/// Verifies one message, with options.
pub async fn verify_message_with(
    resolver: &Resolver,
    raw: &[u8],
    envelope: &Envelope,
    options: &VerifyOptions,
) -> MessageVerdict {
    if let Some(reason) = size_problem(raw) {
        return error_verdict(reason);
    }
    let (raw, converted) = wire_line_endings(raw);
    if let Some(reason) = not_a_message(&raw) {
        return error_verdict(reason);
    }
    let Some(mut message) = AuthenticatedMessage::parse(&raw) else {
        return error_verdict("no header fields: this is not an RFC 5322 message".into());
    };
    if let Some(at) = options.as_of {
        verify_as_of(&mut message, at);
    }
    let mut notes = Vec::new();
    let signatures = message.dkim_headers.len();
    let dkim_not_verified = signatures.saturating_sub(MAX_DKIM_SIGNATURES);
    if signatures > MAX_DKIM_SIGNATURES {
        // Each signature costs a key lookup and a public-key operation: a message with
        // thousands of them must not cost thousands.
        message.dkim_headers.truncate(MAX_DKIM_SIGNATURES);
        notes.push(Finding::new(
            "msg.input",
            Severity::Warn,
            format!(
                "The message has {signatures} DKIM signatures; only the first \
                 {MAX_DKIM_SIGNATURES} were verified, so a verdict that a later one could change \
                 is inconclusive."
            ),
        ));
    }
    let message = message;
    let now = options.as_of.map_or_else(unix_now, |t| t as i64);
    if converted {
        notes.push(Finding::new(
            "msg.input",
            Severity::Info,
            "The message had LF line endings; they were converted to CRLF (as on the wire) \
                 before verification.",
        ));
    }
    Verification {
        resolver,
        message: &message,
        headers: &message.headers,
        envelope,
        now,
        notes,
        dkim_not_verified,
    }
    .run()
    .await
}

struct Verification<'a> {
    resolver: &'a Resolver,
    message: &'a AuthenticatedMessage<'a>,
    headers: &'a [RawHeader<'a>],
    envelope: &'a Envelope,
    now: i64,
    notes: Vec<Finding>,
    /// Signatures not verified (over the limit).
    dkim_not_verified: usize,
}

/// What SPF was asked and said.
struct SpfPart {
    result: MethodResult,
    /// mail-auth's form, for DMARC.
    output: SpfOutput,
    /// The SPF-authenticated domain DMARC may use (`""` when SPF does not count for DMARC).
    dmarc_domain: String,
    /// SPF could not be evaluated (no inputs).
    evaluated: bool,
}

/// One DKIM signature's outcome.
struct DkimPart {
    result: MethodResult,
    /// Index into mail-auth's outputs (`None` for a malformed signature).
    output: Option<usize>,
    /// Header fields the signature covers (lower case).
    covered: Vec<String>,
}

impl Verification<'_> {
    async fn run(self) -> MessageVerdict {
        let resolver = self.resolver;
        let message = self.message;
        let (from_rule, from_display) = headers::from_rule(self.headers);
        let (message_id_rule, message_id) = headers::message_id_rule(self.headers);
        let (date_rule, date_future) = headers::date_rule(self.headers, self.now);
        let subject = headers::subject(self.headers);
        let unsubscribe = Unsubscribe::read(self.headers);
        let receiver_results: Vec<String> = headers::values(self.headers, "Authentication-Results")
            .iter()
            .map(|v| headers::unfold(v))
            .collect();
        let receivers: Vec<ReceiverResults> =
            headers::values(self.headers, "Authentication-Results")
                .iter()
                .filter_map(|v| ReceiverResults::parse(v))
                .collect();
        let inputs = self.spf_inputs();

        // Everything that can be known from the headers is fetched at once: the SPF tree, the
        // DKIM and ARC keys, the author's DMARC tree walk.
        let cache = RecordCache::new();
        let mut questions = key_questions(message);
        if let Ok(Some(from)) = from_domain(message) {
            questions.extend(
                walk_names(&from)
                    .into_iter()
                    .map(|n| Question::Txt(TxtKind::Dmarc, n)),
            );
        }
        let (spf, ()) = futures::join!(self.spf(&inputs), cache.fetch(resolver, &questions));

        let dkim_outputs = match verify_dkim(resolver, &cache, message).await {
            Ok(outputs) => outputs,
            Err(e) => return error_verdict(format!("cannot set up the DKIM verifier: {e}")),
        };
        let has_arc = !message.ams_headers.is_empty()
            || !message.as_headers.is_empty()
            || !message.aar_headers.is_empty()
            || message.has_arc_errors
            || arc_structure_problem(message).is_some();
        let arc_output = if has_arc {
            match verify_arc(resolver, &cache, message).await {
                Ok(output) => Some(output),
                Err(e) => return error_verdict(format!("cannot set up the ARC verifier: {e}")),
            }
        } else {
            None
        };

        let mut dkim = self.dkim_parts(&cache, &dkim_outputs);
        // What DMARC counts: mail-auth's outputs, with passes mailshift does not accept (RFC 8301
        // rsa-sha1, keys not for email or not for the hash) turned into errors.
        let for_dmarc: Vec<DkimOutput<'_>> = dkim_outputs
            .iter()
            .enumerate()
            .map(|(i, o)| {
                let refused = dkim
                    .iter()
                    .any(|p| p.output == Some(i) && p.result.result != "pass")
                    && *o.result() == DkimResult::Pass;
                match (refused, o.signature()) {
                    (true, Some(sig)) => {
                        DkimOutput::perm_err(Error::Dkim(DkimError::UnsupportedAlgorithm))
                            .with_signature(sig)
                    }
                    _ => o.clone(),
                }
            })
            .collect();
        let dmarc = match verify_dmarc(
            resolver,
            &cache,
            message,
            &for_dmarc,
            &spf.dmarc_domain,
            &spf.output,
        )
        .await
        {
            Ok(d) => d,
            Err(e) => return error_verdict(format!("cannot set up the DMARC verifier: {e}")),
        };

        // Alignment of every identifier.
        for part in &mut dkim {
            if let Some(d) = &part.result.domain {
                part.result.aligned = dmarc.aligned(&cache, d, dmarc.strict_dkim());
            }
        }
        let mut spf = spf;
        if spf.evaluated && !spf.dmarc_domain.is_empty() {
            spf.result.aligned = dmarc.aligned(&cache, &spf.dmarc_domain, dmarc.strict_spf());
        }
        let dmarc_result = dmarc_method(&dmarc, &spf, &dkim);
        let mut arc = arc_method(arc_output.as_ref(), has_arc);
        if let Some(problem) = arc_structure_problem(message) {
            // mail-auth validated what it needs; the chain is still malformed (RFC 8617 §5.2:
            // an invalid chain fails).
            if matches!(arc.result.as_str(), "pass" | "none") {
                arc.result = "fail".into();
                arc.detail = problem;
            }
        }

        // Findings.
        let mut findings = self.notes;
        findings.push(spf_finding(&spf));
        let incomplete = self.dkim_not_verified;
        findings.push(incomplete_dkim(dkim_finding(&dkim), incomplete));
        findings.push(incomplete_dkim(
            dmarc_finding(&dmarc, &dmarc_result),
            incomplete,
        ));
        if let Some(f) = arc_finding(&arc, has_arc) {
            findings.push(f);
        }
        let (one_click, unsubscribe_finding) = one_click_finding(&unsubscribe, &dkim, incomplete);
        findings.push(unsubscribe_finding);
        findings.push(rule_finding(
            "msg.message-id",
            &message_id_rule,
            Severity::Fail,
        ));
        let mut date = rule_finding("msg.date", &date_rule, Severity::Fail);
        if date_future {
            // A valid date, but the sender's clock is off: worth knowing, not a failure.
            date.severity = Severity::Warn;
            date.fix = Some("Check the sending server's clock.".into());
        }
        findings.push(date);
        findings.push(rule_finding("msg.from", &from_rule, Severity::Fail));
        if let Some(f) = receivers_finding(&receivers, &spf.result, &dkim, &dmarc_result) {
            findings.push(f);
        }
        let status = Status::of(&findings);
        MessageVerdict {
            message_id,
            from: from_display,
            subject,
            spf: spf.result,
            dkim: dkim.into_iter().map(|p| p.result).collect(),
            dmarc: dmarc_result,
            arc,
            one_click_unsubscribe: one_click,
            receiver_results,
            findings,
            status,
            spf_inputs: inputs,
            dmarc_policy: dmarc.policy.map(str::to_string),
            receivers,
            dkim_not_verified: self.dkim_not_verified,
            error: None,
        }
    }

    /// The SPF inputs: the envelope's, else what the trace fields recorded.
    fn spf_inputs(&self) -> SpfInputs {
        let env = self.envelope;
        let mut inputs = SpfInputs::default();
        let given = |s: &str| Some(s.to_string());
        if let Some(ip) = env.ip {
            inputs.ip = Some(ip);
            inputs.ip_source = given("envelope");
        }
        if let Some(helo) = env.helo.as_deref().filter(|h| !h.trim().is_empty()) {
            inputs.helo = Some(helo.trim().to_string());
            inputs.helo_source = given("envelope");
        }
        if let Some(mail_from) = &env.mail_from {
            inputs.mail_from = Some(mail_from.trim().to_string());
            inputs.mail_from_source = given("envelope");
        }
        if inputs.ip.is_none() {
            let (hop, _) = headers::client_hop(self.headers);
            if let Some(hop) = hop {
                let source = format!("{} header #{}", hop.field, hop.position);
                inputs.ip = hop.ip;
                inputs.ip_source = Some(source.clone());
                if inputs.helo.is_none() && hop.helo.is_some() {
                    inputs.helo = hop.helo.clone();
                    inputs.helo_source = Some(source.clone());
                }
                if inputs.mail_from.is_none() {
                    if let Some(rp) = headers::return_path(self.headers) {
                        inputs.mail_from = Some(rp);
                        inputs.mail_from_source = given("Return-Path header");
                    } else if let Some(mf) = hop.mail_from.clone() {
                        inputs.mail_from = Some(mf);
                        inputs.mail_from_source = Some(source);
                    }
                }
            }
        }
        if inputs.mail_from.is_none() {
            if let Some(rp) = headers::return_path(self.headers) {
                inputs.mail_from = Some(rp);
                inputs.mail_from_source = given("Return-Path header");
            }
        }
        inputs
    }

    async fn spf(&self, inputs: &SpfInputs) -> SpfPart {
        let not_evaluated = |detail: String| SpfPart {
            result: MethodResult::new("none", None, detail),
            output: SpfOutput::new(String::new()).with_result(mail_auth::SpfResult::None),
            dmarc_domain: String::new(),
            evaluated: false,
        };
        let Some(ip) = inputs.ip else {
            return not_evaluated(
                "not evaluated: the client's IP address is unknown (give --ip, or verify a \
                 message with the receiver's Received header)"
                    .into(),
            );
        };
        let helo = inputs.helo.clone().unwrap_or_default();
        let (query, counts_for_dmarc, identity) = match inputs.mail_from.as_deref() {
            Some(mf) if !mf.trim_matches(['<', '>', ' ']).is_empty() => (
                SpfQuery::mail_from(ip, mf, &helo),
                true,
                format!("MAIL FROM {}", mf.trim_matches(['<', '>', ' '])),
            ),
            Some(_) if !helo.is_empty() => (
                SpfQuery::helo(ip, &helo),
                true,
                format!("HELO {helo} (null MAIL FROM)"),
            ),
            None if !helo.is_empty() => (
                SpfQuery::helo(ip, &helo),
                false,
                format!("HELO {helo} (MAIL FROM unknown, so DMARC does not use SPF)"),
            ),
            _ => {
                return not_evaluated(format!(
                    "not evaluated: client {ip} but no MAIL FROM or HELO name (give \
                     --mail-from/--helo)"
                ))
            }
        };
        let evaluation: SpfEvaluation = spf_evaluate(self.resolver, &query).await;
        let result = evaluation.verdict.result;
        let mut detail = format!("{} for {identity} from {ip} ({})", result, sources(inputs));
        if let Some(note) = &evaluation.note {
            detail.push_str(&format!("; {note}"));
        }
        if let Some(exp) = &evaluation.verdict.explanation {
            detail.push_str(&format!("; the domain explains: \"{exp}\""));
        }
        let domain = query.domain.trim_end_matches('.').to_ascii_lowercase();
        SpfPart {
            result: MethodResult::new(result.as_str(), Some(domain.clone()), detail),
            output: SpfOutput::new(domain.clone()).with_result(to_mail_auth(result)),
            dmarc_domain: if counts_for_dmarc {
                domain
            } else {
                String::new()
            },
            evaluated: true,
        }
    }

    fn dkim_parts(&self, cache: &RecordCache, outputs: &[DkimOutput<'_>]) -> Vec<DkimPart> {
        let raw_start = self.message.raw_message.as_ptr() as usize;
        let mut parts: Vec<(usize, DkimPart)> = Vec::new();
        // Malformed signatures (mail-auth reports only some of them).
        let malformed = self
            .message
            .errors
            .iter()
            .filter(|e| {
                e.name
                    .trim_ascii_end()
                    .eq_ignore_ascii_case(b"DKIM-Signature")
            })
            .take(MAX_DKIM_SIGNATURES);
        for error in malformed {
            let value = headers::unfold(error.value);
            let d = tag_value(&value, "d");
            let (result, why) = match &error.header {
                Error::Dkim(DkimError::SignatureLength) => (
                    "permerror",
                    "it has an l= (body length) tag; mailshift, like mail-auth and most \
                     receivers, does not accept signatures that cover only part of the body"
                        .to_string(),
                ),
                e => (
                    "permerror",
                    format!("malformed DKIM-Signature: {}", describe(e, None)),
                ),
            };
            parts.push((
                error.value.as_ptr() as usize - raw_start,
                DkimPart {
                    result: MethodResult::new(
                        result,
                        d,
                        format!(
                            "s={}: {why}",
                            tag_value(&value, "s").unwrap_or_else(|| "?".into())
                        ),
                    ),
                    output: None,
                    covered: Vec::new(),
                },
            ));
        }
        for (i, output) in outputs.iter().enumerate() {
            let Some(sig) = output.signature() else {
                continue;
            };
            let name = crate::evaluate::dkim::key_name(sig);
            let key = cache.domain_key(&name);
            let record = cache
                .answer(&Question::Txt(TxtKind::DomainKey, name.clone()))
                .and_then(|a| a.txt_strings().into_iter().next());
            let alg = match sig.a {
                Algorithm::RsaSha1 => "rsa-sha1",
                Algorithm::RsaSha256 => "rsa-sha256",
                Algorithm::Ed25519Sha256 => "ed25519-sha256",
            };
            let bits = key.as_ref().map(|k| match k.p.public_key_bits() {
                usize::MAX => "Ed25519 key".to_string(),
                b => format!("{b}-bit key"),
            });
            let canon = |c: Canonicalization| match c {
                Canonicalization::Relaxed => "relaxed",
                Canonicalization::Simple => "simple",
            };
            let mut head = format!(
                "s={} {alg}{} c={}/{}",
                sig.s,
                bits.map_or(String::new(), |b| format!(" ({b})")),
                canon(sig.ch),
                canon(sig.cb)
            );
            let (mut result, mut why) = dkim_outcome(output.result(), &name, sig.x);
            if result == "pass" {
                let flags = record.as_deref().map(KeyFlags::of).unwrap_or_default();
                if sig.a == Algorithm::RsaSha1 {
                    result = "permerror";
                    why = "the signature verifies, but rsa-sha1 must not be accepted (RFC 8301)"
                        .into();
                } else if flags.not_for_email {
                    result = "permerror";
                    why = "the signature verifies, but the key's s= excludes email (RFC 6376 \
                           §3.6.1)"
                        .into();
                } else if flags.sha1_only {
                    result = "permerror";
                    why = "the signature verifies, but the key's h= does not allow sha256 \
                           (RFC 6376 §3.6.1)"
                        .into();
                } else if flags.testing {
                    why = "verified (the key is in testing mode, t=y: receivers may treat the \
                           message as unsigned)"
                        .into();
                }
            }
            head.push_str(&format!(": {why}"));
            let position = self
                .message
                .dkim_headers
                .iter()
                .find(|h| std::ptr::eq(&h.header, sig))
                .map_or(usize::MAX, |h| h.value.as_ptr() as usize - raw_start);
            parts.push((
                position,
                DkimPart {
                    result: MethodResult::new(result, Some(sig.d.to_ascii_lowercase()), head),
                    output: Some(i),
                    covered: sig.h.iter().map(|h| h.to_ascii_lowercase()).collect(),
                },
            ));
        }
        parts.sort_by_key(|(position, _)| *position);
        parts.into_iter().map(|(_, p)| p).collect()
    }
}

/// `IP from envelope, HELO from Received header #1, MAIL FROM from Return-Path header`.
fn sources(inputs: &SpfInputs) -> String {
    let mut parts = Vec::new();
    if let Some(s) = &inputs.ip_source {
        parts.push(format!("IP from {s}"));
    }
    if let Some(s) = &inputs.helo_source {
        parts.push(format!("HELO from {s}"));
    }
    if let Some(s) = &inputs.mail_from_source {
        parts.push(format!("MAIL FROM from {s}"));
    }
    parts.join(", ")
}

fn to_mail_auth(result: SpfResult) -> mail_auth::SpfResult {
    match result {
        SpfResult::Pass => mail_auth::SpfResult::Pass,
        SpfResult::Fail => mail_auth::SpfResult::Fail,
        SpfResult::SoftFail => mail_auth::SpfResult::SoftFail,
        SpfResult::Neutral => mail_auth::SpfResult::Neutral,
        SpfResult::None => mail_auth::SpfResult::None,
        SpfResult::TempError => mail_auth::SpfResult::TempError,
        SpfResult::PermError => mail_auth::SpfResult::PermError,
    }
}

/// A DKIM result as an RFC 8601 result word, and why, in plain words.
fn dkim_outcome(result: &DkimResult, key: &str, x: u64) -> (&'static str, String) {
    match result {
        DkimResult::Pass => ("pass", "verified".into()),
        DkimResult::Fail(e) => ("fail", describe(e, Some(key))),
        DkimResult::Neutral(Error::Dkim(DkimError::FailedBodyHashMatch)) => (
            "fail",
            "body hash mismatch: the body was changed after signing".into(),
        ),
        DkimResult::Neutral(Error::Dkim(DkimError::SignatureExpired)) => (
            "fail",
            if x > 0 {
                format!("the signature expired (x={x})")
            } else {
                "the signature expired".into()
            },
        ),
        DkimResult::Neutral(e) => ("permerror", describe(e, Some(key))),
        DkimResult::PermError(e) => ("permerror", describe(e, Some(key))),
        DkimResult::TempError(e) => ("temperror", describe(e, Some(key))),
        DkimResult::None => ("none", "not checked".into()),
    }
}

/// An error from mail-auth in plain words.
fn describe(error: &Error, key: Option<&str>) -> String {
    let key = key.unwrap_or("the key");
    match error {
        Error::Crypto(mail_auth::common::crypto::CryptoError::FailedVerification) => {
            "the signature does not verify: signed header fields were changed, or the key does \
             not match"
                .into()
        }
        Error::Crypto(e) => format!("the key cannot verify this signature ({e})"),
        Error::Dkim(DkimError::FailedBodyHashMatch) => {
            "body hash mismatch: the body was changed after signing".into()
        }
        Error::Dkim(DkimError::FailedAuidMatch) => "i= is not within d= (or the key's t=s \
             forbids subdomains)"
            .into(),
        Error::Dkim(DkimError::RevokedPublicKey) => {
            format!("the key at {key} is revoked (empty p=)")
        }
        Error::Dkim(DkimError::UnsupportedKeyType) => {
            format!("the key at {key} has an unknown key type (k=)")
        }
        Error::Dkim(DkimError::UnsupportedAlgorithm) => "unsupported signing algorithm".into(),
        Error::Dkim(DkimError::UnsupportedVersion) => "unsupported DKIM version (v=)".into(),
        Error::Dkim(DkimError::UnsupportedCanonicalization) => {
            "unsupported canonicalization (c=)".into()
        }
        Error::Dkim(DkimError::SignatureExpired) => "the signature expired".into(),
        Error::Dkim(DkimError::SignatureLength) => "l= (body length) signatures are not \
             accepted"
            .into(),
        Error::Dns(DnsError::RecordNotFound(_)) => format!(
            "no key at {key} (the name does not \
             exist or has no TXT record)"
        ),
        Error::Dns(DnsError::InvalidRecordType) => {
            format!("no valid DKIM key record at {key}")
        }
        Error::Dns(DnsError::Resolver(reason)) if reason.contains("no connections") => {
            format!("the lookup of {key} could not be completed")
        }
        Error::Dns(DnsError::Resolver(reason)) => format!("the lookup of {key} failed: {reason}"),
        Error::ParseError => "malformed (cannot be parsed)".into(),
        Error::Base64 => "malformed base64 (b= or bh=)".into(),
        Error::MissingParameters => "required tags are missing".into(),
        Error::Arc(e) => e.to_string(),
        e => e.to_string(),
    }
}

/// The value of tag `name` in a tag list (`d=example.com; s=x`), trimmed.
fn tag_value(list: &str, name: &str) -> Option<String> {
    list.split(';').find_map(|piece| {
        let (n, v) = piece.split_once('=')?;
        (n.trim() == name).then(|| v.trim().to_ascii_lowercase())
    })
}

/// The restrictions of a DKIM key record that mail-auth does not apply (RFC 6376 §3.6.1).
#[derive(Debug, Default)]
struct KeyFlags {
    testing: bool,
    not_for_email: bool,
    sha1_only: bool,
}

impl KeyFlags {
    fn of(record: &str) -> KeyFlags {
        let (tags, _) = crate::records::tags::split_tags(record);
        let mut flags = KeyFlags::default();
        for tag in tags {
            let list = || tag.value.split(':').map(|v| v.trim().to_ascii_lowercase());
            match tag.name.as_str() {
                "t" => flags.testing = list().any(|v| v == "y"),
                "s" => flags.not_for_email = !list().any(|v| v == "*" || v == "email"),
                "h" => flags.sha1_only = !list().any(|v| v == "sha256"),
                _ => {}
            }
        }
        flags
    }
}

fn dmarc_method(dmarc: &DmarcEvaluation, spf: &SpfPart, dkim: &[DkimPart]) -> MethodResult {
    let mut detail = String::new();
    match (&dmarc.policy_domain, &dmarc.record) {
        (Some(domain), Some(record)) => {
            let p = crate::evaluate::dmarc::PolicySummary::of(domain, record);
            detail.push_str(&format!(
                "policy {} (record at _dmarc.{domain}: p={}{}{} adkim={} aspf={}{})",
                dmarc.policy.unwrap_or("none"),
                p.p.unwrap_or("?"),
                p.sp.filter(|sp| Some(*sp) != p.p)
                    .map_or(String::new(), |sp| format!(" sp={sp}")),
                p.np.filter(|np| Some(*np) != p.sp)
                    .map_or(String::new(), |np| format!(" np={np}")),
                p.adkim,
                p.aspf,
                if p.testing { " t=y" } else { "" }
            ));
            let aligned_dkim: Vec<&str> = dkim
                .iter()
                .filter(|p| p.result.result == "pass" && p.result.aligned == Some(true))
                .filter_map(|p| p.result.domain.as_deref())
                .collect();
            detail.push_str(&format!("; DKIM: {}", side(&dmarc.dkim)));
            if !aligned_dkim.is_empty() {
                detail.push_str(&format!(" ({})", aligned_dkim.join(", ")));
            }
            detail.push_str(&format!("; SPF: {}", side(&dmarc.spf)));
            if let Some(d) = &spf.result.domain {
                detail.push_str(&format!(" ({d})"));
            }
        }
        _ => match (&dmarc.from_domain, dmarc.result) {
            (Some(from), "none") => detail.push_str(&format!("no DMARC record for {from}")),
            (Some(from), "temperror") => {
                detail.push_str(&format!("the DMARC lookup for {from} failed"))
            }
            (_, _) => {}
        },
    }
    if let Some(note) = &dmarc.note {
        if !detail.is_empty() {
            detail.push_str("; ");
        }
        detail.push_str(note);
    }
    MethodResult {
        result: dmarc.result.to_string(),
        domain: dmarc.from_domain.clone(),
        aligned: match dmarc.result {
            "pass" => Some(true),
            "fail" => Some(false),
            _ => None,
        },
        detail,
    }
}

fn arc_method(output: Option<&ArcOutput<'_>>, has_arc: bool) -> MethodResult {
    let Some(output) = output.filter(|_| has_arc) else {
        return MethodResult::new("none", None, "no ARC headers");
    };
    let sets = output.sets();
    let last_domain = sets.last().map(|s| s.seal.header.d.to_ascii_lowercase());
    let chain = sets
        .iter()
        .map(|s| format!("i={} {}", s.seal.header.i, s.seal.header.d))
        .collect::<Vec<_>>()
        .join(", ");
    let chain = if chain.is_empty() {
        String::new()
    } else {
        format!(" (chain: {chain})")
    };
    let (result, why) = match output.result() {
        DkimResult::None => ("none", "no ARC sets".to_string()),
        DkimResult::Pass => ("pass", format!("the chain validates{chain}")),
        DkimResult::Fail(e) | DkimResult::Neutral(e) | DkimResult::PermError(e) => {
            ("fail", format!("{}{chain}", describe(e, None)))
        }
        DkimResult::TempError(e) => ("temperror", format!("{}{chain}", describe(e, None))),
    };
    MethodResult::new(result, last_domain, why)
}

fn spf_finding(spf: &SpfPart) -> Finding {
    let r = &spf.result;
    let severity = if !spf.evaluated {
        Severity::Info
    } else {
        match r.result.as_str() {
            "pass" => Severity::Pass,
            "temperror" => Severity::Inconclusive,
            _ => Severity::Fail,
        }
    };
    let message = match (spf.evaluated, r.result.as_str()) {
        (false, _) => "SPF was not evaluated: the SPF inputs are unknown.".to_string(),
        (true, "pass") => format!(
            "SPF passes for {}{}.",
            r.domain.as_deref().unwrap_or("?"),
            match r.aligned {
                Some(true) => ", aligned with the From domain",
                Some(false) => ", but not aligned with the From domain",
                None => "",
            }
        ),
        (true, "temperror") => "SPF could not be evaluated: a DNS lookup failed.".to_string(),
        (true, "none") => format!(
            "{} publishes no SPF record.",
            r.domain.as_deref().unwrap_or("the domain")
        ),
        (true, other) => format!(
            "SPF {other} for {}: the client is not authorised to send for it.",
            r.domain.as_deref().unwrap_or("?")
        ),
    };
    let mut f = Finding::new("msg.spf", severity, message).evidence(r.detail.clone());
    if severity == Severity::Fail {
        f = f.fix(
            "Authorise the sending IP in the SPF record of the return-path (MAIL FROM) domain, \
             or send through a platform whose return-path domain already does.",
        );
    }
    f
}

fn dkim_finding(dkim: &[DkimPart]) -> Finding {
    let evidence = dkim
        .iter()
        .map(|p| {
            format!(
                "d={} {}: {}",
                p.result.domain.as_deref().unwrap_or("?"),
                p.result.result,
                p.result.detail
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    let passing: Vec<&DkimPart> = dkim.iter().filter(|p| p.result.result == "pass").collect();
    if dkim.is_empty() {
        return Finding::new(
            "msg.dkim",
            Severity::Fail,
            "The message is not DKIM-signed; the bulk-sender rules require a DKIM signature.",
        )
        .fix("Have the sending platform sign with d= your domain (publish its DKIM records).");
    }
    if !passing.is_empty() {
        let names: Vec<String> = passing
            .iter()
            .map(|p| {
                format!(
                    "{}{}",
                    p.result.domain.as_deref().unwrap_or("?"),
                    if p.result.aligned == Some(true) {
                        " (aligned)"
                    } else {
                        ""
                    }
                )
            })
            .collect();
        let broken = dkim.len() - passing.len();
        return Finding::new(
            "msg.dkim",
            Severity::Pass,
            format!(
                "DKIM passes: {}{}.",
                names.join(", "),
                if broken > 0 {
                    format!("; {broken} other signature(s) do not")
                } else {
                    String::new()
                }
            ),
        )
        .evidence(evidence);
    }
    if dkim.iter().any(|p| p.result.result == "temperror") {
        return Finding::new(
            "msg.dkim",
            Severity::Inconclusive,
            "No DKIM signature passes, and a key lookup failed: the verdict is incomplete.",
        )
        .evidence(evidence);
    }
    Finding::new(
        "msg.dkim",
        Severity::Fail,
        format!(
            "No DKIM signature passes ({} signature{}).",
            dkim.len(),
            if dkim.len() == 1 { "" } else { "s" }
        ),
    )
    .evidence(evidence)
    .fix("Check the signing platform's DKIM records (selector and key) and that nothing modifies the message after signing.")
}

fn dmarc_finding(dmarc: &DmarcEvaluation, result: &MethodResult) -> Finding {
    let from = dmarc.from_domain.as_deref().unwrap_or("the From domain");
    let (severity, message, fix) = match dmarc.result {
        "pass" => (
            Severity::Pass,
            format!("DMARC passes for {from}."),
            None,
        ),
        "fail" => (
            Severity::Fail,
            format!(
                "DMARC fails for {from}: no SPF or DKIM pass is aligned with it (policy {}).",
                dmarc.policy.unwrap_or("none")
            ),
            Some("Sign with DKIM d= the From domain (or a subdomain), or use a return-path under it that SPF authorises."),
        ),
        "temperror" => (
            Severity::Inconclusive,
            format!("DMARC for {from} could not be evaluated: a DNS lookup failed."),
            None,
        ),
        "permerror" => (
            Severity::Fail,
            format!("DMARC for {from} could not be evaluated: the policy record is broken."),
            Some("Fix the _dmarc record (mailshift check shows what is wrong)."),
        ),
        _ if dmarc.from_domain.is_some() && dmarc.note.is_none() => (
            Severity::Fail,
            format!("{from} publishes no DMARC record; the bulk-sender rules require one."),
            Some("Publish a DMARC record, e.g. `_dmarc TXT \"v=DMARC1; p=none; rua=mailto:…\"`."),
        ),
        _ => (
            Severity::Fail,
            format!(
                "DMARC does not apply: {}.",
                dmarc.note.as_deref().unwrap_or("no From domain")
            ),
            None,
        ),
    };
    let mut f = Finding::new("msg.dmarc", severity, message).evidence(result.detail.clone());
    if let Some(fix) = fix {
        f = f.fix(fix);
    }
    f
}

fn arc_finding(arc: &MethodResult, has_arc: bool) -> Option<Finding> {
    if !has_arc {
        return None;
    }
    let severity = match arc.result.as_str() {
        "pass" => Severity::Pass,
        "temperror" => Severity::Inconclusive,
        "none" => Severity::Info,
        _ => Severity::Warn,
    };
    let message = match arc.result.as_str() {
        "pass" => "The ARC chain validates.".to_string(),
        "temperror" => "The ARC chain could not be validated: a key lookup failed.".to_string(),
        "none" => "No ARC chain.".to_string(),
        _ => {
            "The ARC chain is broken: receivers will not trust the forwarders' results.".to_string()
        }
    };
    Some(Finding::new("msg.arc", severity, message).evidence(arc.detail.clone()))
}

/// A failed finding that rests on DKIM, when some signatures were not verified: inconclusive,
/// because one of them might pass (and align, and cover the unsubscribe fields).
fn incomplete_dkim(mut finding: Finding, not_verified: usize) -> Finding {
    if not_verified > 0 && finding.severity == Severity::Fail {
        finding.severity = Severity::Inconclusive;
        finding.message = format!(
            "{} The verdict is incomplete: {not_verified} more DKIM signature(s) beyond the first \
             {MAX_DKIM_SIGNATURES} were not verified, and one of them might pass.",
            finding.message
        );
    }
    finding
}

/// RFC 8058: the https URI, the POST field, and a passing DKIM signature covering both.
fn one_click_finding(u: &Unsubscribe, dkim: &[DkimPart], not_verified: usize) -> (bool, Finding) {
    let id = "msg.one-click-unsubscribe";
    let mut evidence = Vec::new();
    if u.fields > 0 {
        evidence.push(format!(
            "List-Unsubscribe: {}",
            u.uris
                .iter()
                .map(|u| format!("<{u}>"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    for p in &u.post {
        evidence.push(format!("List-Unsubscribe-Post: {p}"));
    }
    let evidence = evidence.join("\n");
    let fix = "Add `List-Unsubscribe: <https://…>` and `List-Unsubscribe-Post: \
               List-Unsubscribe=One-Click`, and sign both with DKIM (h= must list them).";
    if u.fields == 0 && u.post.is_empty() {
        return (
            false,
            Finding::new(
                id,
                Severity::Warn,
                "No List-Unsubscribe field: marketing and subscribed messages must offer \
                 one-click unsubscribe (RFC 8058) under the bulk-sender rules.",
            )
            .fix(fix),
        );
    }
    let mut problems: Vec<String> = Vec::new();
    if u.fields > 1 {
        problems.push(format!(
            "{} List-Unsubscribe fields (there must be one)",
            u.fields
        ));
    }
    if u.https.is_none() {
        problems.push("List-Unsubscribe has no https URI".into());
    }
    if !u.one_click_post() {
        problems.push(match u.post.as_slice() {
            [] => "there is no List-Unsubscribe-Post field".to_string(),
            [p] => format!("List-Unsubscribe-Post is `{p}`, not `List-Unsubscribe=One-Click`"),
            many => format!(
                "{} List-Unsubscribe-Post fields (there must be one)",
                many.len()
            ),
        });
    }
    let covers = |p: &&DkimPart| {
        p.covered.iter().any(|h| h == "list-unsubscribe")
            && p.covered.iter().any(|h| h == "list-unsubscribe-post")
    };
    let covering = dkim
        .iter()
        .filter(covers)
        .find(|p| p.result.result == "pass");
    if covering.is_none() && problems.is_empty() {
        if dkim
            .iter()
            .filter(covers)
            .any(|p| p.result.result == "temperror")
        {
            // The signature that covers them could not be checked (its key lookup failed).
            return (
                false,
                Finding::new(
                    id,
                    Severity::Inconclusive,
                    "One-click unsubscribe (RFC 8058) is offered, but the DKIM signature that \
                     covers it could not be verified (a DNS lookup failed).",
                )
                .evidence(evidence),
            );
        }
        if not_verified > 0 {
            // Everything else is right; a signature that was not verified might cover both.
            return (
                false,
                incomplete_dkim(
                    Finding::new(
                        id,
                        Severity::Fail,
                        "One-click unsubscribe (RFC 8058) is offered, but none of the verified \
                         DKIM signatures passes and covers it.",
                    )
                    .evidence(evidence),
                    not_verified,
                ),
            );
        }
        problems.push(
            "no passing DKIM signature covers both List-Unsubscribe and List-Unsubscribe-Post \
             (RFC 8058 §4)"
                .into(),
        );
    }
    if problems.is_empty() {
        let by = covering
            .and_then(|p| p.result.domain.clone())
            .unwrap_or_default();
        return (
            true,
            Finding::new(
                id,
                Severity::Pass,
                format!("One-click unsubscribe (RFC 8058) is offered and signed by {by}."),
            )
            .evidence(evidence),
        );
    }
    // Only a mailto: link and no POST field: the old style, not one-click.
    let severity = if u.https.is_none() && u.post.is_empty() {
        Severity::Warn
    } else {
        Severity::Fail
    };
    (
        false,
        Finding::new(
            id,
            severity,
            format!(
                "One-click unsubscribe (RFC 8058) does not work: {}.",
                problems.join("; ")
            ),
        )
        .evidence(evidence)
        .fix(fix),
    )
}

fn rule_finding(id: &str, rule: &headers::Rule, failure: Severity) -> Finding {
    let severity = if rule.ok { Severity::Pass } else { failure };
    let mut message = rule.message.clone();
    if let Some(first) = message.get(..1) {
        message = first.to_uppercase() + &message[1..];
    }
    if !message.ends_with('.') {
        message.push('.');
    }
    let f = Finding::new(id, severity, message).evidence(rule.evidence.clone());
    if rule.ok {
        f
    } else {
        f.fix("Have the sending platform write exactly one valid From, Date and Message-ID field (RFC 5322 §3.6).")
    }
}

/// An informational finding when the latest receiver's Authentication-Results disagree with
/// mailshift's verdict (keys rotated since, a different SPF input, a receiver's own policy).
fn receivers_finding(
    receivers: &[ReceiverResults],
    spf: &MethodResult,
    dkim: &[DkimPart],
    dmarc: &MethodResult,
) -> Option<Finding> {
    let top = receivers.first()?;
    let ours_dkim = if dkim.iter().any(|p| p.result.result == "pass") {
        "pass"
    } else if dkim.is_empty() {
        "none"
    } else {
        "fail"
    };
    let mut differences = Vec::new();
    for (method, ours) in [
        ("spf", spf.result.as_str()),
        ("dkim", ours_dkim),
        ("dmarc", dmarc.result.as_str()),
    ] {
        if let Some(theirs) = top.result_of(method) {
            if theirs != ours {
                differences.push(format!("{method}: {theirs} there, {ours} here"));
            }
        }
    }
    if differences.is_empty() {
        return None;
    }
    Some(
        Finding::new(
            "msg.receiver-results",
            Severity::Info,
            format!(
                "The receiver {} reported different results ({}); DNS or keys may have changed \
                 since, or it saw other SPF inputs.",
                top.authserv_id,
                differences.join("; ")
            ),
        )
        .evidence(top.summary()),
    )
}

/// The verdict for input that is not a message.
pub fn error_verdict(reason: String) -> MessageVerdict {
    let none = |detail: &str| MethodResult::new("none", None, detail);
    let findings = vec![Finding::new(
        "msg.parse",
        Severity::Fail,
        format!("Not verified: {reason}."),
    )];
    MessageVerdict {
        message_id: None,
        from: None,
        subject: None,
        spf: none("not evaluated"),
        dkim: Vec::new(),
        dmarc: none("not evaluated"),
        arc: none("not evaluated"),
        one_click_unsubscribe: false,
        receiver_results: Vec::new(),
        findings,
        status: Status::Error,
        spf_inputs: SpfInputs::default(),
        dmarc_policy: None,
        receivers: Vec::new(),
        dkim_not_verified: 0,
        error: Some(reason),
    }
}

fn size_problem(raw: &[u8]) -> Option<String> {
    if raw.is_empty() {
        return Some("the input is empty".into());
    }
    let limit = crate::files::limits().get(crate::files::FileKind::Message);
    if raw.len() as u64 > limit {
        return Some(format!(
            "the message is {} ({} bytes), more than the {} mailshift verifies \
             (raise it with --max-file-size message=SIZE)",
            crate::files::show_size(raw.len() as u64),
            raw.len(),
            crate::files::show_size(limit)
        ));
    }
    None
}

/// The message with CRLF line endings: messages saved with LF endings (Unix mailboxes, test
/// vectors) are converted, as DKIM is computed on the wire form. Messages with any CRLF are
/// left alone.
pub fn wire_line_endings(raw: &[u8]) -> (Cow<'_, [u8]>, bool) {
    if !raw.contains(&b'\n') || raw.windows(2).any(|w| w == b"\r\n") {
        return (Cow::Borrowed(raw), false);
    }
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 32);
    for &b in raw {
        if b == b'\n' {
            out.push(b'\r');
        }
        out.push(b);
    }
    (Cow::Owned(out), true)
}

/// Why `raw` is not a message mailshift verifies, or `None`.
fn not_a_message(raw: &[u8]) -> Option<String> {
    let header_end = find(raw, b"\r\n\r\n").map(|p| p + 2);
    let head = &raw[..header_end.unwrap_or(raw.len())];
    if head.len() > MAX_HEADER_BYTES {
        return Some(format!(
            "the header section is larger than {} KiB",
            MAX_HEADER_BYTES >> 10
        ));
    }
    if head.contains(&0) {
        return Some("the header section contains binary data (NUL bytes)".into());
    }
    let first = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let first = first.strip_suffix(b"\r").unwrap_or(first);
    if first.is_empty() {
        return Some("the input has no header section (it starts with an empty line)".into());
    }
    let name_len = first.iter().position(|b| *b == b':');
    let valid_name = name_len.is_some_and(|n| {
        let name = first[..n].trim_ascii_end();
        !name.is_empty() && name.iter().all(|b| (33..=126).contains(b) && *b != b':')
    });
    if !valid_name {
        return Some(format!(
            "the first line is not a header field (`{}`)",
            headers::truncate(&String::from_utf8_lossy(first), 40)
        ));
    }
    None
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
