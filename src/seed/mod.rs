//! Seed tests: send real messages through the new platform, receive them in mailshift's own
//! inbox, verify what arrived, and let a gate judge it.
//!
//! `send` builds and sends one message per seed address of the plan (through the platform's
//! relay, with lettre), recording each token in the [`store`]; `inbox` is the SMTP server that
//! plays the seed mailbox, verifying and storing every message before it says 250; `results`
//! matches arrivals to tokens for `mailshift seed results` and the `seed` gate requirement;
//! `redact` keeps the relay credentials out of whatever a relay echoes back.

pub mod inbox;
pub mod redact;
pub mod results;
pub mod send;
pub mod store;
