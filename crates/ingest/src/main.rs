//! The ingest function: wires the alerts topic, the Health page store and the sweep timer through
//! `tocsin_aws::wiring` and runs the handler on whatever invokes it (SNS, EventBridge, the CloudWatch
//! alarm action, its own sweep schedules: the handler tells them apart).

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::value::RawValue;
use tocsin_ingest::{Ingest, handle};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    tocsin_lambda::init_tracing();
    let sdk = tocsin_aws::wiring::sdk().await?;
    let w = &tocsin_aws::wiring::ingest_from_env(&sdk, |n| std::env::var(n).ok())?;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<Box<RawValue>>| async move {
            // The sweep targets this function as it was invoked (so the template needs no name for
            // it, and no cycle through the scheduler role).
            let timer = w.sweep_timer(&event.context.invoked_function_arn)?;
            let ingest = Ingest::deployed(w.bus.clone(), w.pages.clone(), timer);
            Ok::<_, Error>(handle(&ingest, event.payload.get().as_bytes()).await?)
        },
    ))
    .await
}
