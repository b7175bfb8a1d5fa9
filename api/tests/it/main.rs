//! The single integration test binary of `api`; one module per area.

// Test helpers outside #[test] functions unwrap too: a failure there is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod analyze;
mod broker;
mod browser;
mod cdp;
mod crash;
mod demo;
mod faults;
mod gateways;
mod http_api;
mod http_limits;
mod install;
mod plan;
mod report;
mod response;
mod retention;
mod security;
mod support;
mod web;
