#!/usr/bin/env python3
"""The storm, sent to Prometheus Alertmanager, for comparison with tocsin (issue 7; `make bench`).

Reads the transitions the Rust storm bench wrote (target/storm/transitions.jsonl: 100,000 state changes
of 500 alarms in one virtual hour, duplicates included), starts Alertmanager on 127.0.0.1 with the same
grouping as scripts/storm/tocsin.yaml and a local webhook receiver that counts notifications, and posts
the alerts to its v2 API in time order.

Time: Alertmanager's timers run on the wall clock, so the virtual hour is compressed by COMPRESSION (60:
one virtual minute is one real second) and so are its timers (group_wait 30s -> 0.5s, group_interval 5m
-> 5s, repeat_interval 4h -> 240s). An alert's startsAt/endsAt are the real instants its transitions are
posted at. Then, on the same instance, the whole storm is posted again as fast as it takes it, in batches,
to measure its ingest rate.

Installs the Debian package prometheus-alertmanager with apt-get when the binary is missing (needs root).
Writes target/storm/alertmanager.json and prints both sides.
"""

import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

COMPRESSION = 60.0
BINARY = "prometheus-alertmanager"
SLICE_S = 0.05
BURST_BATCH = 1000


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_binary():
    if shutil.which(BINARY):
        return
    print(f"storm: {BINARY} missing; installing the Debian package with apt-get", file=sys.stderr)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "install", "-y", "-q", "prometheus-alertmanager"], check=True, env=env,
                   stdout=subprocess.DEVNULL)


class Counter(http.server.BaseHTTPRequestHandler):
    lock = threading.Lock()
    notifications = 0
    firing_names = set()
    counting = True

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with Counter.lock:
            if Counter.counting:
                Counter.notifications += 1
                try:
                    for a in json.loads(body).get("alerts", []):
                        if a.get("status") == "firing":
                            Counter.firing_names.add(a["labels"].get("alertname", ""))
                except (ValueError, KeyError, AttributeError):
                    pass
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def post(url, alerts):
    req = urllib.request.Request(url, data=json.dumps(alerts).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        r.read()


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % int((t % 1) * 1000)


def alert(tr, now):
    labels = {"alertname": tr["alarm"], "service": tr["service"], "severity": tr["severity"]}
    if tr["firing"]:
        return {"labels": labels, "startsAt": iso(now), "endsAt": iso(now + 3600)}
    return {"labels": labels, "startsAt": iso(now - 0.001), "endsAt": iso(now)}


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "target/storm/transitions.jsonl"
    out_dir = os.path.dirname(path) or "."
    with open(path) as f:
        storm = [json.loads(line) for line in f]
    ensure_binary()

    hook_port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", hook_port), Counter)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    work = tempfile.mkdtemp(prefix="tocsin-storm-am-")
    cfg = os.path.join(work, "alertmanager.yml")
    with open(cfg, "w") as f:
        f.write(f"""route:
  receiver: hook
  group_by: [service]
  group_wait: {int(30_000 / COMPRESSION)}ms
  group_interval: {int(300_000 / COMPRESSION)}ms
  repeat_interval: {int(14_400_000 / COMPRESSION)}ms
receivers:
  - name: hook
    webhook_configs:
      - url: http://127.0.0.1:{hook_port}/
        send_resolved: true
""")
    port = free_port()
    am = subprocess.Popen([BINARY, f"--config.file={cfg}", f"--storage.path={work}",
                           f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=",
                           "--log.level=warn"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(base + "/-/ready", timeout=1).read()
                break
            except OSError:
                time.sleep(0.05)
        else:
            sys.exit("storm: alertmanager did not become ready")
        version = subprocess.run([BINARY, "--version"], capture_output=True, text=True)
        version = (version.stdout or version.stderr).splitlines()[0] if (version.stdout or version.stderr) else "?"

        # 1. The storm in compressed real time: notifications counted.
        t0 = time.time()
        i = 0
        lag_max = 0.0
        while i < len(storm):
            now = time.time()
            due = t0 + storm[i]["at_ms"] / 1000.0 / COMPRESSION
            if due > now:
                time.sleep(min(due - now, SLICE_S))
                continue
            lag_max = max(lag_max, now - due)
            batch = []
            while i < len(storm) and t0 + storm[i]["at_ms"] / 1000.0 / COMPRESSION <= now + SLICE_S:
                batch.append(alert(storm[i], now))
                i += 1
            post(base + "/api/v2/alerts", batch)
        replay_s = time.time() - t0
        # Let the last group_interval (and group_wait) run out, as tocsin's timers do in its hour.
        time.sleep(2 * 300 / COMPRESSION + 1)
        with Counter.lock:
            Counter.counting = False
            notifications = Counter.notifications
            told = set(Counter.firing_names)

        # 2. Ingest rate: the same 100,000 alerts, posted back to back.
        b0 = time.time()
        for j in range(0, len(storm), BURST_BATCH):
            now = time.time()
            post(base + "/api/v2/alerts", [alert(tr, now) for tr in storm[j:j + BURST_BATCH]])
        burst_s = time.time() - b0
        rss_kib = 0
        with open(f"/proc/{am.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    rss_kib = int(line.split()[1])
    finally:
        am.terminate()
        try:
            am.wait(timeout=10)
        except subprocess.TimeoutExpired:
            am.kill()
        server.shutdown()
        shutil.rmtree(work, ignore_errors=True)

    fired_critical = {t["alarm"] for t in storm if t["firing"] and t["severity"] == "critical"}
    report = {
        "version": version,
        "events": len(storm),
        "compression": COMPRESSION,
        "replay_real_s": round(replay_s, 2),
        "max_post_lag_s": round(lag_max, 3),
        "notifications": notifications,
        "ingest_events_per_s": round(len(storm) / burst_s),
        "ingest_batch": BURST_BATCH,
        "peak_rss_mib": round(rss_kib / 1024, 1),
        "critical_alarms_fired": len(fired_critical),
        "critical_alarms_lost": sorted(fired_critical - told),
    }
    with open(os.path.join(out_dir, "alertmanager.json"), "w") as f:
        json.dump(report, f)
    ours = {}
    try:
        with open(os.path.join(out_dir, "tocsin.json")) as f:
            ours = json.load(f)
    except OSError:
        pass
    print(json.dumps({"alertmanager": report}, indent=2))
    if ours:
        one, two = ours["one_thread"], ours["parse_ahead"]
        print(f"{'':24}{'tocsin, 1 thread':>18}{'tocsin, parse ahead':>21}{'Alertmanager':>16}")
        print(f"{'events':24}{ours['events']:>18}{ours['events']:>21}{report['events']:>16}")
        print(f"{'events/s':24}{one['events_per_s']:>18,.0f}{two['events_per_s']:>21,.0f}{report['ingest_events_per_s']:>16,}")
        print(f"{'peak RSS (MiB)':24}{one['peak_rss_mib']:>18.1f}{two['peak_rss_mib']:>21.1f}{report['peak_rss_mib']:>16.1f}")
        print(f"{'pages / notifications':24}{one['pages']:>18}{two['pages']:>21}{report['notifications']:>16}")
        print(f"{'critical alarms lost':24}{len(one['critical_alarms_lost']):>18}{len(two['critical_alarms_lost']):>21}{len(report['critical_alarms_lost']):>16}")

if __name__ == "__main__":
    main()
