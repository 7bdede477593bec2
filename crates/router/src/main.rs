//! The router function: wires DynamoDB (state, dedup, audit), the deliveries SNS topic and EventBridge
//! Scheduler (escalation timers) through `tocsin_aws::wiring`, loads the routing config, and runs the
//! handler on the alerts topic.

mod handler;

use aws_lambda_events::event::sns::SnsEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    tocsin_lambda::init_tracing();
    let get = |n: &str| std::env::var(n).ok();
    // Fail fast at cold start: a missing variable or a broken config is not an alert's fault.
    let config = tocsin_lambda::load_config(get)?;
    let sdk = tocsin_aws::wiring::sdk().await?;
    let router = &tocsin_aws::wiring::router_from_env(config, &sdk, get)?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SnsEvent>| async move {
        let deadline = tocsin_lambda::deadline(&event.context);
        let entries = handler::handle(
            router,
            event.payload,
            deadline,
            &tocsin_lambda::TokioSleeper,
        )
        .await?;
        Ok::<_, Error>(serde_json::json!({ "decisions": entries.len() }))
    }))
    .await
}
