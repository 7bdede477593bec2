#!/usr/bin/env python3
"""Init time, peak RSS and per-record time of each Lambda function, run locally, for BENCHMARKS.md.

    scripts/with-moto.sh .venv/bin/python scripts/lambda-figures.py [--kind critical|medium] [--records N]

(`make figures` builds the release binaries for this machine and runs exactly that.)

Each function's release binary (target/release/<bin>, the host's architecture) runs under a small Lambda
Runtime API emulator in this script, with the environment the template gives it, against moto (the
AWS_ENDPOINT_URL that scripts/with-moto.sh exports) through a counting proxy. The whole pipeline runs on
one batch of N alarm transitions (default 1,000), each stage fed what the previous one produced:

    ingest    one invocation: an SNS event of N alarm messages (checkout-api-5xx-<i>, critical)
    router    one invocation: an SNS event of the N canonical alerts ingest published
    deliver   one invocation per channel: the delivery jobs the router published for it
              (ops-slack to a local HTTP sink, oncall-sms to moto SNS, oncall-email to moto SES)
    escalate  N invocations of one tick each (Scheduler sends one at a time): the schedules the router made

Figures per function: init = process start to its first GET /runtime/invocation/next; peak RSS =
VmHWM of the process after its last invocation (what `/usr/bin/time -v` reports as maximum resident
set size); per-record time = invocation time / records. The proxy counts AWS requests per function and
estimates DynamoDB capacity units from the item sizes it sees. The summary is printed as JSON and as
Markdown rows.
"""

import argparse
import base64
import http.client
import http.server
import json
import math
import os
import queue
import socketserver
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from collections import Counter, defaultdict

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNTIME = "/2018-06-01/runtime"


