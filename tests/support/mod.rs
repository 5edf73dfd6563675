//! Shared helpers for integration tests (`mod support;`).
#![allow(dead_code)]

pub mod dns_server;
