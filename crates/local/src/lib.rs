//! The embedded default: in-process adapters behind tocsin's ports, used by `tocsin replay`, `tocsin
//! serve` and the tests. They keep the same semantics as the AWS adapters (the contract suites in
//! `tocsin_core::contract` run against both); they are the product's local mode, not test fakes.

mod bus;
mod clock;
mod compact;
mod embedded;
mod faults;
mod hold;
mod pages;
mod store;

pub use bus::LocalBus;
pub use clock::{VirtualClock, VirtualScheduler};
pub use embedded::{Embedded, EmbeddedRouter, MAX_TIMER_FIRINGS};
pub use faults::{FaultMode, Faults, FaultyBus, FaultyEmbedded, FaultyScheduler, FaultyStore};
pub use hold::{LocalFlushTimer, MemoryHold};
pub use pages::{LocalSweepTimer, MemoryPages, PendingSweep};
pub use store::MemoryStore;
