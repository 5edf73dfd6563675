//! SMTP TLS reports (RFC 8460): the JSON a receiver sends about the TLS sessions it had with a
//! domain's MX hosts, one summary per policy (MTA-STS, DANE TLSA, none found).
//!
//! Parsed with serde into lenient types rather than `mail_auth`'s, because those drop what
//! mailshift wants kept as written (an unknown `result-type` or policy type, counts above
//! `u32`, `mx-host` given as one string instead of a list). A report is small, so it is read
//! whole, under [`MAX_JSON`]; text values are cut at [`super::dmarc::MAX_TEXT`] bytes.

use serde::Deserialize;

/// The largest TLS report read (its JSON, after decompression).
pub const MAX_JSON: u64 = 64 << 20;

/// One TLS report, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsReport {
    pub org_name: String,
    pub report_id: String,
    pub contact: Option<String>,
    /// Unix seconds.
    pub begin: Option<i64>,
    pub end: Option<i64>,
    pub policies: Vec<TlsPolicy>,
}

/// One policy's summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsPolicy {
    /// `sts`, `tlsa`, `no-policy-found`, or another value as written (lower case).
    pub policy_type: String,
    pub policy_domain: String,
    /// JSON array of the MX host patterns.
    pub mx_hosts: String,
    /// JSON array of the policy's lines.
    pub policy_strings: String,
    pub success: u64,
    pub failure: u64,
    /// JSON array of the failure details, as the report gives them.
    pub failure_details: String,
}

#[derive(Deserialize)]
struct Json {
    #[serde(rename = "organization-name", default)]
    organization_name: Option<String>,
    #[serde(rename = "date-range", default)]
    date_range: Option<JsonRange>,
    #[serde(rename = "contact-info", default)]
    contact_info: Option<String>,
    #[serde(rename = "report-id", default)]
    report_id: Option<String>,
    policies: Vec<JsonPolicy>,
}

#[derive(Deserialize)]
struct JsonRange {
    #[serde(rename = "start-datetime", default)]
    start: Option<String>,
    #[serde(rename = "end-datetime", default)]
    end: Option<String>,
}

#[derive(Deserialize)]
struct JsonPolicy {
    policy: JsonPolicyDetails,
    #[serde(default)]
    summary: JsonSummary,
    #[serde(rename = "failure-details", default)]
    failure_details: serde_json::Value,
}

#[derive(Deserialize)]
struct JsonPolicyDetails {
    #[serde(rename = "policy-type", default)]
    policy_type: Option<String>,
    #[serde(rename = "policy-string", default)]
    policy_string: serde_json::Value,
    #[serde(rename = "policy-domain", default)]
    policy_domain: Option<String>,
    #[serde(rename = "mx-host", default)]
    mx_host: serde_json::Value,
}

#[derive(Deserialize, Default)]
struct JsonSummary {
    #[serde(rename = "total-successful-session-count", default)]
    success: u64,
    #[serde(rename = "total-failure-session-count", default)]
    failure: u64,
}

/// A text value cut at [`super::dmarc::MAX_TEXT`] bytes, trimmed.
fn capped(text: &str) -> String {
    let t = text.trim();
    let mut cut = t.len().min(super::dmarc::MAX_TEXT);
    while !t.is_char_boundary(cut) {
        cut -= 1;
    }
    t.get(..cut).unwrap_or_default().to_string()
}

/// An RFC 3339 time as Unix seconds.
fn seconds(text: Option<&str>) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(text?.trim())
        .ok()
        .map(|t| t.timestamp())
}

/// A JSON value as a JSON array: a list as it is, one string as a list of one, nothing as `[]`.
fn list(value: serde_json::Value) -> String {
    match value {
        serde_json::Value::Null => "[]".to_string(),
        serde_json::Value::Array(_) => value.to_string(),
        other => serde_json::Value::Array(vec![other]).to_string(),
    }
}

/// Parses one report's JSON.
pub fn parse(bytes: &[u8]) -> Result<TlsReport, String> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let json: Json = serde_json::from_slice(bytes).map_err(|e| {
        format!(
            "not an SMTP TLS report (RFC 8460): {}",
            crate::warmup::import::json_message(&e)
        )
    })?;
    let report_id = json.report_id.as_deref().map(capped).unwrap_or_default();
    if report_id.is_empty() {
        return Err("the TLS report has no report-id: it cannot be told apart from others".into());
    }
    let (begin, end) = match &json.date_range {
        Some(r) => (seconds(r.start.as_deref()), seconds(r.end.as_deref())),
        None => (None, None),
    };
    let policies = json
        .policies
        .into_iter()
        .map(|p| TlsPolicy {
            policy_type: p
                .policy
                .policy_type
                .as_deref()
                .map(|t| capped(t).to_lowercase())
                .unwrap_or_default(),
            policy_domain: p
                .policy
                .policy_domain
                .as_deref()
                .map(|d| capped(d).to_lowercase())
                .unwrap_or_default(),
            mx_hosts: list(p.policy.mx_host),
            policy_strings: list(p.policy.policy_string),
            success: p.summary.success,
            failure: p.summary.failure,
            failure_details: list(p.failure_details),
        })
        .collect();
    Ok(TlsReport {
        org_name: json
            .organization_name
            .as_deref()
            .map(capped)
            .unwrap_or_default(),
        report_id,
        contact: json
            .contact_info
            .as_deref()
            .map(capped)
            .filter(|c| !c.is_empty()),
        begin,
        end,
        policies,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_is_kept_per_policy_and_lenient_where_reporters_differ() {
        let report = parse(
            br#"{"organization-name":"Ex","date-range":{"start-datetime":"2016-04-01T00:00:00Z","end-datetime":"2016-04-01T23:59:59Z"},
            "contact-info":null,"report-id":"r+","policies":[
            {"policy":{"policy-type":"STS","policy-domain":"Example.com","mx-host":"mx.example.com","policy-string":["version: STSv1"]},
             "summary":{"total-successful-session-count":5326,"total-failure-session-count":303},
             "failure-details":[{"result-type":"something-new","failed-session-count":3}]},
            {"policy":{"policy-type":"no-policy-found","policy-domain":"example.com"},"summary":{"total-successful-session-count":1}}]}"#,
        )
        .unwrap();
        assert_eq!(report.begin, Some(1459468800));
        assert_eq!(report.contact, None);
        assert_eq!(report.policies.len(), 2);
        let sts = &report.policies[0];
        assert_eq!(sts.policy_type, "sts");
        assert_eq!(sts.policy_domain, "example.com");
        assert_eq!(sts.mx_hosts, r#"["mx.example.com"]"#);
        assert_eq!((sts.success, sts.failure), (5326, 303));
        assert!(sts.failure_details.contains("something-new"));
        assert_eq!(report.policies[1].failure_details, "[]");
        assert!(parse(b"{\"policies\":[]}")
            .unwrap_err()
            .contains("report-id"));
        assert!(parse(b"{\"day\":1}")
            .unwrap_err()
            .contains("not an SMTP TLS report"));
    }
}
