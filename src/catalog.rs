//! Data that ships inside the binary: the `checks/` directory.
//!
//! Check *data* (which selectors to probe, later provider profiles and mailbox-provider
//! policies) lives in TOML under `checks/` so it can be read, reviewed and extended without
//! touching code. The files are embedded at build time.

use serde::Deserialize;

const DKIM_SELECTORS: &str = include_str!("../checks/dkim-selectors.toml");

#[derive(Debug, Deserialize)]
struct SelectorFile {
    selector: Vec<SelectorEntry>,
}

#[derive(Debug, Deserialize)]
struct SelectorEntry {
    name: String,
    used_by: String,
}

/// The common DKIM selectors probed when none is given: `(selector, who uses it)`.
pub fn common_dkim_selectors() -> Vec<(String, String)> {
    // The file is part of the build and covered by a test, so a parse failure cannot reach
    // users; an empty list is the safe fallback all the same.
    toml::from_str::<SelectorFile>(DKIM_SELECTORS)
        .map(|f| {
            f.selector
                .into_iter()
                .map(|s| (s.name, s.used_by))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn embedded_selector_list_parses_and_is_unique() {
        let list = super::common_dkim_selectors();
        assert!(list.len() >= 20, "{}", list.len());
        let mut names: Vec<&str> = list.iter().map(|(n, _)| n.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(
            names.len(),
            list.len(),
            "duplicate selector in checks/dkim-selectors.toml"
        );
        for (name, _) in &list {
            assert!(crate::domain::parse_selector(name).is_ok(), "{name}");
        }
    }
}
