//! Platform events into daily counts: each event once across every file imported (a 64-bit
//! digest of its identity in `seen_events`), added up in memory per day, cohort and mailbox
//! provider — a few hundred keys however many events — and added to the history's `daily` rows
//! of source `events` when the file is done.

use super::{sql_int, ImportError, Session};
use crate::warmup::Provider;
use chrono::NaiveDate;
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// What a counted event adds to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Counter {
    Sent,
    Delivered,
    HardBounce,
    SoftBounce,
    Complaint,
    Deferral,
    Block,
    Open,
    Click,
}

/// What an event is, for the counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum What {
    Count(Counter),
    /// Never sent (SendGrid `dropped`): counted apart.
    Dropped,
    /// Refused by the platform before sending (SES `Reject`): counted apart.
    RejectedByPlatform,
}

/// The daily counts of one file's events.
#[derive(Default)]
pub(super) struct Tally {
    cohorts: Vec<String>,
    cohort_index: HashMap<String, usize>,
    rows: HashMap<(NaiveDate, usize, Provider), [u64; 9]>,
}

/// The `seen_events` key of an event whose identity is `parts` run together: the first eight
/// bytes of their SHA-256. At a million events a day for a year, the chance that two distinct
/// events share a key is about one in fifty million.
fn event_key(parts: &[&[u8]]) -> i64 {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    let digest = hasher.finalize();
    digest
        .first_chunk::<8>()
        .map(|b| i64::from_be_bytes(*b))
        .unwrap_or_default()
}

impl Tally {
    /// Counts an event unless it was counted before. `identity` is what makes it unique on its
    /// platform (`sendgrid:` and its `sg_event_id`).
    pub fn record(
        &mut self,
        s: &mut Session<'_>,
        identity: &[&[u8]],
        day: NaiveDate,
        cohort: &str,
        provider: Provider,
        what: What,
    ) -> Result<(), ImportError> {
        let mut insert =
            s.tx.prepare_cached("INSERT OR IGNORE INTO seen_events (h) VALUES (?1)")
                .map_err(|e| s.sql(e))?;
        let new = insert
            .execute([event_key(identity)])
            .map_err(|e| s.sql(e))?
            > 0;
        drop(insert);
        if !new {
            s.outcome.duplicates += 1;
            return Ok(());
        }
        match what {
            What::Dropped => s.outcome.dropped += 1,
            What::RejectedByPlatform => s.outcome.rejected_by_platform += 1,
            What::Count(counter) => {
                let index = match self.cohort_index.get(cohort) {
                    Some(i) => *i,
                    None => {
                        self.cohorts.push(cohort.to_string());
                        self.cohort_index
                            .insert(cohort.to_string(), self.cohorts.len() - 1);
                        self.cohorts.len() - 1
                    }
                };
                let counts = self.rows.entry((day, index, provider)).or_default();
                if let Some(n) = counts.get_mut(counter as usize) {
                    *n += 1;
                }
                s.outcome.counted += 1;
                if cohort.is_empty() {
                    s.outcome.without_cohort += 1;
                }
                s.day(day);
            }
        }
        Ok(())
    }

    /// Adds the counts to the `daily` rows of source `events`.
    pub fn write(&self, s: &Session<'_>) -> Result<(), ImportError> {
        let mut upsert =
            s.tx.prepare_cached(
                "INSERT INTO daily (day, cohort, provider, source, sent, delivered, hard_bounces,
                     soft_bounces, complaints, deferrals, blocks, opens, clicks)
                 VALUES (?1, ?2, ?3, 'events', ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
                 ON CONFLICT (day, cohort, provider, source) DO UPDATE SET
                     sent = sent + excluded.sent,
                     delivered = delivered + excluded.delivered,
                     hard_bounces = hard_bounces + excluded.hard_bounces,
                     soft_bounces = soft_bounces + excluded.soft_bounces,
                     complaints = complaints + excluded.complaints,
                     deferrals = deferrals + excluded.deferrals,
                     blocks = blocks + excluded.blocks,
                     opens = COALESCE(opens, 0) + excluded.opens,
                     clicks = COALESCE(clicks, 0) + excluded.clicks",
            )
            .map_err(|e| s.sql(e))?;
        for ((day, cohort, provider), counts) in &self.rows {
            let cohort = self.cohorts.get(*cohort).map_or("", String::as_str);
            let [sent, delivered, hard, soft, complaints, deferrals, blocks, opens, clicks] =
                counts.map(sql_int);
            upsert
                .execute(rusqlite::params![
                    day.to_string(),
                    cohort,
                    provider.id(),
                    sent,
                    delivered,
                    hard,
                    soft,
                    complaints,
                    deferrals,
                    blocks,
                    opens,
                    clicks
                ])
                .map_err(|e| s.sql(e))?;
        }
        Ok(())
    }
}

/// The day an instant falls on, `offset_minutes` east of UTC.
pub(super) fn local_day(utc: chrono::DateTime<chrono::Utc>, offset_minutes: i32) -> NaiveDate {
    (utc + chrono::Duration::minutes(i64::from(offset_minutes))).date_naive()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_keys_depend_on_every_part_and_days_on_the_offset() {
        assert_eq!(
            event_key(&[b"sendgrid:", b"abc"]),
            event_key(&[b"sendgrid:abc"])
        );
        assert_ne!(
            event_key(&[b"sendgrid:", b"abc"]),
            event_key(&[b"sendgrid:", b"abd"])
        );
        let t = chrono::DateTime::from_timestamp(1_793_750_400 - 60, 0).unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-03T23:59:00+00:00");
        assert_eq!(local_day(t, 0).to_string(), "2026-11-03");
        assert_eq!(local_day(t, 60).to_string(), "2026-11-04");
        assert_eq!(local_day(t, -300).to_string(), "2026-11-03");
    }
}
