//! Mailbox-provider policies (`checks/policies/*.toml`): the bulk-sender rules of Gmail, Yahoo
//! and Outlook.com as rules over check ids.
//!
//! A rule names the checks it rests on by id pattern (`spf.*`, `dmarc.missing`) and what proves
//! it: DNS (decided by `mailshift check` findings), a seed test (a real message must show it, such
//! as one-click unsubscribe headers or TLS), or warmup metrics (spam rate). A DNS rule fails when
//! any matching finding fails; a seed rule that names checks (`seed.unsubscribe`) is decided the
//! same way by the findings of the stage's seed tests once a seed has arrived, and is deferred
//! until then.

use serde::Deserialize;

/// What can prove a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum VerifiedBy {
    /// DNS records: decided by the findings of the checks the rule names.
    Dns,
    /// A real message: satisfied by seed tests, not by DNS.
    Seed,
    /// Sending metrics over time (complaint rate), from warmup monitoring.
    Metrics,
}

/// Which senders a rule applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Applies {
    /// Every sender.
    All,
    /// Bulk senders only (the provider's threshold).
    Bulk,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Stable within the policy (`spf-and-dkim`); gates and reports name it as `policy/rule`.
    pub id: String,
    /// The requirement in a few words.
    pub title: String,
    /// Why the provider asks for it, and what happens without it.
    pub why: String,
    pub verified_by: VerifiedBy,
    #[serde(default = "all_senders")]
    pub applies_to: Applies,
    /// Check-id patterns (`spf.*`, `dmarc.missing`) that must all pass: DNS findings for DNS
    /// rules, seed findings (`seed.tls`) for seed rules. A seed rule without checks is not
    /// measured by mailshift and stays deferred.
    #[serde(default)]
    pub checks: Vec<String>,
    /// Groups of patterns of which at least one group must pass ("SPF or DKIM":
    /// `[["spf.*"], ["dkim.*"]]`).
    #[serde(default)]
    pub any_of: Vec<Vec<String>>,
    /// Does a warning among those checks break the rule too (e.g. DMARC must exist, but p=none
    /// is enough: `false`).
    #[serde(default)]
    pub warn_fails: bool,
}

fn all_senders() -> Applies {
    Applies::All
}

/// One mailbox provider's rule set.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Used in plans (`gmail-2024`).
    pub id: String,
    pub name: String,
    /// When the rules took effect (ISO date).
    pub effective: String,
    /// Who counts as a bulk sender, in the provider's words.
    pub bulk_threshold: String,
    pub docs: Vec<String>,
    #[serde(rename = "rule")]
    pub rules: Vec<Rule>,
}

impl Policy {
    pub fn validate(&self) -> Result<(), String> {
        if self.rules.is_empty() {
            return Err("a policy needs at least one [[rule]]".into());
        }
        let mut ids: Vec<&str> = Vec::new();
        for rule in &self.rules {
            if ids.contains(&rule.id.as_str()) {
                return Err(format!("rule id `{}` appears twice", rule.id));
            }
            ids.push(&rule.id);
            if rule.verified_by == VerifiedBy::Dns && rule.checks.is_empty() {
                return Err(format!(
                    "rule `{}` is verified by DNS but names no checks",
                    rule.id
                ));
            }
            for pattern in rule.checks.iter().chain(rule.any_of.iter().flatten()) {
                if !is_check_pattern(pattern) {
                    return Err(format!(
                        "rule `{}`: `{pattern}` is not a check id or pattern (`spf.*`, `dmarc.missing`)",
                        rule.id
                    ));
                }
                let is_seed = pattern.starts_with("seed.");
                match rule.verified_by {
                    VerifiedBy::Seed if !is_seed => {
                        return Err(format!(
                            "rule `{}` is verified by seed tests, so its checks are seed findings (`seed.tls`), not `{pattern}`",
                            rule.id
                        ))
                    }
                    VerifiedBy::Dns if is_seed => {
                        return Err(format!(
                            "rule `{}` is verified by DNS, but `{pattern}` is a seed finding: use verified_by = \"seed\"",
                            rule.id
                        ))
                    }
                    VerifiedBy::Metrics if !rule.checks.is_empty() => {
                        return Err(format!(
                            "rule `{}` is verified by metrics and cannot name checks",
                            rule.id
                        ))
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }
}

/// `family.name`, or `family.*`.
pub fn is_check_pattern(pattern: &str) -> bool {
    let Some((family, name)) = pattern.split_once('.') else {
        return false;
    };
    let word = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    };
    word(family) && (name == "*" || word(name))
}

/// True when `id` matches `pattern` (`spf.*` matches every `spf.` id).
pub fn check_matches(pattern: &str, id: &str) -> bool {
    match pattern.strip_suffix(".*") {
        Some(family) => id.split_once('.').is_some_and(|(f, _)| f == family),
        None => pattern == id,
    }
}

#[cfg(test)]
mod tests {
    use super::Policy;

    fn policy(rule: &str) -> Result<(), String> {
        let text = format!(
            "id = \"p\"\nname = \"P\"\neffective = \"2024-01-01\"\nbulk_threshold = \"many\"\ndocs = []\n[[rule]]\nid = \"r\"\ntitle = \"R\"\nwhy = \"W\"\n{rule}"
        );
        toml::from_str::<Policy>(&text)
            .map_err(|e| e.to_string())?
            .validate()
    }

    #[test]
    fn seed_rules_name_seed_findings_and_dns_rules_do_not() {
        assert!(policy("verified_by = \"seed\"\nchecks = [\"seed.tls\"]\n").is_ok());
        assert!(policy("verified_by = \"seed\"\n").is_ok());
        let err = policy("verified_by = \"seed\"\nchecks = [\"spf.*\"]\n").unwrap_err();
        assert!(err.contains("seed findings"), "{err}");
        let err = policy("verified_by = \"dns\"\nchecks = [\"seed.tls\"]\n").unwrap_err();
        assert!(err.contains("verified_by = \"seed\""), "{err}");
        let err = policy("verified_by = \"dns\"\nchecks = [\"spf.*\"]\nany_of = [[\"SPF\"]]\n")
            .unwrap_err();
        assert!(err.contains("`SPF`"), "{err}");
        assert!(policy("verified_by = \"dns\"\n").is_err());
    }
}
