//! Migration-aware checks: while both platforms send, are both authorised, and will the new one
//! pass DMARC?
//!
//! No single-domain checker can answer these, because they depend on the plan: which platform is
//! old and which is new, which stage the migration is in, which selectors, return path and
//! sending IPs the new platform uses. Before the cutover stage both platforms' records must be
//! live; the merged SPF record must fit the 10-lookup budget *before* it is published; the new
//! platform's IPs must get SPF `pass`; its DKIM key must be at least 2048 bits; mail from it must
//! be able to align with the From domain; and dedicated IPs need forward-confirmed reverse DNS.
//!
//! Senders the plan keeps (staff mail, a help desk) are part of the merged record and its
//! budget; their terms are never suggested for removal, and a kept sender missing from the
//! record is a failure of its own. A platform that signs as another domain (`signing_domain`)
//! has its keys checked there, and DKIM alignment judged between that domain and the From
//! domain. Reverse DNS is checked for dedicated IPs only; shared pools are the platform's.
//!
//! Ids: `coexist.spf-new-missing`, `coexist.spf-budget`, `coexist.premature-removal`,
//! `coexist.kept-missing`, `spf.from-domain-unused` (via [`spf_where_evaluated`]),
//! `coexist.old-still-present`, `coexist.dkim-new-missing`, `coexist.dkim-new-weak`,
//! `coexist.dkim-target-mismatch`, `coexist.dkim-cross-wired`, `coexist.dkim-not-delegated`, `coexist.selectors-unknown`,
//! `coexist.return-path-missing`, `coexist.return-path-mismatch`, `coexist.tracking-missing`,
//! `coexist.ips-unknown`, `coexist.spf-platform-envelope`, `coexist.inconclusive`, `spf.ip-not-authorized`, `spf.ip-authorized`,
//! `align.ok`, `align.spf-only`, `align.infeasible`, `align.inconclusive`, `ptr.missing`,
//! `ptr.mismatch`, `ptr.ok`, `ptr.inconclusive`.

use crate::catalog::providers::{full_match, ReturnPathKind, SpfPlacement};
use crate::checks::{dmarc, spf};
use crate::dns::{Answer, Outcome, QueryType, RecordData};
use crate::domain::DomainName;
use crate::evaluate::spf::SpfResult;
use crate::fetch::DomainRecords;
use crate::finding::{Finding, RecordChange, Severity};
use crate::migration::{reverse_name, Context, Envelope, MigrationRecords, Side};
use crate::records::dkim::{DkimKeyRecord, KeyType, PublicKey};
use crate::records::spf::SpfRecord;

/// RSA key size the new platform must use (the "≥ 2048-bit").
pub const NEW_KEY_MIN_BITS: usize = 2048;

pub fn analyse(m: &MigrationRecords, ctx: &Context<'_>) -> Vec<Finding> {
    let mut findings = Vec::new();
    findings.extend(spf_coexistence(&m.records, ctx));
    findings.extend(ip_authorization(m, ctx));
    findings.extend(dkim_coexistence(&m.records, ctx));
    findings.extend(return_paths(&m.records, ctx));
    findings.extend(alignment(&m.records, ctx));
    findings.extend(reverse_dns(&m.records, ctx));
    findings
}

/// Receivers evaluate SPF at the envelope (MAIL FROM) domain, not the From domain. Rewrites the
/// plain check's `spf.missing` for the plan's From domain accordingly: when none of the plan's
/// live senders uses the From domain as envelope, no mail of the plan is failed by it, and the
/// finding becomes `spf.from-domain-unused` (a warning), saying where each sender's SPF is
/// evaluated and that a domain no mail uses as envelope should publish `v=spf1 -all`. When some
/// do, the fix is the exact record those senders need.
pub fn spf_where_evaluated(findings: &mut [Finding], ctx: &Context<'_>) {
    let domain = &ctx.domain.name;
    let Some(missing) = findings.iter_mut().find(|f| f.id == "spf.missing") else {
        return;
    };
    let mut users: Vec<String> = Vec::new();
    let mut terms: Vec<String> = Vec::new();
    let mut elsewhere: Vec<String> = Vec::new();
    for (side, _) in live_sides(ctx) {
        match side.envelope() {
            Envelope::FromDomain => {
                users.push(side.profile.name.clone());
                if let Some(include) = side.profile.spf.as_ref().and_then(|s| s.includes.first()) {
                    terms.push(format!("include:{include}"));
                }
            }
            other => elsewhere.push(format!("{}'s mail at {other}", side.profile.name)),
        }
    }
    for kept in ctx.kept.iter().filter(|k| k.from_domain) {
        if !users.contains(&kept.sender) {
            users.push(kept.sender.clone());
        }
        terms.push(kept.term.clone());
    }
    let mut unique: Vec<String> = Vec::new();
    for t in terms {
        if !unique.iter().any(|u| u.eq_ignore_ascii_case(&t)) {
            unique.push(t);
        }
    }
    if users.is_empty() {
        let evidence = std::mem::take(&mut missing.evidence);
        *missing = Finding::new(
            "spf.from-domain-unused",
            Severity::Warn,
            format!(
                "{domain} has no SPF record, but none of the plan's mail uses it as envelope sender, and SPF is evaluated at the envelope domain: {}. That mail is not failed by it; only mail forged with {domain} as envelope goes unchallenged.",
                if elsewhere.is_empty() {
                    "no platform sends for it at this stage".to_string()
                } else {
                    elsewhere.join(", ")
                }
            ),
        )
        .evidence(evidence)
        .fix(format!(
            "Publish `v=spf1 -all` at {domain}: a domain no mail uses as envelope says so, and forged envelopes with it then fail SPF."
        ))
        .records(vec![crate::finding::RecordChange::add(domain, "TXT", "v=spf1 -all")]);
        return;
    }
    if unique.is_empty() {
        return;
    }
    let record = format!("v=spf1 {} ~all", unique.join(" "));
    *missing = std::mem::replace(missing, Finding::new("", Severity::Pass, ""))
        .fix(format!(
            "Publish one TXT record at {domain}: `{record}` ({} use{} {domain} as envelope sender; tighten `~all` to `-all` once every sender is confirmed).",
            users.join(", "),
            if users.len() == 1 { "s" } else { "" }
        ))
        .records(vec![crate::finding::RecordChange::add(domain, "TXT", record)]);
}

