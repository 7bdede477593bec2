//! The platform of the chaos run, in one place: how functions are invoked, as Lambda, SNS, EventBridge,
//! Scheduler and API Gateway invoke them. A Runtime API server on 127.0.0.1 that the function binaries
//! (target/debug) poll, each function a small pool of child processes (Lambda's concurrent execution
//! environments, started on first use and after a kill); an invocation can have its process SIGKILLed
//! at a random moment; and the retry rules:
//!
//! - asynchronous invocations (SNS, EventBridge, the alarm action, Scheduler): the attempt, then
//!   Lambda's two retries (the template's `MaximumRetryAttempts: 2`), then the dead-letter queue with
//!   the last reason. Scheduler's own retry policy (185 attempts) is for failing to hand the event to
//!   Lambda, which never fails here; SNS's redelivery is played by the caller handing a message twice.
//! - synchronous invocations (API Gateway): one attempt; the person at the other end retries.
//!
//! Each execution environment has its own Runtime API path (`/rt/<function>/<slot>/<generation>`), so
//! an invocation is handed to exactly the process chosen for it, and a killed process's pending poll,
//! whose generation is over, can never take the next one.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use serde_json::Value;
use tokio::sync::{Notify, Semaphore, oneshot};

use super::rng::Rng;

/// How long an invocation may run (the template's longest function timeout is 60 s; the run is
/// bounded, so shorter).
pub const INVOKE_TIMEOUT: Duration = Duration::from_secs(30);
/// Lambda's asynchronous retries after the first attempt.
pub const ASYNC_RETRIES: usize = 2;

/// How one attempt ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The function's answer.
    Ok(Value),
    /// The function returned an error (its body).
    Error(String),
    /// The process was SIGKILLed during the invocation.
    Killed,
    /// The invocation ran past the timeout (its process is killed, as Lambda ends the environment).
    Timeout,
}

impl Outcome {
    /// Why it failed, for a dead letter; None when it succeeded.
    pub fn failure(&self) -> Option<String> {
        match self {
            Outcome::Ok(_) => None,
            Outcome::Error(e) => Some(format!(
                "function error: {}",
                e.chars().take(300).collect::<String>()
            )),
            Outcome::Killed => Some("process killed".into()),
            Outcome::Timeout => Some(format!("timed out after {INVOKE_TIMEOUT:?}")),
        }
    }
}

/// An event that failed every attempt, as Lambda's on-failure destination gets it.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// The function.
    pub function: String,
    /// The event.
    pub payload: Value,
    /// The last attempt's failure.
    pub reason: String,
}

/// Counters for the last line.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    /// Attempts made.
    pub invocations: u64,
    /// Attempts whose process was SIGKILLed.
    pub kills: u64,
    /// Attempts that timed out.
    pub timeouts: u64,
    /// Attempts that returned an error.
    pub errors: u64,
}

/// A function: its binary, its environment, its execution environments.
struct Function {
    bin: PathBuf,
    env: Vec<(String, String)>,
    slots: Vec<Arc<Slot>>,
    /// Free slots (a permit per slot; the slot index is found by `busy`).
    free: Arc<Semaphore>,
    busy: Mutex<Vec<bool>>,
    /// Average attempt time, for drawing the kill moment.
    mean_ms: Mutex<f64>,
}

/// One execution environment.
#[derive(Default)]
struct Slot {
    generation: AtomicU64,
    next: Mutex<Option<(String, Value)>>,
    ready: Notify,
    child: tokio::sync::Mutex<Option<tokio::process::Child>>,
}

struct Inner {
    port: u16,
    functions: Mutex<BTreeMap<String, Arc<Function>>>,
    pending: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    rng: Mutex<Rng>,
    kill_rate: f64,
    retry_scale: f64,
    stats: Mutex<Stats>,
    dead: Mutex<Vec<DeadLetter>>,
    interrupted: Mutex<Vec<(String, Value)>>,
    logs: PathBuf,
    ids: AtomicU64,
}

/// The platform; its server stops and its processes are killed when dropped.
#[derive(Clone)]
pub struct Platform {
    inner: Arc<Inner>,
    server: Arc<ServerTask>,
}

struct ServerTask(tokio::task::JoinHandle<()>);

impl Drop for ServerTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The ARN a function is invoked as.
pub fn function_arn(name: &str) -> String {
    format!("arn:aws:lambda:us-east-1:123456789012:function:{name}")
}

