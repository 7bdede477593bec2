//! The ingest function: wires the SNS bus (alerts topic), the page store (the store's table) and the
//! sweep timer (EventBridge Scheduler) through `tocsin_aws::wiring`, and runs the handler. SNS,
//! EventBridge and the CloudWatch Lambda alarm action all invoke this one function; the handler tells
//! them apart. So does the sweep of a paged AWS Health event, whose one-time schedule targets this
//! function's own ARN, learnt from each invocation's context (so the template needs no name for the
//! function, and no cycle through the scheduler role).

use aws_config::BehaviorVersion;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::value::RawValue;
use tocsin_core::ports::SystemClock;
use tocsin_ingest::{Ingest, handle};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    tocsin_lambda::init_tracing();
    let sdk = aws_config::load_defaults(BehaviorVersion::latest()).await;
    let w = &tocsin_aws::wiring::ingest_from_env(&sdk, |n| std::env::var(n).ok())?;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<Box<RawValue>>| async move {
            // The sweep's target is this function as it was invoked.
            let timer = w.sweep_timer(&event.context.invoked_function_arn)?;
            let (bus, pages, clock) = (w.bus.clone(), w.pages.clone(), SystemClock);
            let ingest = Ingest {
                bus,
                pages,
                timer,
                clock,
            };
            Ok::<_, Error>(handle(&ingest, event.payload.get().as_bytes()).await?)
        },
    ))
    .await
}
