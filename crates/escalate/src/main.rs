//! The escalate function: wires the same adapters as the router (DynamoDB, the deliveries topic,
//! EventBridge Scheduler for the next step) and runs the handler on each Scheduler invocation.

use std::sync::Arc;

use aws_config::BehaviorVersion;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use tocsin_aws::{DynamoStore, EventBridgeScheduler, SnsBus};
use tocsin_core::ports::SystemClock;
use tocsin_core::router::{Router, RouterSettings};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    tocsin_lambda::init_tracing();
    let get = |n: &str| std::env::var(n).ok();
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
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            let entries = tocsin_escalate::handle(router, event.payload)
                .await
                .map_err(Error::from)?;
            Ok::<_, Error>(serde_json::json!({ "decisions": entries.len() }))
        },
    ))
    .await
}
