//! Recognising an evidence file's format from its first bytes, so `--kind` is needed only for a
//! file that says too little about itself (an empty one).
//!
//! JSON is told apart by the field names of its first record (`sg_event_id` or `event` with
//! `email`: SendGrid; `eventType`, `notificationType` or an SNS notification: SES; a
//! `trafficStats` list or a `domains/…/trafficStats/…` name: Postmaster Tools; `sent` with
//! `day`: metrics) or by the list it is wrapped in (`{"metrics": […]}`, `{"trafficStats": […]}`).
//! CSV is told apart by its first line: a header with `day` (or `date`) and `sent` is metrics; a
//! row that starts with an IP address (SNDS exports have no header) or an `IP Address` header is
//! SNDS.

use super::input::{self, JsonRecords};
use super::EvidenceKind;

/// Why a file's format could not be recognised.
pub(super) enum Unknown {
    /// Not UTF-8: the offset of the first bad byte.
    NotText(usize),
    Format(String),
}

const FORMATS: &str = "metrics CSV/JSON, SendGrid events, Amazon SES events, Postmaster Tools traffic stats, SNDS CSV";

/// The kind of the file that starts with `head`.
pub(super) fn kind(head: &[u8]) -> Result<EvidenceKind, Unknown> {
    let text = input::without_bom(head);
    if let Err(e) = std::str::from_utf8(text) {
        // A multi-byte character cut by the end of the head is not an error.
        if e.error_len().is_some() {
            return Err(Unknown::NotText(e.valid_up_to()));
        }
    }
    let start = text
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(text.len());
    let text = text.get(start..).unwrap_or_default();
    match text.first() {
        None => Err(Unknown::Format(format!(
            "the file is empty: nothing tells its format (give --kind; formats: {FORMATS})"
        ))),
        Some(b'[' | b'{') => json_kind(text),
        Some(_) => csv_kind(text),
    }
}

fn json_kind(text: &[u8]) -> Result<EvidenceKind, Unknown> {
    let mut records = JsonRecords::new(text, &["metrics", "trafficStats"]);
    let object: Option<serde_json::Map<String, serde_json::Value>> = match records.next_record() {
        Ok(Some(record)) => record
            .text
            .ok()
            .and_then(|t| serde_json::from_slice(t).ok()),
        _ => None,
    };
    match records.wrapper {
        Some("metrics") => return Ok(EvidenceKind::Metrics),
        Some(_) => return Ok(EvidenceKind::Postmaster),
        None => {}
    }
    let Some(object) = object else {
        return Err(Unknown::Format(format!(
            "JSON, but its first record is not an object mailshift can read (formats: {FORMATS}; give --kind to see why)"
        )));
    };
    let has = |key: &str| object.contains_key(key);
    if has("sg_event_id") || (has("event") && has("email")) {
        return Ok(EvidenceKind::SendGrid);
    }
    if has("eventType") || has("notificationType") || (has("Type") && has("Message")) {
        return Ok(EvidenceKind::Ses);
    }
    let named_stats = object
        .get("name")
        .and_then(|n| n.as_str())
        .is_some_and(|n| n.starts_with("domains/") && n.contains("/trafficStats/"));
    if named_stats || has("domainReputation") || has("userReportedSpamRatio") {
        return Ok(EvidenceKind::Postmaster);
    }
    if has("sent") && (has("day") || has("date")) {
        return Ok(EvidenceKind::Metrics);
    }
    let mut keys: Vec<&str> = object.keys().map(String::as_str).take(8).collect();
    keys.sort_unstable();
    Err(Unknown::Format(format!(
        "JSON with fields {} is none of the formats mailshift reads ({FORMATS}); give --kind if it is one",
        keys.join(", ")
    )))
}

fn csv_kind(text: &[u8]) -> Result<EvidenceKind, Unknown> {
    let line = text.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let fields = super::metrics::csv_fields(line.trim_end_matches('\r')).unwrap_or_default();
    let names: Vec<String> = fields.iter().map(|f| super::metrics::column(f)).collect();
    let named = |n: &str| names.iter().any(|x| x == n);
    if named("sent") && (named("day") || named("date")) {
        return Ok(EvidenceKind::Metrics);
    }
    let first = fields.first().map(|f| f.trim()).unwrap_or_default();
    if first.parse::<std::net::IpAddr>().is_ok()
        || matches!(names.first().map(String::as_str), Some("ip_address" | "ip"))
    {
        return Ok(EvidenceKind::Snds);
    }
    Err(Unknown::Format(format!(
        "the first line is neither a metrics header (day,cohort,provider,sent,…) nor an SNDS row; formats: {FORMATS} (give --kind if it is one)"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sniffed(text: &str) -> Result<EvidenceKind, String> {
        kind(text.as_bytes()).map_err(|e| match e {
            Unknown::NotText(at) => format!("not text at {at}"),
            Unknown::Format(m) => m,
        })
    }

    #[test]
    fn each_format_is_recognised_from_its_first_record() {
        use EvidenceKind::*;
        let cases = [
            (r#"[{"email":"a@gmail.com","timestamp":1,"event":"processed","sg_event_id":"x"}]"#, SendGrid),
            ("{\"email\":\"a@gmail.com\",\"event\":\"open\"}\n{\"email\":", SendGrid),
            (r#"{"eventType":"Send","mail":{}}"#, Ses),
            (r#"{"Type":"Notification","MessageId":"m","Message":"{\"eventType\":\"Bounce\"}"}"#, Ses),
            (r#"{"notificationType":"Delivery","mail":{}}"#, Ses),
            ("{\n \"trafficStats\": [\n  {\"name\": \"domains/a.example/trafficStats/20261201\"}", Postmaster),
            (r#"{"name":"domains/a.example/trafficStats/20261201","domainReputation":"HIGH"}"#, Postmaster),
            (r#"{"metrics":[{"day":"2026-11-02"}]}"#, Metrics),
            (r#"[{"day":"2026-11-02","cohort":"rest","provider":"gmail","sent":1}]"#, Metrics),
            ("\u{feff}Day,Cohort,Provider,Sent,Delivered\n", Metrics),
            ("198.51.100.25,11/30/2026 4:00 PM,12/1/2026 3:00 PM,10,10,10,GREEN,< 0.1%,,,0,mta.example,,\n", Snds),
            ("IP Address,Activity period start\n", Snds),
        ];
        for (text, expected) in cases {
            assert_eq!(sniffed(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn what_is_not_evidence_says_so() {
        assert!(sniffed("  \n").unwrap_err().contains("empty"));
        assert!(sniffed("name,email\nAnn,a@b.example\n")
            .unwrap_err()
            .contains("neither a metrics header"));
        assert!(sniffed(r#"{"id": 1, "title": "x"}"#)
            .unwrap_err()
            .contains("fields id, title"));
        assert_eq!(
            kind(b"day,sent\xff\xfe\n")
                .err()
                .map(|e| matches!(e, Unknown::NotText(8))),
            Some(true)
        );
        // A character cut by the end of the head is not a reason to refuse the file.
        assert_eq!(
            kind(
                "day,sent,cohort\nx,\u{e9}"
                    .as_bytes()
                    .split_last()
                    .unwrap()
                    .1
            )
            .ok(),
            Some(EvidenceKind::Metrics)
        );
    }
}