/// The sides whose records must be live: the new one always, the old one until the cutover.
fn live_sides<'a>(ctx: &Context<'a>) -> Vec<(Side<'a>, bool)> {
    let mut sides: Vec<(Side<'a>, bool)> = ctx.new.map(|n| (n, true)).into_iter().collect();
    if let (true, Some(old)) = (ctx.before_cutover, ctx.old) {
        sides.push((old, false));
    }
    sides
}

/// True when the record carries `term` (an include by its target; other terms as written).
fn has_term(record: &SpfRecord, term: &str) -> bool {
    let bare = term
        .trim_start_matches(['+', '-', '~', '?'])
        .to_ascii_lowercase();
    match bare.strip_prefix("include:") {
        Some(target) => spf::includes(record, target),
        None => record.terms.iter().any(|t| {
            t.raw
                .trim_start_matches(['+', '-', '~', '?'])
                .eq_ignore_ascii_case(&bare)
        }),
    }
}

/// What a term costs against the 10-lookup limit once added: an include costs its tree.
fn term_cost(records: &DomainRecords, term: &str) -> Result<u32, String> {
    let bare = term
        .trim_start_matches(['+', '-', '~', '?'])
        .to_ascii_lowercase();
    if let Some(target) = bare.strip_prefix("include:") {
        let target = DomainName::parse(target).map_err(|e| e.to_string())?;
        let walk = spf::include_cost(records, &target);
        if let Some((question, e)) = walk.failed.first() {
            return Err(format!("{question} could not be answered ({e})"));
        }
        return Ok(walk.lookups);
    }
    let mechanism = bare.split([':', '/']).next().unwrap_or_default();
    Ok(u32::from(matches!(
        mechanism,
        "a" | "mx" | "ptr" | "exists"
    )))
}

fn spf_coexistence(records: &DomainRecords, ctx: &Context<'_>) -> Vec<Finding> {
    let domain = &ctx.domain.name;
    let mut findings = Vec::new();
    if let Some(answer) = records
        .get(domain, QueryType::Txt)
        .filter(|a| a.failed().is_some())
    {
        let e = answer.failed().map(|e| e.to_string()).unwrap_or_default();
        return vec![Finding::new(
            "coexist.inconclusive",
            Severity::Inconclusive,
            format!("The SPF record of {domain} could not be fetched ({e}), so neither platform's authorisation nor the merged budget was judged."),
        )
        .evidence(answer.describe())];
    }
    let current = spf::walk_domain(records, domain);
    let current_lookups = current.as_ref().map_or(0, |(_, _, w)| w.lookups);
    let record_text = current.as_ref().map(|(r, _, _)| r.text.clone());
    let evidence_record = match &record_text {
        Some(t) => format!("{domain} TXT \"{t}\""),
        None => format!("{domain} has no single SPF record"),
    };
    // The exact change that adds or removes terms: the edited record, or a new one.
    let edited = |add: &[String], remove: &[String]| -> (String, Vec<RecordChange>) {
        match &record_text {
            Some(old) => {
                let value = crate::fixes::spf_edit(old, add, remove);
                (
                    value.clone(),
                    vec![RecordChange::replace(domain, "TXT", old.clone(), value)],
                )
            }
            None => {
                let value = crate::fixes::spf_edit("v=spf1 ~all", add, remove);
                (value.clone(), vec![RecordChange::add(domain, "TXT", value)])
            }
        }
    };
    let mut missing: Vec<(String, String, u32)> = Vec::new(); // (platform, include, cost)
    for (side, is_new) in live_sides(ctx) {
        let Some(profile_spf) = &side.profile.spf else {
            continue;
        };
        if profile_spf.placement != SpfPlacement::FromDomain {
            continue;
        }
        let present = current
            .as_ref()
            .is_some_and(|(r, _, _)| profile_spf.includes.iter().any(|i| spf::includes(r, i)));
        if present {
            continue;
        }
        let Some(include) = profile_spf.includes.first() else {
            continue;
        };
        let Ok(target) = DomainName::parse(include) else {
            continue;
        };
        let walk = spf::include_cost(records, &target);
        if let Some((question, e)) = walk.failed.first() {
            findings.push(
                Finding::new(
                    "coexist.inconclusive",
                    Severity::Inconclusive,
                    format!("The cost of `include:{include}` is unknown: {question} could not be answered ({e})."),
                )
                .evidence(format!("{question}: {e}")),
            );
            continue;
        }
        let cost = walk.lookups;
        missing.push((
            side.profile.name.clone(),
            format!("include:{include}"),
            cost,
        ));
        if is_new {
            findings.push(
                Finding::new(
                    "coexist.spf-new-missing",
                    Severity::Fail,
                    format!(
                        "The SPF record of {domain} does not authorise {} yet: its mail from this domain fails SPF.",
                        side.profile.name
                    ),
                )
                .evidence(evidence_record.clone())
                .fix(format!("Add `include:{include}` before the `all` term (it costs {}): `{}`.", lookups_word(cost), edited(&[format!("include:{include}")], &[]).0))
                .records(edited(&[format!("include:{include}")], &[]).1),
            );
        } else {
            findings.push(
                Finding::new(
                    "coexist.premature-removal",
                    Severity::Fail,
                    format!(
                        "{} still sends until the cutover, but the SPF record of {domain} no longer includes it: its mail fails SPF.",
                        side.profile.name
                    ),
                )
                .evidence(evidence_record.clone())
                .fix(format!("Put `include:{include}` back until the cutover stage: `{}`.", edited(&[format!("include:{include}")], &[]).0))
                .records(edited(&[format!("include:{include}")], &[]).1),
            );
        }
    }
    // Senders the plan keeps must stay in the record (and are part of its budget).
    for kept in ctx.kept.iter().filter(|k| k.from_domain) {
        let present = current
            .as_ref()
            .is_some_and(|(r, _, _)| has_term(r, &kept.term));
        if present || missing.iter().any(|(_, t, _)| *t == kept.term) {
            continue;
        }
        match term_cost(records, &kept.term) {
            Err(why) => findings.push(
                Finding::new(
                    "coexist.inconclusive",
                    Severity::Inconclusive,
                    format!(
                        "The cost of `{}` (kept for {}) is unknown: {why}.",
                        kept.term, kept.sender
                    ),
                )
                .evidence(why.clone()),
            ),
            Ok(cost) => {
                findings.push(
                    Finding::new(
                        "coexist.kept-missing",
                        Severity::Fail,
                        format!(
                            "The plan keeps {} sending for {domain}, but the SPF record does not carry `{}`: its mail fails SPF.",
                            kept.sender, kept.term
                        ),
                    )
                    .evidence(evidence_record.clone())
                    .fix(format!(
                        "Keep `{}` in the record (it costs {}): `{}`.",
                        kept.term,
                        lookups_word(cost),
                        edited(std::slice::from_ref(&kept.term), &[]).0
                    ))
                    .records(edited(std::slice::from_ref(&kept.term), &[]).1),
                );
                missing.push((kept.sender.clone(), kept.term.clone(), cost));
            }
        }
    }
    if let (false, Some(old)) = (ctx.before_cutover, ctx.old) {
        if let (Some(profile_spf), Some((record, _, _))) = (&old.profile.spf, &current) {
            for include in profile_spf
                .includes
                .iter()
                .filter(|i| spf::includes(record, i))
            {
                let freed = DomainName::parse(include)
                    .map(|t| spf::include_cost(records, &t).lookups)
                    .unwrap_or(1);
                let (value, change) = edited(&[], &[format!("include:{include}")]);
                findings.push(
                    Finding::new(
                        "coexist.old-still-present",
                        Severity::Info,
                        format!(
                            "From this stage on only {} sends for {domain}, but its SPF record still includes {} (`include:{include}`), which nothing in the plan needs any more.",
                            ctx.new.map_or("the new platform".to_string(), |n| n.profile.name.clone()),
                            old.profile.name
                        ),
                    )
                    .evidence(evidence_record.clone())
                    .fix(format!("Remove `include:{include}` to free {} and stop authorising the old platform: `{value}`.", lookups_word(freed)))
                    .records(change),
                );
            }
        }
    }
    if !missing.is_empty() || current.is_some() {
        let added: u32 = missing.iter().map(|(_, _, c)| c).sum();
        let merged = current_lookups + added;
        let mut lines = vec![format!("current record: {current_lookups} lookups")];
        for (name, term, cost) in &missing {
            lines.push(format!("+ {term} ({name}): {cost}"));
        }
        lines.push(format!(
            "merged record: {merged} of {} lookups",
            spf::LOOKUP_LIMIT
        ));
        let evidence = format!("{evidence_record}\n{}", lines.join("\n"));
        let what = if missing.is_empty() {
            format!("The SPF record of {domain}")
        } else {
            let mut names: Vec<&str> = missing.iter().map(|(n, _, _)| n.as_str()).collect();
            names.dedup();
            format!(
                "With {} added, the SPF record of {domain}",
                names.join(" and ")
            )
        };
        let advice = || {
            let plan = BudgetPlan::new(records, ctx, current.as_ref(), &missing);
            (
                plan.fix(),
                plan.records(),
                plan.changes(record_text.as_deref()),
            )
        };
        if merged > spf::LOOKUP_LIMIT {
            let (fix, data, changes) = advice();
            findings.push(
                Finding::new(
                    "coexist.spf-budget",
                    Severity::Fail,
                    format!(
                        "{what} needs {merged} DNS lookups, over the limit of {}: receivers would return permerror and SPF would fail for all mail. Fix it before publishing.",
                        spf::LOOKUP_LIMIT
                    ),
                )
                .evidence(evidence)
                .fix(fix)
                .records(changes)
                .data(data),
            );
        } else if merged >= spf::LOOKUP_LIMIT - 1 {
            let (fix, data, changes) = advice();
            findings.push(
                Finding::new(
                    "coexist.spf-budget",
                    Severity::Warn,
                    format!(
                        "{what} uses {merged} of {} DNS lookups: it fits, with no room left.",
                        spf::LOOKUP_LIMIT
                    ),
                )
                .evidence(evidence)
                .fix(fix)
                .records(changes)
                .data(data),
            );
        } else if !missing.is_empty() || ctx.before_cutover {
            findings.push(
                Finding::new(
                    "coexist.spf-budget",
                    Severity::Pass,
                    format!("{what} uses {merged} of {} DNS lookups.", spf::LOOKUP_LIMIT),
                )
                .evidence(evidence),
            );
        }
    }
    findings
}

/// What can make a record fit: terms the profiles know are not needed at the From domain, terms
/// nobody is known to need (never a kept sender's, never a live platform's), own `a`/`mx` terms
/// that can become the addresses already looked up — and the exact record that results.
struct BudgetPlan {
    domain: DomainName,
    /// The record as it would be published with the additions.
    terms: Vec<String>,
    lookups: u32,
    /// Terms to remove for certain: (term, lookups freed, why).
    unneeded: Vec<(String, u32, String)>,
    /// Terms nothing in the plan needs, with their cost: candidates the owner must judge.
    unknown: Vec<(String, u32)>,
    /// Own `a`/`mx` terms and the fixed terms that replace them.
    own: Vec<(String, u32, Vec<String>)>,
    /// A way out the platform offers (its own return path, where its SPF lives).
    return_path_idea: Option<String>,
    /// The names of the senders the plan keeps here.
    kept: Vec<String>,
}

impl BudgetPlan {
    fn new(
        records: &DomainRecords,
        ctx: &Context<'_>,
        current: Option<&(std::sync::Arc<SpfRecord>, spf::SpfNode, spf::SpfWalk)>,
        missing: &[(String, String, u32)],
    ) -> BudgetPlan {
        let domain = ctx.domain.name.clone();
        let kept: Vec<String> = ctx.kept.iter().map(|k| bare(&k.term)).collect();
        let live: Vec<Side<'_>> = live_sides(ctx).into_iter().map(|(s, _)| s).collect();
        let needed_includes: Vec<String> = live
            .iter()
            .filter(|s| {
                s.profile
                    .spf
                    .as_ref()
                    .is_some_and(|p| p.placement == SpfPlacement::FromDomain)
            })
            .flat_map(|s| s.profile.spf.iter().flat_map(|p| p.includes.iter()))
            .map(|i| format!("include:{}", i.to_ascii_lowercase()))
            .collect();
        let mut terms: Vec<String> = Vec::new();
        let mut lookups = 0;
        let mut unneeded = Vec::new();
        let mut unknown = Vec::new();
        let mut own = Vec::new();
        if let Some((record, tree, walk)) = current {
            lookups = walk.lookups;
            terms = record
                .text
                .split_whitespace()
                .skip(1)
                .map(String::from)
                .collect();
            for node in &tree.terms {
                let cost = node.cost + node.child.as_ref().map_or(0, |c| c.lookups);
                let term = bare(&node.term);
                if cost == 0 || kept.contains(&term) || needed_includes.contains(&term) {
                    continue;
                }
                if let Some(why) = not_needed_here(ctx, &term) {
                    unneeded.push((node.term.clone(), cost, why));
                } else if term == "a"
                    || term == "mx"
                    || term.starts_with("a:")
                    || term.starts_with("mx:")
                {
                    own.push((
                        node.term.clone(),
                        cost,
                        fixed_addresses(records, &domain, &term),
                    ));
                } else {
                    unknown.push((node.term.clone(), cost));
                }
            }
        }
        // The additions go before the `all` (or at the end).
        let at = terms
            .iter()
            .position(|t| bare(t) == "all" || bare(t).starts_with("redirect="))
            .unwrap_or(terms.len());
        for (offset, (_, term, cost)) in missing.iter().enumerate() {
            terms.insert(at + offset, term.clone());
            lookups += cost;
        }
        unknown.sort_by_key(|(_, c)| std::cmp::Reverse(*c));
        let return_path_idea = ctx.new.and_then(|new| {
            let rp = new.profile.return_path.as_ref()?;
            let adding_new = missing.iter().any(|(name, _, _)| *name == new.profile.name);
            (adding_new && rp.aligns && matches!(rp.kind, ReturnPathKind::Cname | ReturnPathKind::Mx))
                .then(|| {
                    let host = rp
                        .host_hint
                        .as_deref()
                        .map_or(format!("a bounce subdomain of {domain}"), |h| format!("{h}.{domain}"));
                    format!(
                        "let {} send with its own return-path subdomain ({host}) instead of adding its include here: its SPF lives there, costs this record nothing and still aligns",
                        new.profile.name
                    )
                })
        });
        let mut kept_names: Vec<String> = ctx.kept.iter().map(|k| k.sender.clone()).collect();
        kept_names.dedup();
        BudgetPlan {
            domain,
            terms,
            lookups,
            unneeded,
            unknown,
            own,
            return_path_idea,
            kept: kept_names,
        }
    }

    /// The record with every certain removal made, and its lookups.
    fn proposal(&self) -> (String, u32) {
        let removed: Vec<&str> = self.unneeded.iter().map(|(t, _, _)| t.as_str()).collect();
        let mut lookups = self.lookups;
        for (_, cost, _) in &self.unneeded {
            lookups = lookups.saturating_sub(*cost);
        }
        let mut terms: Vec<String> = self
            .terms
            .iter()
            .filter(|t| !removed.contains(&t.as_str()))
            .cloned()
            .collect();
        // Own a/mx terms become their addresses only when that is what it takes to fit.
        for (term, cost, fixed) in &self.own {
            if fixed.is_empty() || lookups <= spf::LOOKUP_LIMIT {
                continue;
            }
            if let Some(i) = terms.iter().position(|t| t == term) {
                terms.splice(i..=i, fixed.iter().cloned());
                lookups = lookups.saturating_sub(*cost);
            }
        }
        (format!("v=spf1 {}", terms.join(" ")), lookups)
    }

    fn fix(&self) -> String {
        let mut parts = Vec::new();
        for (term, cost, why) in &self.unneeded {
            parts.push(format!("remove `{term}` ({}): {why}", lookups_word(*cost)));
        }
        let (record, lookups) = self.proposal();
        if lookups <= spf::LOOKUP_LIMIT
            && (!self.unneeded.is_empty() || self.lookups > spf::LOOKUP_LIMIT)
        {
            parts.push(format!(
                "publish at {}: `{record}` ({})",
                self.domain,
                lookups_word(lookups)
            ));
        }
        if !self.own.is_empty() {
            let list: Vec<String> = self
                .own
                .iter()
                .map(|(t, c, fixed)| {
                    if fixed.is_empty() {
                        format!("`{t}` ({c})")
                    } else {
                        format!("`{t}` ({c}) by `{}`", fixed.join(" "))
                    }
                })
                .collect();
            parts.push(format!(
                "replace your own {} with the addresses already looked up (0 lookups; update them when the servers change)",
                list.join(", ")
            ));
        }
        if !self.unknown.is_empty() {
            let list: Vec<String> = self
                .unknown
                .iter()
                .take(4)
                .map(|(t, c)| format!("`{t}` ({c})"))
                .collect();
            parts.push(format!(
                "drop includes of services that no longer send for {} — nothing in the plan needs {}",
                self.domain,
                list.join(", ")
            ));
        }
        if let Some(idea) = &self.return_path_idea {
            parts.push(idea.clone());
        }
        if lookups > spf::LOOKUP_LIMIT || parts.is_empty() {
            parts.push(format!(
                "move one platform's mail to a subdomain of {} with its own SPF record and budget",
                self.domain
            ));
        }
        let mut fix = format!("To fit in {}: {}.", spf::LOOKUP_LIMIT, parts.join("; "));
        if !self.kept.is_empty() {
            fix.push_str(&format!(
                " The senders the plan keeps ({}) stay in every proposal.",
                self.kept.join(", ")
            ));
        }
        fix
    }

    /// The record change the fix proposes, when it offers an exact record that fits.
    fn changes(&self, current: Option<&str>) -> Vec<RecordChange> {
        let (record, lookups) = self.proposal();
        let offered = lookups <= spf::LOOKUP_LIMIT
            && (!self.unneeded.is_empty() || self.lookups > spf::LOOKUP_LIMIT);
        match (offered, current) {
            (false, _) => Vec::new(),
            (true, Some(old)) if old == record => Vec::new(),
            (true, Some(old)) => vec![RecordChange::replace(&self.domain, "TXT", old, record)],
            (true, None) => vec![RecordChange::add(&self.domain, "TXT", record)],
        }
    }

    /// The certain changes as data: the exact record to publish.
    fn records(&self) -> serde_json::Value {
        let (record, lookups) = self.proposal();
        serde_json::json!({
            "proposal": {"name": self.domain.as_str(), "type": "TXT", "value": record, "lookups": lookups},
            "unneeded": self.unneeded.iter().map(|(t, c, why)| serde_json::json!({"term": t, "lookups": c, "why": why})).collect::<Vec<_>>(),
            "candidates": self.unknown.iter().map(|(t, c)| serde_json::json!({"term": t, "lookups": c})).collect::<Vec<_>>(),
        })
    }
}

/// `1 lookup`, `3 lookups`.
fn lookups_word(n: u32) -> String {
    crate::words::count(n as usize, "lookup", "lookups")
}

/// A term without its qualifier, in lower case.
fn bare(term: &str) -> String {
    term.trim_start_matches(['+', '-', '~', '?'])
        .to_ascii_lowercase()
}

/// Why a term at the From domain is not needed, when a platform profile says so: the platform
/// sends with its own envelope domain (a return path of the plan's, or the platform's own), so
/// receivers never evaluate its include here.
fn not_needed_here(ctx: &Context<'_>, term: &str) -> Option<String> {
    let include = term.strip_prefix("include:")?;
    for side in ctx.old.iter().chain(ctx.new.iter()) {
        let Some(spf) = &side.profile.spf else {
            continue;
        };
        if !spf.includes.iter().any(|i| i.eq_ignore_ascii_case(include)) {
            continue;
        }
        let name = &side.profile.name;
        let retired = ctx
            .old
            .is_some_and(|o| std::ptr::eq(o.profile, side.profile))
            && !ctx.before_cutover
            && !ctx
                .new
                .is_some_and(|n| std::ptr::eq(n.profile, side.profile));
        if retired {
            return Some(format!(
                "{name} is retired at the cutover, so nothing sends through this include any more"
            ));
        }
        return match (spf.placement, &side.setup.return_path) {
            (SpfPlacement::NotNeeded, _) => Some(format!(
                "{name}'s mail uses the platform's own envelope domain, so receivers never evaluate this include for it"
            )),
            (SpfPlacement::ReturnPath, Some(rp)) => Some(format!(
                "{name}'s mail uses the return path {rp}, where its SPF is evaluated; this include is never evaluated for it"
            )),
            (SpfPlacement::ReturnPath, None)
                if side
                    .profile
                    .return_path
                    .as_ref()
                    .is_some_and(|r| r.kind == ReturnPathKind::PlatformOwned || r.default_domain.is_some()) =>
            {
                Some(format!(
                    "{name}'s mail uses its own envelope domain{}, so receivers never evaluate this include for it",
                    side.profile
                        .return_path
                        .as_ref()
                        .and_then(|r| r.default_domain.as_deref())
                        .map_or(String::new(), |d| format!(" ({d})"))
                ))
            }
            _ => None,
        };
    }
    None
}

/// The `ip4:`/`ip6:` terms that replace an own `a`/`mx` term: the addresses the SPF walk
/// already looked up.
fn fixed_addresses(records: &DomainRecords, domain: &DomainName, term: &str) -> Vec<String> {
    let (mechanism, target) = match term.split_once(':') {
        Some((m, t)) => (m, t.split('/').next().unwrap_or(t).to_string()),
        None => (term, domain.to_string()),
    };
    let Ok(target) = DomainName::parse(&target) else {
        return Vec::new();
    };
    let hosts: Vec<DomainName> = if mechanism == "mx" {
        records
            .get(&target, QueryType::Mx)
            .map(|a| {
                a.records()
                    .iter()
                    .filter_map(|r| match &r.data {
                        RecordData::Mx { exchange, .. } if !exchange.is_empty() => {
                            DomainName::parse(exchange).ok()
                        }
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default()
    } else {
        vec![target]
    };
    let mut out = Vec::new();
    for host in hosts {
        for qtype in [QueryType::A, QueryType::Aaaa] {
            let Some(answer) = records.get(&host, qtype) else {
                // Not looked up: the addresses cannot be given exactly.
                return Vec::new();
            };
            if answer.failed().is_some() {
                return Vec::new();
            }
            for r in answer.records() {
                let t = match r.data {
                    RecordData::A(v4) => format!("ip4:{v4}"),
                    RecordData::Aaaa(v6) => format!("ip6:{v6}"),
                    _ => continue,
                };
                if !out.contains(&t) {
                    out.push(t);
                }
            }
        }
    }
    out
}

fn ip_authorization(m: &MigrationRecords, ctx: &Context<'_>) -> Vec<Finding> {
    let mut findings = Vec::new();
    let Some(new) = ctx.new else {
        return findings;
    };
    if let (true, Envelope::Platform(own)) = (m.ip_checks.is_empty(), new.envelope()) {
        findings.push(Finding::new(
            "coexist.spf-platform-envelope",
            Severity::Info,
            format!(
                "{}'s mail to {} uses {} as envelope sender, so SPF for it is the platform's own record, not yours: nothing to publish, and DMARC rests on DKIM alignment.",
                new.profile.name,
                ctx.domain.name,
                own.map_or("the platform's own bounce domain".to_string(), |d| format!("its own domain {d}"))
            ),
        ));
        return findings;
    }
    if m.ip_checks.is_empty() {
        findings.push(Finding::new(
            "coexist.ips-unknown",
            Severity::Info,
            format!(
                "{} publishes no sending ranges and the plan has no pool of its IPs for {}, so SPF was not evaluated for its IPs (seed tests will show the real result).",
                new.profile.name, ctx.domain.name
            ),
        ));
        return findings;
    }
    let mut passed = Vec::new();
    for check in &m.ip_checks {
        let from = match &check.source {
            crate::migration::IpSource::Pool(name) => format!(
                "{} pool `{name}`",
                if check.dedicated {
                    "dedicated"
                } else {
                    "shared"
                }
            ),
            crate::migration::IpSource::PublishedRange(r) => {
                format!("first address of the published range {r}")
            }
        };
        match check.verdict.result {
            SpfResult::Pass => passed.push(format!("{} ({from})", check.ip)),
            SpfResult::TempError => findings.push(
                Finding::new(
                    "coexist.inconclusive",
                    Severity::Inconclusive,
                    format!(
                        "SPF for {} at {} could not be evaluated (temperror): a lookup failed.",
                        check.ip, check.spf_domain
                    ),
                )
                .evidence(format!("check_host({}, {}) = temperror", check.ip, check.spf_domain)),
            ),
            other => findings.push(
                Finding::new(
                    "spf.ip-not-authorized",
                    Severity::Fail,
                    format!(
                        "Mail from {} ({}, {from}) gets SPF {} for {}: the record does not authorise the new platform's servers.",
                        check.ip,
                        new.profile.name,
                        result_name(other),
                        check.spf_domain
                    ),
                )
                .evidence(format!(
                    "check_host({}, {}) = {}{}",
                    check.ip,
                    check.spf_domain,
                    result_name(other),
                    check.verdict.explanation.as_deref().map_or(String::new(), |e| format!(" ({e})"))
                ))
                .fix(ip_fix(&new, check, ctx)),
            ),
        }
    }
    if !passed.is_empty() {
        findings.push(Finding::new(
            "spf.ip-authorized",
            Severity::Pass,
            format!(
                "SPF passes for the new platform's sending IPs: {}.",
                passed.join(", ")
            ),
        ));
    }
    findings
}

/// How to authorise an IP, where the profile says the platform's SPF lives: behind a CNAME'd
/// return path it comes with the CNAME; on an MX return path it is the platform's include
/// there; only at the From domain is the include added to the From domain's record.
fn ip_fix(new: &Side<'_>, check: &crate::migration::IpCheck, ctx: &Context<'_>) -> String {
    let name = &new.profile.name;
    let include = new.profile.spf.as_ref().and_then(|s| s.includes.first());
    let at_rp = check.spf_domain != ctx.domain.name;
    match (at_rp, new.profile.return_path.as_ref().map(|r| r.kind), include) {
        (true, Some(ReturnPathKind::Cname), _) => format!(
            "Point {} at {name} with the CNAME its console shows: {name}'s SPF comes with it, so nothing is added to any record by hand.",
            check.spf_domain
        ),
        (true, _, Some(include)) => format!(
            "Publish `v=spf1 include:{include} ~all` at {} (the TXT record {name} shows for its return path).",
            check.spf_domain
        ),
        (_, _, Some(include)) => format!(
            "Add `include:{include}` (or `ip4:{}`) to the SPF record of {}.",
            check.ip, check.spf_domain
        ),
        (_, _, None) => format!("Authorise {} in the SPF record of {}.", check.ip, check.spf_domain),
    }
}

fn result_name(r: SpfResult) -> &'static str {
    match r {
        SpfResult::Pass => "pass",
        SpfResult::Fail => "fail",
        SpfResult::SoftFail => "softfail",
        SpfResult::Neutral => "neutral",
        SpfResult::None => "none (no SPF record)",
        SpfResult::TempError => "temperror",
        SpfResult::PermError => "permerror",
    }
}

/// What a selector's lookup says: a usable key, why there is none, or that it could not be told.
enum SelectorKey {
    Usable(DkimKeyRecord),
    Missing(String),
    Unknown(String),
}

fn selector_state(answer: Option<&Answer>) -> SelectorKey {
    match answer.map(|a| (a, a.failed())) {
        None => SelectorKey::Unknown("not fetched".into()),
        Some((_, Some(e))) => SelectorKey::Unknown(format!("lookup failed: {e}")),
        Some((a, None)) => match selector_key(Some(a)) {
            Ok(key) => SelectorKey::Usable(key),
            Err(why) => SelectorKey::Missing(why),
        },
    }
}

/// Why a selector's key is not usable, or its parsed key.
fn selector_key(answer: Option<&Answer>) -> Result<DkimKeyRecord, String> {
    let Some(answer) = answer else {
        return Err("not fetched".into());
    };
    match &answer.outcome {
        Outcome::Failed(e) => return Err(format!("lookup failed: {e}")),
        Outcome::CnameLoop => return Err("its CNAME chain loops".into()),
        Outcome::NxDomain | Outcome::NoData if !answer.cname_chain.is_empty() => {
            return Err(format!(
                "it is a CNAME to {}, which has no key",
                answer
                    .cname_chain
                    .last()
                    .map(|c| c.to_string())
                    .unwrap_or_default()
            ))
        }
        Outcome::NxDomain | Outcome::NoData => return Err("there is no key record".into()),
        Outcome::Records(_) => {}
    }
    let txts = answer.txt_strings();
    let [text] = txts.as_slice() else {
        return Err(format!("{} TXT records at one selector", txts.len()));
    };
    let key = DkimKeyRecord::parse(text);
    if key.key == PublicKey::Revoked {
        return Err("the key is revoked (empty p=)".into());
    }
    if !key.errors.is_empty() {
        return Err(format!(
            "the key record is malformed: {}",
            key.errors.join("; ")
        ));
    }
    Ok(key)
}

fn dkim_coexistence(records: &DomainRecords, ctx: &Context<'_>) -> Vec<Finding> {
    let domain = &ctx.domain.name;
    let mut findings = Vec::new();
    for (side, is_new) in live_sides(ctx) {
        let selectors = side.selectors();
        let per_account = side
            .profile
            .dkim
            .as_ref()
            .is_some_and(|d| d.per_account_selectors);
        if selectors.is_empty() {
            // An explicit `selectors = []` is the plan saying there are none: nothing to warn.
            if side.profile.dkim.is_some() && side.setup.selectors.is_none() {
                findings.push(
                    Finding::new(
                        "coexist.selectors-unknown",
                        Severity::Warn,
                        format!(
                            "The plan names no DKIM selectors for {} at {domain}{}, so its keys were not checked.",
                            side.profile.name,
                            if per_account { " (they are generated per account)" } else { "" }
                        ),
                    )
                    .fix(format!("Add the selectors {} shows to the plan's [domain.{}] selectors.", side.profile.name, if is_new { "new" } else { "old" })),
                );
            }
            continue;
        }
        let signer = side.signing_domain(domain);
        for selector in selectors {
            let name = signer.child(&format!("{selector}._domainkey"));
            let answer = records.get(&name, QueryType::Txt);
            let evidence = answer.map(Answer::describe).unwrap_or_default();
            let key = match selector_state(answer) {
                SelectorKey::Unknown(why) => {
                    findings.push(Finding::new(
                        "coexist.inconclusive",
                        Severity::Inconclusive,
                        format!("DKIM selector {selector} of {} at {domain} could not be checked: {why}.", side.profile.name),
                    ).evidence(evidence));
                    continue;
                }
                SelectorKey::Missing(why) => Err(why),
                SelectorKey::Usable(key) => Ok(key),
            };
            match key {
                Err(why) => {
                    let (id, message, fix) = if is_new {
                        (
                            "coexist.dkim-new-missing",
                            format!("{}'s DKIM selector {selector} is not live at {domain}: {why}. Its mail is not DKIM-signed as {domain}.", side.profile.name),
                            format!("Publish the record {} shows for {name}.", side.profile.name),
                        )
                    } else {
                        (
                            "coexist.premature-removal",
                            format!("{} still sends until the cutover, but its DKIM selector {selector} is gone from {domain}: {why}.", side.profile.name),
                            format!("Restore {name} until the cutover stage (the snapshot has the old record)."),
                        )
                    };
                    findings.push(
                        Finding::new(id, Severity::Fail, message)
                            .evidence(evidence)
                            .fix(fix),
                    );
                }
                Ok(key) => {
                    if is_new
                        && key.key_type == KeyType::Rsa
                        && key.bits().unwrap_or(0) < NEW_KEY_MIN_BITS
                    {
                        findings.push(
                            Finding::new(
                                "coexist.dkim-new-weak",
                                Severity::Fail,
                                format!(
                                    "The new platform's key at selector {selector} is {} bits; a new setup should use at least {NEW_KEY_MIN_BITS}.",
                                    key.bits().unwrap_or(0)
                                ),
                            )
                            .evidence(evidence.clone())
                            .fix(format!("Ask {} for a {NEW_KEY_MIN_BITS}-bit key (most platforms offer it when the domain is set up).", side.profile.name)),
                        );
                    }
                    let target = answer
                        .and_then(|a| a.cname_chain.first())
                        .map(|t| t.to_string());
                    let sibling = target
                        .as_deref()
                        .and_then(|t| side.profile.dkim_cross_wired(&selector, t));
                    if let (Some(t), Some(sibling)) = (&target, sibling) {
                        findings.push(cross_wired(
                            records,
                            side,
                            signer,
                            &selector,
                            sibling,
                            t,
                            evidence.clone(),
                        ));
                        continue;
                    }
                    match (&target, side.profile.dkim_target_matches(target.as_deref().unwrap_or(""))) {
                        (Some(t), Some(false)) => findings.push(
                            Finding::new(
                                "coexist.dkim-target-mismatch",
                                Severity::Warn,
                                format!(
                                    "Selector {selector} points at {t}, which is not where {} keeps its keys: it may belong to another platform or account.",
                                    side.profile.name
                                ),
                            )
                            .evidence(evidence.clone())
                            .fix(format!("Check the CNAME target against {}'s console.", side.profile.name)),
                        ),
                        (None, _) if is_new
                            && side.profile.dkim.as_ref().is_some_and(|d| d.record == crate::catalog::providers::DkimRecordKind::Cname) =>
                        {
                            findings.push(
                                Finding::new(
                                    "coexist.dkim-not-delegated",
                                    Severity::Warn,
                                    format!(
                                        "Selector {selector} holds a copy of the key, but {} delegates its selectors by CNAME and rotates the keys: the copy will stop matching.",
                                        side.profile.name
                                    ),
                                )
                                .evidence(evidence.clone())
                                .fix(format!("Replace the TXT record at {name} with the CNAME {} shows.", side.profile.name)),
                            );
                        }
                        _ => {}
                    }
                }
            }
        }
    }
    findings
}

/// A selector delegated to the target its platform prescribes for a sibling selector: the
/// platform signs with this selector's key, receivers fetch the sibling's, and DKIM fails.
/// When the sibling points at this selector's target (the pair swapped), the exact fix is the
/// swap back.
fn cross_wired(
    records: &DomainRecords,
    side: Side<'_>,
    signer: &DomainName,
    selector: &str,
    sibling: &str,
    target: &str,
    evidence: String,
) -> Finding {
    let name = &side.profile.name;
    let host = signer.child(&format!("{selector}._domainkey"));
    let sibling_host = signer.child(&format!("{sibling}._domainkey"));
    // Selectors are fetched as TXT; the CNAME they follow is in the answer's chain.
    let sibling_target = records
        .get(&sibling_host, QueryType::Txt)
        .and_then(|a| a.cname_chain.first())
        .map(|t| t.to_string());
    let swapped = sibling_target
        .as_deref()
        .filter(|t| side.profile.dkim_cross_wired(sibling, t) == Some(selector));
    let finding = Finding::new(
        "coexist.dkim-cross-wired",
        Severity::Fail,
        format!(
            "Selector {selector} at {signer} points at {target}, the target {name} prescribes for selector {sibling}: {name} signs with {selector}'s key, receivers fetch {sibling}'s, and DKIM fails{}.",
            if swapped.is_some() { format!(" (and {sibling} points at {selector}'s target: the two are swapped)") } else { String::new() }
        ),
    )
    .evidence(evidence);
    match swapped {
        Some(sibling_target) => {
            let (own, theirs) = (
                sibling_target.trim_end_matches('.').to_string(),
                target.trim_end_matches('.').to_string(),
            );
            finding
                .fix(format!(
                    "Swap the two CNAMEs back: {host} → {own}, {sibling_host} → {theirs}."
                ))
                .records(vec![
                    RecordChange::replace(&host, "CNAME", theirs.clone(), own.clone()),
                    RecordChange::replace(&sibling_host, "CNAME", own, theirs),
                ])
        }
        None => finding.fix(format!(
            "Point {host} at the {selector} target {name}'s console shows for it, not {sibling}'s."
        )),
    }
}

fn cname_target(records: &DomainRecords, host: &DomainName) -> Result<Option<String>, String> {
    match records.get(host, QueryType::Cname) {
        None => Err("not fetched".into()),
        Some(a) => match &a.outcome {
            Outcome::Failed(e) => Err(e.to_string()),
            _ => Ok(a.records().iter().find_map(|r| match &r.data {
                RecordData::Cname(t) => Some(t.clone()),
                _ => None,
            })),
        },
    }
}

fn return_paths(records: &DomainRecords, ctx: &Context<'_>) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (side, is_new) in live_sides(ctx) {
        let Some(rp) = &side.setup.return_path else {
            continue;
        };
        let profile_rp = side.profile.return_path.as_ref();
        match profile_rp.map(|p| p.kind) {
            Some(ReturnPathKind::Cname) => match cname_target(records, rp) {
                Err(e) => findings.push(
                    Finding::new(
                        "coexist.inconclusive",
                        Severity::Inconclusive,
                        format!("The return path {rp} could not be looked up: {e}."),
                    )
                    .evidence(records.get(rp, QueryType::Cname).map(Answer::describe).unwrap_or_else(|| format!("CNAME {rp}: {e}"))),
                ),
                Ok(None) => findings.push(
                    Finding::new(
                        "coexist.return-path-missing",
                        Severity::Fail,
                        format!(
                            "The return path {rp} is not a CNAME to {}: bounces cannot reach it and SPF is evaluated against a name the platform does not control.",
                            side.profile.name
                        ),
                    )
                    .evidence(records.get(rp, QueryType::Cname).map(Answer::describe).unwrap_or_default())
                    .fix(format!("Publish the CNAME {} shows for {rp}.", side.profile.name)),
                ),
                Ok(Some(target)) => {
                    if let Some(pattern) = profile_rp.and_then(|p| p.target.as_deref()) {
                        if !full_match(pattern, &target) {
                            findings.push(
                                Finding::new(
                                    "coexist.return-path-mismatch",
                                    Severity::Warn,
                                    format!("The return path {rp} points at {target}, which does not look like {}'s bounce host.", side.profile.name),
                                )
                                .fix(format!("Check the CNAME target against {}'s console.", side.profile.name)),
                            );
                        }
                    }
                }
            },
            Some(ReturnPathKind::Mx) => {
                let mx = records.get(rp, QueryType::Mx);
                let hosts: Vec<String> = mx
                    .map(|a| {
                        a.records()
                            .iter()
                            .filter_map(|r| match &r.data {
                                RecordData::Mx { exchange, .. } => Some(exchange.clone()),
                                _ => None,
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let pattern = profile_rp.and_then(|p| p.target.as_deref());
                let ok = !hosts.is_empty() && pattern.is_none_or(|p| hosts.iter().any(|h| full_match(p, h)));
                if let Some(e) = mx.and_then(|a| a.failed()) {
                    findings.push(
                        Finding::new(
                            "coexist.inconclusive",
                            Severity::Inconclusive,
                            format!("The MX records of the return path {rp} could not be looked up: {e}."),
                        )
                        .evidence(mx.map(Answer::describe).unwrap_or_default()),
                    );
                } else if !ok {
                    findings.push(
                        Finding::new(
                            "coexist.return-path-missing",
                            Severity::Fail,
                            format!("The return path {rp} does not have {}'s MX records, so bounces do not reach the platform.", side.profile.name),
                        )
                        .evidence(mx.map(Answer::describe).unwrap_or_default())
                        .fix(format!("Publish the MX (and SPF) records {} shows for {rp}.", side.profile.name)),
                    );
                }
            }
            Some(ReturnPathKind::PlatformOwned | ReturnPathKind::FromDomain) | None => {
                if is_new {
                    findings.push(Finding::new(
                        "coexist.return-path-mismatch",
                        Severity::Info,
                        format!(
                            "The plan sets a return path ({rp}), but {}'s profile says it normally sends with another envelope domain; check that your account supports a custom return path.",
                            side.profile.name
                        ),
                    ));
                }
            }
        }
        for host in &side.setup.tracking {
            match cname_target(records, host) {
                Ok(Some(target)) => {
                    let ok = side.profile.tracking.is_empty()
                        || side.profile.tracking.iter().any(|t| full_match(&t.target, &target));
                    if !ok {
                        findings.push(Finding::new(
                            "coexist.tracking-missing",
                            Severity::Warn,
                            format!("The tracking host {host} points at {target}, not at {}: tracked links may break.", side.profile.name),
                        ));
                    }
                }
                Ok(None) => findings.push(
                    Finding::new(
                        "coexist.tracking-missing",
                        Severity::Warn,
                        format!("The tracking host {host} is not a CNAME to {}: links and open tracking in its mail will break.", side.profile.name),
                    )
                    .evidence(records.get(host, QueryType::Cname).map(Answer::describe).unwrap_or_default())
                    .fix(format!("Publish the tracking CNAME {} shows for {host}.", side.profile.name)),
                ),
                Err(e) => findings.push(
                    Finding::new(
                        "coexist.inconclusive",
                        Severity::Inconclusive,
                        format!("The tracking host {host} could not be looked up: {e}."),
                    )
                    .evidence(records.get(host, QueryType::Cname).map(Answer::describe).unwrap_or_else(|| format!("CNAME {host}: {e}"))),
                ),
            }
        }
    }
    findings
}

fn alignment(records: &DomainRecords, ctx: &Context<'_>) -> Vec<Finding> {
    let domain = &ctx.domain.name;
    let Some(org) = dmarc::organizational_domain(records, domain) else {
        return vec![Finding::new(
            "align.inconclusive",
            Severity::Inconclusive,
            format!("The DMARC tree walk of {domain} could not be completed, so alignment was not judged."),
        )
        .evidence(failed_walk(records, domain))];
    };
    let policy = dmarc::policy_record(records, domain);
    let strict_spf = policy.as_ref().is_some_and(|(_, r)| r.aspf_strict);
    let strict_dkim = policy.as_ref().is_some_and(|(_, r)| r.adkim_strict);
    let Some(new) = ctx.new else {
        return Vec::new();
    };
    let name = &new.profile.name;
    let signer = new.signing_domain(domain);
    // DKIM aligns when the signing domain is the From domain, or (relaxed) shares its
    // organisational domain.
    let dkim_aligns = if signer == domain {
        Ok(())
    } else if strict_dkim {
        Err(format!("{name} signs as {signer}, not {domain}, and DMARC asks for strict DKIM alignment (adkim=s)"))
    } else {
        match dmarc::organizational_domain(records, signer) {
            None => Err(format!("the organisational domain of {signer} is unknown")),
            Some(o) if o == org => Ok(()),
            Some(o) => Err(format!(
                "{name} signs as {signer}, which belongs to {o}, not {org}"
            )),
        }
    };
    let spf_note;
    let spf_aligns = match (&new.setup.return_path, new.profile.return_path.as_ref()) {
        (_, Some(rp)) if rp.kind == ReturnPathKind::FromDomain => {
            spf_note =
                format!("{name} sends with {domain} itself as envelope domain, so SPF aligns");
            true
        }
        (_, Some(rp)) if rp.kind == ReturnPathKind::PlatformOwned => {
            spf_note = format!(
                "{name} sends with its own envelope domain{}, so SPF cannot align",
                rp.default_domain
                    .as_deref()
                    .map_or(String::new(), |d| format!(" ({d})"))
            );
            false
        }
        (None, _) => {
            spf_note = format!("the plan sets no return path for {name}, so its envelope domain is the platform's and SPF cannot align");
            false
        }
        (Some(rp), _) => match dmarc::organizational_domain(records, rp) {
            None => {
                spf_note = format!("the organisational domain of {rp} is unknown");
                false
            }
            Some(_) if strict_spf && rp != domain => {
                spf_note = format!("the return path {rp} is not {domain} and DMARC asks for strict SPF alignment (aspf=s)");
                false
            }
            Some(rp_org) if rp_org == org => {
                spf_note = format!("the return path {rp} is in the organisational domain {org}, so SPF aligns (relaxed)");
                true
            }
            Some(rp_org) => {
                spf_note = format!(
                    "the return path {rp} belongs to {rp_org}, not {org}, so SPF cannot align"
                );
                false
            }
        },
    };
    let states: Vec<(String, SelectorKey)> = new
        .selectors()
        .into_iter()
        .map(|s| {
            let state = selector_state(
                records.get(&signer.child(&format!("{s}._domainkey")), QueryType::Txt),
            );
            (s, state)
        })
        .collect();
    let live_selector = states
        .iter()
        .find(|(_, st)| matches!(st, SelectorKey::Usable(_)))
        .map(|(s, _)| s.clone());
    let unknown = states
        .iter()
        .any(|(_, st)| matches!(st, SelectorKey::Unknown(_)));
    if live_selector.is_none() && unknown {
        let failed: Vec<String> = new
            .selectors()
            .iter()
            .filter_map(|s| records.get(&signer.child(&format!("{s}._domainkey")), QueryType::Txt))
            .filter(|a| a.failed().is_some())
            .map(Answer::describe)
            .collect();
        return vec![Finding::new(
            "align.inconclusive",
            Severity::Inconclusive,
            format!("The DKIM selectors of {name} at {signer} could not be looked up, so alignment was not judged."),
        )
        .evidence(failed.join("\n"))];
    }
    let dkim_note = match (&live_selector, &dkim_aligns) {
        (Some(s), Ok(())) if signer == domain => {
            format!("DKIM signs with d={domain} (selector {s} is live), so DKIM aligns")
        }
        (Some(s), Ok(())) => format!(
            "DKIM signs with d={signer} (selector {s} is live), in the organisational domain {org}, so DKIM aligns (relaxed)"
        ),
        (Some(s), Err(why)) => format!("selector {s} is live, but {why}, so DKIM cannot align"),
        (None, _) => {
            format!("no DKIM selector of {name} is live at {signer}, so DKIM cannot align yet")
        }
    };
    let evidence = format!("{spf_note}.\n{dkim_note}.");
    match (spf_aligns, live_selector.is_some() && dkim_aligns.is_ok()) {
        (_, true) => vec![Finding::new(
            "align.ok",
            Severity::Pass,
            format!("Mail from {name} can pass DMARC for {domain}: {dkim_note}{}.", if spf_aligns { ", and SPF aligns too" } else { "" }),
        )
        .evidence(evidence)],
        (true, false) => vec![Finding::new(
            "align.spf-only",
            Severity::Warn,
            format!("Mail from {name} can only pass DMARC through SPF ({spf_note}); forwarding breaks SPF, so forwarded mail will fail DMARC."),
        )
        .evidence(evidence)
        .fix(format!("Set up {name}'s DKIM selectors at {signer} so DKIM aligns too."))],
        (false, false) => vec![Finding::new(
            "align.infeasible",
            Severity::Fail,
            format!("Mail from {name} cannot pass DMARC for {domain}: {spf_note}, and {dkim_note}."),
        )
        .evidence(evidence)
        .fix(match new.profile.return_path.as_ref() {
            // The profile says SPF cannot align for this platform: only DKIM can.
            Some(rp) if !rp.aligns => format!(
                "Publish {name}'s DKIM records at {signer}: its envelope domain is its own, so DKIM is the only way its mail aligns."
            ),
            _ => format!(
                "Publish {name}'s DKIM records at {signer} (DKIM alignment), and set up its return-path subdomain under {domain} (SPF alignment)."
            ),
        })],
    }
}

/// The lookups of `domain`'s DMARC tree walk that failed, for an inconclusive finding's
/// evidence.
fn failed_walk(records: &DomainRecords, domain: &DomainName) -> String {
    crate::fetch::dmarc_walk_names(domain)
        .iter()
        .filter_map(|name| match records.get(name, QueryType::Txt) {
            None => Some(format!("{name} TXT: not fetched")),
            Some(a) if a.failed().is_some() => Some(a.describe()),
            Some(_) => None,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn reverse_dns(records: &DomainRecords, ctx: &Context<'_>) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mut good = Vec::new();
    let Some(new) = ctx.new else {
        return findings;
    };
    // Shared pools are the platform's: their reverse DNS is not the company's to fix.
    for ip in ctx.new_ips.iter().filter(|s| s.dedicated).map(|s| &s.ip) {
        let rname = reverse_name(*ip);
        let Some(ptr) = records.get(&rname, QueryType::Ptr) else {
            continue;
        };
        if let Some(e) = ptr.failed() {
            findings.push(
                Finding::new(
                    "ptr.inconclusive",
                    Severity::Inconclusive,
                    format!("The reverse DNS of {ip} could not be looked up: {e}."),
                )
                .evidence(ptr.describe()),
            );
            continue;
        }
        let names: Vec<String> = ptr
            .records()
            .iter()
            .filter_map(|r| match &r.data {
                RecordData::Ptr(n) => Some(n.clone()),
                _ => None,
            })
            .collect();
        if names.is_empty() {
            findings.push(
                Finding::new(
                    "ptr.missing",
                    Severity::Fail,
                    format!("The sending IP {ip} has no reverse DNS (PTR): Gmail and Yahoo reject or junk mail from it."),
                )
                .evidence(ptr.describe())
                .fix(format!("Ask {} (or whoever owns the IP) to set a PTR for {ip} to a host name that resolves back to it.", new.profile.name)),
            );
            continue;
        }
        let confirmed = names.iter().find(|n| {
            DomainName::parse(n).ok().is_some_and(|name| {
                [QueryType::A, QueryType::Aaaa].iter().any(|t| {
                    records.get(&name, *t).is_some_and(|a| {
                        a.records().iter().any(|r| match r.data {
                            RecordData::A(v4) => std::net::IpAddr::V4(v4) == *ip,
                            RecordData::Aaaa(v6) => std::net::IpAddr::V6(v6) == *ip,
                            _ => false,
                        })
                    })
                })
            })
        });
        let forward_failed = names.iter().any(|n| {
            DomainName::parse(n).ok().is_some_and(|name| {
                [QueryType::A, QueryType::Aaaa]
                    .iter()
                    .any(|t| records.get(&name, *t).is_some_and(|a| a.failed().is_some()))
            })
        });
        match confirmed {
            Some(name) => good.push(format!("{ip} ↔ {name}")),
            None if forward_failed => findings.push(
                Finding::new(
                    "ptr.inconclusive",
                    Severity::Inconclusive,
                    format!("The addresses of {} (the PTR name of {ip}) could not be looked up.", names.join(", ")),
                )
                .evidence(
                    names
                        .iter()
                        .filter_map(|n| DomainName::parse(n).ok())
                        .flat_map(|n| [QueryType::A, QueryType::Aaaa].map(|t| records.get(&n, t).filter(|a| a.failed().is_some()).map(Answer::describe)))
                        .flatten()
                        .collect::<Vec<_>>()
                        .join("\n"),
                ),
            ),
            None => findings.push(
                Finding::new(
                    "ptr.mismatch",
                    Severity::Fail,
                    format!(
                        "The reverse DNS of {ip} names {}, which does not resolve back to {ip}: the check receivers call forward-confirmed reverse DNS fails.",
                        names.join(", ")
                    ),
                )
                .evidence(ptr.describe())
                .fix(format!("Publish an A/AAAA record for {} pointing to {ip}, or change the PTR to a name that does.", names.first().map(String::as_str).unwrap_or("the PTR name"))),
            ),
        }
    }
    if !good.is_empty() {
        findings.push(Finding::new(
            "ptr.ok",
            Severity::Pass,
            format!("Forward-confirmed reverse DNS: {}.", good.join(", ")),
        ));
    }
    findings
}
