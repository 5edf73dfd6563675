//! Matching seeds sent to what arrived, and judging each one.
//!
//! A seed passes when it arrived within the plan's time limit with SPF, DKIM and DMARC passing
//! and aligned with the From domain, and with one-click unsubscribe present. Until the limit has
//! passed, a seed that has not arrived is *waiting* (inconclusive), not failed.
//!
//! Ids: `seed.ok`, `seed.not-sent`, `seed.waiting`, `seed.missing`, `seed.late`, `seed.spf`,
//! `seed.dkim`, `seed.dmarc`, `seed.unsubscribe`, `seed.tls`, `seed.message-format`,
//! `seed.inconclusive`.

use super::store::{Arrival, SentSeed, StoreError, StoreReader};
use crate::finding::{Finding, Severity, Status};
use serde::Serialize;
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// One seed's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct SeedOutcome {
    pub sent: SentSeed,
    /// The first arrival carrying the token.
    pub arrival: Option<ArrivalSummary>,
    pub status: Status,
    pub findings: Vec<Finding>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ArrivalSummary {
    pub id: i64,
    pub received_at: String,
    pub delay_seconds: Option<u64>,
    pub remote_ip: String,
    pub tls: bool,
    pub spf: String,
    pub dkim: String,
    pub dmarc: String,
    pub one_click_unsubscribe: bool,
}

fn parse_time(text: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(text).ok()
}

fn method(verdict: &Value, key: &str) -> (String, Option<bool>, String) {
    let v = &verdict[key];
    (
        v["result"].as_str().unwrap_or("none").to_string(),
        v["aligned"].as_bool(),
        v["detail"].as_str().unwrap_or_default().to_string(),
    )
}

/// What a seed store holds, judged now: the seeds sent (for one stage, or all), every arrival,
/// and each sent seed's outcome.
pub struct StoreResults {
    pub sent: Vec<SentSeed>,
    pub arrivals: Vec<Arrival>,
    pub outcomes: Vec<SeedOutcome>,
    /// Strangers' messages the store's quota dropped.
    pub dropped: super::store::Dropped,
}

/// Reads the store at `path` and judges its seeds (`None` when no store exists yet: nothing
/// was sent). `seed results` and the gate's `seed` requirement both read seeds this way.
pub fn load(
    path: &Path,
    stage: Option<&str>,
    within: Duration,
    redactor: &super::redact::Redactor,
) -> Result<Option<StoreResults>, StoreError> {
    let Some(reader) = StoreReader::open(path)? else {
        return Ok(None);
    };
    let mut sent = reader.sent(stage)?;
    // Replies are redacted before they are stored; a store written by an older version may
    // still hold an echoed secret, so they are redacted again on the way out.
    for s in &mut sent {
        s.relay_response = redactor.redact(&s.relay_response).into_owned();
    }
    let arrivals = reader.arrivals()?;
    let outcomes = evaluate(&sent, &arrivals, within, SystemTime::now());
    let dropped = reader.dropped()?;
    Ok(Some(StoreResults {
        sent,
        arrivals,
        outcomes,
        dropped,
    }))
}

/// Judges every sent seed against the arrivals.
pub fn evaluate(
    sent: &[SentSeed],
    arrivals: &[Arrival],
    within: Duration,
    now: SystemTime,
) -> Vec<SeedOutcome> {
    sent.iter()
        .map(|seed| {
            let arrival = arrivals
                .iter()
                .find(|a| a.token.as_deref() == Some(seed.token.as_str()));
            judge(seed, arrival, within, now)
        })
        .collect()
}

