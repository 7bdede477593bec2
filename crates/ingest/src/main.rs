//! The ingest function: wires the SNS bus (alerts topic), the page store (the store's table) and the
//! sweep timer (EventBridge Scheduler), and runs the handler. SNS, EventBridge and the CloudWatch Lambda
//! alarm action all invoke this one function; the handler tells them apart. So does the sweep of a
//! paged AWS Health event, whose one-time schedule targets this function's own ARN, learnt from each
//! invocation's context (so the template needs no name for the function, and no cycle through the
//! scheduler role).

use aws_config::BehaviorVersion;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::value::RawValue;
use tocsin_aws::{DynamoPages, EventBridgeScheduler, SnsBus};
use tocsin_core::ports::SystemClock;
use tocsin_ingest::Ingest;

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    tocsin_lambda::init_tracing();
    let topic = tocsin_lambda::env("ALERTS_TOPIC_ARN")?;
    let table = tocsin_lambda::env("TABLE_NAME")?;
    let group = tocsin_lambda::env("SCHEDULE_GROUP")?;
    let role = tocsin_lambda::env("SCHEDULER_ROLE_ARN")?;
    let dead_letter = env("SCHEDULER_DLQ_ARN");
    // Clients are built once per cold start, never per invocation.
    let sdk = aws_config::load_defaults(BehaviorVersion::latest()).await;
    let bus = SnsBus::alerts(aws_sdk_sns::Client::new(&sdk), topic);
    let pages = DynamoPages::new(aws_sdk_dynamodb::Client::new(&sdk), table);
    let scheduler = aws_sdk_scheduler::Client::new(&sdk);
    let (bus, pages, scheduler, group, role, dead_letter) =
        (&bus, &pages, &scheduler, &group, &role, &dead_letter);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<Box<RawValue>>| async move {
            // The sweep's target is this function as it was invoked; the adapter checks the values
            // (cheap: the client is shared).
            let timer = EventBridgeScheduler::new(
                scheduler.clone(),
                group.as_str(),
                event.context.invoked_function_arn.as_str(),
                role.as_str(),
                dead_letter.clone(),
            )?;
            let ingest = Ingest {
                bus: bus.clone(),
                pages: pages.clone(),
                timer,
                clock: SystemClock,
            };
            let out = ingest
                .handle(event.payload.get().as_bytes())
                .await
                .map_err(Error::from)?;
            Ok::<_, Error>(serde_json::json!({ "published": out.published, "held": out.held }))
        },
    ))
    .await
}
