//! tocsin's AWS adapters: the implementations of the core ports that every Lambda function's `main.rs`
//! wires through [`wiring`] (a deliver function's sender through the notifier registry, `notifier`).
//! Each adapter keeps the semantics of its embedded twin in `tocsin-local`, and the same contract
//! suite from `tocsin_core::contract` runs against both (here against moto, see
//! `scripts/with-moto.sh`).
//!
//! Features keep each function to the SDK clients it calls: DynamoDB, SNS and Scheduler are always
//! linked (every function calls them), Secrets Manager only with `secretsmanager`, SES v2 only with
//! `ses` (both turned on by `deliver`).

pub mod dynamo;
pub mod emulator;
#[cfg(feature = "eum")]
pub mod eum;
pub mod hold;
pub mod https;
#[cfg(feature = "deliver")]
pub mod notifier;
pub mod pages;
pub mod scheduler;
mod sdk_error;
#[cfg(feature = "secretsmanager")]
pub mod secrets;
pub mod send_error;
#[cfg(feature = "ses")]
pub mod ses;
pub mod sms;
pub mod sns;
pub mod wiring;

pub use dynamo::{DynamoStore, TableError};
#[cfg(feature = "eum")]
pub use eum::EumSms;
pub use hold::DynamoHold;
pub use pages::DynamoPages;
pub use scheduler::{EventBridgeScheduler, SchedulerConfigError};
#[cfg(feature = "secretsmanager")]
pub use secrets::{SecretsError, SecretsManager};
pub use send_error::SenderConfigError;
#[cfg(feature = "ses")]
pub use ses::SesEmail;
pub use sms::SnsSms;
pub use sns::{SnsBus, SnsBusError};
