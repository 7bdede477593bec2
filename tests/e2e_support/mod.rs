//! The harness of tests/e2e.rs: the function binaries (target/debug, built by `cargo test --workspace`'s
//! `cargo build --workspace --bins --tests` in the Makefile) as processes under `cargo lambda watch
//! --only-lambda-apis`, the stack's AWS resources on moto, and the plumbing that plays SNS, EventBridge
//! and Scheduler between them. Every wait has a timeout, every process is killed on drop, and every
//! failure names its step.

// Test code: a failed step is a panic that names it.
#![allow(clippy::unwrap_used, dead_code)]

#[path = "../../crates/channels/src/testing.rs"]
pub mod capture;

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use serde_json::{Value, json};

/// How long one invocation may take (the template's longest function timeout is 60 s).
pub const INVOKE_TIMEOUT: Duration = Duration::from_secs(60);

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Whether the harness must run (TOCSIN_REQUIRE_AWS=1): then anything missing is a failure, not a skip.
pub fn required() -> bool {
    std::env::var("TOCSIN_REQUIRE_AWS").as_deref() == Ok("1")
}

/// Something the test needs is missing: it says it is skipped, or, when required, fails.
pub fn missing(what: &str) {
    assert!(!required(), "e2e: TOCSIN_REQUIRE_AWS=1 but {what}");
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "skipped e2e: {what}");
}

/// A builder for the tests' own HTTP clients. reqwest is built without a crypto provider of its own
/// (the functions' HTTPS runs on aws-lc-rs, which `tocsin_channels::http::client` installs), so the
/// process's default is installed first.
pub fn http() -> reqwest::ClientBuilder {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    reqwest::Client::builder()
}

/// target/debug: the test executable is target/debug/deps/e2e-<hash>.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(Path::parent).unwrap().to_path_buf()
}

/// cargo-lambda: `$CARGO_LAMBDA`, else the repo's .venv (scripts/venv-install.sh).
pub fn cargo_lambda() -> PathBuf {
    std::env::var_os("CARGO_LAMBDA")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".venv/bin/cargo-lambda"))
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A child process, killed (and reaped) on drop, its stdout and stderr in files.
pub struct Proc {
    /// What it is, for messages.
    pub name: String,
    child: Child,
    /// Its stdout.
    pub stdout: PathBuf,
    /// Its stderr.
    pub stderr: PathBuf,
}

impl Proc {
    /// Starts `cmd` with its output in `dir/<name>.{out,err}`.
    pub fn spawn(name: &str, mut cmd: Command, dir: &Path) -> Proc {
        let stdout = dir.join(format!("{name}.out"));
        let stderr = dir.join(format!("{name}.err"));
        let child = cmd
            .stdin(Stdio::null())
            .stdout(File::create(&stdout).unwrap())
            .stderr(File::create(&stderr).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("e2e: starting {name} ({cmd:?}): {e}"));
        Proc {
            name: name.to_string(),
            child,
            stdout,
            stderr,
        }
    }

