//! Effects survive a failure at any point: for each path of the router (open, repeat, resolve, an
//! escalation step, the acknowledgement timeout, a person's ack, resolve, assign and note, the end of a
//! silence and of a maintenance window, a group flush, a flap settling), the step is run once with a
//! fault injected at its first call, then at its second, and so on through every call it makes to the
//! store, the bus and the scheduler; each fault either fails the call (a backend error) or never
//! returns (the invocation dies there, as a timeout or a kill would leave it). The platform's retry is
//! played as Lambda and Scheduler play it (the same event, timer or command again; after a death, once
//! the claim has expired), every later timer runs, and the pages are compared with a run without
//! faults: every page the fault-free run sent is sent, none twice (a page is a delivery id: deliver
//! sends one message per id).
//!
//! The adapters are the embedded ones (memory store, local bus, virtual scheduler) under
//! `tocsin_local::Faults`; they answer at once, so one poll of an invocation either finishes it or
//! stops it at the injected hang, where it is dropped, as a killed process drops it.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use chrono::{DateTime, TimeDelta, Utc};
use tocsin_core::Alert;
use tocsin_core::lifecycle::Command;
use tocsin_core::model::AlarmState;
use tocsin_core::noise::NewSilence;
use tocsin_core::record::{DeliveryJob, Timer};
use tocsin_core::router::{CLAIM_MARGIN_SECONDS, Router, RouterError};
use tocsin_local::{
    FaultMode, Faults, FaultyBus, FaultyEmbedded, FaultyScheduler, FaultyStore, LocalBus,
    MemoryStore, VirtualClock, VirtualScheduler,
};
use tocsin_tests::{cloudwatch_alarm, example_config, t};

type R = Router<
    FaultyStore<MemoryStore>,
    FaultyBus<LocalBus>,
    FaultyScheduler<VirtualScheduler>,
    VirtualClock,
>;

/// Polls `f` once: the embedded adapters never wait, so it is either done or stopped at a hang.
fn poll_once<F: Future>(f: F) -> Option<F::Output> {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => Some(v),
        Poll::Pending => None,
    }
}

struct Rig {
    router: R,
    faults: Faults,
    bus: LocalBus,
    scheduler: VirtualScheduler,
    clock: VirtualClock,
    /// Every job published, in order.
    published: Vec<DeliveryJob>,
}

/// One step of a scenario: an invocation (or a run of timers, each its own invocation).
// A few values per test: their size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
enum Step {
    /// A transition through the router function.
    Event(Alert),
    /// Every timer due up to this time, each fired as Scheduler fires it.
    Timers(DateTime<Utc>),
    /// A person's command through the API on the latest alert of an alarm, at a time.
    Act(&'static str, Command, DateTime<Utc>),
    /// A silence made through the API.
    Silence(Vec<String>, DateTime<Utc>, DateTime<Utc>),
}

/// One invocation the platform may retry.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
enum Invocation {
    Event(Alert),
    Timer(Timer),
    Act(String, Command),
    Silence(NewSilence),
}

impl Rig {
    fn new() -> Rig {
        let p = FaultyEmbedded::new(example_config(), t("2026-11-20T01:00:00Z"));
        Rig {
            router: p.router,
            faults: p.faults,
            bus: p.bus,
            scheduler: p.scheduler,
            clock: p.clock,
            published: Vec::new(),
        }
    }

