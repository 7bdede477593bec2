//! The retry layer every channel shares. A channel only says whether one send failed retryably (and for
//! how long the receiver asked us to wait); this module decides whether and when to try again, in the
//! manner of alertmanager's `retry_stage.go` and Vector's `retries.rs`: exponential backoff with full
//! jitter, capped, `Retry-After` honoured, and a deadline so the Lambda invocation gives up in time for the
//! platform's own retry instead of being killed mid-send.
//!
//! Waiting goes through [`Sleeper`] so tests record the waits instead of sleeping through them, and the
//! jitter comes from a seeded generator so a test (or a replay) sees the same waits every time.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::ports::{Notifier, SendError, Sent};
use crate::record::DeliveryJob;
use crate::render::Rendered;

/// Waits. Tokio's timer in production; a recorder in tests.
pub trait Sleeper: Send + Sync {
    /// Waits for `d`.
    fn sleep(&self, d: Duration) -> impl Future<Output = ()> + Send;
}

/// How hard to try one delivery within one invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries in all, the first included. At least one try is always made.
    pub max_attempts: u32,
    /// The backoff cap after the first failure; it doubles after each further failure.
    pub base: Duration,
    /// The largest backoff, whatever the number of failures (a `Retry-After` may ask for longer).
    pub max_backoff: Duration,
    /// Full jitter: wait a uniform random time between zero and the backoff, so that many deliveries
    /// failing together against one receiver do not come back together.
    pub jitter: bool,
    /// Time kept back from the deadline for the next try itself (its HTTP timeout) and for recording
    /// the outcome: a wait is only made if the try after it can still finish before the deadline.
    pub margin: Duration,
}

impl Default for RetryPolicy {
    /// Four tries over at most a few seconds; the margin covers the channels' default 5 s request
    /// timeout plus a second to write the audit.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            base: Duration::from_millis(500),
            max_backoff: Duration::from_secs(8),
            jitter: true,
            margin: Duration::from_secs(6),
        }
    }
}

impl RetryPolicy {
    /// The exponential cap after failed try number `try_number` (1-based): `base × 2^(try_number-1)`,
    /// at most `max_backoff`.
    pub fn backoff_cap(&self, try_number: u32) -> Duration {
        let factor = 1u32
            .checked_shl(try_number.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.max_backoff)
    }
}

/// What one try came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    /// The receiver took the message.
    Sent,
    /// Failed, worth trying again.
    Retryable,
    /// Failed for good.
    Permanent,
}

impl AttemptOutcome {
    /// The JSON spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Sent => "sent",
            AttemptOutcome::Retryable => "retryable",
            AttemptOutcome::Permanent => "permanent",
        }
    }
}

/// One try, for the audit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// 1 for the first try.
    pub try_number: u32,
    /// What it came to.
    pub outcome: AttemptOutcome,
    /// How long the send took.
    pub latency: Duration,
    /// The error's class (`http_429`, `timeout`, ...) for failures.
    pub error_class: Option<String>,
    /// How long the layer waited after this try before the next one, if it tried again.
    pub wait: Option<Duration>,
}

/// Why the layer stopped trying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// A try succeeded.
    Sent,
    /// A try failed permanently.
    Permanent,
    /// Every try of `max_attempts` failed retryably.
    AttemptsExhausted,
    /// The next wait (backoff or `Retry-After`) would not leave the margin before the deadline.
    DeadlineReached,
}

/// Every try and the final result of [`send_with_retries`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryOutcome {
    /// The tries, in order.
    pub attempts: Vec<Attempt>,
    /// The last try's result.
    pub result: Result<Sent, SendError>,
    /// Why the layer stopped.
    pub stop: Stop,
}

impl RetryOutcome {
    /// The delivery failed but the platform should retry it (the invocation fails): the last error
    /// was retryable and only time or tries ran out.
    pub fn is_retryable_failure(&self) -> bool {
        matches!(&self.result, Err(e) if e.retryable)
    }

    /// The waits made between tries, in order.
    pub fn waits(&self) -> Vec<Duration> {
        self.attempts.iter().filter_map(|a| a.wait).collect()
    }
}

