//! The router function: wires DynamoDB (state, dedup, audit), the deliveries SNS topic and EventBridge
//! Scheduler (escalation timers), loads the routing config, and runs the handler on the alerts topic.

mod handler;

use std::sync::Arc;

use aws_config::BehaviorVersion;
use aws_lambda_events::event::sns::SnsEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use tocsin_aws::{DynamoStore, EventBridgeScheduler, SnsBus};
use tocsin_core::ports::SystemClock;
use tocsin_core::router::{Router, RouterSettings};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    tocsin_lambda::init_tracing();
    let get = |n: &str| std::env::var(n).ok();
    // Fail fast at cold start: a missing variable or a broken config is not an alert's fault.
    let config = tocsin_lambda::load_config(get)?;
    let table = tocsin_lambda::env("TABLE_NAME")?;
    let topic = tocsin_lambda::env("DELIVERIES_TOPIC_ARN")?;
    let sdk = aws_config::load_defaults(BehaviorVersion::latest()).await;
    let scheduler = EventBridgeScheduler::from_env(aws_sdk_scheduler::Client::new(&sdk), get)?;
    let router = Router {
        config: Arc::new(config),
        store: DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), table),
        bus: SnsBus::deliveries(aws_sdk_sns::Client::new(&sdk), topic),
        scheduler,
        clock: SystemClock,
        settings: RouterSettings::default(),
    };
    let router = &router;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SnsEvent>| async move {
        let entries = handler::handle(router, event.payload)
            .await
            .map_err(Error::from)?;
        Ok::<_, Error>(serde_json::json!({ "decisions": entries.len() }))
    }))
    .await
}