class Quiet(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def reply(self, status, body=b"", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except BrokenPipeError:
            pass  # the function was stopped after its last invocation


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A function stopped after its last invocation drops its keep-alive connections.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def serve(handler):
    s = Server(("127.0.0.1", 0), handler)
    threading.Thread(target=s.serve_forever, daemon=True).start()
    return s


# ---------------------------------------------------------------------------------------------
# The Runtime API emulator: hands out queued events one at a time, records when each was taken and
# answered.
# ---------------------------------------------------------------------------------------------
class Runtime:
    def __init__(self):
        self.events = queue.Queue()
        self.first_next = None
        self.started = {}
        self.done = {}
        self.results = {}
        self.errors = []
        self.finished = threading.Event()
        self.expected = 0
        rt = self

        class H(Quiet):
            def do_GET(self):
                if self.path != RUNTIME + "/invocation/next":
                    return self.reply(404)
                if rt.first_next is None:
                    rt.first_next = time.monotonic()
                payload = rt.events.get()
                rid = str(uuid.uuid4())
                rt.started[rid] = time.monotonic()
                deadline = int((time.time() + 900) * 1000)
                self.reply(200, payload, [
                    ("Lambda-Runtime-Aws-Request-Id", rid),
                    ("Lambda-Runtime-Deadline-Ms", str(deadline)),
                    ("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:f"),
                    ("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000"),
                    ("Content-Type", "application/json"),
                ])

            def do_POST(self):
                body = self.body()
                parts = self.path[len(RUNTIME):].strip("/").split("/")
                if parts[:2] == ["init", "error"]:
                    rt.errors.append(("init", body.decode(errors="replace")))
                    rt.finished.set()
                elif len(parts) == 3 and parts[0] == "invocation":
                    rid, kind = parts[1], parts[2]
                    rt.done[rid] = time.monotonic()
                    if kind == "response":
                        rt.results[rid] = body
                    else:
                        rt.errors.append((rid, body.decode(errors="replace")))
                    if len(rt.done) >= rt.expected:
                        rt.finished.set()
                self.reply(202, b"{}")

        self.server = serve(H)


# ---------------------------------------------------------------------------------------------
# The counting proxy in front of moto.
# ---------------------------------------------------------------------------------------------
def item_size(item):
    """DynamoDB's item size: attribute names plus values (strings/numbers by length)."""
    total = 0
    for name, value in (item or {}).items():
        total += len(name.encode())
        for t, v in value.items():
            if t in ("S", "N"):
                total += len(str(v).encode())
            elif t == "B":
                # A packed body (docs/storage.md): base64 on the wire, billed by its bytes.
                total += len(base64.b64decode(v))
            elif t == "BOOL" or t == "NULL":
                total += 1
            else:
                total += len(json.dumps(v).encode())
    return total


class Proxy:
    def __init__(self, upstream):
        self.upstream = urllib.parse.urlparse(upstream)
        self.ops = Counter()
        self.wru = 0.0
        # The status index keys each alert item had at its last write (kept across resets: the table's state).
        self.listed = {}
        self.rru = 0.0
        self.lock = threading.Lock()
        p = self

        class H(Quiet):
            def forward(self):
                body = self.body()
                conn = http.client.HTTPConnection(p.upstream.hostname, p.upstream.port, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host",)}
                conn.request(self.command, self.path, body, headers)
                resp = conn.getresponse()
                data = resp.read()
                p.count(self.command, self.path, self.headers, body, resp.status, data)
                self.reply(resp.status, data, [(k, v) for k, v in resp.getheaders()
                                               if k.lower() not in ("content-length", "transfer-encoding", "connection")])
                conn.close()

            do_GET = do_POST = do_PUT = do_DELETE = forward

        self.server = serve(H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def reset(self):
        with self.lock:
            self.ops = Counter()
            self.wru = 0.0
            self.rru = 0.0

    def count(self, method, path, headers, body, status, data):
        target = headers.get("X-Amz-Target", "")
        with self.lock:
            if target.startswith("DynamoDB_20120810."):
                op = target.split(".", 1)[1]
                self.ops["dynamodb:" + op] += 1
                req = json.loads(body or b"{}")
                try:
                    res = json.loads(data or b"{}")
                except ValueError:
                    res = {}
                kb = lambda size: max(1, math.ceil(size / 1024))
                # The status index projects keys only: a write costs an index write (1 unit, the
                # entry being small) when it puts the item into the index, 1 when it takes it out,
                # and 2 when it moves it (delete and put); none when the keys stay as they were.
                def index_units(item):
                    item = item or {}
                    pk = json.dumps(item.get("pk"), sort_keys=True)
                    new = tuple(json.dumps(item.get(a), sort_keys=True) for a in ("status_pk", "status_sk")) \
                        if "status_pk" in item else None
                    old = self.listed.get(pk)
                    self.listed[pk] = new
                    return 0 if old == new else (1 if old is None or new is None else 2)
                if op == "PutItem":
                    self.wru += kb(item_size(req.get("Item"))) + index_units(req.get("Item"))
                elif op == "DeleteItem":
                    self.wru += 1
                elif op == "TransactWriteItems":
                    for it in req.get("TransactItems", []):
                        put = it.get("Put")
                        item = put["Item"] if put else None
                        self.wru += 2 * kb(item_size(item) if put else 0) + (index_units(item) if put else 0)
                elif op == "BatchWriteItem":
                    for reqs in req.get("RequestItems", {}).values():
                        for r in reqs:
                            self.wru += kb(item_size(r.get("PutRequest", {}).get("Item")))
                elif op == "GetItem":
                    per = 1.0 if req.get("ConsistentRead") else 0.5
                    self.rru += per * max(1, math.ceil(item_size(res.get("Item")) / 4096))
                elif op == "BatchGetItem":
                    # Billed per item, each rounded up to 4 KB, at the request's consistency.
                    for table, items in res.get("Responses", {}).items():
                        asked = req.get("RequestItems", {}).get(table, {})
                        per = 1.0 if asked.get("ConsistentRead") else 0.5
                        for i in items:
                            self.rru += per * max(1, math.ceil(item_size(i) / 4096))
                elif op == "Query":
                    per = 1.0 if req.get("ConsistentRead") else 0.5
                    size = sum(item_size(i) for i in res.get("Items", []))
                    self.rru += per * max(1, math.ceil(size / 4096))
            elif b"Action=" in (body or b"")[:200]:
                action = urllib.parse.parse_qs(body.decode()).get("Action", ["?"])[0]
                self.ops["sns:" + action] += 1
            elif path.startswith("/schedules/"):
                self.ops["scheduler:" + {"POST": "CreateSchedule", "DELETE": "DeleteSchedule",
                                          "GET": "GetSchedule"}.get(method, method)] += 1
            elif path.startswith("/v2/email/outbound-emails"):
                self.ops["ses:SendEmail"] += 1
            else:
                self.ops[f"other:{method} {path.split('?')[0]}"] += 1


# ---------------------------------------------------------------------------------------------
# The stack on moto.
# ---------------------------------------------------------------------------------------------
def setup(boto3, endpoint):
    kw = dict(endpoint_url=endpoint, region_name="us-east-1")
    ddb = boto3.client("dynamodb", **kw)
    table = "tocsin-figures-" + uuid.uuid4().hex[:8]
    s = lambda n: {"AttributeName": n, "AttributeType": "S"}
    k = lambda n, t: {"AttributeName": n, "KeyType": t}
    ddb.create_table(
        TableName=table, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[s(n) for n in ("pk", "sk", "status_pk", "status_sk")],
        KeySchema=[k("pk", "HASH"), k("sk", "RANGE")],
        GlobalSecondaryIndexes=[
            {"IndexName": "by-status-keys", "KeySchema": [k("status_pk", "HASH"), k("status_sk", "RANGE")],
             "Projection": {"ProjectionType": "KEYS_ONLY"}},
        ])
    sns = boto3.client("sns", **kw)
    sqs = boto3.client("sqs", **kw)
    alerts = sns.create_topic(Name="alerts-" + table)["TopicArn"]
    deliveries = sns.create_topic(Name="deliveries-" + table)["TopicArn"]

    def tap(topic, name, filter_channel=None):
        url = sqs.create_queue(QueueName=f"{name}-{table}")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        attrs = {"RawMessageDelivery": "true"}
        if filter_channel:
            attrs["FilterPolicy"] = json.dumps({"channel": [filter_channel]})
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes=attrs)
        return url

    taps = {"alerts": tap(alerts, "alerts")}
    for ch in ("ops-slack", "oncall-sms", "oncall-email", "pagerduty"):
        taps[ch] = tap(deliveries, ch, ch)
    group = "figures-" + table[-8:]
    sched = boto3.client("scheduler", **kw)
    sched.create_schedule_group(Name=group)
    ses = boto3.client("sesv2", **kw)
    ses.create_email_identity(EmailIdentity="example.com")
    return {"table": table, "alerts": alerts, "deliveries": deliveries, "taps": taps, "group": group,
            "sqs": sqs, "scheduler": sched}


def drain(sqs, url, want, timeout=60):
    out = []
    end = time.monotonic() + timeout
    while (want < 0 or len(out) < want) and time.monotonic() < end:
        r = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for m in r.get("Messages", []):
            out.append(m["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        if not r.get("Messages") and want < 0:
            break
    return out


# The largest event SNS (and an async invoke) hands a function; ingest refuses bigger ones.
MAX_EVENT = 256 * 1024


def sns_events(messages, topic):
    """The messages as SNS events of as many records as fit in MAX_EVENT each."""
    events, batch = [], []
    for m in messages:
        if batch and len(sns_event(batch + [m], topic)) > MAX_EVENT:
            events.append(sns_event(batch, topic))
            batch = []
        batch.append(m)
    if batch:
        events.append(sns_event(batch, topic))
    return events


def sns_event(messages, topic):
    return json.dumps({"Records": [{
        "EventSource": "aws:sns", "EventVersion": "1.0",
        "EventSubscriptionArn": topic + ":sub",
        "Sns": {"Type": "Notification", "MessageId": str(uuid.uuid4()), "TopicArn": topic,
                "Subject": None, "Message": m, "Timestamp": "2026-11-20T02:10:00.000Z",
                "SignatureVersion": "1", "Signature": "", "SigningCertUrl": "", "UnsubscribeUrl": "",
                "MessageAttributes": {}}} for m in messages]}).encode()


def alarm_messages(n, kind):
    """N distinct ALARM transitions. critical: checkout-api-5xx-<i> in 123456789012 (infra/tocsin.yaml
    pages on-call by SMS and email, posts to Slack, escalates); medium: search-latency-<i> in another
    account, no severity tag (Slack only, no escalation)."""
    path = os.path.join(ROOT, "events/scenario/incident/01-checkout-5xx-alarm.sns.json")
    base = json.load(open(path))["Records"][0]["Sns"]["Message"]
    msg = json.loads(base)
    out = []
    for i in range(n):
        m = dict(msg)
        if kind == "critical":
            m["AlarmName"] = f"checkout-api-5xx-{i:04d}"
        else:
            m["AlarmName"] = f"search-latency-{i:04d}"
            m["AWSAccountId"] = "111122223333"
            m["AlarmDescription"] = "Search latency p99 above the SLO"
        m["AlarmArn"] = f"arn:aws:cloudwatch:eu-west-1:{m['AWSAccountId']}:alarm:{m['AlarmName']}"
        out.append(json.dumps(m))
    return out


class Sink:
    """The Slack webhook: answers 200 ok."""

    def __init__(self):
        self.count = 0
        sink = self

        class H(Quiet):
            def do_POST(self):
                self.body()
                sink.count += 1
                self.reply(200, b"ok", [("Content-Type", "text/plain")])

        self.server = serve(H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"


LOGS = None
# How long one function may take over its whole batch (seconds; --wait).
WAIT = 900


def run(bin_path, env, payloads, proxy):
    rt = Runtime()
    rt.expected = len(payloads)
    for p in payloads:
        rt.events.put(p)
    full = dict(os.environ)
    full.update(env)
    full.update({
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{rt.server.server_address[1]}",
        "AWS_LAMBDA_FUNCTION_NAME": os.path.basename(bin_path),
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": "figures",
        "AWS_LAMBDA_LOG_STREAM_NAME": "figures",
        "AWS_ENDPOINT_URL": proxy.url,
        "RUST_LOG": "info" if LOGS else "warn",
    })
    proxy.reset()
    t0 = time.monotonic()
    out = open(os.path.join(LOGS, env.get("CHANNEL_NAME", os.path.basename(bin_path)) + ".log"), "wb") if LOGS else subprocess.DEVNULL
    proc = subprocess.Popen([bin_path], env=full, stdout=out, stderr=subprocess.PIPE)
    ok = rt.finished.wait(timeout=WAIT)
    hwm = None
    try:
        for line in open(f"/proc/{proc.pid}/status"):
            if line.startswith("VmHWM:"):
                hwm = int(line.split()[1])  # kB
    except OSError:
        pass
    proc.terminate()
    _, err = proc.communicate(timeout=10)
    busy = sum(rt.done[r] - rt.started[r] for r in rt.done if r in rt.started)
    return {
        "ok": ok and not rt.errors,
        "errors": rt.errors[:3] + ([("stderr", err.decode(errors="replace")[-2000:])] if rt.errors or not ok else []),
        "init_ms": round((rt.first_next - t0) * 1000, 2) if rt.first_next else None,
        "peak_rss_mb": round(hwm / 1024, 1) if hwm else None,
        "invocations": len(rt.done),
        "busy_ms": round(busy * 1000, 1),
        "results": [rt.results[r] for r in rt.results],
        "aws_ops": dict(proxy.ops),
        "wru": proxy.wru,
        "rru": proxy.rru,
    }


def init_runs(bin_path, env, runs):
    """Starts the function `runs` times with nothing to invoke: init times (ms) and RSS at init (MB)."""
    inits, rss = [], []
    for _ in range(runs):
        rt = Runtime()
        full = dict(os.environ)
        full.update(env)
        full.update({"AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{rt.server.server_address[1]}",
                     "AWS_LAMBDA_FUNCTION_NAME": "f", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
                     "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST", "RUST_LOG": "warn"})
        t0 = time.monotonic()
        proc = subprocess.Popen([bin_path], env=full, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while rt.first_next is None and proc.poll() is None and time.monotonic() - t0 < 30:
            time.sleep(0.0005)
        if rt.first_next is not None:
            inits.append((rt.first_next - t0) * 1000)
            for line in open(f"/proc/{proc.pid}/status"):
                if line.startswith("VmHWM:"):
                    rss.append(int(line.split()[1]) / 1024)
        proc.kill()
        proc.wait()
        rt.events.put(b"{}")  # release the handler thread
        rt.server.shutdown()
    inits.sort()
    return {"init_ms_min": round(inits[0], 2) if inits else None,
            "init_ms_median": round(inits[len(inits) // 2], 2) if inits else None,
            "rss_at_init_mb": round(max(rss), 1) if rss else None, "runs": len(inits)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=1000)
    ap.add_argument("--target-dir", default=os.path.join(ROOT, "target/release"))
    ap.add_argument("--init-runs", type=int, default=0, help="only measure init, this many starts per function")
    ap.add_argument("--kind", choices=["critical", "medium"], default="critical")
    ap.add_argument("--wait", type=int, default=900, help="seconds a function may take over its whole batch")
    ap.add_argument("--logs", help="keep each function's log (RUST_LOG=info) in this folder")
    args = ap.parse_args()
    global LOGS, WAIT
    LOGS = args.logs
    WAIT = args.wait
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if not endpoint:
        sys.exit("run under scripts/with-moto.sh (AWS_ENDPOINT_URL is not set)")
    import boto3

    n = args.records
    st = setup(boto3, endpoint)
    proxy = Proxy(endpoint)
    sink = Sink()
    key = "k" * 32
    # Secrets in Secrets Manager, as the template keeps them; the environment names their ARNs.
    secrets = boto3.client("secretsmanager", endpoint_url=endpoint, region_name="us-east-1")
    def secret(name, value):
        return secrets.create_secret(Name=f"figures-{name}-{os.getpid()}-{time.time_ns()}",
                                     SecretString=json.dumps(value))["ARN"]
    link_keys = secret("links", {"current": "k1", "k1": key})
    slack_secret = secret("ops-slack", {"slack-webhook": sink.url})
    common = {"TABLE_NAME": st["table"], "DELIVERIES_TOPIC_ARN": st["deliveries"]}
    sched_env = {
        "SCHEDULE_GROUP": st["group"],
        "ESCALATE_FUNCTION_ARN": "arn:aws:lambda:us-east-1:123456789012:function:tocsin-escalate",
        "SCHEDULER_ROLE_ARN": "arn:aws:iam::123456789012:role/tocsin-scheduler",
    }
    deliver_env = {**common, "API_BASE_URL": "https://api.example.com", "LINK_KEYS_SECRET_ARN": link_keys}
    # ingest holds the pages of paged Health events in the table and schedules their sweep.
    ingest_env = {"ALERTS_TOPIC_ARN": st["alerts"], "TABLE_NAME": st["table"],
                  "SCHEDULE_GROUP": st["group"], "SCHEDULER_ROLE_ARN": sched_env["SCHEDULER_ROLE_ARN"]}
    binp = lambda b: os.path.join(args.target_dir, b)
    if args.init_runs:
        envs = {
            "ingest": ingest_env,
            "router": {**common, **sched_env},
            "deliver (ops-slack)": {**deliver_env, "CHANNEL_NAME": "ops-slack", "CHANNEL_SECRET_ARN": slack_secret},
            "deliver (oncall-email)": {**deliver_env, "CHANNEL_NAME": "oncall-email"},
            "escalate": {**common, **sched_env},
        }
        out = {}
        for name, env in envs.items():
            out[name] = init_runs(binp(name.split()[0]), env, args.init_runs)
            print(f"| {name} | {out[name]['init_ms_min']} ms | {out[name]['init_ms_median']} ms | "
                  f"{out[name]['rss_at_init_mb']} MB |", file=sys.stderr)
        print(json.dumps(out, indent=1))
        return
    rows = []
    undelivered = {}

    def record(name, bin_name, res, records):
        rows.append({"function": name, "bin": bin_name, "records": records, **{k: v for k, v in res.items() if k != "results"}})
        status = "ok" if res["ok"] else f"FAILED {res['errors']}"
        print(f"{name:<22} init {res['init_ms']} ms  peak RSS {res['peak_rss_mb']} MB  "
              f"{res['invocations']} invocation(s), {res['busy_ms']} ms busy  {status}", file=sys.stderr)

    # ingest
    res = run(binp("ingest"), ingest_env, sns_events(alarm_messages(n, args.kind), "arn:aws:sns:us-east-1:123456789012:alarms"), proxy)
    record("ingest", "ingest", res, n)
    alerts = drain(st["sqs"], st["taps"]["alerts"], n)
    # router
    res = run(binp("router"), {**common, **sched_env}, sns_events(alerts, st["alerts"]), proxy)
    record("router", "router", res, len(alerts))
    # deliver, per channel
    # The SMS channel's throttle schedules its flushes (as the template gives DeliverOncallSmsFunction).
    sms_env = {"SCHEDULE_GROUP": st["group"], "SCHEDULER_ROLE_ARN": sched_env["SCHEDULER_ROLE_ARN"],
               "FLUSH_FUNCTION_ARN": "arn:aws:lambda:us-east-1:123456789012:function:tocsin-deliver-oncall-sms"}
    extra = {"ops-slack": {"CHANNEL_SECRET_ARN": slack_secret}, "oncall-sms": sms_env, "oncall-email": {}}
    for ch, env in extra.items():
        jobs = drain(st["sqs"], st["taps"][ch], -1, timeout=120)
        if not jobs:
            print(f"deliver {ch}: no jobs", file=sys.stderr)
            continue
        res = run(binp("deliver"), {**deliver_env, "CHANNEL_NAME": ch, **env}, sns_events(jobs, st["deliveries"]), proxy)
        record(f"deliver ({ch})", "deliver", res, len(jobs))
    # escalate: one tick an invocation, as Scheduler sends them, each tick scheduling the next step,
    # up to step 2 (level 2 pages; the alert is taken as acknowledged then). Since the opening does
    # level 1 itself when the route pages all of it, the first schedule is step 2; before, round 1 was
    # a step-1 tick that found level 1 already paged.
    sched = st["scheduler"]
    fired = set()
    # The SMS throttle's flushes target the SMS deliver function (a `Flush`, not a timer): sent
    # there, as Scheduler sends them, after the escalations.
    flushes = []
    for round_no in (1, 2):
        ticks = []
        kw = {"GroupName": st["group"], "MaxResults": 100}
        token = None
        while True:
            page = sched.list_schedules(**kw, **({"NextToken": token} if token else {}))
            for s in page["Schedules"]:
                if s["Name"] not in fired:
                    fired.add(s["Name"])
                    target = sched.get_schedule(Name=s["Name"], GroupName=st["group"])["Target"]
                    tick = target["Input"]
                    if target["Arn"] == sms_env["FLUSH_FUNCTION_ARN"]:
                        flushes.append(tick.encode())
                        continue
                    try:
                        step = json.loads(tick).get("step", 0)
                    except ValueError:
                        step = 0
                    if step <= 2:
                        ticks.append(tick.encode())
            token = page.get("NextToken")
            if not token:
                break
        if not ticks:
            break
        res = run(binp("escalate"), {**common, **sched_env}, ticks, proxy)
        record(f"escalate (round {round_no})", "escalate", res, len(ticks))
    if flushes:
        res = run(binp("deliver"), {**deliver_env, "CHANNEL_NAME": "oncall-sms", **sms_env}, flushes, proxy)
        record("deliver (oncall-sms, throttle flush)", "deliver", res, len(flushes))
    # What the escalations paged: SMS is delivered; PagerDuty's endpoint is fixed in its channel, so
    # its jobs are counted, not sent.
    jobs = drain(st["sqs"], st["taps"]["oncall-sms"], -1, timeout=120)
    if jobs:
        res = run(binp("deliver"), {**deliver_env, "CHANNEL_NAME": "oncall-sms", **sms_env}, sns_events(jobs, st["deliveries"]), proxy)
        record("deliver (oncall-sms, level 2)", "deliver", res, len(jobs))
    undelivered["pagerduty"] = len(drain(st["sqs"], st["taps"]["pagerduty"], -1, timeout=60))
    summary = {"records": n, "kind": args.kind, "slack_posts": sink.count, "jobs_not_delivered": undelivered, "functions": rows, "cost": cost(rows, n)}
    print(json.dumps(summary, indent=1))
    print(markdown(summary), file=sys.stderr)


# Prices, us-east-1, on-demand, without free tiers (checked 2025): Lambda arm64 per GB-second and per
# request; SNS per publish (64 KB chunks; deliveries to Lambda and SQS are free); DynamoDB on-demand per
# write and read request unit; EventBridge Scheduler per invocation (its API calls are free).
PRICE = {"gb_s": 0.0000133334, "request": 0.20e-6, "sns_publish": 0.50e-6, "wru": 0.625e-6,
         "rru": 0.125e-6, "scheduler_invocation": 1.00e-6}
MEMORY_GB = 128 / 1024


def cost(rows, n):
    """Cost of the measured run per million alarm transitions. Every function here ran once per record in
    production terms (SNS and Scheduler invoke with one record), so an invocation's billed duration is
    the measured time per record, rounded up to the millisecond. What the channels themselves cost (SMS,
    SES email, outbound data) is not counted."""
    per = {"lambda_requests": 0.0, "gb_s": 0.0, "sns_publishes": 0.0, "wru": 0.0, "rru": 0.0,
           "scheduler_invocations": 0.0}
    for r in rows:
        invocations_per_alert = r["records"] / n
        ms = math.ceil(r["busy_ms"] / r["records"]) if r["records"] else 0
        per["lambda_requests"] += invocations_per_alert
        per["gb_s"] += invocations_per_alert * ms / 1000 * MEMORY_GB
        # An SMS is a Publish too, but priced per message as SMS: a channel cost, like SES's email.
        if "sms" not in r["function"]:
            per["sns_publishes"] += r["aws_ops"].get("sns:Publish", 0) / n
        per["wru"] += r["wru"] / n
        per["rru"] += r["rru"] / n
        if r["function"].startswith("escalate"):
            per["scheduler_invocations"] += invocations_per_alert
    # CloudWatch's own publish of the alarm to the alarm topic.
    per["sns_publishes"] += 1
    dollars = {
        "lambda_requests": per["lambda_requests"] * PRICE["request"],
        "lambda_duration": per["gb_s"] * PRICE["gb_s"],
        "sns": per["sns_publishes"] * PRICE["sns_publish"],
        "dynamodb_writes": per["wru"] * PRICE["wru"],
        "dynamodb_reads": per["rru"] * PRICE["rru"],
        "scheduler": per["scheduler_invocations"] * PRICE["scheduler_invocation"],
    }
    return {"per_alert": {k: round(v, 4) for k, v in per.items()},
            "usd_per_million_alerts": {k: round(v * 1e6, 3) for k, v in dollars.items()},
            "usd_per_million_alerts_total": round(sum(dollars.values()) * 1e6, 2)}


def markdown(summary):
    lines = ["| function | records | init | peak RSS | time per record | AWS calls |", "|---|---:|---:|---:|---:|---|"]
    for r in summary["functions"]:
        calls = ", ".join(f"{k} {v}" for k, v in sorted(r["aws_ops"].items()))
        lines.append(f"| {r['function']} | {r['records']} | {r['init_ms']} ms | {r['peak_rss_mb']} MB | "
                     f"{r['busy_ms'] / max(1, r['records']):.2f} ms | {calls} |")
    c = summary["cost"]
    lines.append("")
    lines.append("| per alert | " + " | ".join(f"{k} {v}" for k, v in c["per_alert"].items()) + " |")
    lines.append("| $ per million alerts | " + " | ".join(f"{k} {v}" for k, v in c["usd_per_million_alerts"].items())
                 + f" | total {c['usd_per_million_alerts_total']} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