/// Sends `message` for `job` through `notifier`, retrying retryable failures per `policy` within
/// `deadline_left` (the time the invocation has left). Never fails itself: the outcome says what
/// happened, and a final retryable failure is the caller's cue to fail the invocation.
pub async fn send_with_retries<N: Notifier, S: Sleeper>(
    notifier: &N,
    job: &DeliveryJob,
    message: &Rendered,
    policy: &RetryPolicy,
    deadline_left: Duration,
    sleeper: &S,
    rng_seed: u64,
) -> RetryOutcome {
    let mut rng = SplitMix64(rng_seed);
    let mut attempts = Vec::new();
    // Time spent is counted as measured send latency plus the waits asked for, not wall time, so a
    // fake sleeper in tests sees the same deadline arithmetic as the real timer.
    let mut spent = Duration::ZERO;
    let mut try_number = 0;
    loop {
        try_number += 1;
        let started = Instant::now();
        let result = notifier.send(job, message).await;
        let latency = started.elapsed();
        spent += latency;

        let error = match result {
            Ok(sent) => {
                attempts.push(attempt(try_number, AttemptOutcome::Sent, latency, None));
                return RetryOutcome {
                    attempts,
                    result: Ok(sent),
                    stop: Stop::Sent,
                };
            }
            Err(e) => e,
        };
        let outcome = if error.retryable {
            AttemptOutcome::Retryable
        } else {
            AttemptOutcome::Permanent
        };
        attempts.push(attempt(
            try_number,
            outcome,
            latency,
            Some(error.class.clone()),
        ));

        let stop = if !error.retryable {
            Some(Stop::Permanent)
        } else if try_number >= policy.max_attempts.max(1) {
            Some(Stop::AttemptsExhausted)
        } else {
            None
        };
        if let Some(stop) = stop {
            return RetryOutcome {
                attempts,
                result: Err(error),
                stop,
            };
        }

        let cap = policy.backoff_cap(try_number);
        let backoff = if policy.jitter {
            rng.duration_up_to(cap)
        } else {
            cap
        };
        // The receiver's Retry-After is a floor, never shortened by the backoff or its cap: coming back
        // sooner only earns another 429.
        let wait = error.retry_after.map_or(backoff, |ra| ra.max(backoff));
        let left = deadline_left.saturating_sub(spent);
        if wait.saturating_add(policy.margin) > left {
            return RetryOutcome {
                attempts,
                result: Err(error),
                stop: Stop::DeadlineReached,
            };
        }
        if let Some(last) = attempts.last_mut() {
            last.wait = Some(wait);
        }
        sleeper.sleep(wait).await;
        spent += wait;
    }
}

fn attempt(
    try_number: u32,
    outcome: AttemptOutcome,
    latency: Duration,
    error_class: Option<String>,
) -> Attempt {
    Attempt {
        try_number,
        outcome,
        latency,
        error_class,
        wait: None,
    }
}

