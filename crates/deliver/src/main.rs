//! The deliver function, deployed once per channel (`CHANNEL_NAME`) with only its own permissions:
//! wires its sender (the notifier registry), store, topic and SMS throttle through `tocsin_aws::wiring`
//! and runs the handler on delivery jobs (SNS) and throttle flushes (its own schedules).

use lambda_runtime::{Error, LambdaEvent, service_fn};
use tocsin_deliver::{Deliverer, Input, Settings, handle};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    tocsin_lambda::init_tracing();
    let get = |n: &str| std::env::var(n).ok();
    let config = tocsin_lambda::load_config(get)?;
    let sdk = tocsin_aws::wiring::sdk().await?;
    let w = tocsin_aws::wiring::deliver_from_env(&config, &sdk, get).await?;
    let settings = Settings::deployed(w.api_base_url, w.link_keys);
    let (config, notifier) = (std::sync::Arc::new(config), w.notifier);
    let deliverer = &Deliverer::deployed(config, w.store, w.bus, notifier, w.throttle, settings);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Input>| async move {
        let left = tocsin_lambda::time_left(&event.context);
        Ok::<_, Error>(handle(deliverer, event.payload, left).await?)
    }))
    .await
}
