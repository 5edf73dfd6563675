//! MTA-STS (RFC 8461): the `_mta-sts` TXT record that announces a policy (§3.1), the policy
//! file served at `https://mta-sts.<domain>/.well-known/mta-sts.txt` (§3.2), and how a policy's
//! `mx` patterns match MX host names (§4.1).
//!
//! Senders are strict: a record that does not begin with `v=STSv1;`, or more than one, means
//! "no MTA-STS" to them, and a policy with a bad line is discarded whole. So the parsers here
//! keep going after the first problem (a checker should name every one) but say plainly
//! whether a sender would use what it read.

use crate::domain::DomainName;

/// RFC 8461 §3.2: `max_age` at most one year (31557600 seconds).
pub const MAX_AGE_LIMIT: u64 = 31_557_600;
/// Senders read at most this much of a policy (RFC 8461 §3.3 leaves the limit to them;
/// 64 KiB is what Postfix's resolver and most others use).
pub const MAX_POLICY_BYTES: usize = 64 * 1024;

/// A parsed `_mta-sts` TXT record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StsRecord {
    /// The `id` value, when present and well formed.
    pub id: Option<String>,
    /// Everything wrong with the record, in order.
    pub problems: Vec<String>,
}

impl StsRecord {
    pub fn is_valid(&self) -> bool {
        self.problems.is_empty() && self.id.is_some()
    }
}

/// True when a TXT string is an attempt at an MTA-STS record: senders keep only those that
/// begin with `v=STSv1` (§3.1).
pub fn is_sts_record(txt: &str) -> bool {
    super::tags::begins_with_version(txt, "STSv1")
}

/// Parses an `_mta-sts` TXT record: `v=STSv1; id=<1-32 letters or digits>;` plus extensions.
pub fn parse_record(txt: &str) -> StsRecord {
    let mut problems = Vec::new();
    let mut id = None;
    let fields: Vec<&str> = txt.split(';').collect();
    for (i, raw) in fields.iter().enumerate() {
        let field = raw.trim_matches(|c| c == ' ' || c == '\t');
        if field.is_empty() {
            // The grammar allows one trailing separator; an empty field elsewhere is a `;;`.
            if i + 1 != fields.len() && i != 0 {
                problems.push(format!("empty field at position {} (`;;`)", i + 1));
            } else if i == 0 {
                problems.push("the record is empty before its first `;`".into());
            }
            continue;
        }
        let Some((key, value)) = field.split_once('=') else {
            problems.push(format!("`{field}` is not a `key=value` field"));
            continue;
        };
        let key = key.trim_matches(|c| c == ' ' || c == '\t');
        let value = value.trim_matches(|c| c == ' ' || c == '\t');
        match (i, key) {
            (0, "v") if value == "STSv1" => {}
            (0, "v") => problems.push(format!("the version is `{value}`; it must be `STSv1`")),
            (0, _) => problems.push(format!(
                "the record must begin with `v=STSv1`, not `{field}` (senders ignore it)"
            )),
            (_, "v") => problems.push("`v=` appears again after the first field".into()),
            (_, "id") => {
                if id.is_some() {
                    problems.push("`id` appears more than once".into());
                } else if value.is_empty()
                    || value.len() > 32
                    || !value.bytes().all(|b| b.is_ascii_alphanumeric())
                {
                    problems.push(format!(
                        "the id `{value}` must be 1 to 32 letters and digits"
                    ));
                } else {
                    id = Some(value.to_string());
                }
            }
            (_, key) => {
                let key_ok = !key.is_empty()
                    && key.len() <= 32
                    && key
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
                let value_ok = !value.is_empty()
                    && value
                        .bytes()
                        .all(|b| (0x21..=0x7e).contains(&b) && b != b';' && b != b'=');
                if !key_ok || !value_ok {
                    problems.push(format!("`{field}` is not a valid extension field"));
                }
            }
        }
    }
    if id.is_none() && !problems.iter().any(|p| p.contains("id `")) {
        problems.push("the record has no `id` field".into());
    }
    StsRecord { id, problems }
}

/// The policy mode (§5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Enforce,
    Testing,
    None,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Testing => "testing",
            Mode::None => "none",
        }
    }
}

/// A parsed policy file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Policy {
    pub version: Option<String>,
    pub mode: Option<Mode>,
    pub max_age: Option<u64>,
    /// The `mx` patterns, lower-cased, as written otherwise.
    pub mx: Vec<String>,
    /// Problems that make senders discard the policy.
    pub problems: Vec<String>,
    /// Things senders accept but that are worth fixing (duplicate fields, `#` comments).
    pub notes: Vec<String>,
}

