//! SMTP TLS Reporting (RFC 8460 §3): the `_smtp._tls` TXT record that says where senders
//! send their daily reports of TLS failures: `v=TLSRPTv1; rua=mailto:...,https://...`.
//!
//! As with MTA-STS, only records that begin with `v=TLSRPTv1` count, and exactly one must.

/// One report destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportUri {
    /// A `mailto:` address.
    Mailto(String),
    /// An `https:` endpoint reports are POSTed to.
    Https(String),
}

/// A parsed `_smtp._tls` record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsRptRecord {
    pub rua: Vec<ReportUri>,
    pub problems: Vec<String>,
}

impl TlsRptRecord {
    pub fn is_valid(&self) -> bool {
        self.problems.is_empty() && !self.rua.is_empty()
    }
}

/// True when a TXT string is an attempt at a TLS-RPT record.
pub fn is_tls_rpt_record(txt: &str) -> bool {
    super::tags::begins_with_version(txt, "TLSRPTv1")
}

/// Parses a `_smtp._tls` TXT record.
pub fn parse_record(txt: &str) -> TlsRptRecord {
    let mut record = TlsRptRecord::default();
    let mut seen_rua = false;
    for (i, raw) in txt.split(';').enumerate() {
        let field = raw.trim_matches(|c| c == ' ' || c == '\t');
        if field.is_empty() {
            continue;
        }
        let Some((key, value)) = field.split_once('=') else {
            record
                .problems
                .push(format!("`{field}` is not a `key=value` field"));
            continue;
        };
        let key = key.trim_matches(|c| c == ' ' || c == '\t');
        let value = value.trim_matches(|c| c == ' ' || c == '\t');
        match (i, key) {
            (0, "v") if value == "TLSRPTv1" => {}
            (0, "v") => record
                .problems
                .push(format!("the version is `{value}`; it must be `TLSRPTv1`")),
            (0, _) => record.problems.push(format!(
                "the record must begin with `v=TLSRPTv1`, not `{field}` (senders ignore it)"
            )),
            (_, "rua") if seen_rua => record.problems.push("`rua` appears more than once".into()),
            (_, "rua") => {
                seen_rua = true;
                for uri in value.split(',') {
                    let uri = uri.trim_matches(|c| c == ' ' || c == '\t');
                    match parse_uri(uri) {
                        Ok(parsed) => record.rua.push(parsed),
                        Err(why) => record.problems.push(why),
                    }
                }
            }
            _ => {}
        }
    }
    if !seen_rua {
        record
            .problems
            .push("the record has no `rua` field: reports have nowhere to go".into());
    }
    record
}

fn parse_uri(uri: &str) -> Result<ReportUri, String> {
    let lower = uri.to_ascii_lowercase();
    if let Some(address) = lower
        .strip_prefix("mailto:")
        .map(|_| uri.get(7..).unwrap_or_default())
    {
        let address = address.split('?').next().unwrap_or_default();
        let valid = address.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && crate::domain::DomainName::parse(domain).is_ok()
        });
        return if valid {
            Ok(ReportUri::Mailto(address.to_string()))
        } else {
            Err(format!("`{uri}` is not a valid mailto: address"))
        };
    }
    if lower.starts_with("https://") {
        let parsed = reqwest::Url::parse(uri).ok();
        let host = parsed
            .as_ref()
            .and_then(|u| u.host_str())
            .unwrap_or_default();
        return if crate::domain::DomainName::parse(host).is_ok() && host.contains('.') {
            Ok(ReportUri::Https(uri.to_string()))
        } else {
            Err(format!("`{uri}` is not a valid https: URL"))
        };
    }
    if uri.is_empty() {
        return Err("an empty report address in `rua`".into());
    }
    Err(format!(
        "`{uri}` is neither a mailto: nor an https: address (RFC 8460 allows only those)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records() {
        let r =
            parse_record("v=TLSRPTv1; rua=mailto:tls@example.com,https://tlsrpt.example.net/v1");
        assert!(r.is_valid(), "{r:?}");
        assert_eq!(
            r.rua,
            [
                ReportUri::Mailto("tls@example.com".into()),
                ReportUri::Https("https://tlsrpt.example.net/v1".into())
            ]
        );
        assert!(parse_record("v=TLSRPTv1;rua=mailto:tls@example.com;").is_valid());
        assert!(!parse_record("v=TLSRPTv1;").is_valid());
        assert!(!parse_record("rua=mailto:a@example.com; v=TLSRPTv1").is_valid());
        assert!(!parse_record("v=TLSRPTv2; rua=mailto:a@example.com").is_valid());
        let http = parse_record("v=TLSRPTv1; rua=http://example.com/report");
        assert!(http.problems[0].contains("neither a mailto: nor an https:"));
        assert!(!parse_record("v=TLSRPTv1; rua=mailto:nobody").is_valid());
        assert!(parse_record("v=TLSRPTv1; rua=https://r@tls.example.com:8443/v1?a=b").is_valid());
        assert!(!parse_record("v=TLSRPTv1; rua=https:///v1").is_valid());
        assert!(!parse_record("v=TLSRPTv1; rua=https://localhost/v1").is_valid());
        assert!(is_tls_rpt_record("v=TLSRPTv1; rua=mailto:a@example.com"));
        assert!(!is_tls_rpt_record("v=spf1 -all"));
    }
}
