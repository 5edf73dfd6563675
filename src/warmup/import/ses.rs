//! Amazon SES event publishing records: what each one counts as.
//!
//! A file holds one record per line (as Firehose writes them), or a JSON array of them; a
//! record may be wrapped in an SNS notification (`{"Type": "Notification", "Message": "<the
//! record as a string>"}`), and the older notification form with `notificationType` instead of
//! `eventType` is read the same way. SES reports an event for a message with all the recipients
//! it concerns, so a record counts once per recipient:
//!
//! | `eventType` | counts, per recipient of | time |
//! |---|---|---|
//! | `Send` | sent: `mail.destination` | `mail.timestamp` |
//! | `Delivery` | delivered: `delivery.recipients` | `delivery.timestamp` |
//! | `Bounce`, `bounceType` `Permanent` | hard bounce: `bounce.bouncedRecipients` | `bounce.timestamp` |
//! | `Bounce`, `Transient` or `Undetermined` | soft bounce: `bounce.bouncedRecipients` | `bounce.timestamp` |
//! | `Complaint` | complaint: `complaint.complainedRecipients` | `complaint.timestamp` |
//! | `DeliveryDelay` | deferral: `deliveryDelay.delayedRecipients` | `deliveryDelay.timestamp` |
//! | `Reject` | refused by SES before sending, counted apart: `mail.destination` | `mail.timestamp` |
//! | `Open`, `Click` | open, click, once: the first of `mail.destination` (SES does not say which recipient) | `open`/`click.timestamp` |
//! | `Rendering Failure`, `Subscription`, others | nothing (`ignored`) | |
//!
//! The cohort is the first value of the message tag named by `--cohort-field`
//! (`mail.tags.cohort[0]`), else `--cohort`, else none. Each counted event is once across files:
//! its key is `ses:` + `mail.messageId` + `:` + `eventType` + `:` + recipient + `:` + the event's
//! timestamp.

use super::input::{JsonRecords, Line, Lines, MAX_RECORD};
use super::tally::{local_day, Counter, Tally, What};
use super::{ImportError, Session};
use crate::warmup::Provider;
use serde::Deserialize;
use std::collections::HashMap;
use std::io::BufRead;

