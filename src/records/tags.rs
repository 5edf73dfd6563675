//! Tag lists (`name=value; name=value`), the syntax DKIM key records (RFC 6376 §3.2) and DMARC
//! records (RFC 9989 §4.7) share.
//!
//! Splitting is kept separate from meaning so each record module can say exactly which tag is
//! malformed and keep the rest.

/// One `name=value` pair, with its 1-based position in the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    pub position: usize,
    /// As written.
    pub name: String,
    /// Trimmed of surrounding whitespace.
    pub value: String,
}

/// A piece of the list that is not `name=value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagError {
    pub position: usize,
    pub raw: String,
    pub reason: String,
}

/// Splits a tag list. Empty pieces (a trailing `;`, `;;`) are allowed, as the grammar allows a
/// trailing separator and real records often have doubled ones.
pub fn split_tags(text: &str) -> (Vec<Tag>, Vec<TagError>) {
    let mut tags = Vec::new();
    let mut errors = Vec::new();
    for (i, piece) in text.split(';').enumerate() {
        let position = i + 1;
        let trimmed = piece.trim_matches(|c: char| c.is_ascii_whitespace());
        if trimmed.is_empty() {
            continue;
        }
        let Some((name, value)) = trimmed.split_once('=') else {
            errors.push(TagError {
                position,
                raw: trimmed.to_string(),
                reason: format!("`{trimmed}` is not a `tag=value` pair (is a `=` or `;` missing?)"),
            });
            continue;
        };
        let name = name.trim_matches(|c: char| c.is_ascii_whitespace());
        let valid_name = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid_name {
            errors.push(TagError {
                position,
                raw: trimmed.to_string(),
                reason: format!("`{name}` is not a valid tag name"),
            });
            continue;
        }
        tags.push(Tag {
            position,
            name: name.to_string(),
            value: value
                .trim_matches(|c: char| c.is_ascii_whitespace())
                .to_string(),
        });
    }
    (tags, errors)
}

/// True when a TXT string begins with `v=<version>` (spaces allowed around `=`) followed by the
/// end, a `;` or a space: how MTA-STS (RFC 8461 §3.1) and TLS-RPT (RFC 8460 §3) tell their
/// records from others at the same name (`v=STSv12` is not `v=STSv1`).
pub fn begins_with_version(txt: &str, version: &str) -> bool {
    txt.trim_start()
        .strip_prefix('v')
        .map(str::trim_start)
        .and_then(|rest| rest.strip_prefix('='))
        .and_then(|rest| rest.trim_start().strip_prefix(version))
        .is_some_and(|rest| rest.is_empty() || rest.starts_with([';', ' ', '\t']))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_with_whitespace_and_trailing_separators() {
        let (tags, errors) = split_tags(" v = DMARC1 ;p=reject;; rua=mailto:a@b.example ; ");
        assert!(errors.is_empty());
        let names: Vec<&str> = tags.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["v", "p", "rua"]);
        assert_eq!(tags[0].value, "DMARC1");
    }

    #[test]
    fn reports_pieces_without_equals() {
        let (_, errors) = split_tags("v=DMARC1; p reject");
        assert_eq!(errors[0].position, 2);
        assert!(errors[0].reason.contains("not a `tag=value`"));
    }
}