    /// Panics if it exited.
    pub fn assert_running(&mut self, step: &str) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!(
                "e2e: {step}: {} exited ({status}); its output:\n{}",
                self.name,
                self.tail()
            );
        }
    }

    /// The last lines of its output.
    pub fn tail(&self) -> String {
        let mut out = String::new();
        for p in [&self.stdout, &self.stderr] {
            let text = std::fs::read_to_string(p).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let from = lines.len().saturating_sub(30);
            out.push_str(&lines[from..].join("\n"));
            out.push('\n');
        }
        out
    }

    /// Every line it wrote, stdout then stderr.
    pub fn lines(&self) -> Vec<String> {
        [&self.stdout, &self.stderr]
            .iter()
            .flat_map(|p| {
                std::fs::read_to_string(p)
                    .unwrap_or_default()
                    .lines()
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until something listens on `port`, or fails naming `what`.
pub fn wait_for_port(port: u16, what: &mut Proc, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        what.assert_running("starting up");
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "e2e: {} did not listen on 127.0.0.1:{port} within {timeout:?}; its output:\n{}",
        what.name,
        what.tail()
    );
}

/// `cargo lambda watch --only-lambda-apis` and the functions attached to it, each a process started
/// here with `AWS_LAMBDA_RUNTIME_API` = `http://127.0.0.1:<port>/.rt/<function name>` (through
/// [`ArnProxy`]): that is how
/// cargo-lambda routes a runtime to a function, and it serves only names that are binaries of the
/// manifest it watches, so it watches a generated manifest whose binaries are the stack's functions.
pub struct Lambda {
    /// The emulator's port.
    pub port: u16,
    /// The emulator.
    pub watch: Proc,
    /// The functions, by name.
    pub functions: BTreeMap<String, Proc>,
    /// Where logs and the generated manifest live.
    pub dir: PathBuf,
    http: reqwest::Client,
    proxy: ArnProxy,
}

impl Lambda {
    /// Starts the emulator for functions named `names`.
    pub async fn start(cargo_lambda: &Path, names: &[&str], dir: &Path) -> Lambda {
        let project = dir.join("stack");
        std::fs::create_dir_all(project.join("src")).unwrap();
        std::fs::write(project.join("src/main.rs"), "fn main() {}\n").unwrap();
        let mut manifest = String::from(
            "[package]\nname = \"tocsin-e2e-stack\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n[workspace]\n",
        );
        for n in names {
            manifest.push_str(&format!(
                "\n[[bin]]\nname = \"{n}\"\npath = \"src/main.rs\"\n"
            ));
        }
        std::fs::write(project.join("Cargo.toml"), manifest).unwrap();
        let port = free_port();
        let mut cmd = Command::new(cargo_lambda);
        cmd.args(["lambda", "watch", "--only-lambda-apis", "--ignore-changes"])
            .args(["--invoke-address", "127.0.0.1", "--invoke-port"])
            .arg(port.to_string())
            .arg("--manifest-path")
            .arg(project.join("Cargo.toml"))
            .current_dir(&project);
        let mut watch = Proc::spawn("cargo-lambda-watch", cmd, dir);
        wait_for_port(port, &mut watch, Duration::from_secs(60));
        let proxy = ArnProxy::start(port).await;
        Lambda {
            proxy,
            port,
            watch,
            functions: BTreeMap::new(),
            dir: dir.to_path_buf(),
            http: http().timeout(INVOKE_TIMEOUT).build().unwrap(),
        }
    }

    /// Starts `bin` as the function `name` with `env` on top of the test's environment (which carries
    /// moto's endpoint and credentials).
    pub fn function(&mut self, name: &str, bin: &Path, env: &[(&str, String)]) {
        let mut cmd = Command::new(bin);
        cmd.env(
            "AWS_LAMBDA_RUNTIME_API",
            format!("http://127.0.0.1:{}/.rt/{name}", self.proxy.port),
        )
        .env("AWS_LAMBDA_FUNCTION_NAME", name)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "e2e")
        .env("RUST_LOG", "info")
        .env_remove("RUST_BACKTRACE");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let proc = Proc::spawn(name, cmd, &self.dir);
        self.functions.insert(name.to_string(), proc);
    }

    /// Invokes `name` with `payload` as a Lambda Invoke would; the function's answer, or a failure naming
    /// `step` with the function's last output.
    pub async fn invoke(&mut self, step: &str, name: &str, payload: &Value) -> Value {
        self.watch.assert_running(step);
        let f = self
            .functions
            .get_mut(name)
            .unwrap_or_else(|| panic!("e2e: {step}: no function {name}"));
        f.assert_running(step);
        let url = format!(
            "http://127.0.0.1:{}/2015-03-31/functions/{name}/invocations",
            self.port
        );
        let res = self.http.post(&url).json(payload).send().await;
        let f = &self.functions[name];
        let res = res.unwrap_or_else(|e| {
            panic!(
                "e2e: {step}: invoking {name}: {e}; its output:\n{}",
                f.tail()
            )
        });
        let status = res.status();
        let body = res.text().await.unwrap_or_default();
        assert!(
            status.is_success(),
            "e2e: {step}: {name} answered {status}: {body}; its output:\n{}",
            f.tail()
        );
        serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("e2e: {step}: {name} answered non-JSON ({e}): {body}"))
    }
}

/// The Runtime API as Lambda serves it, in front of cargo-lambda's: cargo-lambda hands every invocation
/// the invoked-function ARN `function-arn`, where Lambda hands the function's ARN, which the SMS deliver
/// function needs (its throttle's flush schedule targets itself). This proxy forwards everything and
/// rewrites that header to `arn:aws:lambda:us-east-1:123456789012:function:<name>`, the name taken from
/// the runtime's path (`/.rt/<name>/...`). Stopped on drop.
pub struct ArnProxy {
    /// Its port.
    pub port: u16,
    task: tokio::task::JoinHandle<()>,
}

/// The ARN the functions are invoked as.
pub fn function_arn(name: &str) -> String {
    format!("arn:aws:lambda:us-east-1:123456789012:function:{name}")
}