/// Imports a file of SES event records.
pub(crate) fn import(s: &mut Session<'_>, input: &mut impl BufRead) -> Result<(), ImportError> {
    let mut tally = Tally::default();
    if s.first_byte() == Some(b'[') {
        let mut records = JsonRecords::new(input, &[]);
        while let Some(record) = records.next_record().map_err(|e| s.scan(e))? {
            match record.text {
                Ok(text) => self::record(s, &mut tally, record.line, text)?,
                Err(size) => too_long(s, record.line, size),
            }
        }
    } else {
        let mut lines = Lines::new(input);
        while let Some((number, line)) = lines.next_line().map_err(|e| s.io(e))? {
            match line {
                Line::Text(t) if t.trim().is_empty() => {}
                Line::Text(t) => self::record(s, &mut tally, number, t.as_bytes())?,
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
            "a record of {size} bytes, over the {} a record may have",
            crate::files::show_size(MAX_RECORD as u64)
        ),
    );
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Record {
    event_type: Option<String>,
    notification_type: Option<String>,
    /// An SNS notification: `Type` and the record as a string in `Message`.
    #[serde(rename = "Type")]
    sns_type: Option<String>,
    #[serde(rename = "Message")]
    sns_message: Option<String>,
    mail: Option<Mail>,
    bounce: Option<Bounce>,
    complaint: Option<Complaint>,
    delivery: Option<Delivery>,
    delivery_delay: Option<DeliveryDelay>,
    open: Option<Stamp>,
    click: Option<Stamp>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Mail {
    timestamp: Option<String>,
    message_id: Option<String>,
    #[serde(default)]
    destination: Vec<String>,
    #[serde(default)]
    tags: HashMap<String, Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Recipient {
    email_address: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Bounce {
    bounce_type: Option<String>,
    #[serde(default)]
    bounced_recipients: Vec<Recipient>,
    timestamp: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Complaint {
    #[serde(default)]
    complained_recipients: Vec<Recipient>,
    timestamp: Option<String>,
}

#[derive(Deserialize)]
struct Delivery {
    #[serde(default)]
    recipients: Vec<String>,
    timestamp: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeliveryDelay {
    #[serde(default)]
    delayed_recipients: Vec<Recipient>,
    timestamp: Option<String>,
}

#[derive(Deserialize)]
struct Stamp {
    timestamp: Option<String>,
}

fn addresses(list: &[Recipient]) -> Vec<&str> {
    list.iter()
        .filter_map(|r| r.email_address.as_deref())
        .collect()
}

/// One record's JSON text: checked, then counted per recipient (or rejected as a whole).
fn record(
    s: &mut Session<'_>,
    tally: &mut Tally,
    line: usize,
    text: &[u8],
) -> Result<(), ImportError> {
    s.outcome.records += 1;
    let parse = |text: &[u8]| {
        serde_json::from_slice::<Record>(text)
            .map_err(|e| format!("not an SES event record: {}", super::json_message(&e)))
    };
    let mut record = match parse(text) {
        Ok(r) => r,
        Err(message) => {
            s.reject(line, message);
            return Ok(());
        }
    };
    if record.event_type.is_none() && record.notification_type.is_none() {
        match (record.sns_type.as_deref(), record.sns_message.take()) {
            (Some("Notification"), Some(message)) => match parse(message.as_bytes()) {
                Ok(inner) => record = inner,
                Err(message) => {
                    s.reject(
                        line,
                        format!("an SNS notification whose Message is {message}"),
                    );
                    return Ok(());
                }
            },
            (Some(_), _) => {
                // Subscription confirmations and the like: SNS's, not SES's.
                s.outcome.ignored += 1;
                return Ok(());
            }
            (None, _) => {
                s.reject(line, "no `eventType` (Send, Delivery, Bounce, …)");
                return Ok(());
            }
        }
    }
    match check(s, &record) {
        Ok(Some(counted)) => {
            let Counted {
                what,
                event_type,
                message_id,
                recipients,
                stamp,
                utc,
                cohort,
            } = counted;
            let day = local_day(utc, s.opts.utc_offset_minutes);
            let cohort = s.cohort(cohort, &[]);
            for recipient in recipients {
                tally.record(
                    s,
                    &[
                        b"ses:",
                        message_id.as_bytes(),
                        b":",
                        event_type.as_bytes(),
                        b":",
                        recipient.as_bytes(),
                        b":",
                        stamp.as_bytes(),
                    ],
                    day,
                    &cohort,
                    Provider::of_address(recipient),
                    what,
                )?;
            }
        }
        Ok(None) => s.outcome.ignored += 1,
        Err(message) => s.reject(line, message),
    }
    Ok(())
}

/// A checked event: what it counts as, for whom, when.
struct Counted<'a> {
    what: What,
    event_type: &'a str,
    message_id: &'a str,
    recipients: Vec<&'a str>,
    /// The timestamp as written (part of the event's key).
    stamp: &'a str,
    utc: chrono::DateTime<chrono::Utc>,
    cohort: Option<&'a str>,
}

/// What the record counts as; `None` for the events that count nothing.
fn check<'a>(s: &Session<'_>, record: &'a Record) -> Result<Option<Counted<'a>>, String> {
    let event_type = record
        .event_type
        .as_deref()
        .or(record.notification_type.as_deref())
        .unwrap_or_default();
    if event_type.is_empty() {
        return Err("no `eventType` (Send, Delivery, Bounce, …)".to_string());
    }
    let mail = record
        .mail
        .as_ref()
        .ok_or_else(|| format!("no `mail` object in a `{event_type}` event"))?;
    let message_id = mail
        .message_id
        .as_deref()
        .filter(|m| !m.trim().is_empty())
        .ok_or("no `mail.messageId`: without it the event cannot be counted once")?;
    let missing = |object: &str| format!("no `{object}` object in a `{event_type}` event");
    let (what, recipients, stamp): (What, Vec<&str>, Option<&str>) = match event_type {
        "Send" => (
            What::Count(Counter::Sent),
            mail.destination.iter().map(String::as_str).collect(),
            mail.timestamp.as_deref(),
        ),
        "Reject" => (
            What::RejectedByPlatform,
            mail.destination.iter().map(String::as_str).collect(),
            mail.timestamp.as_deref(),
        ),
        "Delivery" => {
            let d = record
                .delivery
                .as_ref()
                .ok_or_else(|| missing("delivery"))?;
            (
                What::Count(Counter::Delivered),
                d.recipients.iter().map(String::as_str).collect(),
                d.timestamp.as_deref(),
            )
        }
        "Bounce" => {
            let b = record.bounce.as_ref().ok_or_else(|| missing("bounce"))?;
            let counter = match b.bounce_type.as_deref() {
                Some("Permanent") => Counter::HardBounce,
                Some("Transient" | "Undetermined") => Counter::SoftBounce,
                Some(other) => {
                    return Err(format!(
                        "`bounce.bounceType` is `{other}`: expected Permanent, Transient or Undetermined"
                    ))
                }
                None => return Err("no `bounce.bounceType`".to_string()),
            };
            (
                What::Count(counter),
                addresses(&b.bounced_recipients),
                b.timestamp.as_deref(),
            )
        }
        "Complaint" => {
            let c = record
                .complaint
                .as_ref()
                .ok_or_else(|| missing("complaint"))?;
            (
                What::Count(Counter::Complaint),
                addresses(&c.complained_recipients),
                c.timestamp.as_deref(),
            )
        }
        "DeliveryDelay" => {
            let d = record
                .delivery_delay
                .as_ref()
                .ok_or_else(|| missing("deliveryDelay"))?;
            (
                What::Count(Counter::Deferral),
                addresses(&d.delayed_recipients),
                d.timestamp.as_deref(),
            )
        }
        "Open" | "Click" => {
            let (counter, stamp) = if event_type == "Open" {
                (Counter::Open, record.open.as_ref())
            } else {
                (Counter::Click, record.click.as_ref())
            };
            let stamp = stamp.ok_or_else(|| missing(&event_type.to_ascii_lowercase()))?;
            (
                What::Count(counter),
                mail.destination
                    .first()
                    .map(String::as_str)
                    .into_iter()
                    .collect(),
                stamp.timestamp.as_deref(),
            )
        }
        _ => return Ok(None),
    };
    if recipients.is_empty() {
        return Err(format!("no recipient in a `{event_type}` event"));
    }
    if let Some(bad) = recipients.iter().find(|r| !r.contains('@')) {
        return Err(format!("`{bad}` is not an email address"));
    }
    // The event's own time; the message's when the event has none.
    let stamp = stamp
        .or(mail.timestamp.as_deref())
        .ok_or_else(|| format!("no timestamp in a `{event_type}` event"))?;
    let utc = chrono::DateTime::parse_from_rfc3339(stamp.trim())
        .map_err(|_| {
            format!("`timestamp` `{stamp}` is not an ISO 8601 time (2026-11-02T09:14:03.120Z)")
        })?
        .with_timezone(&chrono::Utc);
    let cohort = mail
        .tags
        .get(&s.opts.cohort_field)
        .and_then(|values| values.first())
        .map(String::as_str);
    Ok(Some(Counted {
        what,
        event_type,
        message_id,
        recipients,
        stamp,
        utc,
        cohort,
    }))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{daily, history, import, opts, problems};

    const MAIL: &str = r#""mail":{"timestamp":"2026-11-02T15:00:00.120Z","messageId":"0100019a-m1","destination":["ella@gmail.com","harry@yahoo.co.uk","zed@outlook.com"],"tags":{"cohort":["rest"],"ses:configuration-set":["warmup"]}}"#;

    #[test]
    fn each_recipient_counts_and_wrappers_and_the_older_form_are_read() {
        let (dir, mut h) = history();
        let inner = format!(
            r#"{{"eventType":"Delivery",{MAIL},"delivery":{{"timestamp":"2026-11-02T15:00:02Z","recipients":["ella@gmail.com","zed@outlook.com"]}}}}"#
        );
        let sns = serde_json::json!({"Type": "Notification", "MessageId": "x", "Message": inner})
            .to_string();
        let lines = [
            format!(r#"{{"eventType":"Send",{MAIL},"send":{{}}}}"#),
            sns,
            format!(r#"{{"notificationType":"Bounce",{MAIL},"bounce":{{"bounceType":"Undetermined","bouncedRecipients":[{{"emailAddress":"harry@yahoo.co.uk"}}],"timestamp":"2026-11-03T04:59:59Z"}}}}"#),
            format!(r#"{{"eventType":"Bounce",{MAIL},"bounce":{{"bounceType":"Sideways","bouncedRecipients":[{{"emailAddress":"harry@yahoo.co.uk"}}]}}}}"#),
            r#"{"eventType":"Send","mail":{"timestamp":"2026-11-02T15:00:00Z","destination":["a@gmail.com"]}}"#.to_string(),
            format!(r#"{{"eventType":"Complaint",{MAIL}}}"#),
            format!(r#"{{"eventType":"Send",{}}}"#, MAIL.replace("2026-11-02T15:00:00.120Z", "02/11/2026 15:00")),
            r#"{"Type":"SubscriptionConfirmation","Message":"You have chosen to subscribe"}"#.to_string(),
            format!(r#"{{"eventType":"Subscription",{MAIL}}}"#),
        ];
        let o = import(&dir, &mut h, "ses.jsonl", &lines.join("\n"), None, &opts()).unwrap();
        assert_eq!(
            problems(&o),
            [
                "4: `bounce.bounceType` is `Sideways`: expected Permanent, Transient or Undetermined",
                "5: no `mail.messageId`: without it the event cannot be counted once",
                "6: no `complaint` object in a `Complaint` event",
                "7: `timestamp` `02/11/2026 15:00` is not an ISO 8601 time (2026-11-02T09:14:03.120Z)",
            ]
        );
        assert_eq!((o.records, o.counted, o.rejected, o.ignored), (9, 6, 4, 2));
        assert_eq!(
            daily(&h, "events"),
            [
                "2026-11-02 rest gmail: 1 1 0 0 0 0 0 0 0",
                "2026-11-02 rest microsoft: 1 1 0 0 0 0 0 0 0",
                "2026-11-02 rest yahoo: 1 0 0 1 0 0 0 0 0"
            ]
        );
    }
}
