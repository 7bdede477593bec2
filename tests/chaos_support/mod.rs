//! The chaos run's harness (tests/chaos.rs): the platform that invokes the function binaries as Lambda
//! does ([`platform`]), the fault proxy in front of moto and the channels ([`faults`]), the scenario
//! ([`scenario`]), the accounting of owed and arrived deliveries ([`ledger`]) and the seeded draws
//! ([`rng`]).

// Test code: a failed step is a panic that names it.
#![allow(clippy::unwrap_used, dead_code)]

pub mod faults;
pub mod ledger;
pub mod platform;
pub mod rng;
pub mod scenario;
