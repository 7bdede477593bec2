//! The ingest function: wires the SNS bus (alerts topic) and runs the handler. SNS, EventBridge and the
//! CloudWatch Lambda alarm action all invoke this one function; the handler tells them apart.

mod handler;

use aws_config::BehaviorVersion;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::value::RawValue;
use tocsin_aws::SnsBus;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    tocsin_lambda::init_tracing();
    let topic = tocsin_lambda::env("ALERTS_TOPIC_ARN")?;
    // Clients are built once per cold start, never per invocation.
    let sdk = aws_config::load_defaults(BehaviorVersion::latest()).await;
    let bus = SnsBus::alerts(aws_sdk_sns::Client::new(&sdk), topic);
    let bus = &bus;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<Box<RawValue>>| async move {
            let out = handler::handle(bus, event.payload.get().as_bytes())
                .await
                .map_err(Error::from)?;
            Ok::<_, Error>(serde_json::json!({ "published": out.published }))
        },
    ))
    .await
}