fn judge(
    seed: &SentSeed,
    arrival: Option<&Arrival>,
    within: Duration,
    now: SystemTime,
) -> SeedOutcome {
    let who = format!("seed {} to {}", seed.token, seed.recipient);
    let mut findings = Vec::new();
    let sent_at = parse_time(&seed.sent_at);
    let summary = arrival.map(|a| {
        let (spf, _, _) = method(&a.verdict, "spf");
        let (dmarc, _, _) = method(&a.verdict, "dmarc");
        let dkim = a.verdict["dkim"]
            .as_array()
            .map(|sigs| {
                sigs.iter()
                    .map(|s| {
                        format!(
                            "{}{}",
                            s["result"].as_str().unwrap_or("none"),
                            s["domain"]
                                .as_str()
                                .map_or(String::new(), |d| format!(" ({d})"))
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "none".into());
        let delay = match (sent_at, parse_time(&a.received_at)) {
            (Some(s), Some(r)) => Some(r.duration_since(s).unwrap_or_default().as_secs()),
            _ => None,
        };
        ArrivalSummary {
            id: a.id,
            received_at: a.received_at.clone(),
            delay_seconds: delay,
            remote_ip: a.remote_ip.clone(),
            tls: a.tls,
            spf,
            dkim,
            dmarc,
            one_click_unsubscribe: a.verdict["one_click_unsubscribe"]
                .as_bool()
                .unwrap_or(false),
        }
    });
    if !seed.accepted {
        findings.push(
            Finding::new("seed.not-sent", Severity::Fail, format!("The relay did not accept {who}: {}", seed.relay_response))
                .fix("Check the relay, credentials and From address in the plan's [seed] section, then send again."),
        );
    } else {
        match (arrival, &summary) {
            (None, _) => {
                let deadline = sent_at.map(|s| s + within);
                if deadline.is_some_and(|d| now < d) {
                    findings.push(Finding::new(
                        "seed.waiting",
                        Severity::Inconclusive,
                        format!(
                            "{who} has not arrived yet (sent {}, limit {} min).",
                            seed.sent_at,
                            within.as_secs() / 60
                        ),
                    ));
                } else {
                    findings.push(
                        Finding::new(
                            "seed.missing",
                            Severity::Fail,
                            format!(
                                "{who} did not arrive within {} minutes of being sent ({}): the platform dropped or delayed it, or the seed domain's MX does not reach the inbox.",
                                within.as_secs() / 60,
                                seed.sent_at
                            ),
                        )
                        .fix("Check the platform's activity log for the message, and that the seed domain's MX points at `mailshift seed inbox`."),
                    );
                }
            }
            (Some(a), Some(s)) => {
                if s.delay_seconds.is_some_and(|d| d > within.as_secs()) {
                    findings.push(Finding::new(
                        "seed.late",
                        Severity::Fail,
                        format!(
                            "{who} arrived after {} s, later than the limit of {} min.",
                            s.delay_seconds.unwrap_or(0),
                            within.as_secs() / 60
                        ),
                    ));
                }
                if a.status == "inconclusive" {
                    findings.push(Finding::new(
                        "seed.inconclusive",
                        Severity::Inconclusive,
                        format!("{who} arrived, but its verification could not be completed (a DNS lookup failed)."),
                    ));
                }
                let (spf, spf_aligned, spf_detail) = method(&a.verdict, "spf");
                if spf != "pass" || spf_aligned != Some(true) {
                    findings.push(
                        Finding::new(
                            "seed.spf",
                            Severity::Fail,
                            format!(
                                "{who}: SPF {spf}{} ({spf_detail}).",
                                if spf == "pass" { " but not aligned with the From domain" } else { "" }
                            ),
                        )
                        .fix("Set up the platform's return-path (bounce) domain under the From domain, and authorise its IPs in SPF."),
                    );
                }
                // Signatures beyond the verified ones might pass: what rests on DKIM is then
                // inconclusive, not failed.
                let dkim_severity = if a.verdict["dkim_not_verified"].as_u64().unwrap_or(0) > 0 {
                    Severity::Inconclusive
                } else {
                    Severity::Fail
                };
                // The verdict's own finding decides whether a failure is certain.
                let judged = |id: &str| {
                    let inconclusive = a.verdict["findings"].as_array().is_some_and(|fs| {
                        fs.iter()
                            .any(|f| f["id"] == id && f["severity"] == "inconclusive")
                    });
                    if inconclusive {
                        Severity::Inconclusive
                    } else {
                        Severity::Fail
                    }
                };
                let aligned_dkim = a.verdict["dkim"].as_array().is_some_and(|sigs| {
                    sigs.iter()
                        .any(|s| s["result"] == "pass" && s["aligned"] == true)
                });
                if !aligned_dkim {
                    findings.push(
                        Finding::new("seed.dkim", dkim_severity, format!("{who}: no DKIM signature passes with d= aligned to the From domain ({}).", s.dkim))
                            .fix("Publish the platform's DKIM records at the From domain so it signs with d=<your domain>."),
                    );
                }
                let (dmarc, _, dmarc_detail) = method(&a.verdict, "dmarc");
                if dmarc != "pass" {
                    findings.push(Finding::new(
                        "seed.dmarc",
                        judged("msg.dmarc"),
                        format!("{who}: DMARC {dmarc} ({dmarc_detail})."),
                    ));
                }
                if !s.one_click_unsubscribe {
                    findings.push(
                        Finding::new("seed.unsubscribe", judged("msg.one-click-unsubscribe"), format!("{who}: no one-click unsubscribe (RFC 8058) covered by a passing DKIM signature."))
                            .fix("Have the platform add List-Unsubscribe (https) and List-Unsubscribe-Post: List-Unsubscribe=One-Click, signed by DKIM."),
                    );
                }
                if !a.tls {
                    findings.push(Finding::new(
                        "seed.tls",
                        Severity::Warn,
                        format!("{who} arrived without TLS."),
                    ));
                }
                let format_problem = a.verdict["findings"].as_array().is_some_and(|fs| {
                    fs.iter().any(|f| {
                        matches!(
                            f["id"].as_str(),
                            Some("msg.message-id" | "msg.date" | "msg.from")
                        ) && f["severity"] == "fail"
                    })
                });
                if format_problem {
                    findings.push(Finding::new(
                        "seed.message-format",
                        Severity::Fail,
                        format!("{who}: the message breaks RFC 5322 (Message-ID, Date or From); see its verdict."),
                    ));
                }
                if findings.iter().all(|f| f.severity < Severity::Warn) {
                    findings.push(Finding::new(
                        "seed.ok",
                        Severity::Pass,
                        format!(
                            "{who} arrived after {} s: SPF, DKIM and DMARC pass and align, one-click unsubscribe present{}.",
                            s.delay_seconds.map_or("?".to_string(), |d| d.to_string()),
                            if a.tls { ", over TLS" } else { "" }
                        ),
                    ));
                }
                if a.tls {
                    findings.push(Finding::new(
                        "seed.tls",
                        Severity::Pass,
                        format!("{who} arrived over TLS."),
                    ));
                }
            }
            (Some(_), None) => {}
        }
    }
    SeedOutcome {
        status: Status::of(&findings),
        sent: seed.clone(),
        arrival: summary,
        findings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(token: &str, at: &str) -> SentSeed {
        SentSeed {
            token: token.into(),
            stage: "seed".into(),
            recipient: "s@seeds.test".into(),
            from: "news@ex.test".into(),
            message_id: format!("<{token}@ex.test>"),
            sent_at: at.into(),
            relay_response: "250 ok".into(),
            accepted: true,
        }
    }

    fn arrival(token: &str, at: &str, verdict: Value) -> Arrival {
        Arrival {
            id: 1,
            token: Some(token.into()),
            received_at: at.into(),
            remote_ip: "127.0.0.1".into(),
            helo: "relay.test".into(),
            mail_from: "b@ex.test".into(),
            rcpt: "s@seeds.test".into(),
            tls: true,
            size: 100,
            status: "pass".into(),
            verdict,
        }
    }

    fn good() -> Value {
        serde_json::json!({
            "spf": {"result": "pass", "aligned": true, "detail": ""},
            "dkim": [{"result": "pass", "aligned": true, "domain": "ex.test"}],
            "dmarc": {"result": "pass", "detail": ""},
            "one_click_unsubscribe": true,
            "findings": []
        })
    }

    fn ids(o: &SeedOutcome) -> Vec<&str> {
        o.findings.iter().map(|f| f.id.as_str()).collect()
    }

    #[test]
    fn judges_arrivals_waiting_missing_and_failures() {
        let now = parse_time("2026-11-25T10:10:00Z").unwrap();
        let within = Duration::from_secs(30 * 60);
        let seeds = [
            sent("a", "2026-11-25T10:00:00Z"),
            sent("b", "2026-11-25T10:00:00Z"),
            sent("c", "2026-11-25T09:00:00Z"),
            sent("d", "2026-11-25T10:00:00Z"),
        ];
        let mut bad = good();
        bad["dkim"][0]["aligned"] = Value::Bool(false);
        bad["one_click_unsubscribe"] = Value::Bool(false);
        let arrivals = [
            arrival("a", "2026-11-25T10:00:05Z", good()),
            arrival("d", "2026-11-25T10:00:05Z", bad),
        ];
        let out = evaluate(&seeds, &arrivals, within, now);
        assert_eq!(out[0].status, Status::Pass, "{:?}", ids(&out[0]));
        assert_eq!(out[0].arrival.as_ref().unwrap().delay_seconds, Some(5));
        assert_eq!(ids(&out[1]), ["seed.waiting"]);
        assert_eq!(out[1].status, Status::Inconclusive);
        assert_eq!(ids(&out[2]), ["seed.missing"]);
        assert_eq!(out[3].status, Status::Fail);
        assert!(ids(&out[3]).contains(&"seed.dkim") && ids(&out[3]).contains(&"seed.unsubscribe"));
    }
}
