//! Data that ships inside the binary: the `checks/` directory.
//!
//! Check *data* — which DKIM selectors to probe, what each sending platform needs in DNS
//! (`checks/providers/`), the mailbox providers' bulk-sender rules (`checks/policies/`), the
//! DNS blocklists (`checks/blocklists.toml`) — lives
//! in TOML so it can be read, reviewed and extended without touching code. The files are embedded
//! at build time; `--checks-dir DIR` adds the user's own (`DIR/providers/*.toml`,
//! `DIR/policies/*.toml`, `DIR/blocklists.toml`), which replace embedded ones with the same id.

pub mod blocklists;
pub mod mark_roots;
pub mod policies;
pub mod providers;

pub use blocklists::Blocklist;
pub use policies::{Policy, Rule, VerifiedBy};
pub use providers::ProviderProfile;

use crate::files::{self, FileKind};
use serde::Deserialize;
use std::path::{Path, PathBuf};

const DKIM_SELECTORS: &str = include_str!("../../checks/dkim-selectors.toml");

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

/// The embedded provider profiles, by file name. A test checks every file in
/// `checks/providers/` is listed here.
pub const EMBEDDED_PROVIDERS: &[(&str, &str)] = &[
    (
        "amazon-ses.toml",
        include_str!("../../checks/providers/amazon-ses.toml"),
    ),
    (
        "brevo.toml",
        include_str!("../../checks/providers/brevo.toml"),
    ),
    (
        "google-workspace.toml",
        include_str!("../../checks/providers/google-workspace.toml"),
    ),
    (
        "hubspot.toml",
        include_str!("../../checks/providers/hubspot.toml"),
    ),
    (
        "klaviyo.toml",
        include_str!("../../checks/providers/klaviyo.toml"),
    ),
    (
        "mailchimp.toml",
        include_str!("../../checks/providers/mailchimp.toml"),
    ),
    (
        "mailgun.toml",
        include_str!("../../checks/providers/mailgun.toml"),
    ),
    (
        "mandrill.toml",
        include_str!("../../checks/providers/mandrill.toml"),
    ),
    (
        "microsoft-365.toml",
        include_str!("../../checks/providers/microsoft-365.toml"),
    ),
    (
        "postmark.toml",
        include_str!("../../checks/providers/postmark.toml"),
    ),
    (
        "salesforce-marketing-cloud.toml",
        include_str!("../../checks/providers/salesforce-marketing-cloud.toml"),
    ),
    (
        "sendgrid.toml",
        include_str!("../../checks/providers/sendgrid.toml"),
    ),
    (
        "sparkpost.toml",
        include_str!("../../checks/providers/sparkpost.toml"),
    ),
];

/// The embedded policies, by file name.
pub const EMBEDDED_POLICIES: &[(&str, &str)] = &[
    (
        "gmail-2024.toml",
        include_str!("../../checks/policies/gmail-2024.toml"),
    ),
    (
        "outlook-2025.toml",
        include_str!("../../checks/policies/outlook-2025.toml"),
    ),
    (
        "yahoo-2024.toml",
        include_str!("../../checks/policies/yahoo-2024.toml"),
    ),
];

/// A catalog file that could not be used, naming the file and what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error(transparent)]
    Read(#[from] crate::files::FileError),
    #[error("--checks-dir {path}: not a directory (it should hold providers/*.toml, policies/*.toml or blocklists.toml)")]
    NotADirectory { path: PathBuf },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

/// Provider profiles and policies, embedded and user-supplied.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub providers: Vec<ProviderProfile>,
    pub policies: Vec<Policy>,
    /// The DNS blocklists, in the order they are reported.
    pub blocklists: Vec<Blocklist>,
}

fn parse<T: serde::de::DeserializeOwned>(text: &str, path: &str) -> Result<T, CatalogError> {
    toml::from_str(text).map_err(|e| CatalogError::Invalid {
        path: path.to_string(),
        message: e.to_string(),
    })
}

impl Catalog {
    /// The embedded catalog. Panics never: the embedded files are covered by tests, and a bad
    /// one is reported as an error like a user's.
    pub fn embedded() -> Result<Catalog, CatalogError> {
        let mut catalog = Catalog::default();
        for (name, text) in EMBEDDED_PROVIDERS {
            catalog.add_provider(parse(text, &format!("checks/providers/{name}"))?, name)?;
        }
        for (name, text) in EMBEDDED_POLICIES {
            catalog.add_policy(parse(text, &format!("checks/policies/{name}"))?, name)?;
        }
        catalog.add_blocklists(
            parse(blocklists::EMBEDDED, "checks/blocklists.toml")?,
            "checks/blocklists.toml",
        )?;
        Ok(catalog)
    }

    /// The embedded catalog plus `dir/providers/*.toml`, `dir/policies/*.toml` and
    /// `dir/blocklists.toml`.
    pub fn load(checks_dir: Option<&Path>) -> Result<Catalog, CatalogError> {
        let mut catalog = Catalog::embedded()?;
        let Some(dir) = checks_dir else {
            return Ok(catalog);
        };
        if !dir.is_dir() {
            return Err(CatalogError::NotADirectory {
                path: dir.to_path_buf(),
            });
        }
        let lists = dir.join("blocklists.toml");
        if lists.exists() {
            let text = files::read_text(&lists, FileKind::Checks)?;
            let shown = lists.display().to_string();
            catalog.add_blocklists(parse(&text, &shown)?, &shown)?;
        }
        for (sub, is_provider) in [("providers", true), ("policies", false)] {
            let path = dir.join(sub);
            if !path.is_dir() {
                continue;
            }
            let files = files::list_dir(&path, FileKind::Checks, |p| {
                p.extension().is_some_and(|x| x == "toml")
            })?;
            for file in files {
                let text = files::read_text(&file, FileKind::Checks)?;
                let shown = file.display().to_string();
                if is_provider {
                    catalog.add_provider(parse(&text, &shown)?, &shown)?;
                } else {
                    catalog.add_policy(parse(&text, &shown)?, &shown)?;
                }
            }
        }
        Ok(catalog)
    }