/// SplitMix64: a tiny, seedable generator; jitter needs spread, not cryptographic strength, and core
/// takes no `rand` dependency for it.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, max]` at nanosecond resolution (the modulo bias is far below what matters here).
    fn duration_up_to(&mut self, max: Duration) -> Duration {
        let max = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
        match max.checked_add(1) {
            Some(n) => Duration::from_nanos(self.next() % n),
            None => Duration::from_nanos(self.next()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::pin::pin;
    use std::sync::Mutex;
    use std::task::{Context, Poll, Waker};

    use chrono::{DateTime, Utc};

    use super::*;
    use crate::config::ChannelKind;
    use crate::contract;
    use crate::record::{DeliveryKind, Status, Target};

    /// Runs a future whose every await is ready at once (the fakes here never pend), so core needs no
    /// async runtime for its tests.
    fn run<F: Future>(f: F) -> F::Output {
        let mut f = pin!(f);
        let mut cx = Context::from_waker(Waker::noop());
        loop {
            if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
        }
    }

    /// Answers each send with the next scripted result.
    struct Scripted(Mutex<VecDeque<Result<Sent, SendError>>>);

    impl Scripted {
        fn new(results: Vec<Result<Sent, SendError>>) -> Self {
            Scripted(Mutex::new(results.into()))
        }
        fn left(&self) -> usize {
            self.0.lock().map(|q| q.len()).unwrap_or(0)
        }
    }

    impl Notifier for Scripted {
        async fn send(&self, _job: &DeliveryJob, _message: &Rendered) -> Result<Sent, SendError> {
            self.0
                .lock()
                .ok()
                .and_then(|mut q| q.pop_front())
                .unwrap_or_else(|| Err(permanent("script ran out")))
        }
    }

    /// Records the waits asked for, without waiting.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<Duration>>);

    impl Sleeper for Recorder {
        async fn sleep(&self, d: Duration) {
            if let Ok(mut v) = self.0.lock() {
                v.push(d);
            }
        }
    }

    impl Recorder {
        fn slept(&self) -> Vec<Duration> {
            self.0.lock().map(|v| v.clone()).unwrap_or_default()
        }
    }

    fn retryable(class: &str, retry_after: Option<Duration>) -> SendError {
        SendError {
            retryable: true,
            retry_after,
            class: class.into(),
            reason: format!("{class} from the receiver"),
        }
    }

    fn permanent(reason: &str) -> SendError {
        SendError {
            retryable: false,
            retry_after: None,
            class: "http_400".into(),
            reason: reason.into(),
        }
    }

    fn sent() -> Result<Sent, SendError> {
        Ok(Sent {
            provider_id: Some("p-1".into()),
        })
    }

    fn job() -> DeliveryJob {
        let created_at: DateTime<Utc> =
            DateTime::from_timestamp(1_790_000_000, 0).unwrap_or_default();
        DeliveryJob {
            delivery_id: "dl-1".into(),
            alert_id: "al-1".into(),
            kind: DeliveryKind::Trigger,
            target: Target {
                channel: "hook".into(),
                channel_kind: ChannelKind::Webhook,
                target: "hook".into(),
                address: None,
            },
            level: None,
            alert: contract::record("ev-1", "fp-1", None).alert,
            status: Status::Open,
            created_at,
            thread: None,
        }
    }

    fn message() -> Rendered {
        Rendered::Webhook {
            body: serde_json::json!({"alert": "al-1"}),
        }
    }

    fn steady(max_attempts: u32) -> RetryPolicy {
        RetryPolicy {
            max_attempts,
            base: Duration::from_millis(100),
            max_backoff: Duration::from_millis(350),
            jitter: false,
            margin: Duration::from_secs(1),
        }
    }

    const PLENTY: Duration = Duration::from_secs(60);

    fn drive(
        script: Vec<Result<Sent, SendError>>,
        policy: &RetryPolicy,
        deadline_left: Duration,
        seed: u64,
    ) -> (RetryOutcome, Vec<Duration>, usize) {
        let notifier = Scripted::new(script);
        let sleeper = Recorder::default();
        let outcome = run(send_with_retries(
            &notifier,
            &job(),
            &message(),
            policy,
            deadline_left,
            &sleeper,
            seed,
        ));
        (outcome, sleeper.slept(), notifier.left())
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_first_try_that_succeeds_is_one_attempt_with_no_wait() {
        let (outcome, slept, _) = drive(vec![sent()], &steady(5), PLENTY, 1);
        assert_eq!(outcome.stop, Stop::Sent);
        assert_eq!(outcome.result, sent());
        assert_eq!(outcome.attempts.len(), 1);
        assert_eq!(outcome.attempts[0].outcome, AttemptOutcome::Sent);
        assert_eq!(outcome.attempts[0].error_class, None);
        assert!(slept.is_empty());
    }

    #[test]
    fn a_permanent_error_stops_at_once_without_waiting() {
        let (outcome, slept, left) = drive(
            vec![Err(permanent("bad routing key")), sent()],
            &steady(5),
            PLENTY,
            1,
        );
        assert_eq!(outcome.stop, Stop::Permanent);
        assert_eq!(outcome.result, Err(permanent("bad routing key")));
        assert!(!outcome.is_retryable_failure());
        assert_eq!(outcome.attempts.len(), 1);
        assert_eq!(outcome.attempts[0].outcome, AttemptOutcome::Permanent);
        assert!(slept.is_empty());
        assert_eq!(
            left, 1,
            "the success after a permanent error is never asked for"
        );
    }

    #[test]
    fn retryable_errors_back_off_exponentially_up_to_the_cap() {
        let script = (0..5).map(|_| Err(retryable("http_500", None))).collect();
        let (outcome, slept, _) = drive(script, &steady(5), PLENTY, 1);
        assert_eq!(slept, vec![ms(100), ms(200), ms(350), ms(350)]);
        assert_eq!(outcome.waits(), slept);
        assert_eq!(outcome.stop, Stop::AttemptsExhausted);
    }

    #[test]
    fn exhausting_the_attempts_ends_in_the_last_retryable_error() {
        let script = vec![
            Err(retryable("http_500", None)),
            Err(retryable("http_503", None)),
            Err(retryable("timeout", None)),
        ];
        let (outcome, slept, _) = drive(script, &steady(3), PLENTY, 1);
        assert_eq!(outcome.stop, Stop::AttemptsExhausted);
        assert!(outcome.is_retryable_failure());
        assert_eq!(outcome.result, Err(retryable("timeout", None)));
        assert_eq!(slept.len(), 2, "no wait after the last try");
        let classes: Vec<_> = outcome
            .attempts
            .iter()
            .map(|a| (a.try_number, a.outcome, a.error_class.as_deref()))
            .collect();
        assert_eq!(
            classes,
            vec![
                (1, AttemptOutcome::Retryable, Some("http_500")),
                (2, AttemptOutcome::Retryable, Some("http_503")),
                (3, AttemptOutcome::Retryable, Some("timeout")),
            ]
        );
        assert_eq!(outcome.attempts[2].wait, None);
    }

    #[test]
    fn success_after_failures_lists_every_try_in_order() {
        let script = vec![
            Err(retryable("http_500", None)),
            Err(retryable("http_429", Some(ms(150)))),
            sent(),
        ];
        let (outcome, slept, _) = drive(script, &steady(5), PLENTY, 1);
        assert_eq!(outcome.stop, Stop::Sent);
        assert_eq!(outcome.result, sent());
        let tries: Vec<_> = outcome
            .attempts
            .iter()
            .map(|a| (a.try_number, a.outcome, a.wait))
            .collect();
        assert_eq!(
            tries,
            vec![
                (1, AttemptOutcome::Retryable, Some(ms(100))),
                (2, AttemptOutcome::Retryable, Some(ms(200))),
                (3, AttemptOutcome::Sent, None),
            ]
        );
        assert_eq!(slept, vec![ms(100), ms(200)]);
    }

    #[test]
    fn full_jitter_waits_between_zero_and_the_exponential_cap() {
        let policy = RetryPolicy {
            jitter: true,
            ..steady(5)
        };
        let mut all = Vec::new();
        for seed in 0..200 {
            let script = (0..5).map(|_| Err(retryable("http_500", None))).collect();
            let (_, slept, _) = drive(script, &policy, PLENTY, seed);
            for (i, wait) in slept.iter().enumerate() {
                let cap = policy.backoff_cap(u32::try_from(i).unwrap_or(0) + 1);
                assert!(*wait <= cap, "wait {wait:?} above cap {cap:?}");
            }
            all.extend(slept);
        }
        // Spread, not a constant: some waits fall in the lower and some in the upper half of the cap.
        assert!(all.iter().any(|w| *w < ms(50)));
        assert!(all.iter().any(|w| *w > ms(175)));
    }

    #[test]
    fn the_same_seed_gives_the_same_waits_and_another_seed_does_not() {
        let policy = RetryPolicy {
            jitter: true,
            ..steady(5)
        };
        let script = || (0..5).map(|_| Err(retryable("http_500", None))).collect();
        let (_, a, _) = drive(script(), &policy, PLENTY, 7);
        let (_, b, _) = drive(script(), &policy, PLENTY, 7);
        let (_, c, _) = drive(script(), &policy, PLENTY, 8);
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn a_retry_after_longer_than_the_backoff_is_waited_in_full() {
        let script = vec![
            Err(retryable("http_429", Some(Duration::from_secs(3)))),
            sent(),
        ];
        let (outcome, slept, _) = drive(script, &steady(5), PLENTY, 1);
        assert_eq!(slept, vec![Duration::from_secs(3)], "above max_backoff too");
        assert_eq!(outcome.stop, Stop::Sent);
    }

    #[test]
    fn a_retry_after_shorter_than_the_backoff_waits_the_backoff() {
        let script = vec![Err(retryable("http_429", Some(ms(10)))), sent()];
        let (_, slept, _) = drive(script, &steady(5), PLENTY, 1);
        assert_eq!(slept, vec![ms(100)]);
    }

    #[test]
    fn a_jittered_wait_is_never_shorter_than_the_retry_after() {
        let policy = RetryPolicy {
            jitter: true,
            ..steady(5)
        };
        for seed in 0..50 {
            let script = vec![Err(retryable("http_429", Some(ms(80)))), sent()];
            let (_, slept, _) = drive(script, &policy, PLENTY, seed);
            assert!(slept[0] >= ms(80), "seed {seed}: {slept:?}");
        }
    }

    #[test]
    fn a_retry_after_that_would_pass_the_deadline_ends_in_a_retryable_failure_without_waiting() {
        let error = retryable("http_429", Some(Duration::from_secs(30)));
        let script = vec![Err(error.clone()), sent()];
        let (outcome, slept, left) = drive(script, &steady(5), Duration::from_secs(20), 1);
        assert_eq!(outcome.stop, Stop::DeadlineReached);
        assert!(outcome.is_retryable_failure());
        assert_eq!(
            outcome.result,
            Err(error),
            "the Retry-After is kept for the caller"
        );
        assert!(slept.is_empty());
        assert_eq!(left, 1);
    }

    #[test]
    fn a_backoff_that_would_eat_into_the_margin_stops_before_the_deadline() {
        // 1.5 s left, 1 s margin: the 100 ms and 200 ms waits fit (1.3 s ≤ 1.5 s after the first,
        // 1.2 s ≤ 1.4 s after the second), the 350 ms one does not (1.35 s > 1.2 s left).
        let script = (0..5).map(|_| Err(retryable("http_500", None))).collect();
        let (outcome, slept, _) = drive(script, &steady(5), ms(1500), 1);
        assert_eq!(slept, vec![ms(100), ms(200)]);
        assert_eq!(outcome.stop, Stop::DeadlineReached);
        assert_eq!(outcome.attempts.len(), 3);
        assert!(outcome.is_retryable_failure());
    }

    #[test]
    fn a_deadline_already_inside_the_margin_still_gets_one_try() {
        let (outcome, slept, _) = drive(
            vec![Err(retryable("http_500", None)), sent()],
            &steady(5),
            ms(10),
            1,
        );
        assert_eq!(outcome.attempts.len(), 1);
        assert_eq!(outcome.stop, Stop::DeadlineReached);
        assert!(slept.is_empty());
    }

    #[test]
    fn zero_max_attempts_still_tries_once() {
        let (outcome, _, _) = drive(
            vec![Err(retryable("http_500", None)), sent()],
            &steady(0),
            PLENTY,
            1,
        );
        assert_eq!(outcome.attempts.len(), 1);
        assert_eq!(outcome.stop, Stop::AttemptsExhausted);
    }

    #[test]
    fn the_backoff_cap_does_not_overflow_after_many_failures() {
        let policy = steady(u32::MAX);
        assert_eq!(policy.backoff_cap(40), ms(350));
        assert_eq!(policy.backoff_cap(u32::MAX), ms(350));
        assert_eq!(policy.backoff_cap(1), ms(100));
    }
}
