//! SendGrid Event Webhook events: what each one counts as.
//!
//! A file is a JSON array of events (one webhook POST; several arrays one after another are read
//! in turn) or one event per line (ndjson, as people store them). Of each event mailshift reads
//! `email`, `timestamp` (Unix seconds), `event`, `sg_event_id`, `type` (bounces), `category` (a
//! string or a list) and the custom argument named by `--cohort-field` (default `cohort`; custom
//! arguments are flattened into the event):
//!
//! | `event` | counts as |
//! |---|---|
//! | `processed` | sent |
//! | `delivered` | delivered |
//! | `bounce` with `type` `bounce` (or no `type`) | hard bounce |
//! | `bounce` with `type` `blocked` | block |
//! | `deferred` | deferral |
//! | `spamreport` | complaint |
//! | `open`, `click` | open, click |
//! | `dropped` | nothing sent: counted apart (`dropped`) |
//! | anything else (`unsubscribe`, `group_unsubscribe`, `group_resubscribe`, …) | nothing (`ignored`) |
//!
//! The day is the event's time in the plan's `utc_offset`; the mailbox provider is the
//! recipient's domain's ([`Provider::of_address`]); the cohort is the custom argument, else a
//! category that is one of the plan's cohorts, else `--cohort`, else none. Each event counts
//! once across files: its key is `sendgrid:` and its `sg_event_id`, so an event without one is
//! rejected (it could not be told from a retry of the same POST).

use super::input::{JsonRecords, Line, Lines, MAX_RECORD};
use super::tally::{local_day, Counter, Tally, What};
use super::{ImportError, Session};
use crate::warmup::Provider;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;
use std::io::BufRead;

/// Imports a file of SendGrid events.
pub(crate) fn import(s: &mut Session<'_>, input: &mut impl BufRead) -> Result<(), ImportError> {
    let mut tally = Tally::default();
    let cohort_field = s.opts.cohort_field.clone();
    if s.first_byte() == Some(b'[') {
        let mut records = JsonRecords::new(input, &[]);
        while let Some(record) = records.next_record().map_err(|e| s.scan(e))? {
            match record.text {
                Ok(text) => event(s, &mut tally, &cohort_field, record.line, text)?,
                Err(size) => too_long(s, record.line, size),
            }
        }
    } else {
        let mut lines = Lines::new(input);
        while let Some((number, line)) = lines.next_line().map_err(|e| s.io(e))? {
            match line {
                Line::Text(t) if t.trim().is_empty() => {}
                Line::Text(t) => event(s, &mut tally, &cohort_field, number, t.as_bytes())?,
                Line::TooLong(size) => too_long(s, number, size),
                Line::NotText => {
                    s.outcome.records += 1;
                    s.reject(number, "not UTF-8 text");
                }
            }
        }
    }
    tally.write(s)
}

fn too_long(s: &mut Session<'_>, line: usize, size: u64) {
    s.outcome.records += 1;
    s.reject(
        line,
        format!(
            "an event of {size} bytes, over the {} an event may have",
            crate::files::show_size(MAX_RECORD as u64)
        ),
    );
}

/// One event's JSON text: checked, then counted (or rejected, with the field at fault).
fn event(
    s: &mut Session<'_>,
    tally: &mut Tally,
    cohort_field: &str,
    line: usize,
    text: &[u8],
) -> Result<(), ImportError> {
    s.outcome.records += 1;
    let mut de = serde_json::Deserializer::from_slice(text);
    let parsed = EventSeed { cohort_field }
        .deserialize(&mut de)
        .and_then(|e| de.end().map(|_| e));
    let raw = match parsed {
        Ok(raw) => raw,
        Err(e) => {
            s.reject(
                line,
                format!("not a SendGrid event: {}", super::json_message(&e)),
            );
            return Ok(());
        }
    };
    let what = match raw.event.as_ref().and_then(Scalar::text) {
        None => {
            s.reject(line, "no `event` (processed, delivered, bounce, …)");
            return Ok(());
        }
        Some(name) => match name {
            "processed" => What::Count(Counter::Sent),
            "delivered" => What::Count(Counter::Delivered),
            "deferred" => What::Count(Counter::Deferral),
            "spamreport" => What::Count(Counter::Complaint),
            "open" => What::Count(Counter::Open),
            "click" => What::Count(Counter::Click),
            "dropped" => What::Dropped,
            "bounce" => match raw.bounce_type.as_ref().and_then(Scalar::text) {
                None | Some("bounce") => What::Count(Counter::HardBounce),
                Some("blocked") => What::Count(Counter::Block),
                Some(other) => {
                    s.reject(
                        line,
                        format!("a bounce of `type` `{other}`: expected `bounce` or `blocked`"),
                    );
                    return Ok(());
                }
            },
            _ => {
                s.outcome.ignored += 1;
                return Ok(());
            }
        },
    };
    let Some(id) = raw
        .sg_event_id
        .as_ref()
        .and_then(Scalar::text)
        .filter(|t| !t.trim().is_empty())
    else {
        s.reject(
            line,
            "no `sg_event_id`: without it the event cannot be counted once",
        );
        return Ok(());
    };
    let Some(email) = raw
        .email
        .as_ref()
        .and_then(Scalar::text)
        .filter(|t| t.contains('@'))
    else {
        s.reject(line, "no `email` address");
        return Ok(());
    };
    let seconds = match raw.timestamp.as_ref().map(Scalar::seconds) {
        Some(Some(n)) => n,
        Some(None) => {
            s.reject(
                line,
                "`timestamp` is not a time in Unix seconds (1793577600)",
            );
            return Ok(());
        }
        None => {
            s.reject(line, "no `timestamp`");
            return Ok(());
        }
    };
    let Some(utc) = chrono::DateTime::from_timestamp(seconds, 0) else {
        s.reject(line, format!("`timestamp` {seconds} is out of range"));
        return Ok(());
    };
    let day = local_day(utc, s.opts.utc_offset_minutes);
    let categories: Vec<&str> = match &raw.category {
        Some(Scalar::Text(c)) => vec![c.as_ref()],
        Some(Scalar::List(list)) => list.iter().map(|c| c.as_ref()).collect(),
        _ => Vec::new(),
    };
    let named = raw.cohort.as_ref().and_then(Scalar::text);
    let cohort = s.cohort(named, &categories);
    tally.record(
        s,
        &[b"sendgrid:", id.as_bytes()],
        day,
        &cohort,
        Provider::of_address(email),
        what,
    )
}

