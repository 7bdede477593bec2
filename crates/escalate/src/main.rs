//! The escalate function: wires the same adapters as the router (DynamoDB, the deliveries topic,
//! EventBridge Scheduler for the next step) through `tocsin_aws::wiring`, and runs the handler on each
//! Scheduler invocation.

use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    tocsin_lambda::init_tracing();
    let get = |n: &str| std::env::var(n).ok();
    let config = tocsin_lambda::load_config(get)?;
    let sdk = tocsin_aws::wiring::sdk().await?;
    let router = &tocsin_aws::wiring::router_from_env(config, &sdk, get)?;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            let entries = tocsin_escalate::handle(router, event.payload).await?;
            Ok::<_, Error>(serde_json::json!({ "decisions": entries.len() }))
        },
    ))
    .await
}
