//! The escalate handler, generic over the router's ports: EventBridge Scheduler invokes the function
//! with the schedule's Input, a [`Timer`]; the router pages that step's level (or re-triggers
//! an acknowledgement that timed out) unless the alert was acknowledged or resolved meanwhile. Late and
//! doubled invocations page once: the step advances by a conditional update. The timer's Input carries
//! the trace that set it (`tocsin_lambda::trace`): the work continues it. An Input that is not a
//! timer fails for good; a router failure says whether a retry can help ([`FunctionError`]); either
//! way Scheduler retries, then dead-letters the Input with the reason.

use tocsin_core::ports::{AlertStore, Bus, Clock, Scheduler};
use tocsin_core::record::{AuditEntry, Timer};
use tocsin_core::router::Router;
use tocsin_core::text::one_line;
use tocsin_lambda::FunctionError;

/// Reads the timer and lets the router act on it.
pub async fn handle<S, B, K, C>(
    router: &Router<S, B, K, C>,
    input: serde_json::Value,
) -> Result<Vec<AuditEntry>, FunctionError>
where
    S: AlertStore,
    B: Bus,
    K: Scheduler,
    C: Clock,
{
    // The trace of the work that set the timer (Scheduler starts a new one): the pages this sends on
    // and the timers it sets continue it, and the log lines name it.
    let carried = input
        .get(tocsin_lambda::trace::TRACE_KEY)
        .and_then(|v| v.as_str())
        .map(str::to_string);
    // Either form: a timer set by a release before `Timer` (an escalation tick) fires after an upgrade.
    let timer = Timer::from_json(input)
        .map_err(|e| FunctionError::permanent(format!("input is not a timer: {e}")))?;
    let alert_trace = carried
        .as_deref()
        .and_then(tocsin_lambda::trace::root)
        .unwrap_or("")
        .to_string();
    let entries = tocsin_lambda::trace::carrying(carried, router.on_timer(&timer)).await?;
    for e in &entries {
        tracing::info!(
            alert = %e.alert,
            alert_trace = %alert_trace,
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tocsin_core::record::Action;
    use tocsin_core::router::timer_name;
    use tocsin_local::{Embedded, FaultMode, FaultyEmbedded};

    fn config() -> Arc<tocsin_core::config::Config> {
        let p = format!("{}/../../infra/tocsin.yaml", env!("CARGO_MANIFEST_DIR"));
        Arc::new(tocsin_core::config::load(&std::fs::read_to_string(p).unwrap()).unwrap())
    }

    fn critical_alert() -> tocsin_core::Alert {
        let p = format!(
            "{}/../../events/scenario/incident/01-checkout-5xx-alarm.sns.json",
            env!("CARGO_MANIFEST_DIR")
        );
        tocsin_core::source::parse(&std::fs::read(p).unwrap())
            .unwrap()
            .remove(0)
    }

    #[tokio::test]
    async fn a_fired_step_escalates_once_and_its_repeat_pages_nobody() {
        let alert = critical_alert();
        let p = Embedded::new(config(), alert.state_changed_at);
        let opened = p.router.handle(alert).await.unwrap();
        let id = opened[0].alert.clone();
        let far = p.clock.now() + chrono::TimeDelta::days(1);
        // Level 1 is the on-call person the opening paged itself: the first step scheduled is 2.
        let (at, timer) = std::iter::from_fn(|| p.scheduler.pop_due(far))
            .find(|(_, name, _)| *name == timer_name(&id, 2))
            .map(|(at, _, timer)| (at, timer))
            .expect("step 2 is scheduled");
        p.clock.set(at);
        let input = serde_json::to_value(&timer).unwrap();
        let fired = handle(&p.router, input.clone()).await.unwrap();
        assert!(
            fired.iter().any(|e| e.action == Action::Escalate),
            "{fired:?}"
        );
        assert!(fired.iter().all(|e| e.level == Some(2)), "{fired:?}");
        let again = handle(&p.router, input).await.unwrap();
        assert!(again.iter().all(|e| e.action == Action::Dedup), "{again:?}");
    }

    #[tokio::test]
    async fn an_input_that_is_not_a_timer_fails_for_good_and_a_store_failure_is_retryable() {
        let alert = critical_alert();
        let p = FaultyEmbedded::new(config(), alert.state_changed_at);
        let err = handle(&p.router, serde_json::json!({"nope": 1}))
            .await
            .unwrap_err();
        assert!(!err.is_retryable());
        assert!(
            err.to_string()
                .starts_with("permanent: input is not a timer: "),
            "{err}"
        );
        let opened = p.router.handle(alert).await.unwrap();
        let tick = Timer::Escalation {
            alert_id: opened[0].alert.clone(),
            step: 1,
        };
        p.faults.fail_at(0, FaultMode::Error);
        let err = handle(&p.router, serde_json::to_value(&tick).unwrap())
            .await
            .unwrap_err();
        assert!(err.is_retryable(), "{err}");
    }

    /// The bus of the escalate tests: records the trace each delivery was published under.
    #[derive(Clone, Default)]
    struct TraceBus(Arc<std::sync::Mutex<Vec<Option<String>>>>);

    impl Bus for TraceBus {
        async fn publish_alert(
            &self,
            _: &tocsin_core::Alert,
        ) -> Result<(), tocsin_core::ports::BusError> {
            Ok(())
        }
        async fn publish_delivery(
            &self,
            _: &tocsin_core::record::DeliveryJob,
        ) -> Result<(), tocsin_core::ports::BusError> {
            self.0.lock().unwrap().push(tocsin_lambda::trace::carried());
            Ok(())
        }
    }

    #[tokio::test]
    async fn the_pages_of_a_fired_step_continue_the_trace_that_set_the_timer() {
        let alert = critical_alert();
        let p = Embedded::new(config(), alert.state_changed_at);
        let bus = TraceBus::default();
        let router = Router {
            config: p.router.config.clone(),
            store: p.store.clone(),
            bus: bus.clone(),
            scheduler: p.scheduler.clone(),
            clock: p.clock.clone(),
            settings: p.router.settings,
        };
        let opened = router.handle(alert).await.unwrap();
        let id = opened[0].alert.clone();
        let fire = |step: u32| {
            let far = p.clock.now() + chrono::TimeDelta::days(1);
            let (at, timer) = std::iter::from_fn(|| p.scheduler.pop_due(far))
                .find(|(_, name, _)| *name == timer_name(&id, step))
                .map(|(at, _, timer)| (at, timer))
                .expect("the step is scheduled");
            p.clock.set(at);
            serde_json::to_value(&timer).unwrap()
        };
        // Level 1 was paged on open (its step done within the opening); level 2, when step 2
        // fires, pages someone new.
        let mut input = fire(2);
        bus.0.lock().unwrap().clear();
        let header = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
        input[tocsin_lambda::trace::TRACE_KEY] = header.into();
        let fired = handle(&router, input).await.unwrap();
        assert!(
            fired.iter().any(|e| e.action == Action::Escalate),
            "{fired:?}"
        );
        let seen = bus.0.lock().unwrap().clone();
        assert!(!seen.is_empty());
        // Every page the step sent continues the alert's trace, under the one segment the step's
        // work made there (`tocsin_lambda::trace::carrying`).
        let headers: std::collections::BTreeSet<_> = seen.iter().collect();
        assert_eq!(headers.len(), 1, "{seen:?}");
        let sent = seen[0].as_deref().unwrap();
        assert_eq!(
            tocsin_lambda::trace::root(sent),
            tocsin_lambda::trace::root(header)
        );
        assert!(
            sent.contains(";Parent=") && !sent.contains("53995c3f42cd8ad8"),
            "{sent}"
        );
    }
}