/// A field's value as given: kept whole so a wrong type is reported at its field.
#[derive(Debug)]
enum Scalar<'a> {
    Text(Cow<'a, str>),
    Integer(i64),
    Float(f64),
    List(Vec<Cow<'a, str>>),
    Other,
}

impl Scalar<'_> {
    fn text(&self) -> Option<&str> {
        match self {
            Scalar::Text(t) => Some(t.as_ref()),
            _ => None,
        }
    }

    /// Unix seconds, from a number or a string of digits.
    fn seconds(&self) -> Option<i64> {
        match self {
            Scalar::Integer(n) => Some(*n),
            Scalar::Float(f) if f.is_finite() && f.abs() < 1e15 => Some(f.trunc() as i64),
            Scalar::Text(t) => t.trim().parse().ok(),
            _ => None,
        }
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a value")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Scalar::Text(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Scalar::Text(Cow::Owned(v.to_string())))
    }

    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Scalar::Text(Cow::Owned(v)))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Scalar::Integer(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(i64::try_from(v).map_or(Scalar::Other, Scalar::Integer))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Scalar::Float(v))
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Scalar::Other)
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Other)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut list = Vec::new();
        while let Some(item) = seq.next_element::<MaybeText<'de>>()? {
            if let Some(t) = item.0 {
                list.push(t);
            }
        }
        Ok(Scalar::List(list))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Other)
    }
}

impl<'de> de::Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

/// A list item: its text when it is a string (categories), nothing otherwise.
struct MaybeText<'a>(Option<Cow<'a, str>>);

impl<'de> de::Deserialize<'de> for MaybeText<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(MaybeText(match Scalar::deserialize(d)? {
            Scalar::Text(t) => Some(t),
            _ => None,
        }))
    }
}

/// The fields of an event mailshift reads; the others are skipped without being kept.
#[derive(Debug, Default)]
struct RawEvent<'a> {
    email: Option<Scalar<'a>>,
    timestamp: Option<Scalar<'a>>,
    event: Option<Scalar<'a>>,
    sg_event_id: Option<Scalar<'a>>,
    bounce_type: Option<Scalar<'a>>,
    category: Option<Scalar<'a>>,
    cohort: Option<Scalar<'a>>,
}

enum Key {
    Email,
    Timestamp,
    Event,
    SgEventId,
    Type,
    Category,
    Cohort,
    Other,
}

/// Reads an event, picking out the custom argument named `cohort_field`.
struct EventSeed<'f> {
    cohort_field: &'f str,
}

