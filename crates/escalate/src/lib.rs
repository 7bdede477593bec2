//! The escalate handler, generic over the router's ports: EventBridge Scheduler invokes the function
//! with the schedule's Input, a [`Timer`]; the router pages that step's level (or re-triggers
//! an acknowledgement that timed out) unless the alert was acknowledged or resolved meanwhile. Late and
//! doubled invocations page once: the step advances by a conditional update.

use thiserror::Error;
use tocsin_core::ports::{AlertStore, Bus, Clock, Scheduler};
use tocsin_core::record::{AuditEntry, Timer};
use tocsin_core::router::{Router, RouterError};
use tocsin_core::text::one_line;

/// Why an escalate invocation failed (Scheduler retries it, then dead-letters it).
#[derive(Debug, Error)]
pub enum EscalateError {
    /// The Input is not an escalation tick.
    #[error("input is not a timer: {0}")]
    NotATick(String),
    /// The router failed.
    #[error(transparent)]
    Router(#[from] RouterError),
}

/// Reads the tick and lets the router act on it.
pub async fn handle<S, B, K, C>(
    router: &Router<S, B, K, C>,
    input: serde_json::Value,
) -> Result<Vec<AuditEntry>, EscalateError>
where
    S: AlertStore,
    B: Bus,
    K: Scheduler,
    C: Clock,
{
    // Either form: a timer set by a release before `Timer` (an escalation tick) fires after an upgrade.
    let timer = Timer::from_json(input)
        .map_err(|e| EscalateError::NotATick(one_line(&e.to_string()).into_owned()))?;
    let entries = router.on_timer(&timer).await?;
    for e in &entries {
        tracing::info!(
            alert = %e.alert,
            action = e.action.as_str(),
            level = e.level.unwrap_or(0),
            channel = e.channel.as_deref().unwrap_or(""),
            target = %one_line(e.target.as_deref().unwrap_or("")),
            reason = %one_line(&e.reason),
            "escalation"
        );
    }
    Ok(entries)
}