    fn add_provider(&mut self, profile: ProviderProfile, path: &str) -> Result<(), CatalogError> {
        profile
            .validate()
            .map_err(|message| CatalogError::Invalid {
                path: path.to_string(),
                message,
            })?;
        self.providers.retain(|p| p.id != profile.id);
        self.providers.push(profile);
        Ok(())
    }

    fn add_policy(&mut self, policy: Policy, path: &str) -> Result<(), CatalogError> {
        policy.validate().map_err(|message| CatalogError::Invalid {
            path: path.to_string(),
            message,
        })?;
        self.policies.retain(|p| p.id != policy.id);
        self.policies.push(policy);
        Ok(())
    }

    /// Adds a file's lists: a list with an id already known replaces it, and one with
    /// `enabled = false` removes it.
    fn add_blocklists(
        &mut self,
        file: blocklists::BlocklistFile,
        path: &str,
    ) -> Result<(), CatalogError> {
        for raw in file.lists {
            let id = raw.id().to_string();
            let enabled = raw.enabled();
            let list = raw.validate().map_err(|message| CatalogError::Invalid {
                path: path.to_string(),
                message,
            });
            self.blocklists.retain(|l| l.id != id);
            if enabled {
                self.blocklists.push(list?);
            }
        }
        Ok(())
    }

    pub fn provider(&self, id: &str) -> Option<&ProviderProfile> {
        self.providers
            .iter()
            .find(|p| p.id.eq_ignore_ascii_case(id))
    }

    pub fn policy(&self, id: &str) -> Option<&Policy> {
        self.policies.iter().find(|p| p.id.eq_ignore_ascii_case(id))
    }
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

    fn listed_files(dir: &str) -> Vec<String> {
        let mut names: Vec<String> =
            std::fs::read_dir(format!("{}/checks/{dir}", env!("CARGO_MANIFEST_DIR")))
                .unwrap()
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".toml"))
                .collect();
        names.sort();
        names
    }

    #[test]
    fn every_catalog_file_is_embedded_and_valid() {
        for (files, dir, list) in [
            (super::EMBEDDED_PROVIDERS, "providers", "EMBEDDED_PROVIDERS"),
            (super::EMBEDDED_POLICIES, "policies", "EMBEDDED_POLICIES"),
        ] {
            let mut embedded: Vec<String> = files.iter().map(|(n, _)| n.to_string()).collect();
            embedded.sort();
            assert_eq!(embedded, listed_files(dir), "list new files in {list}");
        }
        let catalog = super::Catalog::embedded().unwrap_or_else(|e| panic!("{e}"));
        for (name, _) in super::EMBEDDED_PROVIDERS {
            let id = name.trim_end_matches(".toml");
            assert!(
                catalog.provider(id).is_some(),
                "{name}: the id must match the file name"
            );
        }
        for (name, _) in super::EMBEDDED_POLICIES {
            let id = name.trim_end_matches(".toml");
            assert!(
                catalog.policy(id).is_some(),
                "{name}: the id must match the file name"
            );
        }
    }

    #[test]
    fn user_files_replace_embedded_ones_and_bad_files_name_themselves() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("providers")).unwrap();
        let text = super::EMBEDDED_PROVIDERS[0]
            .1
            .replace("name = \"", "name = \"Custom ");
        std::fs::write(dir.path().join("providers/mine.toml"), text).unwrap();
        let catalog = super::Catalog::load(Some(dir.path())).unwrap();
        let id = super::EMBEDDED_PROVIDERS[0].0.trim_end_matches(".toml");
        assert!(catalog.provider(id).unwrap().name.starts_with("Custom "));
        std::fs::write(
            dir.path().join("providers/bad.toml"),
            "id = \"x\"\nunknown = 1\n",
        )
        .unwrap();
        let err = super::Catalog::load(Some(dir.path()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("bad.toml"), "{err}");
    }

    #[test]
    fn a_pattern_that_does_not_parse_is_refused_with_its_file_and_text() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("providers")).unwrap();
        let original = super::EMBEDDED_PROVIDERS[0].1;
        let text = original.replacen("ptr = [", "ptr = ['mta(.*\\.example\\.net', ", 1);
        assert_ne!(
            text, original,
            "the first embedded profile lists ptr patterns"
        );
        std::fs::write(dir.path().join("providers/broken.toml"), text).unwrap();
        let err = super::Catalog::load(Some(dir.path()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("broken.toml"), "{err}");
        assert!(err.contains("mta(.*"), "{err}");
    }

    #[test]
    fn every_embedded_pattern_compiles_as_the_checks_use_it() {
        // Loading only parses patterns; the checks compile them (anchored, case-insensitive).
        let catalog = super::Catalog::embedded().unwrap_or_else(|e| panic!("{e}"));
        let mut seen = 0;
        for (name, _) in super::EMBEDDED_PROVIDERS {
            let p = catalog.provider(name.trim_end_matches(".toml")).unwrap();
            for pattern in p.patterns() {
                super::providers::full_match_regex(pattern)
                    .unwrap_or_else(|e| panic!("{name}: `{pattern}`: {e}"));
                seen += 1;
            }
        }
        assert!(seen > 20, "only {seen} patterns found");
    }
}
