#!/usr/bin/env python3
"""Cold init of each function binary against a hello-world lambda_runtime binary built with the same profile.

Runs ../shared/tools/runtime-api-standin.py (a minimal Lambda Runtime API: process start -> first GET /next =
the function's whole init) on BIN_DIR/hello-lambda and BIN_DIR/<function> alternately, RUNS times each, and
prints the median init (and p10/p90) per function, its ratio to the hello-world's, and the median time to the
first invocation's answer (init + one invocation, whose AWS calls fail fast against a closed port; work moved
out of init to the first request shows here). Every function gets the
configuration its template environment names, with the secrets and mappings given directly (STORE_EVENTS_SECRET,
MAPPINGS_PATH, ...) instead of as Secrets Manager / SSM references, so that the figure is the binary's own
start-up (runtime, logging, AWS clients, configuration, mappings) and not a network round trip. AWS calls made
by the test invocation go to a closed local port.

It also prints the init's CPU time: the CPU the process (all its threads) had used when its first GET /next
arrived, read from /proc/<pid>/task/*/schedstat by a second, built-in stand-in that answers that poll with 500.
Wall-clock init depends on what else the machine runs; CPU time hardly does, so on a shared machine the CPU
ratio is the steadier comparison.

Usage: python3 scripts/bench-cold-init.py BIN_DIR [RUNS] [FUNCTION...]     (BENCHMARKS.md, "Cold init")
"""
import glob, json, os, statistics, subprocess, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
standin = os.path.join(os.path.dirname(repo), "shared", "tools", "runtime-api-standin.py")
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


def measure(name):
    env = dict(os.environ, **common)
    for k in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        env.pop(k, None)
    out = subprocess.run([sys.executable, standin, os.path.join(bin_dir, name), os.path.join(repo, "events", events[name])],
                         env=env, capture_output=True, text=True, timeout=60)
    result = json.loads(out.stdout)
    if "init_ms" not in result:
        sys.exit(f"{name}: {result}")
    return result["init_ms"], result["first_invoke_ms"]


def cpu_init_ms(name):
    """CPU milliseconds the process had used when it first polled /invocation/next (Linux /proc schedstat)."""
    polled, started, seen = threading.Event(), threading.Event(), {}

    class Poll(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_GET(self):
            started.wait(10)  # the poll can come before Popen has returned the pid
            if "cpu_ns" not in seen:
                seen["cpu_ns"] = sum(int(open(t).read().split()[0])
                                     for t in glob.glob(f"/proc/{seen['pid']}/task/*/schedstat"))
                polled.set()
            self.send_response(500)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Poll)
    server.handle_error = lambda *args: None  # the process is killed mid-poll on purpose
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = dict(os.environ, **common, AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{server.server_address[1]}",
               AWS_LAMBDA_FUNCTION_NAME="f", AWS_LAMBDA_FUNCTION_MEMORY_SIZE="256", AWS_LAMBDA_FUNCTION_VERSION="1",
               AWS_REGION="eu-west-1", AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x")
    for k in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        env.pop(k, None)
    process = subprocess.Popen([os.path.join(bin_dir, name)], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    seen["pid"] = process.pid
    started.set()
    ok = polled.wait(10)
    process.kill()
    process.wait()
    server.shutdown()
    if not ok:
        sys.exit(f"{name}: never polled /invocation/next")
    return seen["cpu_ns"] / 1e6


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p * (len(xs) - 1))))]


functions = [f for f in sys.argv[3:]] or ["webhook-intake", "stock-apply", "stock-push", "order-sync", "reconcile"]
print(f"{'binary':<16} {'init median ms':>14} {'p10':>6} {'p90':>6}  {'hello median':>12}  {'ratio':>5}  "
      f"{'to 1st answer':>13}  {'init CPU ms':>11}  {'hello CPU':>9}  {'CPU ratio':>9}")
for f in functions:
    hello, fn, first, hello_cpu, fn_cpu = [], [], [], [], []
    for _ in range(runs):
        hello.append(measure("hello-lambda")[0])
        init, answered = measure(f)
        fn.append(init)
        first.append(answered)
        hello_cpu.append(cpu_init_ms("hello-lambda"))
        fn_cpu.append(cpu_init_ms(f))
    h, m = statistics.median(hello), statistics.median(fn)
    hc, mc = statistics.median(hello_cpu), statistics.median(fn_cpu)
    print(f"{f:<16} {m:>14.2f} {pct(fn, .1):>6.2f} {pct(fn, .9):>6.2f}  {h:>12.2f}  {m / h:>4.2f}x  "
          f"{statistics.median(first):>13.2f}  {mc:>11.2f}  {hc:>9.2f}  {mc / hc:>8.2f}x")