impl ArnProxy {
    /// Starts it in front of the Runtime API on `upstream` (a loopback port).
    pub async fn start(upstream: u16) -> ArnProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        // No timeout: a runtime's `next` waits for the next invocation as long as it takes.
        let client = http().build().unwrap();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let client = client.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        let client = client.clone();
                        async move {
                            Ok::<_, std::convert::Infallible>(forward(&client, upstream, req).await)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        ArnProxy { port, task }
    }
}

impl Drop for ArnProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn forward(
    client: &reqwest::Client,
    upstream: u16,
    req: hyper::Request<hyper::body::Incoming>,
) -> hyper::Response<http_body_util::Full<hyper::body::Bytes>> {
    use http_body_util::BodyExt;
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let name = path.split('/').nth(2).unwrap_or_default().to_string();
    let mut out = client
        .request(
            parts.method.clone(),
            format!("http://127.0.0.1:{upstream}{path}"),
        )
        .body(body);
    for (k, v) in &parts.headers {
        if k != hyper::header::HOST {
            out = out.header(k, v);
        }
    }
    let mut builder = hyper::Response::builder();
    let res = match out.send().await {
        Ok(res) => res,
        Err(e) => {
            return builder
                .status(502)
                .body(http_body_util::Full::new(e.to_string().into()))
                .unwrap();
        }
    };
    builder = builder.status(res.status());
    for (k, v) in res.headers() {
        let skip = ["content-length", "transfer-encoding", "connection"];
        if skip.contains(&k.as_str()) {
            continue;
        }
        if k.as_str() == "lambda-runtime-invoked-function-arn" {
            builder = builder.header(k, function_arn(&name));
        } else {
            builder = builder.header(k, v);
        }
    }
    let bytes = res.bytes().await.unwrap_or_default();
    builder.body(http_body_util::Full::new(bytes)).unwrap()
}

/// One message read from a subscribed queue: body and SNS message attributes.
#[derive(Debug, Clone)]
pub struct Received {
    /// The SNS message.
    pub body: String,
    /// Its string attributes.
    pub attributes: BTreeMap<String, String>,
}

/// The stack's AWS resources on moto: the table, the alerts and deliveries topics, a queue on the alerts
/// topic (what the router's subscription would get) and one per channel on the deliveries topic with the
/// template's filter policy, the escalation schedule group and the SES identity.
pub struct Aws {
    /// moto's endpoint.
    pub endpoint: String,
    /// The table.
    pub table: String,
    /// The alerts topic.
    pub alerts_topic: String,
    /// The deliveries topic.
    pub deliveries_topic: String,
    /// The schedule group.
    pub group: String,
    /// The alerts topic's queue.
    pub alerts_queue: String,
    /// Per channel, its queue.
    pub channel_queues: BTreeMap<String, String>,
    /// Clients.
    pub ddb: aws_sdk_dynamodb::Client,
    /// Clients.
    pub sqs: aws_sdk_sqs::Client,
    /// Clients.
    pub scheduler: aws_sdk_scheduler::Client,
    fired: HashSet<(String, String)>,
}

impl Aws {
    /// A secret holding `value` (JSON), named uniquely after `what`; its ARN.
    pub async fn secret(&self, what: &str, value: &str) -> String {
        let sdk = tocsin_aws::emulator::sdk_config(&self.endpoint).await;
        aws_sdk_secretsmanager::Client::new(&sdk)
            .create_secret()
            .name(tocsin_aws::emulator::unique_name(&format!("e2e-{what}")))
            .secret_string(value)
            .send()
            .await
            .unwrap_or_else(|e| panic!("e2e: setup: secret {what}: {e:?}"))
            .arn()
            .unwrap_or_default()
            .to_string()
    }

