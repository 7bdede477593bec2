//! The api function: wires the router on AWS adapters (DynamoDB, the deliveries topic, EventBridge
//! Scheduler, to cancel escalations and set acknowledgement timeouts) and the keys from Secrets Manager
//! (read once, held for the sandbox's life) through `tocsin_aws::wiring`, the settings from the
//! environment, then serves API Gateway HTTP API requests through the handler.

use lambda_http::{Error, service_fn};
use tocsin_api::{Api, ApiSettings};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    tocsin_lambda::init_tracing();
    let get = |n: &str| std::env::var(n).ok();
    let config = tocsin_lambda::load_config(get)?;
    let sdk = tocsin_aws::wiring::sdk().await?;
    let links = tocsin_aws::wiring::link_keys(&sdk, get).await?;
    let integrations = tocsin_aws::wiring::integration_keys(&sdk, get).await?;
    let settings = ApiSettings::from_env(get, links, Some(integrations))?;
    let router = tocsin_aws::wiring::router_from_env(config, &sdk, get)?;
    let api = &Api::new(router, settings);
    lambda_http::run(service_fn(move |req: lambda_http::Request| async move {
        Ok::<_, Error>(tocsin_api::handler::handle(api, req).await)
    }))
    .await
}
