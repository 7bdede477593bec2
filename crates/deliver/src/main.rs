//! The deliver function, deployed once per channel (`CHANNEL_NAME`, the channel's name in the config)
//! behind an SNS subscription filtered on the `channel` attribute, each with only its own permissions:
//! SES for email, SNS SMS for SMS, outbound HTTPS for Slack, Teams, PagerDuty and webhooks. Its sender
//! (the notifier registry) and SMS throttle come from `tocsin_aws::wiring`.
//!
//! Its input is an SNS event (delivery jobs), or, for an SMS channel, `{"flush": {...}}` from the
//! one-time schedule its throttle made (the schedule targets `FLUSH_FUNCTION_ARN`, this function).

use aws_config::BehaviorVersion;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use tocsin_deliver::{Deliverer, Input, Settings, Throttle, handle};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    tocsin_lambda::init_tracing();
    let get = |n: &str| std::env::var(n).ok();
    let config = tocsin_lambda::load_config(get)?;
    let sdk = aws_config::load_defaults(BehaviorVersion::latest()).await;
    let w = tocsin_aws::wiring::deliver_from_env(&config, &sdk, get).await?;
    let throttle = w.throttle.map(|t| Throttle {
        hold: t.hold,
        timer: t.timer,
        window: t.window,
    });
    let settings = Settings::deployed(w.api_base_url, w.link_keys);
    let (config, notifier) = (std::sync::Arc::new(config), w.notifier);
    let deliverer = &Deliverer::deployed(config, w.store, w.bus, notifier, throttle, settings);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Input>| async move {
        let left = tocsin_lambda::time_left(&event.context);
        Ok::<_, Error>(handle(deliverer, event.payload, left).await?)
    }))
    .await
}