    /// Creates it all, with names unique to this run.
    pub async fn create(endpoint: &str, channels: &[&str]) -> Aws {
        let sdk = tocsin_aws::emulator::sdk_config(endpoint).await;
        let unique = |w: &str| tocsin_aws::emulator::unique_name(&format!("e2e-{w}"));
        let ddb = aws_sdk_dynamodb::Client::new(&sdk);
        let table = unique("table");
        tocsin_aws::DynamoStore::new(ddb.clone(), table.clone())
            .create_table_if_missing()
            .await
            .unwrap_or_else(|e| panic!("e2e: setup: creating table {table}: {e}"));
        let sns = aws_sdk_sns::Client::new(&sdk);
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let topic = |name: String| {
            let sns = sns.clone();
            async move {
                sns.create_topic()
                    .name(name)
                    .send()
                    .await
                    .unwrap()
                    .topic_arn()
                    .unwrap()
                    .to_string()
            }
        };
        let alerts_topic = topic(unique("alerts")).await;
        let deliveries_topic = topic(unique("deliveries")).await;
        let alerts_queue = subscribe(&sns, &sqs, &alerts_topic, &unique("q-alerts"), None).await;
        let mut channel_queues = BTreeMap::new();
        for ch in channels {
            let policy = json!({ "channel": [ch] }).to_string();
            let url = subscribe(
                &sns,
                &sqs,
                &deliveries_topic,
                &unique(&format!("q-{ch}")),
                Some(&policy),
            )
            .await;
            channel_queues.insert(ch.to_string(), url);
        }
        let scheduler = aws_sdk_scheduler::Client::new(&sdk);
        let group = unique("escalations");
        scheduler
            .create_schedule_group()
            .name(&group)
            .send()
            .await
            .unwrap_or_else(|e| panic!("e2e: setup: schedule group: {e:?}"));
        aws_sdk_sesv2::Client::new(&sdk)
            .create_email_identity()
            .email_identity("example.com")
            .send()
            .await
            .unwrap_or_else(|e| panic!("e2e: setup: SES identity: {e:?}"));
        Aws {
            endpoint: endpoint.to_string(),
            table,
            alerts_topic,
            deliveries_topic,
            group,
            alerts_queue,
            channel_queues,
            ddb,
            sqs,
            scheduler,
            fired: HashSet::new(),
        }
    }

    /// Everything in a queue now (moto delivers during the publish, so nothing more is on its way):
    /// received until a receive comes back empty, at most 20 s.
    pub async fn drain(&self, url: &str) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut all = Vec::new();
        while Instant::now() < deadline {
            let out = self
                .sqs
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(10)
                .wait_time_seconds(0)
                .message_attribute_names("All")
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .send()
                .await
                .unwrap_or_else(|e| panic!("e2e: reading {url}: {e:?}"));
            let msgs = out.messages();
            if msgs.is_empty() {
                return all;
            }
            for m in msgs {
                let attributes = m
                    .message_attributes()
                    .map(|a| {
                        a.iter()
                            .filter_map(|(k, v)| {
                                v.string_value().map(|s| (k.clone(), s.to_string()))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                all.push(Received {
                    body: m.body().unwrap_or_default().to_string(),
                    attributes,
                });
                self.sqs
                    .delete_message()
                    .queue_url(url)
                    .receipt_handle(m.receipt_handle().unwrap())
                    .send()
                    .await
                    .unwrap();
            }
        }
        all
    }

    /// The channel's pending delivery jobs.
    pub async fn jobs(&self, channel: &str) -> Vec<Received> {
        self.drain(&self.channel_queues[channel]).await
    }

    /// Schedules not fired yet, as (name, target ARN, input), in the order they are due.
    pub async fn due_schedules(&mut self) -> Vec<(String, String, Value)> {
        self.pending_schedules()
            .await
            .into_iter()
            .map(|(_, name, arn, input)| (name, arn, input))
            .collect()
    }

    /// Schedules not fired yet, as (schedule expression, name, target ARN, input), in the order they
    /// are due.
    pub async fn pending_schedules(&mut self) -> Vec<(String, String, String, Value)> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .scheduler
                .list_schedules()
                .group_name(&self.group)
                .set_next_token(token.clone())
                .send()
                .await
                .unwrap_or_else(|e| panic!("e2e: list_schedules: {e:?}"));
            for s in page.schedules() {
                let name = s.name().unwrap_or_default().to_string();
                let got = self
                    .scheduler
                    .get_schedule()
                    .group_name(&self.group)
                    .name(&name)
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("e2e: get_schedule {name}: {e:?}"));
                let target = got.target().unwrap();
                // Compared as `fired` records it: parsed, so that key order does not matter.
                let input = serde_json::from_str::<Value>(target.input().unwrap_or("{}"))
                    .map_or_else(
                        |_| target.input().unwrap_or("{}").to_string(),
                        |v| v.to_string(),
                    );
                if self.fired.contains(&(name.clone(), input.clone())) {
                    continue;
                }
                let when = got.schedule_expression().unwrap_or_default().to_string();
                out.push((when, name, target.arn().to_string(), input));
            }
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        out.sort();
        out.into_iter()
            .map(|(when, name, arn, input)| {
                let v = serde_json::from_str(&input)
                    .unwrap_or_else(|e| panic!("e2e: schedule {name}'s input is not JSON: {e}"));
                (when, name, arn, v)
            })
            .collect()
    }

    /// Marks a schedule fired (Scheduler fires a one-time schedule once).
    pub fn fired(&mut self, name: &str, input: &Value) {
        self.fired.insert((name.to_string(), input.to_string()));
    }

    /// Names of the schedules left in the group.
    pub async fn schedule_names(&self) -> Vec<String> {
        let page = self
            .scheduler
            .list_schedules()
            .group_name(&self.group)
            .send()
            .await
            .unwrap();
        page.schedules()
            .iter()
            .filter_map(|s| s.name().map(str::to_string))
            .collect()
    }

    /// The alert item, as plain JSON (attribute name to string value).
    pub async fn alert_item(&self, id: &str) -> BTreeMap<String, String> {
        use aws_sdk_dynamodb::types::AttributeValue;
        let out = self
            .ddb
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(format!("ALERT#{id}")))
            .key("sk", AttributeValue::S("ALERT".into()))
            .consistent_read(true)
            .send()
            .await
            .unwrap();
        let item = out
            .item()
            .unwrap_or_else(|| panic!("e2e: no alert item ALERT#{id} in {}", self.table));
        plain(item)
    }