    /// Runs one invocation; `None` when it died at an injected hang, `Some(false)` when it failed.
    fn invoke(&mut self, inv: &Invocation) -> Option<bool> {
        let r = &self.router;
        let now = self.clock.now_utc();
        let done: Option<Result<(), RouterError>> = match inv {
            Invocation::Event(a) => {
                poll_once(r.handle_until(a.clone(), Some(now))).map(|r| r.map(drop))
            }
            Invocation::Timer(tick) => poll_once(r.on_timer(tick)).map(|r| r.map(drop)),
            Invocation::Act(fp, cmd) => poll_once(async {
                let Some(rec) = tocsin_core::ports::AlertStore::latest_alert(&r.store, fp).await?
                else {
                    return Ok(());
                };
                match r.act(&rec.id, cmd, "alice").await {
                    // The retry of a command that went through: the API answers 409, nothing is owed.
                    Err(RouterError::Illegal(_)) => Ok(()),
                    other => other.map(drop),
                }
            }),
            Invocation::Silence(s) => poll_once(r.create_silence(s.clone())).map(|r| {
                r.map(drop).map_err(|e| match e {
                    tocsin_core::suppress::SilenceCommandError::Router(e) => e,
                    other => panic!("silence refused: {other}"),
                })
            }),
        };
        self.published.extend(self.bus.take_deliveries());
        done.map(|r| r.is_ok())
    }

    /// Runs one invocation as the platform would: with the fault planned, then (if it failed or
    /// died) once more without faults, after the dead invocation's claim expired.
    fn invoke_with_retry(&mut self, inv: &Invocation) {
        match self.invoke(inv) {
            Some(true) => return,
            Some(false) => {}
            None => self
                .clock
                .set(self.clock.now_utc() + TimeDelta::seconds(CLAIM_MARGIN_SECONDS + 1)),
        }
        self.faults.clear();
        assert_eq!(
            self.invoke(inv),
            Some(true),
            "the platform's retry of a failed invocation succeeds"
        );
    }

    fn step(&mut self, step: &Step) {
        match step {
            Step::Event(a) => {
                self.timers(a.state_changed_at);
                self.clock.set(a.state_changed_at);
                self.invoke_with_retry(&Invocation::Event(a.clone()));
            }
            Step::Timers(until) => self.timers(*until),
            Step::Act(alarm, cmd, at) => {
                self.timers(*at);
                self.clock.set(*at);
                let fp =
                    cloudwatch_alarm(alarm, AlarmState::Alarm, "2026-11-20T00:00:00Z").fingerprint;
                self.invoke_with_retry(&Invocation::Act(fp, cmd.clone()));
            }
            Step::Silence(matchers, at, ends) => {
                self.timers(*at);
                self.clock.set(*at);
                let s = NewSilence {
                    matchers: matchers.clone(),
                    created_by: "alice".into(),
                    comment: "test".into(),
                    starts_at: None,
                    ends_at: *ends,
                };
                self.invoke_with_retry(&Invocation::Silence(s));
            }
        }
    }

    /// Fires every timer due by `until`, each as its own invocation.
    fn timers(&mut self, until: DateTime<Utc>) {
        for _ in 0..10_000 {
            let Some((at, _, tick)) = self.scheduler.pop_due(until) else {
                return;
            };
            self.clock.set(at.max(self.clock.now_utc()));
            self.invoke_with_retry(&Invocation::Timer(tick));
        }
        panic!("timers never stop");
    }