impl<'de> DeserializeSeed<'de> for EventSeed<'_> {
    type Value = RawEvent<'de>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for EventSeed<'_> {
    type Value = RawEvent<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an event object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut event = RawEvent::default();
        while let Some(key) = map.next_key_seed(KeySeed {
            cohort_field: self.cohort_field,
        })? {
            let slot = match key {
                Key::Email => &mut event.email,
                Key::Timestamp => &mut event.timestamp,
                Key::Event => &mut event.event,
                Key::SgEventId => &mut event.sg_event_id,
                Key::Type => &mut event.bounce_type,
                Key::Category => &mut event.category,
                Key::Cohort => &mut event.cohort,
                Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            *slot = Some(map.next_value::<Scalar<'de>>()?);
        }
        Ok(event)
    }
}

struct KeySeed<'f> {
    cohort_field: &'f str,
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Key;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for KeySeed<'_> {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E>(self, v: &str) -> Result<Key, E> {
        // The cohort argument first: whatever it is called, the user named it.
        if v == self.cohort_field {
            return Ok(Key::Cohort);
        }
        Ok(match v {
            "email" => Key::Email,
            "timestamp" => Key::Timestamp,
            "event" => Key::Event,
            "sg_event_id" => Key::SgEventId,
            "type" => Key::Type,
            "category" => Key::Category,
            _ => Key::Other,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{daily, history, import, opts, problems};
    use super::super::EvidenceKind;

    /// An event line: `processed` at 2026-11-02 14:00 UTC unless the fields say otherwise.
    fn ev(fields: &str) -> String {
        format!("{{\"email\":\"ann@gmail.com\",\"timestamp\":1793628000,\"event\":\"processed\",{fields}}}")
    }

    #[test]
    fn bad_events_are_rejected_by_field_and_good_ones_counted() {
        let (dir, mut h) = history();
        let lines = [
            ev(r#""sg_event_id":"a1","cohort":"rest""#),
            ev(r#""sg_event_id":"a2","event":"bounce","type":"expired""#),
            ev(r#""cohort":"rest""#),
            ev(r#""sg_event_id":"a3","timestamp":"yesterday""#),
            ev(r#""sg_event_id":"a4","email":"not-an-address""#),
            r#"{"email":"ann@gmail.com","timestamp":1793628000,"sg_event_id":"a5"}"#.to_string(),
            r#"{"email":"ann@gmail.com","timestamp":1793628000,"event":"processed""#.to_string(),
            r#"["not", "an", "event"]"#.to_string(),
            ev(r#""sg_event_id":"a1","cohort":"rest""#),
            ev(r#""sg_event_id":"a6","timestamp":"1793628000","event":"group_resubscribe""#),
            ev(r#""sg_event_id":"a7","timestamp":1793628000.9,"event":"bounce""#),
        ];
        let o = import(&dir, &mut h, "e.ndjson", &lines.join("\n"), None, &opts()).unwrap();
        assert_eq!(o.kind, EvidenceKind::SendGrid);
        assert_eq!(
            problems(&o),
            [
                "2: a bounce of `type` `expired`: expected `bounce` or `blocked`",
                "3: no `sg_event_id`: without it the event cannot be counted once",
                "4: `timestamp` is not a time in Unix seconds (1793577600)",
                "5: no `email` address",
                "6: no `event` (processed, delivered, bounce, …)",
                "7: not a SendGrid event: EOF while parsing an object",
                "8: not a SendGrid event: invalid type: sequence, expected an event object",
            ]
        );
        assert_eq!(
            (
                o.records,
                o.counted,
                o.duplicates,
                o.rejected,
                o.ignored,
                o.without_cohort
            ),
            (11, 2, 1, 7, 1, 1)
        );
        assert_eq!(
            daily(&h, "events"),
            [
                "2026-11-02  gmail: 0 0 1 0 0 0 0 0 0",
                "2026-11-02 rest gmail: 1 0 0 0 0 0 0 0 0"
            ]
        );
    }

    #[test]
    fn the_cohort_field_is_chosen_and_categories_and_the_default_follow() {
        let (dir, mut h) = history();
        let mut o = opts();
        o.cohort_field = "segment".into();
        o.default_cohort = Some("rest".into());
        let text = format!(
            "[{},\n{},\n{}]\n[{}]",
            ev(r#""sg_event_id":"b1","segment":"engaged-30d","cohort":"rest""#),
            ev(r#""sg_event_id":"b2","category":["weekly","engaged-90d"]"#),
            ev(r#""sg_event_id":"b3","category":"weekly","email":"bo@Hotmail.CO.UK""#),
            ev(r#""sg_event_id":"b4","segment":"vip","event":"delivered""#),
        );
        let out = import(&dir, &mut h, "e.json", &text, None, &o).unwrap();
        assert_eq!((out.records, out.counted, out.rejected), (4, 4, 0));
        assert_eq!(
            out.notes,
            ["1 event named the cohort `vip`, which the plan does not have (cohorts: engaged-30d, engaged-90d, rest): counted under that name"]
        );
        assert_eq!(
            daily(&h, "events"),
            [
                "2026-11-02 engaged-30d gmail: 1 0 0 0 0 0 0 0 0",
                "2026-11-02 engaged-90d gmail: 1 0 0 0 0 0 0 0 0",
                "2026-11-02 rest microsoft: 1 0 0 0 0 0 0 0 0",
                "2026-11-02 vip gmail: 0 1 0 0 0 0 0 0 0"
            ]
        );
    }
}