    /// The alert's audit items, in order.
    pub async fn audit(&self, id: &str) -> Vec<BTreeMap<String, String>> {
        use aws_sdk_dynamodb::types::AttributeValue;
        let out = self
            .ddb
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :audit)")
            .expression_attribute_values(":pk", AttributeValue::S(format!("ALERT#{id}")))
            .expression_attribute_values(":audit", AttributeValue::S("AUDIT#".into()))
            .consistent_read(true)
            .send()
            .await
            .unwrap();
        out.items().iter().map(plain).collect()
    }
}

fn plain(
    item: &std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>,
) -> BTreeMap<String, String> {
    item.iter()
        .map(|(k, v)| {
            let s = if k == "body" {
                // Packed or not (docs/storage.md, "Packed bodies"): its JSON.
                tocsin_aws::dynamo::body_json(item).unwrap()
            } else {
                v.as_s()
                    .cloned()
                    .or_else(|_| v.as_n().cloned())
                    .unwrap_or_else(|_| format!("{v:?}"))
            };
            (k.clone(), s)
        })
        .collect()
}

async fn subscribe(
    sns: &aws_sdk_sns::Client,
    sqs: &aws_sdk_sqs::Client,
    topic: &str,
    name: &str,
    filter_policy: Option<&str>,
) -> String {
    let url = sqs
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_string();
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap();
    let arn = attrs.attributes().unwrap()[&QueueAttributeName::QueueArn].clone();
    let mut s = sns
        .subscribe()
        .topic_arn(topic)
        .protocol("sqs")
        .endpoint(arn)
        .attributes("RawMessageDelivery", "true");
    if let Some(p) = filter_policy {
        s = s.attributes("FilterPolicy", p);
    }
    s.send().await.unwrap();
    url
}

/// The SNS event a subscription of `topic` hands its function for `messages`.
pub fn sns_event(topic: &str, messages: &[Received]) -> Value {
    let records: Vec<Value> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let attrs: serde_json::Map<String, Value> = m
                .attributes
                .iter()
                .map(|(k, v)| (k.clone(), json!({"Type": "String", "Value": v})))
                .collect();
            json!({
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": format!("{topic}:e2e-subscription"),
                "Sns": {
                    "Type": "Notification",
                    "MessageId": format!("00000000-0000-4000-8000-{i:012}"),
                    "TopicArn": topic,
                    "Subject": null,
                    "Message": m.body,
                    "Timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    "SignatureVersion": "1",
                    "Signature": "",
                    "SigningCertUrl": "",
                    "UnsubscribeUrl": "",
                    "MessageAttributes": attrs,
                }
            })
        })
        .collect();
    json!({ "Records": records })
}

/// A fixture of events/, parsed.
pub fn fixture(path: &str) -> Value {
    let p = root().join("events").join(path);
    let text =
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("e2e: fixture {}: {e}", p.display()));
    serde_json::from_str(&text).unwrap()
}

/// An API fixture with its `$NAME` placeholders replaced.
pub fn api_fixture(path: &str, vars: &[(&str, &str)]) -> Value {
    let p = root().join("events/api").join(path);
    let mut text =
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("e2e: fixture {}: {e}", p.display()));
    for (k, v) in vars {
        text = text.replace(&format!("${k}"), v);
    }
    serde_json::from_str(&text).unwrap()
}