impl Policy {
    /// Would a sender use it?
    pub fn is_valid(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Parses a policy body (§3.2): `key: value` lines separated by CRLF or LF.
pub fn parse_policy(body: &str) -> Policy {
    let mut policy = Policy::default();
    let mut seen_comment = false;
    for (n, raw) in body.split('\n').enumerate() {
        let line_no = n + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.trim().is_empty() {
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            policy.problems.push(format!(
                "line {line_no}: `{}` is not a `key: value` line",
                clip(line)
            ));
            continue;
        };
        let key = key.trim_end_matches([' ', '\t']);
        let value = value.trim_matches([' ', '\t']);
        if value.contains('#') && !seen_comment {
            seen_comment = true;
            policy.notes.push(format!(
                "line {line_no}: policies have no `#` comments; the text after `#` is part of the value"
            ));
        }
        let first = |present: bool, policy: &mut Policy| {
            if present {
                policy.notes.push(format!(
                    "line {line_no}: `{key}` appears again; senders use the first"
                ));
            }
            !present
        };
        match key {
            "version" => {
                if first(policy.version.is_some(), &mut policy) {
                    if value != "STSv1" {
                        policy.problems.push(format!(
                            "line {line_no}: the version is `{}`; it must be `STSv1`",
                            clip(value)
                        ));
                    }
                    policy.version = Some(value.to_string());
                }
            }
            "mode" => {
                if first(policy.mode.is_some(), &mut policy) {
                    match value {
                        "enforce" => policy.mode = Some(Mode::Enforce),
                        "testing" => policy.mode = Some(Mode::Testing),
                        "none" => policy.mode = Some(Mode::None),
                        other => policy.problems.push(format!(
                            "line {line_no}: the mode `{}` is not `enforce`, `testing` or `none`",
                            clip(other)
                        )),
                    }
                }
            }
            "max_age" => {
                if first(policy.max_age.is_some(), &mut policy) {
                    match value.parse::<u64>() {
                        Ok(age) if value.len() <= 10 && age <= MAX_AGE_LIMIT => {
                            policy.max_age = Some(age)
                        }
                        Ok(_) if value.bytes().all(|b| b.is_ascii_digit()) => {
                            policy.problems.push(format!(
                                "line {line_no}: max_age {value} is over the maximum of {MAX_AGE_LIMIT} seconds (one year)"
                            ))
                        }
                        _ => policy.problems.push(format!(
                            "line {line_no}: max_age `{}` is not a number of seconds",
                            clip(value)
                        )),
                    }
                }
            }
            "mx" => match mx_pattern(value) {
                Ok(pattern) => policy.mx.push(pattern),
                Err(why) => policy.problems.push(format!("line {line_no}: {why}")),
            },
            other => {
                let key_ok = !other.is_empty()
                    && other.len() <= 32
                    && other
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
                if !key_ok {
                    policy.problems.push(format!(
                        "line {line_no}: `{}` is not a valid field name",
                        clip(other)
                    ));
                }
            }
        }
    }
    if policy.version.is_none() {
        policy
            .problems
            .push("there is no `version: STSv1` line".into());
    }
    if policy.mode.is_none() && !policy.problems.iter().any(|p| p.contains("the mode")) {
        policy.problems.push("there is no `mode` line".into());
    }
    if policy.max_age.is_none() && !policy.problems.iter().any(|p| p.contains("max_age")) {
        policy.problems.push("there is no `max_age` line".into());
    }
    if matches!(policy.mode, Some(Mode::Enforce | Mode::Testing)) && policy.mx.is_empty() {
        policy.problems.push(format!(
            "mode {} needs at least one `mx` line naming the MX hosts",
            policy.mode.map_or("", Mode::as_str)
        ));
    }
    policy
}

/// Checks one `mx` value: a host name, optionally with `*.` for exactly one leftmost label.
fn mx_pattern(value: &str) -> Result<String, String> {
    let lower = value.to_ascii_lowercase();
    let lower = lower.trim_end_matches('.');
    let host = lower.strip_prefix("*.").unwrap_or(lower);
    if host.contains('*') {
        return Err(format!(
            "the mx pattern `{}` may only have `*.` as its first label",
            clip(value)
        ));
    }
    match DomainName::parse(host) {
        Ok(name) if name.label_count() >= 2 => Ok(lower.to_string()),
        _ => Err(format!(
            "the mx pattern `{}` is not a host name",
            clip(value)
        )),
    }
}

/// §4.1: does `host` match `pattern`? A `*.` pattern matches exactly one more label on the
/// left (`*.example.net` matches `mx1.example.net`, not `example.net` or `a.b.example.net`).
pub fn mx_matches(pattern: &str, host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let pattern = pattern.trim_end_matches('.').to_ascii_lowercase();
    match pattern.strip_prefix("*.") {
        Some(suffix) => host
            .split_once('.')
            .is_some_and(|(first, rest)| !first.is_empty() && rest == suffix),
        None => host == pattern,
    }
}

/// A value cut for quoting in a message (hostile policies can have very long lines).
fn clip(text: &str) -> String {
    crate::words::clip(text, 80)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records() {
        let good = parse_record("v=STSv1; id=20180907T090909;");
        assert!(good.is_valid(), "{good:?}");
        assert_eq!(good.id.as_deref(), Some("20180907T090909"));
        assert!(parse_record("v=STSv1;id=1").is_valid());
        assert!(parse_record("v=STSv1; id=abc; ext_1=x.y").is_valid());
        let swapped = parse_record("id=20180907T090909; v=STSv1;");
        assert!(!swapped.is_valid());
        assert!(swapped.problems[0].contains("must begin with `v=STSv1`"));
        assert!(!is_sts_record("id=20180907T090909; v=STSv1;"));
        assert!(is_sts_record("v=STSv1; id=1"));
        assert!(is_sts_record("v = STSv1; id=1"));
        assert!(!is_sts_record("v=STSv12;id=20180907T090909;"));
        assert!(!parse_record("v=STSv12; id=1").is_valid());
        assert!(!parse_record("v=STSv1; id=2019-01-01").is_valid());
        assert!(!parse_record("v=STSv1; id=123456789012345678901234567890123").is_valid());
        assert!(!parse_record("v=STSv1;").is_valid());
        assert!(!parse_record("v=STSv1; id=1; id=2").is_valid());
        assert!(!parse_record("azazaza;asdasdasdasd").is_valid());
    }

    #[test]
    fn policies() {
        let p = parse_policy("version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmax_age: 604800\r\n");
        assert!(p.is_valid(), "{p:?}");
        assert_eq!(p.mode, Some(Mode::Enforce));
        assert_eq!(p.max_age, Some(604_800));
        assert_eq!(p.mx, ["mail.example.com", "*.example.net"]);
        // LF line endings, mode none without mx.
        assert!(parse_policy("version: STSv1\nmode: none\nmax_age: 86400\n").is_valid());
        let bad = parse_policy("version: STSv1\nmode: enforce\nmax_age: 86400\n");
        assert!(bad
            .problems
            .iter()
            .any(|p| p.contains("needs at least one `mx`")));
        let doubt = parse_policy("version: STSv1\nmode: doubt\nmx: mail.loc.example\nmax_age: 1\n");
        assert!(doubt
            .problems
            .iter()
            .any(|p| p.contains("the mode `doubt`")));
        let over =
            parse_policy("version: STSv1\nmode: testing\nmx: mx.example.com\nmax_age: 31557601\n");
        assert!(over.problems.iter().any(|p| p.contains("over the maximum")));
        let word =
            parse_policy("version: STSv1\nmode: testing\nmx: mx.example.com\nmax_age: xxx\n");
        assert!(word.problems.iter().any(|p| p.contains("not a number")));
        assert!(!parse_policy("<html><body>Not found</body></html>").is_valid());
        assert!(!parse_policy("").is_valid());
        let star =
            parse_policy("version: STSv1\nmode: enforce\nmx: mx.*.example.com\nmax_age: 86400\n");
        assert!(star
            .problems
            .iter()
            .any(|p| p.contains("`*.` as its first label")));
    }

    #[test]
    fn template_with_comments_is_reported() {
        let body = include_str!("../../fixtures/mta-sts/jpawlowski-template/mta-sts.txt");
        let p = parse_policy(body);
        assert!(!p.is_valid());
        assert!(p.problems.iter().any(|x| x.contains("the mode")), "{p:?}");
        assert!(p.problems.iter().any(|x| x.contains("max_age")), "{p:?}");
        assert!(p.notes.iter().any(|x| x.contains("`#` comments")), "{p:?}");
    }

    #[test]
    fn mx_matching() {
        assert!(mx_matches("mail.example.com", "MAIL.example.com."));
        assert!(mx_matches("*.example.net", "mx1.example.net"));
        assert!(!mx_matches("*.example.net", "example.net"));
        assert!(!mx_matches("*.example.net", "a.b.example.net"));
        assert!(!mx_matches("mail.example.com", "mail2.example.com"));
    }
}
