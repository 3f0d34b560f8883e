#!/usr/bin/env python3
"""Cold init of each function binary against a hello-world lambda_runtime binary built with the same profile.

For BIN_DIR/hello-lambda and BIN_DIR/<function>, alternately, RUNS times each, it starts the binary against a
minimal Lambda Runtime API served here and records, per start:
- init (wall): process start -> its first GET /invocation/next, i.e. the function's whole init;
- init (CPU): the CPU time all the process's threads had used when that poll arrived (/proc/<pid>/task/*/schedstat).
  Wall-clock init depends on what else the machine runs; CPU time hardly does, so on a shared machine the CPU
  ratio is the steadier comparison;
- to first answer: -> the POST of the answer to one invocation of the function's sample event (events/), whose AWS
  calls fail at once against a closed port; work moved out of init to the first request shows here.
It prints medians (init p10/p90 too) and the ratios to the hello-world's. Every function gets the configuration
its template environment names, with the secrets and mappings given directly (STORE_EVENTS_SECRET,
MAPPINGS_PATH, ...) instead of as Secrets Manager / SSM references, so that the figure is the binary's own
start-up (runtime, logging, AWS clients, configuration, mappings) and not a network round trip.

Usage: python3 scripts/bench-cold-init.py BIN_DIR [RUNS] [FUNCTION...]     (BENCHMARKS.md, "Deployable builds")
"""
import glob, os, json, statistics, subprocess, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
bin_dir, runs = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 21

common = {
    "AWS_ENDPOINT_URL": "http://127.0.0.1:1", "RUST_LOG": "info", "METRICS_NAMESPACE": "CloudshelfCentra",
    "MAPPINGS_PATH": os.path.join(repo, "config", "mappings.example.toml"),
    "IDEMPOTENCY_TABLE": "idem", "STOCK_TABLE": "stock", "STOCK_QUEUE_URL": "http://127.0.0.1:1/q/stock.fifo",
    "STOCK_PUSH_QUEUE_URL": "http://127.0.0.1:1/q/push", "ORDERS_QUEUE_URL": "http://127.0.0.1:1/q/orders.fifo",
    "REPORTS_BUCKET": "reports", "ALERT_TOPIC_ARN": "arn:aws:sns:eu-west-1:123456789012:alerts",
    "CENTRA_API_URL": "https://brand.centra.com/graphql", "CENTRA_API_TOKEN": "token", "CENTRA_RATE_TIER": "growth",
    "STORE_EVENTS_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "CENTRA_WEBHOOK_SECRET": "centra-webhook-secret",
    "CLOUDSHELF_API_URL": "https://ingestapi.cloudshelf.ai/graphql", "CLOUDSHELF_API_KEY": "key",
    "ORDER_API_SECRETS": json.dumps({"CENTRA_ORDER_API_SECRET_UK": "a", "CENTRA_ORDER_API_SECRET_SE": "b"}),
    "PUSH_LEASE_SECONDS": "150", "RECON_PAGE_INTERVAL_MS": "2000",
    # One attempt per AWS call: the test invocation's calls fail at once instead of backing off.
    "AWS_MAX_ATTEMPTS": "1",
}
events = {"hello-lambda": "reconcile-stock-drift.json", "webhook-intake": "webhook-intake.json",
          "stock-apply": "stock-apply.json", "stock-push": "stock-push.json", "order-sync": "order-sync.json",
          "reconcile": "reconcile-stock-drift-dry-run.json"}

def process_cpu_ms(pid):
    return sum(int(open(t).read().split()[0]) for t in glob.glob(f"/proc/{pid}/task/*/schedstat")) / 1e6


def measure(name):
    """One cold start of BIN_DIR/name: (init wall ms, init CPU ms, ms to the first invocation's answer)."""
    event = open(os.path.join(repo, "events", events[name]), "rb").read()
    marks, started, answered = {}, threading.Event(), threading.Event()

    class RuntimeApi(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_GET(self):
            if not self.path.endswith("/invocation/next"):
                self.send_error(404)
                return
            if "next" in marks:  # the poll after the answer: hold it until the process is killed
                answered.wait(10)
                self.send_response(500)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            marks["next"] = time.perf_counter()
            started.wait(10)  # the poll can come before Popen has returned the pid
            marks["cpu_ms"] = process_cpu_ms(marks["pid"])
            self.send_response(200)
            for k, v in {"Lambda-Runtime-Aws-Request-Id": "req-1",
                         "Lambda-Runtime-Deadline-Ms": str(int(time.time() * 1000) + 30000),
                         "Lambda-Runtime-Invoked-Function-Arn": "arn:aws:lambda:eu-west-1:123456789012:function:f",
                         "Content-Type": "application/json", "Content-Length": str(len(event))}.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(event)

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            marks.setdefault("answer", time.perf_counter())
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()
            answered.set()

    server = ThreadingHTTPServer(("127.0.0.1", 0), RuntimeApi)
    server.handle_error = lambda *args: None  # the process is killed mid-poll on purpose
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = dict(os.environ, **common, AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{server.server_address[1]}",
               AWS_LAMBDA_FUNCTION_NAME="f", AWS_LAMBDA_FUNCTION_MEMORY_SIZE="256", AWS_LAMBDA_FUNCTION_VERSION="1",
               AWS_REGION="eu-west-1", AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x")
    for k in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        env.pop(k, None)
    t0 = time.perf_counter()
    process = subprocess.Popen([os.path.join(bin_dir, name)], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    marks["pid"] = process.pid
    started.set()
    ok = answered.wait(20)
    process.kill()
    process.wait()
    server.shutdown()
    if not ok or "cpu_ms" not in marks:
        sys.exit(f"{name}: no answer to its first invocation")
    return (marks["next"] - t0) * 1000, marks["cpu_ms"], (marks["answer"] - t0) * 1000


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p * (len(xs) - 1))))]


functions = sys.argv[3:] or ["webhook-intake", "stock-apply", "stock-push", "order-sync", "reconcile"]
print(f"{'binary':<16} {'init ms':>8} {'p10':>6} {'p90':>6}  {'hello':>6}  {'ratio':>5}  "
      f"{'init CPU ms':>11}  {'hello CPU':>9}  {'CPU ratio':>9}  {'to 1st answer':>13}")
for f in functions:
    hello, fn = [], []
    for _ in range(runs):
        hello.append(measure("hello-lambda"))
        fn.append(measure(f))
    wall, cpu, first = ([m[i] for m in fn] for i in range(3))
    h, hc = statistics.median(m[0] for m in hello), statistics.median(m[1] for m in hello)
    m, mc = statistics.median(wall), statistics.median(cpu)
    print(f"{f:<16} {m:>8.2f} {pct(wall, .1):>6.2f} {pct(wall, .9):>6.2f}  {h:>6.2f}  {m / h:>4.2f}x  "
          f"{mc:>11.2f}  {hc:>9.2f}  {mc / hc:>8.2f}x  {statistics.median(first):>13.2f}")
