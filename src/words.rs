//! Plain-English helpers for generated messages: a count with the noun in the right number,
//! and verbs that agree with it, so messages never read "1 lookups" or "shard(s)"; and values
//! cut to a length fit to quote.

/// `1 lookup`, `3 lookups`; `many` is the plural form (`lookups`, `entries`).
pub fn count(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// The form of a verb (or any word) that agrees with `n`: `agree(1, "has", "have")`.
pub fn agree<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 {
        one
    } else {
        many
    }
}

/// How soon something `seconds` away happens, in whole days: "within a day", "in 1 day",
/// "in 12 days".
pub fn in_days(seconds: i64) -> String {
    match seconds / 86_400 {
        days if days <= 0 => "within a day".to_string(),
        1 => "in 1 day".to_string(),
        days => format!("in {days} days"),
    }
}

/// `text` cut to `max` characters with an ellipsis, for quoting a value in a message: hostile
/// records and servers can send lines of any length.
pub fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        format!("{}…", text.chars().take(max).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_ahead_are_whole_days() {
        assert_eq!(in_days(3_600), "within a day");
        assert_eq!(in_days(86_400 + 5), "in 1 day");
        assert_eq!(in_days(12 * 86_400 + 86_399), "in 12 days");
    }

    #[test]
    fn clip_counts_characters_not_bytes() {
        assert_eq!(clip("åäö", 3), "åäö");
        assert_eq!(clip("åäöü", 3), "åäö…");
        assert_eq!(clip("", 0), "");
    }

    #[test]
    fn counts_and_verbs_agree() {
        assert_eq!(count(1, "lookup", "lookups"), "1 lookup");
        assert_eq!(count(0, "lookup", "lookups"), "0 lookups");
        assert_eq!(count(2, "shard", "shards"), "2 shards");
        assert_eq!(agree(1, "has", "have"), "has");
        assert_eq!(agree(3, "has", "have"), "have");
    }
}