    /// Every page sent: one per delivery id (deliver sends one message per id), as (alert, kind,
    /// channel, target), counted.
    fn pages(&self) -> BTreeMap<String, usize> {
        let mut seen = BTreeSet::new();
        let mut pages = BTreeMap::new();
        for j in &self.published {
            if seen.insert(j.delivery_id.clone()) {
                let key = format!(
                    "{} {:?} {} {}",
                    j.alert.alarm_name, j.kind, j.target.channel, j.target.target
                );
                *pages.entry(key).or_insert(0) += 1;
            }
        }
        pages
    }
}

trait NowUtc {
    fn now_utc(&self) -> DateTime<Utc>;
}

impl NowUtc for VirtualClock {
    fn now_utc(&self) -> DateTime<Utc> {
        tocsin_core::ports::Clock::now(self)
    }
}

/// Runs `steps` without faults, then once per call of step `under` and fault mode with that call
/// failing, and requires the same pages every time. Returns how many faults were injected.
fn survives_every_fault(name: &str, steps: &[Step], under: usize, end: DateTime<Utc>) -> usize {
    let run = |fault: Option<(usize, FaultMode)>| -> (Rig, Vec<&'static str>) {
        let mut rig = Rig::new();
        let mut calls = Vec::new();
        for (i, s) in steps.iter().enumerate() {
            if i == under {
                match fault {
                    Some((k, mode)) => rig.faults.fail_at(k, mode),
                    None => rig.faults.clear(),
                }
                rig.step(s);
                calls = rig.faults.calls();
                rig.faults.clear();
            } else {
                rig.step(s);
            }
        }
        rig.timers(end);
        (rig, calls)
    };
    let (clean, calls) = run(None);
    let expected = clean.pages();
    assert!(!expected.is_empty(), "{name}: the scenario pages somebody");
    assert!(
        !calls.is_empty(),
        "{name}: the step under test calls the ports"
    );
    let mut injected = 0;
    for k in 0..calls.len() {
        for mode in [FaultMode::Error, FaultMode::Hang] {
            let (rig, _) = run(Some((k, mode)));
            injected += 1;
            assert_eq!(
                rig.pages(),
                expected,
                "{name}: with call {k} ({mode:?}, {}) of step {under} failing, the pages differ; \
                 the step's calls: {calls:?}",
                calls[k]
            );
        }
    }
    injected
}

/// A delivery job or a timer the bus or the scheduler refuses as it is (a message over SNS's limit)
/// fails the same way on every retry. It is recorded with why; the alert's other pages go out; and
/// nothing is held up: the invocation succeeds, nothing stays owed, and the alert still resolves and
/// tells of it. Before, the refusal failed the invocation and stayed in the outbox, so every later
/// change of the alert failed on it.
#[test]
fn a_job_or_timer_refused_as_it_is_is_on_record_and_holds_nothing_up() {
    let open = Invocation::Event(alarm(CRIT, AlarmState::Alarm, T0));
    let mut clean = Rig::new();
    clean.clock.set(t(T0));
    assert_eq!(clean.invoke(&open), Some(true));
    let calls = clean.faults.calls();
    for call in ["bus.publish_delivery", "scheduler.schedule"] {
        let k = calls.iter().position(|c| *c == call).unwrap();
        let mut rig = Rig::new();
        rig.clock.set(t(T0));
        rig.faults.fail_at(k, FaultMode::Refuse);
        assert_eq!(
            rig.invoke(&open),
            Some(true),
            "{call}: the invocation goes on"
        );
        rig.faults.clear();
        let sent = rig.published.len();
        let expected = clean.published.len() - usize::from(call == "bus.publish_delivery");
        assert_eq!(sent, expected, "{call}: every other page goes out");
        let fp = alarm(CRIT, AlarmState::Alarm, T0).fingerprint;
        let rec = tocsin_core::ports::AlertStore::latest_alert(&rig.router.store, &fp);
        let rec = poll_once(rec).unwrap().unwrap().unwrap();
        assert!(rec.pending.is_empty(), "{call}: nothing stays owed");
        let audit = poll_once(tocsin_core::ports::AlertStore::audit(
            &rig.router.store,
            &rec.id,
        ))
        .unwrap()
        .unwrap();
        assert!(
            audit
                .iter()
                .any(|e| e.reason.contains("refused by the")
                    && e.reason.contains("injected refusal")),
            "{call}: the refusal is on record: {audit:#?}"
        );
        rig.clock.set(t("2026-11-20T02:20:00Z"));
        let ok = Invocation::Event(alarm(CRIT, AlarmState::Ok, "2026-11-20T02:20:00Z"));
        assert_eq!(
            rig.invoke(&ok),
            Some(true),
            "{call}: the alert still resolves"
        );
        assert!(
            rig.published[sent..]
                .iter()
                .any(|j| j.kind == tocsin_core::record::DeliveryKind::Resolve),
            "{call}: and its resolution is told"
        );
    }
}

fn alarm(name: &str, state: AlarmState, at: &str) -> Alert {
    cloudwatch_alarm(name, state, at)
}

const CRIT: &str = "checkout-api-5xx";
const MEDIUM: &str = "search-latency-p99";
/// 02:10 on a Friday: nights (carol is on call), outside business hours and maintenance windows.
const T0: &str = "2026-11-20T02:10:00Z";

fn end() -> DateTime<Utc> {
    t("2026-11-20T06:00:00Z")
}

#[test]
fn an_alert_opening_pages_everyone_once_whatever_fails() {
    let steps = [Step::Event(alarm(CRIT, AlarmState::Alarm, T0))];
    survives_every_fault("open", &steps, 0, end());
}

#[test]
fn a_repeat_and_a_resolution_page_once_whatever_fails() {
    let steps = [
        Step::Event(alarm(CRIT, AlarmState::Alarm, T0)),
        Step::Event(alarm(CRIT, AlarmState::Alarm, "2026-11-20T02:12:00Z")),
        Step::Event(alarm(CRIT, AlarmState::Ok, "2026-11-20T02:20:00Z")),
    ];
    survives_every_fault("repeat", &steps, 1, end());
    survives_every_fault("resolve", &steps, 2, end());
}

#[test]
fn an_escalation_step_pages_its_level_once_whatever_fails() {
    let steps = [
        Step::Event(alarm(CRIT, AlarmState::Alarm, T0)),
        Step::Timers(t("2026-11-20T02:24:00Z")),
        Step::Timers(t("2026-11-20T02:26:00Z")),
    ];
    survives_every_fault("escalation step", &steps, 2, end());
}

#[test]
fn people_acting_tell_everyone_once_whatever_fails() {
    let at = t("2026-11-20T02:14:00Z");
    let later = t("2026-11-20T02:16:00Z");
    for (name, cmd) in [
        ("ack", Command::Ack),
        ("resolve", Command::Resolve),
        ("assign", Command::Assign("bob".into())),
        ("note", Command::Note("looking".into())),
    ] {
        let steps = [
            Step::Event(alarm(CRIT, AlarmState::Alarm, T0)),
            Step::Act(CRIT, cmd, at),
            Step::Event(alarm(CRIT, AlarmState::Ok, "2026-11-20T02:20:00Z")),
            Step::Act(CRIT, Command::Note("after".into()), later),
        ];
        survives_every_fault(name, &steps, 1, end());
    }
}

#[test]
fn an_acknowledgement_that_times_out_pages_again_once_whatever_fails() {
    let steps = [
        Step::Event(alarm(CRIT, AlarmState::Alarm, T0)),
        Step::Act(CRIT, Command::Ack, t("2026-11-20T02:12:00Z")),
        Step::Timers(t("2026-11-20T02:41:00Z")),
        Step::Timers(t("2026-11-20T02:43:00Z")),
    ];
    survives_every_fault("ack timeout", &steps, 3, end());
}

#[test]
fn a_group_flush_sends_one_notification_whatever_fails() {
    let steps = [
        Step::Event(alarm(MEDIUM, AlarmState::Alarm, T0)),
        Step::Event(alarm(
            "search-errors",
            AlarmState::Alarm,
            "2026-11-20T02:10:10Z",
        )),
        Step::Timers(t("2026-11-20T02:10:45Z")),
        Step::Event(alarm(MEDIUM, AlarmState::Ok, "2026-11-20T02:12:00Z")),
    ];
    survives_every_fault("group join", &steps, 1, end());
    survives_every_fault("group flush", &steps, 2, end());
    survives_every_fault("group leave", &steps, 3, end());
}

#[test]
fn the_end_of_a_silence_pages_what_it_held_once_whatever_fails() {
    let steps = [
        Step::Silence(
            vec!["alarm_name = \"checkout-api-5xx\"".into()],
            t("2026-11-20T02:00:00Z"),
            t("2026-11-20T02:30:00Z"),
        ),
        Step::Event(alarm(CRIT, AlarmState::Alarm, T0)),
        Step::Timers(t("2026-11-20T02:31:00Z")),
    ];
    survives_every_fault("silence created", &steps, 0, end());
    survives_every_fault("held", &steps, 1, end());
    survives_every_fault("end of silence", &steps, 2, end());
}

#[test]
fn the_end_of_a_maintenance_window_pages_what_it_held_once_whatever_fails() {
    // Sunday 03:00-04:00 London: search's reindex window.
    let steps = [
        Step::Event(alarm(MEDIUM, AlarmState::Alarm, "2026-11-22T03:10:00Z")),
        Step::Timers(t("2026-11-22T04:01:00Z")),
    ];
    survives_every_fault("end of window", &steps, 1, t("2026-11-22T06:00:00Z"));
}

#[test]
fn a_flapping_alarm_pages_once_and_once_when_it_settles_whatever_fails() {
    let mut steps = Vec::new();
    for i in 0..8 {
        let state = if i % 2 == 0 {
            AlarmState::Alarm
        } else {
            AlarmState::Ok
        };
        let at = format!("2026-11-20T02:{:02}:00Z", 10 + i);
        steps.push(Step::Event(alarm(CRIT, state, &at)));
    }
    let flapping_at = 6;
    steps.push(Step::Timers(end()));
    survives_every_fault("flapping", &steps, flapping_at, end());
    let settle = steps.len() - 1;
    survives_every_fault("flap settle", &steps, settle, end());
}

#[test]
fn the_fault_walk_reaches_every_call_of_a_step() {
    // The walk is only as good as the count: an opening alert makes more than a dozen calls across
    // the three ports, and the walk injects two faults per call.
    let steps = [Step::Event(alarm(CRIT, AlarmState::Alarm, T0))];
    let injected = survives_every_fault("open", &steps, 0, end());
    assert!(injected >= 24, "only {injected} faults injected");
}

#[test]
fn a_claim_ends_with_its_invocation_so_the_retry_of_a_dead_one_routes_the_event() {
    let mut rig = Rig::new();
    let a = alarm(CRIT, AlarmState::Alarm, T0);
    let at = a.state_changed_at;
    rig.clock.set(at);
    // The invocation dies at its first publish, its claim still held (nothing released it).
    let first_publish = {
        let probe = Rig::new();
        probe.clock.set(at);
        probe.faults.clear();
        poll_once(probe.router.handle_until(a.clone(), Some(at)))
            .expect("no hang planned")
            .expect("routes");
        probe
            .faults
            .calls()
            .iter()
            .position(|c| *c == "bus.publish_delivery")
            .expect("an opening critical alert publishes")
    };
    rig.faults.fail_at(first_publish, FaultMode::Hang);
    assert!(rig.invoke(&Invocation::Event(a.clone())).is_none());
    rig.faults.clear();
    // Lambda's retry a few seconds on, within the claim's margin: still held.
    rig.clock
        .set(at + TimeDelta::seconds(CLAIM_MARGIN_SECONDS / 2));
    let early = poll_once(
        rig.router
            .handle_until(a.clone(), Some(rig.clock.now_utc())),
    );
    assert!(
        matches!(early, Some(Err(RouterError::InProgress(_)))),
        "{early:?}"
    );
    // Past the dead invocation's deadline and margin (not 5 minutes later): taken over, and what
    // the dead one owed is sent.
    rig.clock
        .set(at + TimeDelta::seconds(CLAIM_MARGIN_SECONDS + 1));
    assert_eq!(rig.invoke(&Invocation::Event(a)), Some(true));
    assert!(
        rig.published
            .iter()
            .any(|j| j.target.channel == "oncall-sms"),
        "the page the dead invocation owed went out"
    );
}