impl Platform {
    /// Starts the Runtime API server. `kill_rate` is the share of attempts whose process is killed;
    /// `retry_scale` scales Lambda's waits between asynchronous retries (1 and 2 minutes at 1.0); the
    /// logs of every process go under `logs`.
    pub async fn start(seed: u64, kill_rate: f64, retry_scale: f64, logs: &Path) -> Platform {
        std::fs::create_dir_all(logs).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let inner = Arc::new(Inner {
            port,
            functions: Mutex::new(BTreeMap::new()),
            pending: Mutex::new(HashMap::new()),
            rng: Mutex::new(Rng::new(seed ^ 0x9e37_79b9)),
            kill_rate,
            retry_scale,
            stats: Mutex::new(Stats::default()),
            dead: Mutex::new(Vec::new()),
            interrupted: Mutex::new(Vec::new()),
            logs: logs.to_path_buf(),
            ids: AtomicU64::new(1),
        });
        let shared = inner.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let inner = shared.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        let inner = inner.clone();
                        async move { Ok::<_, std::convert::Infallible>(runtime_api(&inner, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Platform {
            inner,
            server: Arc::new(ServerTask(task)),
        }
    }

    /// Declares the function `name`, run from `bin` with `env` on top of this process's environment,
    /// with at most `concurrency` execution environments.
    pub fn function(&self, name: &str, bin: &Path, env: Vec<(String, String)>, concurrency: usize) {
        let f = Function {
            bin: bin.to_path_buf(),
            env,
            slots: (0..concurrency)
                .map(|_| Arc::new(Slot::default()))
                .collect(),
            free: Arc::new(Semaphore::new(concurrency)),
            busy: Mutex::new(vec![false; concurrency]),
            mean_ms: Mutex::new(200.0),
        };
        lock(&self.inner.functions).insert(name.to_string(), Arc::new(f));
    }

    /// The counters so far.
    pub fn stats(&self) -> Stats {
        lock(&self.inner.stats).clone()
    }

    /// The dead letters so far.
    pub fn dead_letters(&self) -> Vec<DeadLetter> {
        lock(&self.inner.dead).clone()
    }

    /// The events of attempts whose process was killed or timed out, by function.
    pub fn interrupted(&self) -> Vec<(String, Value)> {
        lock(&self.inner.interrupted).clone()
    }

    /// An asynchronous invocation (SNS, EventBridge, the alarm action, Scheduler): the attempt and
    /// Lambda's retries, then the dead-letter queue. The last outcome.
    pub async fn invoke_async(&self, name: &str, payload: &Value) -> Outcome {
        let mut last = Outcome::Timeout;
        for attempt in 0..=ASYNC_RETRIES {
            last = self.attempt(name, payload).await;
            if matches!(last, Outcome::Ok(_)) {
                return last;
            }
            if attempt < ASYNC_RETRIES {
                // Lambda waits about a minute before the first retry and two before the second.
                let wait = 60.0 * (attempt as f64 + 1.0) * self.inner.retry_scale;
                tokio::time::sleep(Duration::from_secs_f64(wait)).await;
            }
        }
        lock(&self.inner.dead).push(DeadLetter {
            function: name.to_string(),
            payload: payload.clone(),
            reason: last.failure().unwrap_or_default(),
        });
        last
    }

    /// A synchronous invocation (API Gateway): one attempt.
    pub async fn invoke_sync(&self, name: &str, payload: &Value) -> Outcome {
        self.attempt(name, payload).await
    }

    /// One attempt on a free execution environment, which may be killed at a random moment.
    pub async fn attempt(&self, name: &str, payload: &Value) -> Outcome {
        let f = lock(&self.inner.functions)
            .get(name)
            .cloned()
            .unwrap_or_else(|| panic!("chaos: no function {name}"));
        let _permit = f.free.clone().acquire_owned().await.unwrap();
        let i = {
            let mut busy = lock(&f.busy);
            let i = busy.iter().position(|b| !b).unwrap();
            busy[i] = true;
            i
        };
        let out = self.attempt_on(name, &f, i, payload).await;
        lock(&f.busy)[i] = false;
        out
    }

    async fn attempt_on(&self, name: &str, f: &Function, i: usize, payload: &Value) -> Outcome {
        let slot = f.slots[i].clone();
        let mut child = slot.child.lock().await;
        let running = match child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        };
        if !running {
            let generation = slot.generation.fetch_add(1, Ordering::SeqCst) + 1;
            *child = Some(self.spawn(name, f, i, generation));
        }
        let id = format!(
            "chaos-{:08}-{}",
            self.inner.ids.fetch_add(1, Ordering::SeqCst),
            name
        );
        let (tx, rx) = oneshot::channel();
        lock(&self.inner.pending).insert(id.clone(), tx);
        *lock(&slot.next) = Some((id.clone(), payload.clone()));
        slot.ready.notify_waiters();
        slot.ready.notify_one();
        let kill_after = {
            let mut rng = lock(&self.inner.rng);
            (rng.chance(self.inner.kill_rate)).then(|| {
                let mean = *lock(&f.mean_ms);
                Duration::from_millis(rng.below(mean as u64 + 1))
            })
        };
        lock(&self.inner.stats).invocations += 1;
        let started = Instant::now();
        let kill = async {
            match kill_after {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        let out = tokio::select! {
            r = rx => r.unwrap_or(Outcome::Killed),
            _ = kill => Outcome::Killed,
            _ = tokio::time::sleep(INVOKE_TIMEOUT) => Outcome::Timeout,
        };
        let out = match out {
            Outcome::Killed | Outcome::Timeout => {
                // Whatever the process was doing, it stops now; a late answer finds no one waiting.
                lock(&self.inner.pending).remove(&id);
                lock(&slot.next).take();
                slot.generation.fetch_add(1, Ordering::SeqCst);
                if let Some(mut c) = child.take() {
                    let _ = c.start_kill();
                    let _ = c.wait().await;
                }
                lock(&self.inner.interrupted).push((name.to_string(), payload.clone()));
                let mut stats = lock(&self.inner.stats);
                if matches!(out, Outcome::Killed) {
                    stats.kills += 1;
                } else {
                    stats.timeouts += 1;
                }
                out
            }
            Outcome::Error(e) => {
                lock(&self.inner.stats).errors += 1;
                Outcome::Error(e)
            }
            ok => ok,
        };
        if matches!(out, Outcome::Ok(_) | Outcome::Error(_)) {
            let mut mean = lock(&f.mean_ms);
            *mean = 0.9 * *mean + 0.1 * started.elapsed().as_millis() as f64;
        }
        out
    }

    fn spawn(&self, name: &str, f: &Function, i: usize, generation: u64) -> tokio::process::Child {
        let log = self.inner.logs.join(format!("{name}-{i}.log"));
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let err = out.try_clone().unwrap();
        let mut cmd = tokio::process::Command::new(&f.bin);
        cmd.env(
            "AWS_LAMBDA_RUNTIME_API",
            format!(
                "http://127.0.0.1:{}/rt/{name}/{i}/{generation}",
                self.inner.port
            ),
        )
        .env("AWS_LAMBDA_FUNCTION_NAME", name)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
        .env(
            "AWS_LAMBDA_LOG_STREAM_NAME",
            format!("chaos-{i}-{generation}"),
        )
        .env("RUST_LOG", "info")
        .env_remove("RUST_BACKTRACE")
        .envs(f.env.iter().map(|(k, v)| (k, v)))
        .stdin(std::process::Stdio::null())
        .stdout(out)
        .stderr(err)
        .kill_on_drop(true);
        cmd.spawn()
            .unwrap_or_else(|e| panic!("chaos: starting {name} ({}): {e}", f.bin.display()))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

type Resp = hyper::Response<Full<Bytes>>;

fn respond(status: u16, body: impl Into<Bytes>) -> Resp {
    hyper::Response::builder()
        .status(status)
        .body(Full::new(body.into()))
        .unwrap()
}

/// The Runtime API: `next` hands the slot's invocation (waiting for one), `response` and `error`
/// settle it. Paths: `/rt/<function>/<slot>/<generation>/2018-06-01/runtime/...`.
async fn runtime_api(inner: &Inner, req: hyper::Request<hyper::body::Incoming>) -> Resp {
    let path = req.uri().path().to_string();
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (Some(&"rt"), Some(name), Some(i), Some(generation)) =
        (parts.first(), parts.get(1), parts.get(2), parts.get(3))
    else {
        return respond(404, "no such path");
    };
    let rest = &parts[4..];
    let f = lock(&inner.functions).get(*name).cloned();
    let (Some(f), Ok(i), Ok(generation)) = (f, i.parse::<usize>(), generation.parse::<u64>())
    else {
        return respond(404, "no such function");
    };
    let Some(slot) = f.slots.get(i).cloned() else {
        return respond(404, "no such slot");
    };
    match rest {
        ["2018-06-01", "runtime", "invocation", "next"] => loop {
            if slot.generation.load(Ordering::SeqCst) != generation {
                return respond(410, "this execution environment is gone");
            }
            let notified = slot.ready.notified();
            if let Some((id, payload)) = lock(&slot.next).take() {
                let deadline = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default()
                    + INVOKE_TIMEOUT;
                return hyper::Response::builder()
                    .status(200)
                    .header("lambda-runtime-aws-request-id", id)
                    .header(
                        "lambda-runtime-deadline-ms",
                        deadline.as_millis().to_string(),
                    )
                    .header("lambda-runtime-invoked-function-arn", function_arn(name))
                    .header(
                        "lambda-runtime-trace-id",
                        "Root=1-00000000-000000000000000000000000",
                    )
                    .header("content-type", "application/json")
                    .body(Full::new(Bytes::from(payload.to_string())))
                    .unwrap();
            }
            // Wake now and then to notice a generation that ended while waiting.
            let _ = tokio::time::timeout(Duration::from_millis(500), notified).await;
        },
        [
            "2018-06-01",
            "runtime",
            "invocation",
            id,
            verdict @ ("response" | "error"),
        ] => {
            let body = req
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let text = String::from_utf8_lossy(&body).into_owned();
            let out = if *verdict == "response" {
                Outcome::Ok(serde_json::from_str(&text).unwrap_or(Value::String(text)))
            } else {
                Outcome::Error(text)
            };
            if let Some(tx) = lock(&inner.pending).remove(*id) {
                let _ = tx.send(out);
            }
            respond(202, "")
        }
        ["2018-06-01", "runtime", "init", "error"] => respond(202, ""),
        _ => respond(404, "unknown runtime route"),
    }
}
