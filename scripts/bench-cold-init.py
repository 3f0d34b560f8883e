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

Usage: python3 scripts/bench-cold-init.py BIN_DIR [RUNS]     (BENCHMARKS.md, "Cold init")
"""
import json, os, statistics, subprocess, sys

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


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p * (len(xs) - 1))))]


functions = [f for f in sys.argv[3:]] or ["webhook-intake", "stock-apply", "stock-push", "order-sync", "reconcile"]
print(f"{'binary':<16} {'init median ms':>14} {'p10':>6} {'p90':>6}  {'hello median':>12}  {'ratio':>5}  {'to 1st answer':>13}")
for f in functions:
    hello, fn, first = [], [], []
    for _ in range(runs):
        hello.append(measure("hello-lambda")[0])
        init, answered = measure(f)
        fn.append(init)
        first.append(answered)
    h, m = statistics.median(hello), statistics.median(fn)
    print(f"{f:<16} {m:>14.2f} {pct(fn, .1):>6.2f} {pct(fn, .9):>6.2f}  {h:>12.2f}  {m / h:>4.2f}x  {statistics.median(first):>13.2f}")
