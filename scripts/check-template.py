#!/usr/bin/env python3
"""Project checks of the SAM template: the settings that matter here and that cfn-lint does not catch.

    python3 scripts/check-template.py [template.yaml] [--cfn-lint]

cfn-lint accepts a misspelt `ReportBatchItemFailures`, a wrong runtime name or a visibility timeout shorter than the
function's, and each of those loses or delays stock silently. This script fails (exit 1) naming the resource and the
setting when:

- a function is not provided.al2023 / Handler bootstrap / BuildMethod rust-cargolambda with a Binary that is a
  binary target of the Cargo workspace at its CodeUri (and unique across functions), or its Architectures is not
  [!Ref Architecture], a parameter allowing exactly arm64 (the default) and x86_64;
- a function behind a public API (HttpApi/Api event) has no ReservedConcurrentExecutions from a Number parameter
  with a default of at least 1 (`!Ref P`, or `!If [cond, !Ref P, !Ref AWS::NoValue]`);
- an SQS trigger lacks FunctionResponseTypes [ReportBatchItemFailures] (exact spelling), does not name a queue of
  this template, or its queue has no RedrivePolicy (failed messages must park in a DLQ, not expire);
- a queue's VisibilityTimeout is less than 6 × the Timeout of a function it triggers;
- a FIFO trigger sets MaximumBatchingWindowInSeconds or a BatchSize above 10; a standard-queue trigger with a
  BatchSize above 10 has no batching window (AWS requires one);
- a queue with a RedrivePolicy has a maxReceiveCount other than 5, or a DLQ that is not a queue of this template
  or not of the same type (a FIFO queue needs a FIFO DLQ, a standard queue a standard one);
- a FIFO queue sets only one of the two high-throughput settings (DeduplicationScope messageGroup,
  FifoThroughputLimit perMessageGroupId), which silently falls back to the normal limits;
- a DynamoDB table is not PAY_PER_REQUEST, has no point-in-time recovery or no DeletionProtectionEnabled; the
  IdempotencyTable has no TTL on `expiration`;
- an IAM statement grants a dynamodb/sqs action (or `*`) on Resource "*";
- PUSH_LEASE_SECONDS is not above the Timeout of the function it configures;
- an alarm does not notify (AlarmActions), does not say it recovered (OKActions) or does not treat missing data as
  notBreaching; an alarm on a custom
  namespace does not use the functions' METRICS_NAMESPACE; a DLQ has no ApproximateNumberOfMessagesVisible alarm;
  a function has no Errors alarm; an alarm on a custom metric lacks the Service dimension the functions' EMF
  documents carry (shared/src/metrics.rs; without it the alarm never sees data) or names a metric no Rust
  `const … = "Name"` in shared/src declares;
- an AWS::Scheduler::Schedule has no ScheduleExpressionTimezone, FlexibleTimeWindow, RetryPolicy or
  DeadLetterConfig on a queue of this template (whose DLQ must have an alarm), a malformed expression, a State
  other than ENABLED/DISABLED, or a target/role that is not this template's function and a role allowing
  lambda:InvokeFunction on it and sqs:SendMessage to the DLQ; a schedule of the reconcile function has an Input
  that is not a reconciliation request (JSON object, a known `job`, only the fields the Rust side accepts);
- the reconcile function's environment (after Globals) is not exactly RECONCILE_ENV, the list the Rust side
  reads;
- an S3 bucket is not encrypted by default, does not block all public access, is not BucketOwnerEnforced, has
  no enabled expiration and abort-incomplete-multipart lifecycle rule, or no bucket policy denying non-TLS
  (aws:SecureTransport false);
- a dashboard body is not valid JSON once its !Sub variables are filled, names a resource or parameter the
  template does not have, or graphs a custom metric without the functions' namespace and Service dimension or
  under an undeclared name;
- a sample event events/reconcile-*.json is not a valid reconciliation request, or a job has no sample;
- an SNS topic has no KmsMasterKeyId; a topic an alarm notifies is not under a key of this template (KMS::Key with
  rotation) whose policy allows cloudwatch.amazonaws.com kms:Decrypt and kms:GenerateDataKey* (alarms cannot use
  the AWS-managed alias/aws/sns key and are lost silently);
- stock-push's CENTRA_MUTATIONS_PER_10S / CENTRA_MUTATIONS_PER_HOUR are not each a !Ref of a parameter, or the
  CentraRateLimited alarm's description does not name those parameters (it tells operators to lower them);
- an output has no Description, or the DLQ of a queue (a redrive source) has no output of its ARN.

Prints "template checks passed (N checks)" on success. Needs Python 3.11+ (tomllib) and PyYAML, which cfn-lint
installs (`pip install cfn-lint`). With --cfn-lint it also runs `cfn-lint` on the template.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import re
import shutil
import subprocess
import sys

try:
    import yaml
except ImportError:  # pragma: no cover - depends on the environment
    sys.stderr.write(
        "check-template.py needs PyYAML; it comes with cfn-lint: python3 -m pip install cfn-lint\n"
    )
    sys.exit(2)

try:
    import tomllib
except ImportError:  # Python < 3.11: the Cargo binary check is skipped.
    tomllib = None

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
RUNTIME = "provided.al2023"
# Every function's Architectures is [!Ref Architecture]; the parameter allows exactly these, arm64 by default.
ARCHITECTURE_PARAMETER = "Architecture"
ARCHITECTURES = ["arm64", "x86_64"]
BUILD_METHOD = "rust-cargolambda"
BATCH_FAILURES = "ReportBatchItemFailures"
MAX_RECEIVE_COUNT = 5
VISIBILITY_FACTOR = 6
SAM_DEFAULT_TIMEOUT = 3
SQS_DEFAULT_VISIBILITY = 30
FIFO_MAX_BATCH = 10

# The pusher's share of the Centra mutation budget comes from parameters (shared/src/config.rs reads these).
PUSHER_BINARY = "stock-push"
MUTATION_BUDGET_ENV = ("CENTRA_MUTATIONS_PER_10S", "CENTRA_MUTATIONS_PER_HOUR")

# Reconciliation (shared/src/recon/request.rs and wiring.rs; keep in step with them).
RECONCILE_BINARY = "reconcile"
RECON_JOBS = {"stock_drift", "availability", "sku_audit", "stalled_orders", "finance_close"}
# ReconRequest is `deny_unknown_fields`: any other key fails every invocation of the schedule.
RECON_REQUEST_FIELDS = {
    "job": str,
    "store": str,
    "since_minutes": int,
    "full": bool,
    "dry_run": bool,
    "apply_fixes": bool,
    "restart": bool,
}
# The reconcile function's environment after the Globals merge, exactly.
RECONCILE_ENV = {
    "RUST_LOG",
    "METRICS_NAMESPACE",
    "MAPPINGS_SSM_PARAMETER",
    "STOCK_TABLE",
    "STOCK_QUEUE_URL",
    "STOCK_PUSH_QUEUE_URL",
    "REPORTS_BUCKET",
    "ALERT_TOPIC_ARN",
    "CENTRA_API_URL",
    "CENTRA_API_TOKEN_SECRET_ARN",
    "CLOUDSHELF_API_URL",
    "CLOUDSHELF_API_KEY_SECRET_ARN",
    "RECON_PAGE_INTERVAL_MS",
    "ARCHIVE_GAP_QUEUE_URL",
}
SSE_ALGORITHMS = {"AES256", "aws:kms", "aws:kms:dsse"}
PUBLIC_ACCESS_BLOCK = ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets")
SCHEDULE_STATES = {"ENABLED", "DISABLED"}
SCHEDULE_EXPRESSION = re.compile(
    r"^(rate\(\d+ (minute|minutes|hour|hours|day|days)\)|cron\(([^ ()]+ ){5}[^ ()]+\)|at\(\S+\))$"
)
PSEUDO_PARAMETERS = {
    "AWS::AccountId", "AWS::NotificationARNs", "AWS::NoValue", "AWS::Partition", "AWS::Region",
    "AWS::StackId", "AWS::StackName", "AWS::URLSuffix",
}
DEFAULT_SERVICE_DIMENSION = "cloudshelf-centra"


# ─── YAML with CloudFormation short-form tags ──────────────────────────────────────────────────────────────────


class CfnLoader(yaml.SafeLoader):
    """SafeLoader that turns `!Ref x` into {"Ref": x}, `!GetAtt a.b` into {"Fn::GetAtt": [a, b]}, `!Sub ...` into
    {"Fn::Sub": ...} and so on, like CloudFormation's own long form."""


def _construct_cfn_tag(loader: CfnLoader, suffix: str, node: yaml.Node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "Condition":
        return {"Condition": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


CfnLoader.add_multi_constructor("!", _construct_cfn_tag)


def load_template(path: pathlib.Path) -> dict:
    with path.open(encoding="utf-8") as f:
        doc = yaml.load(f, Loader=CfnLoader)  # noqa: S506 - SafeLoader subclass
    if not isinstance(doc, dict) or not isinstance(doc.get("Resources"), dict):
        raise ValueError(f"{path}: not a CloudFormation template (no Resources)")
    return doc


# ─── helpers ───────────────────────────────────────────────────────────────────────────────────────────────────


def truthy(value) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def as_int(value):
    if isinstance(value, bool):
        return None
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def as_list(value) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def target_resource(value):
    """The logical id a `!Ref x` / `!GetAtt x.Arn` points to, else None."""
    if isinstance(value, dict):
        if "Ref" in value and isinstance(value["Ref"], str):
            return value["Ref"]
        if "Fn::GetAtt" in value:
            att = value["Fn::GetAtt"]
            if isinstance(att, str):
                att = att.split(".", 1)
            if isinstance(att, list) and att and isinstance(att[0], str):
                return att[0]
    return None


def display(value) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return repr(value)


class Checks:
    def __init__(self) -> None:
        self.count = 0
        self.failures: list[str] = []

    def expect(self, ok: bool, resource: str, setting: str, message: str) -> bool:
        self.count += 1
        if not ok:
            self.failures.append(f"{resource}: {setting}: {message}")
        return ok


# ─── the template model ────────────────────────────────────────────────────────────────────────────────────────


class Template:
    def __init__(self, doc: dict, path: pathlib.Path) -> None:
        self.doc = doc
        self.path = path
        self.resources: dict = doc["Resources"]
        self.function_globals: dict = ((doc.get("Globals") or {}).get("Function") or {})

    def of_type(self, *types: str):
        for name, res in self.resources.items():
            if isinstance(res, dict) and res.get("Type") in types:
                yield name, res

    def props(self, name: str) -> dict:
        return (self.resources.get(name) or {}).get("Properties") or {}

    def function_prop(self, name: str, key: str, default=None):
        """A function property after SAM's Globals merge (the function's own value wins)."""
        props = self.props(name)
        if key in props:
            return props[key]
        return self.function_globals.get(key, default)

    def function_env(self, name: str) -> dict:
        merged = dict(((self.function_globals.get("Environment") or {}).get("Variables")) or {})
        merged.update(((self.props(name).get("Environment") or {}).get("Variables")) or {})
        return merged

    def is_queue(self, name) -> bool:
        return name is not None and (self.resources.get(name) or {}).get("Type") == "AWS::SQS::Queue"

    def is_fifo(self, queue: str) -> bool:
        return truthy(self.props(queue).get("FifoQueue"))

    def redrive(self, queue: str):
        policy = self.props(queue).get("RedrivePolicy")
        if isinstance(policy, str):
            try:
                policy = json.loads(policy)
            except ValueError:
                return {"_unparsable": policy}
        return policy

    def sqs_triggers(self):
        """(function, trigger label, trigger properties, queue logical id or None) for every SQS trigger:
        SAM `Events: {Type: SQS}` and plain AWS::Lambda::EventSourceMapping resources."""
        for fn, res in self.of_type("AWS::Serverless::Function"):
            for event_name, event in ((res.get("Properties") or {}).get("Events") or {}).items():
                if isinstance(event, dict) and event.get("Type") == "SQS":
                    props = event.get("Properties") or {}
                    yield fn, f"{fn}.Events.{event_name}", props, target_resource(props.get("Queue"))
        for name, res in self.of_type("AWS::Lambda::EventSourceMapping"):
            props = res.get("Properties") or {}
            queue = target_resource(props.get("EventSourceArn"))
            if self.is_queue(queue):
                yield target_resource(props.get("FunctionName")), name, props, queue


# ─── checks ────────────────────────────────────────────────────────────────────────────────────────────────────


def cargo_binaries(workspace: pathlib.Path):
    """Binary target names of the Cargo project (workspace members included) at `workspace`, or None."""
    if tomllib is None:
        return None
    manifest = workspace / "Cargo.toml"
    if not manifest.is_file():
        return None
    root = tomllib.loads(manifest.read_text(encoding="utf-8"))
    dirs = [workspace]
    for pattern in (root.get("workspace") or {}).get("members") or []:
        dirs.extend(sorted(p for p in workspace.glob(pattern) if (p / "Cargo.toml").is_file()))
    names = set()
    for d in dirs:
        cargo = tomllib.loads((d / "Cargo.toml").read_text(encoding="utf-8"))
        package = cargo.get("package") or {}
        if package.get("name") and (d / "src" / "main.rs").is_file() and package.get("autobins", True):
            names.add(package["name"])
        for binary in cargo.get("bin") or []:
            if binary.get("name"):
                names.add(binary["name"])
        bin_dir = d / "src" / "bin"
        if bin_dir.is_dir() and package.get("autobins", True):
            names.update(p.stem for p in bin_dir.glob("*.rs"))
            names.update(p.name for p in bin_dir.iterdir() if (p / "main.rs").is_file())
    return names


def check_functions(t: Template, c: Checks) -> None:
    binaries_seen: dict[str, str] = {}
    for fn, res in t.of_type("AWS::Serverless::Function"):
        runtime = t.function_prop(fn, "Runtime")
        c.expect(runtime == RUNTIME, fn, "Runtime", f"is {display(runtime)}, must be {RUNTIME}")
        arch = t.function_prop(fn, "Architectures")
        c.expect(arch == [{"Ref": ARCHITECTURE_PARAMETER}], fn, "Architectures",
                 f"is {display(arch)}, must be [!Ref {ARCHITECTURE_PARAMETER}] (one choice for every function)")
        handler = t.function_prop(fn, "Handler")
        c.expect(handler == "bootstrap", fn, "Handler", f"is {display(handler)}, must be bootstrap")
        metadata = res.get("Metadata") or {}
        method = metadata.get("BuildMethod")
        c.expect(method == BUILD_METHOD, fn, "Metadata.BuildMethod", f"is {display(method)}, must be {BUILD_METHOD}")
        binary = (metadata.get("BuildProperties") or {}).get("Binary")
        if not c.expect(
            isinstance(binary, str) and binary.strip() != "",
            fn,
            "Metadata.BuildProperties.Binary",
            "missing: rust-cargolambda needs the binary to build when the workspace has several",
        ):
            continue
        c.expect(
            binary not in binaries_seen,
            fn,
            "Metadata.BuildProperties.Binary",
            f"{binary!r} is also built for {binaries_seen.get(binary)}",
        )
        binaries_seen.setdefault(binary, fn)
        code_uri = t.function_prop(fn, "CodeUri")
        if isinstance(code_uri, str) and not code_uri.startswith("s3://"):
            workspace = (t.path.parent / code_uri).resolve()
            known = cargo_binaries(workspace)
            if c.expect(known is not None or tomllib is None, fn, "CodeUri",
                        f"{code_uri!r} holds no Cargo.toml ({workspace})"):
                if known is not None:
                    c.expect(binary in known, fn, "Metadata.BuildProperties.Binary",
                             f"{binary!r} is not a binary of the Cargo workspace at {code_uri!r} "
                             f"(binaries: {', '.join(sorted(known)) or 'none'})")


def check_architecture_parameter(t: Template, c: Checks) -> None:
    param = (t.doc.get("Parameters") or {}).get(ARCHITECTURE_PARAMETER)
    if not c.expect(isinstance(param, dict), "Parameters", ARCHITECTURE_PARAMETER,
                    "missing: every function's Architectures comes from it"):
        return
    allowed = as_list(param.get("AllowedValues"))
    c.expect(sorted(allowed) == sorted(ARCHITECTURES), ARCHITECTURE_PARAMETER, "AllowedValues",
             f"is {display(allowed)}, must be exactly {ARCHITECTURES} (both build and deploy)")
    c.expect(param.get("Default") == ARCHITECTURES[0], ARCHITECTURE_PARAMETER, "Default",
             f"is {display(param.get('Default'))}, must be {ARCHITECTURES[0]}")


def reserved_concurrency_parameter(value):
    """The parameter a ReservedConcurrentExecutions comes from: `!Ref P`, or `!If [c, !Ref P, !Ref AWS::NoValue]`
    (reserving nothing when the condition is false); else None."""
    if isinstance(value, dict) and isinstance(value.get("Ref"), str):
        return value["Ref"]
    branches = value.get("Fn::If") if isinstance(value, dict) else None
    if isinstance(branches, list) and len(branches) == 3 and branches[2] == {"Ref": "AWS::NoValue"} \
            and isinstance(branches[1], dict) and isinstance(branches[1].get("Ref"), str):
        return branches[1]["Ref"]
    return None


def check_public_concurrency(t: Template, c: Checks) -> None:
    """A public endpoint's function reserves (and so caps) its concurrency: a flood, even of unsigned requests,
    must not take the account's concurrency from the queue consumers."""
    for fn, res in t.of_type("AWS::Serverless::Function"):
        events = ((res.get("Properties") or {}).get("Events") or {}).values()
        if not any(isinstance(e, dict) and e.get("Type") in ("HttpApi", "Api") for e in events):
            continue
        value = t.props(fn).get("ReservedConcurrentExecutions")
        name = reserved_concurrency_parameter(value)
        param = (t.doc.get("Parameters") or {}).get(name) if name else None
        c.expect(isinstance(param, dict) and param.get("Type") == "Number"
                 and (as_int(param.get("Default")) or 0) >= 1,
                 fn, "ReservedConcurrentExecutions",
                 f"is {display(value)}; a public endpoint's function needs it from a Number parameter with a "
                 "default of at least 1, so a flood cannot starve the queue consumers")


def check_triggers(t: Template, c: Checks) -> None:
    for fn, label, props, queue in t.sqs_triggers():
        types = as_list(props.get("FunctionResponseTypes"))
        c.expect(
            BATCH_FAILURES in types,
            label,
            "FunctionResponseTypes",
            f"is {display(props.get('FunctionResponseTypes'))}; without exactly {BATCH_FAILURES!r} Lambda ignores "
            "the failure list and deletes the whole batch",
        )
        if not c.expect(t.is_queue(queue), label, "Queue",
                        f"{display(props.get('Queue', props.get('EventSourceArn')))} is not a queue of this template"):
            continue
        c.expect(t.redrive(queue) is not None, queue, "RedrivePolicy",
                 f"missing: the queue triggers {fn}, and a message that keeps failing must park in a DLQ")
        timeout = as_int(t.function_prop(fn, "Timeout", SAM_DEFAULT_TIMEOUT)) if fn in t.resources else None
        visibility = as_int(t.props(queue).get("VisibilityTimeout", SQS_DEFAULT_VISIBILITY))
        if timeout is not None and visibility is not None:
            c.expect(
                visibility >= VISIBILITY_FACTOR * timeout,
                queue,
                "VisibilityTimeout",
                f"is {visibility} s, must be >= {VISIBILITY_FACTOR} x {fn} Timeout ({timeout} s) = "
                f"{VISIBILITY_FACTOR * timeout} s",
            )
        else:
            c.expect(False, queue, "VisibilityTimeout",
                     f"cannot compare {display(t.props(queue).get('VisibilityTimeout'))} with the Timeout of {fn}")
        batch = as_int(props.get("BatchSize", 10))
        window = props.get("MaximumBatchingWindowInSeconds")
        if t.is_fifo(queue):
            c.expect(window is None, label, "MaximumBatchingWindowInSeconds",
                     f"is {display(window)}; a FIFO queue trigger does not support a batching window")
            c.expect(batch is not None and batch <= FIFO_MAX_BATCH, label, "BatchSize",
                     f"is {display(props.get('BatchSize'))}; a FIFO queue trigger takes at most {FIFO_MAX_BATCH}")
        elif batch is not None and batch > 10:
            c.expect((as_int(window) or 0) >= 1, label, "MaximumBatchingWindowInSeconds",
                     f"is {display(window)}; a BatchSize above 10 needs a batching window of at least 1 s")


def check_queues(t: Template, c: Checks) -> set:
    dlqs = set()
    for queue, _ in t.of_type("AWS::SQS::Queue"):
        props = t.props(queue)
        fifo = t.is_fifo(queue)
        if fifo:
            scope = props.get("DeduplicationScope")
            limit = props.get("FifoThroughputLimit")
            high = (scope == "messageGroup", limit == "perMessageGroupId")
            c.expect(high[0] == high[1], queue, "DeduplicationScope/FifoThroughputLimit",
                     f"are {display(scope)}/{display(limit)}; high-throughput FIFO needs both messageGroup and "
                     "perMessageGroupId, one alone falls back to the normal limits")
            name = props.get("QueueName")
            if isinstance(name, str):
                c.expect(name.endswith(".fifo"), queue, "QueueName", f"{name!r} must end in .fifo")
        policy = t.redrive(queue)
        if policy is None:
            continue
        if not c.expect(isinstance(policy, dict) and "_unparsable" not in policy, queue, "RedrivePolicy",
                        f"cannot be read: {display(policy)}"):
            continue
        count = as_int(policy.get("maxReceiveCount"))
        c.expect(count == MAX_RECEIVE_COUNT, queue, "RedrivePolicy.maxReceiveCount",
                 f"is {display(policy.get('maxReceiveCount'))}, must be {MAX_RECEIVE_COUNT}")
        dlq = target_resource(policy.get("deadLetterTargetArn"))
        if not c.expect(t.is_queue(dlq), queue, "RedrivePolicy.deadLetterTargetArn",
                        f"{display(policy.get('deadLetterTargetArn'))} is not a queue of this template"):
            continue
        dlqs.add(dlq)
        if fifo:
            c.expect(t.is_fifo(dlq), queue, "RedrivePolicy.deadLetterTargetArn",
                     f"the DLQ {dlq} of this FIFO queue must be FIFO (FifoQueue: true)")
        else:
            c.expect(not t.is_fifo(dlq), queue, "RedrivePolicy.deadLetterTargetArn",
                     f"the DLQ {dlq} of this standard queue must be a standard queue")
    return dlqs


def check_tables(t: Template, c: Checks) -> None:
    for table, _ in t.of_type("AWS::DynamoDB::Table"):
        props = t.props(table)
        c.expect(props.get("BillingMode") == "PAY_PER_REQUEST", table, "BillingMode",
                 f"is {display(props.get('BillingMode'))}, must be PAY_PER_REQUEST")
        pitr = (props.get("PointInTimeRecoverySpecification") or {}).get("PointInTimeRecoveryEnabled")
        c.expect(truthy(pitr), table, "PointInTimeRecoverySpecification.PointInTimeRecoveryEnabled",
                 f"is {display(pitr)}, must be true")
        c.expect(truthy(props.get("DeletionProtectionEnabled")), table, "DeletionProtectionEnabled",
                 f"is {display(props.get('DeletionProtectionEnabled'))}, must be true (the ledger and idempotency "
                 "records cannot be rebuilt)")
    if c.expect("IdempotencyTable" in t.resources
                and t.resources["IdempotencyTable"].get("Type") == "AWS::DynamoDB::Table",
                "IdempotencyTable", "Type", "the template must define IdempotencyTable as AWS::DynamoDB::Table"):
        ttl = t.props("IdempotencyTable").get("TimeToLiveSpecification") or {}
        c.expect(ttl.get("AttributeName") == "expiration" and truthy(ttl.get("Enabled")), "IdempotencyTable",
                 "TimeToLiveSpecification", f"is {display(ttl)}, must enable TTL on 'expiration'")


def iam_statements(t: Template):
    """(owner, statement) for every inline policy statement of the template."""

    def from_document(owner, document):
        if isinstance(document, dict):
            for statement in as_list(document.get("Statement")):
                if isinstance(statement, dict):
                    yield owner, statement

    for fn, _ in t.of_type("AWS::Serverless::Function", "AWS::Serverless::StateMachine"):
        for i, policy in enumerate(as_list(t.props(fn).get("Policies"))):
            yield from from_document(f"{fn}.Policies[{i}]", policy)
    for name, _ in t.of_type("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        yield from from_document(f"{name}.PolicyDocument", t.props(name).get("PolicyDocument"))
    for name, _ in t.of_type("AWS::IAM::Role", "AWS::IAM::User", "AWS::IAM::Group"):
        for i, policy in enumerate(as_list(t.props(name).get("Policies"))):
            if isinstance(policy, dict):
                yield from from_document(f"{name}.Policies[{i}]", policy.get("PolicyDocument"))


def check_iam(t: Template, c: Checks) -> None:
    for owner, statement in iam_statements(t):
        if statement.get("Effect", "Allow") != "Allow":
            continue
        actions = [a for a in as_list(statement.get("Action")) if isinstance(a, str)]
        broad = [a for a in actions if a == "*" or a.lower().startswith(("dynamodb:", "sqs:"))]
        resources = as_list(statement.get("Resource"))
        where = owner + (f" ({statement['Sid']})" if statement.get("Sid") else "")
        c.expect(not (broad and "*" in resources), where, "Resource",
                 f'"*" with {", ".join(broad)}: scope it to the table or queue ARN')


def check_environment(t: Template, c: Checks) -> str | None:
    namespace = None
    for fn, _ in t.of_type("AWS::Serverless::Function"):
        env = t.function_env(fn)
        namespace = namespace or env.get("METRICS_NAMESPACE")
        if "PUSH_LEASE_SECONDS" in env:
            lease = as_int(env["PUSH_LEASE_SECONDS"])
            timeout = as_int(t.function_prop(fn, "Timeout", SAM_DEFAULT_TIMEOUT))
            c.expect(lease is not None and timeout is not None and lease > timeout, fn,
                     "Environment.PUSH_LEASE_SECONDS",
                     f"is {display(env['PUSH_LEASE_SECONDS'])}; must exceed the function Timeout ({timeout} s) so a "
                     "crashed push's Centra call is over before another instance takes its keys")
    return namespace


def check_alarms(t: Template, c: Checks, dlqs: set, namespace: str | None, facts: RustFacts) -> None:
    dlq_alarmed = set()
    errors_alarmed = set()
    for alarm, _ in t.of_type("AWS::CloudWatch::Alarm"):
        props = t.props(alarm)
        c.expect(props.get("TreatMissingData") == "notBreaching", alarm, "TreatMissingData",
                 f"is {display(props.get('TreatMissingData'))}, must be notBreaching")
        c.expect(bool(as_list(props.get("AlarmActions"))), alarm, "AlarmActions", "missing: nobody would be told")
        c.expect(bool(as_list(props.get("OKActions"))), alarm, "OKActions",
                 "missing: nobody would be told the alarm cleared")
        ns = props.get("Namespace")
        dims = {d.get("Name"): d.get("Value") for d in as_list(props.get("Dimensions")) if isinstance(d, dict)}
        if isinstance(ns, str) and not ns.startswith("AWS/") and namespace is not None:
            c.expect(ns == namespace, alarm, "Namespace",
                     f"is {ns!r} but the functions publish to METRICS_NAMESPACE {namespace!r}")
        if isinstance(ns, str) and not ns.startswith("AWS/"):
            check_custom_metric(c, alarm, ns, facts, props.get("MetricName"), dims)
        if ns == "AWS/SQS" and props.get("MetricName") == "ApproximateNumberOfMessagesVisible":
            dlq_alarmed.add(target_resource(dims.get("QueueName")))
        if ns == "AWS/Lambda" and props.get("MetricName") == "Errors":
            errors_alarmed.add(target_resource(dims.get("FunctionName")))
    for dlq in sorted(dlqs):
        c.expect(dlq in dlq_alarmed, dlq, "alarm",
                 "no ApproximateNumberOfMessagesVisible alarm: a parked message would go unnoticed")
    for fn, _ in t.of_type("AWS::Serverless::Function"):
        c.expect(fn in errors_alarmed, fn, "alarm", "no AWS/Lambda Errors alarm on this function")


# ─── what the Rust side declares ───────────────────────────────────────────────────────────────────────────────


class RustFacts:
    """Metric names (every `const NAME: &str = "PascalCase"` under shared/src) and the EMF Service dimension
    (shared/src/metrics.rs). `metric_names` is None when the sources are not there (the name check is skipped)."""

    def __init__(self, root: pathlib.Path) -> None:
        self.metric_names: set | None = None
        self.service = DEFAULT_SERVICE_DIMENSION
        src = root / "shared" / "src"
        if not src.is_dir():
            return
        const = re.compile(r'const\s+[A-Z0-9_]+\s*:\s*&str\s*=\s*"([A-Z][A-Za-z0-9]*)"')
        names = set()
        for path in src.rglob("*.rs"):
            names.update(const.findall(path.read_text(encoding="utf-8", errors="replace")))
        self.metric_names = names
        metrics = src / "metrics.rs"
        if metrics.is_file():
            m = re.search(r'SERVICE_DIMENSION\s*:\s*&str\s*=\s*"([^"]+)"', metrics.read_text(encoding="utf-8"))
            if m:
                self.service = m.group(1)


def check_custom_metric(c: Checks, where: str, namespace: str | None, facts: RustFacts, metric, dims: dict) -> None:
    """A custom-namespace metric (alarm or dashboard) must carry the Service dimension, exactly, and a name the
    code declares: CloudWatch matches metrics on the full dimension set, so a different set sees no data."""
    c.expect(dims == {"Service": facts.service}, where, "Dimensions",
             f"are {display(dims)}; the functions' EMF metrics carry exactly Service = {facts.service!r} "
             "(shared/src/metrics.rs), any other set sees no data")
    if facts.metric_names is not None:
        c.expect(metric in facts.metric_names, where, "MetricName",
                 f"{metric!r} is not a metric name declared in shared/src (a `const … = \"{metric}\"`)")


# ─── reconciliation, schedules, buckets, dashboards ───────────────────────────────────────────────────────────


def recon_request_problems(value) -> list[str]:
    """Why `value` (a parsed scheduled event) is not a request the reconcile function accepts; [] if it is."""
    if not isinstance(value, dict):
        return [f"is {display(value)}, not a JSON object"]
    problems = []
    job = value.get("job")
    if job not in RECON_JOBS:
        problems.append(f"job {display(job)} is not one of {', '.join(sorted(RECON_JOBS))}")
    for key, v in value.items():
        kind = RECON_REQUEST_FIELDS.get(key)
        if kind is None:
            problems.append(f"unknown field {key!r} (the request denies unknown fields: every invocation would fail)")
        elif kind is int and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            problems.append(f"{key} is {display(v)}, must be a whole number >= 1")
        elif kind is not int and not isinstance(v, kind):
            problems.append(f"{key} is {display(v)}, must be a {kind.__name__}")
    return problems


def reconcile_function(t: Template):
    for fn, res in t.of_type("AWS::Serverless::Function"):
        if ((res.get("Metadata") or {}).get("BuildProperties") or {}).get("Binary") == RECONCILE_BINARY:
            return fn
    return None


def check_reconcile_environment(t: Template, c: Checks) -> None:
    fn = reconcile_function(t)
    if not c.expect(fn is not None, "template", "ReconcileFunction",
                    f"no function builds the {RECONCILE_BINARY!r} binary"):
        return
    env = set(t.function_env(fn))
    missing = sorted(RECONCILE_ENV - env)
    extra = sorted(env - RECONCILE_ENV)
    c.expect(not missing and not extra, fn, "Environment.Variables",
             f"differs from the list the Rust side reads: missing {missing or 'none'}, unexpected {extra or 'none'}")


def role_allows(t: Template, role: str, action: str, resource: str) -> bool:
    """Whether an Allow statement of `role`'s inline policies grants `action` on the template resource
    `resource` (by !Ref / !GetAtt)."""
    for i, policy in enumerate(as_list(t.props(role).get("Policies"))):
        if not isinstance(policy, dict):
            continue
        for statement in as_list((policy.get("PolicyDocument") or {}).get("Statement")):
            if not isinstance(statement, dict) or statement.get("Effect", "Allow") != "Allow":
                continue
            if action in as_list(statement.get("Action")) and resource in {
                target_resource(r) for r in as_list(statement.get("Resource"))
            }:
                return True
    return False


def parameter_values(t: Template, value):
    """The values `value` can take: itself, or a !Ref'd parameter's AllowedValues (its Default without)."""
    if isinstance(value, dict) and "Ref" in value:
        param = (t.doc.get("Parameters") or {}).get(value["Ref"])
        if not isinstance(param, dict):
            return None
        allowed = param.get("AllowedValues")
        return list(allowed) if allowed else [param.get("Default")]
    return [value]


def check_schedules(t: Template, c: Checks) -> set:
    dlqs = set()
    recon = reconcile_function(t)
    for name, _ in t.of_type("AWS::Scheduler::Schedule"):
        props = t.props(name)
        c.expect(bool(props.get("ScheduleExpressionTimezone")), name, "ScheduleExpressionTimezone",
                 "missing: a cron() schedule would run in UTC (set it on every schedule, e.g. !Ref ScheduleTimezone)")
        expression = props.get("ScheduleExpression")
        if isinstance(expression, str):
            c.expect(bool(SCHEDULE_EXPRESSION.match(expression)), name, "ScheduleExpression",
                     f"{expression!r} is not rate(N unit), cron(6 fields) or at(...)")
        c.expect(bool((props.get("FlexibleTimeWindow") or {}).get("Mode")), name, "FlexibleTimeWindow.Mode",
                 "missing (required; OFF runs on the tick)")
        states = parameter_values(t, props.get("State", "ENABLED"))
        c.expect(states is not None and set(states) <= SCHEDULE_STATES, name, "State",
                 f"{display(props.get('State'))} can be {display(states)}, must be one of ENABLED/DISABLED")
        target = props.get("Target") or {}
        c.expect(bool(target.get("RetryPolicy")), name, "Target.RetryPolicy",
                 "missing: a throttled invocation would be retried for 24 h, past the next tick")
        dlq = target_resource((target.get("DeadLetterConfig") or {}).get("Arn"))
        has_dlq = c.expect(t.is_queue(dlq), name, "Target.DeadLetterConfig.Arn",
                           f"{display(target.get('DeadLetterConfig'))}: must be a queue of this template, or an "
                           "undeliverable invocation is dropped silently")
        if has_dlq:
            dlqs.add(dlq)
        fn = target_resource(target.get("Arn"))
        is_fn = c.expect(fn in t.resources and t.resources[fn].get("Type") in
                         ("AWS::Serverless::Function", "AWS::Lambda::Function"),
                         name, "Target.Arn", f"{display(target.get('Arn'))} is not a function of this template")
        role = target_resource(target.get("RoleArn"))
        if c.expect(role in t.resources and t.resources[role].get("Type") == "AWS::IAM::Role", name,
                    "Target.RoleArn", f"{display(target.get('RoleArn'))} is not a role of this template"):
            trust = json.dumps(t.props(role).get("AssumeRolePolicyDocument"))
            c.expect("scheduler.amazonaws.com" in trust, role, "AssumeRolePolicyDocument",
                     "must let scheduler.amazonaws.com assume the role")
            if is_fn:
                c.expect(role_allows(t, role, "lambda:InvokeFunction", fn), role, "Policies",
                         f"no statement allows lambda:InvokeFunction on {fn} (the target of {name})")
            if has_dlq:
                c.expect(role_allows(t, role, "sqs:SendMessage", dlq), role, "Policies",
                         f"no statement allows sqs:SendMessage on {dlq} (the DLQ of {name})")
        if is_fn and fn == recon:
            raw = target.get("Input")
            try:
                problems = recon_request_problems(json.loads(raw)) if isinstance(raw, str) else [
                    f"is {display(raw)}, must be a JSON string"]
            except ValueError as e:
                problems = [f"is not JSON: {e}"]
            c.expect(not problems, name, "Target.Input", "; ".join(problems))
    return dlqs


def check_sample_events(root: pathlib.Path, c: Checks) -> None:
    events = root / "events"
    if not events.is_dir():
        return
    jobs_seen = set()
    for path in sorted(events.glob("reconcile-*.json")):
        label = f"events/{path.name}"
        try:
            value = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as e:
            c.expect(False, label, "JSON", f"does not parse: {e}")
            continue
        problems = recon_request_problems(value)
        if c.expect(not problems, label, "request", "; ".join(problems)):
            jobs_seen.add(value["job"])
    for job in sorted(RECON_JOBS - jobs_seen):
        c.expect(False, "events", "reconcile-*.json", f"no sample event for the {job!r} job")


def check_buckets(t: Template, c: Checks) -> None:
    tls_denied = set()
    for name, _ in t.of_type("AWS::S3::BucketPolicy"):
        props = t.props(name)
        for statement in as_list((props.get("PolicyDocument") or {}).get("Statement")):
            if (isinstance(statement, dict) and statement.get("Effect") == "Deny"
                    and str(((statement.get("Condition") or {}).get("Bool") or {})
                            .get("aws:SecureTransport")).lower() == "false"):
                tls_denied.add(target_resource(props.get("Bucket")))
    for bucket, _ in t.of_type("AWS::S3::Bucket"):
        props = t.props(bucket)
        rules = as_list((props.get("BucketEncryption") or {}).get("ServerSideEncryptionConfiguration"))
        algorithms = [((r or {}).get("ServerSideEncryptionByDefault") or {}).get("SSEAlgorithm") for r in rules]
        c.expect(bool(algorithms) and all(a in SSE_ALGORITHMS for a in algorithms), bucket,
                 "BucketEncryption", f"default encryption is {display(algorithms)}, must be one of "
                 f"{', '.join(sorted(SSE_ALGORITHMS))}")
        block = props.get("PublicAccessBlockConfiguration") or {}
        open_settings = [k for k in PUBLIC_ACCESS_BLOCK if not truthy(block.get(k))]
        c.expect(not open_settings, bucket, "PublicAccessBlockConfiguration",
                 f"{', '.join(open_settings)} must be true")
        ownership = [(r or {}).get("ObjectOwnership") for r in
                     as_list((props.get("OwnershipControls") or {}).get("Rules"))]
        c.expect(ownership == ["BucketOwnerEnforced"], bucket, "OwnershipControls",
                 f"is {display(ownership)}, must be BucketOwnerEnforced (ACLs off)")
        lifecycle = [r for r in as_list((props.get("LifecycleConfiguration") or {}).get("Rules"))
                     if isinstance(r, dict) and r.get("Status") == "Enabled"]
        c.expect(any("ExpirationInDays" in r or "ExpirationDate" in r for r in lifecycle), bucket,
                 "LifecycleConfiguration", "no enabled rule expires objects: reports would be kept forever")
        c.expect(any("AbortIncompleteMultipartUpload" in r for r in lifecycle), bucket, "LifecycleConfiguration",
                 "no enabled AbortIncompleteMultipartUpload rule")
        c.expect(bucket in tls_denied, bucket, "BucketPolicy",
                 "no bucket policy denies requests with aws:SecureTransport false")


_SUB_VAR = re.compile(r"\$\{(!?)([^}]*)\}")


def fill_sub(t: Template, where: str, c: Checks, value) -> str | None:
    """The text of an Fn::Sub with every ${Var} replaced by a placeholder; each Var must be a parameter, a
    resource (or resource.Attribute), a pseudo parameter or a variable of the Sub's own map."""
    if not isinstance(value, dict) or "Fn::Sub" not in value:
        return value if isinstance(value, str) else None
    sub = value["Fn::Sub"]
    local = {}
    if isinstance(sub, list):
        sub, local = sub[0], (sub[1] if len(sub) > 1 and isinstance(sub[1], dict) else {})
    if not isinstance(sub, str):
        return None
    known = set(t.resources) | set(t.doc.get("Parameters") or {}) | PSEUDO_PARAMETERS | set(local)

    def replace(match):
        if match.group(1):  # ${!Literal}
            return "${" + match.group(2) + "}"
        var = match.group(2)
        c.expect(var in known or var.split(".", 1)[0] in t.resources, where, "Fn::Sub",
                 f"${{{var}}} is not a parameter, resource or pseudo parameter of this template")
        return "SUB-" + re.sub(r"[^A-Za-z0-9]", "-", var)

    return _SUB_VAR.sub(replace, sub)


def check_dashboards(t: Template, c: Checks, namespace: str | None, facts: RustFacts) -> None:
    for name, _ in t.of_type("AWS::CloudWatch::Dashboard"):
        text = fill_sub(t, name, c, t.props(name).get("DashboardBody"))
        if not c.expect(isinstance(text, str), name, "DashboardBody", "must be a string or an !Sub of one"):
            continue
        try:
            body = json.loads(text)
        except ValueError as e:
            c.expect(False, name, "DashboardBody", f"is not valid JSON once substituted: {e}")
            continue
        for i, widget in enumerate(as_list(body.get("widgets") if isinstance(body, dict) else None)):
            props = (widget or {}).get("properties") or {}
            if (widget or {}).get("type") != "metric":
                continue
            where = f"{name}.widgets[{i}] ({props.get('title', '?')})"
            c.expect(bool(props.get("region")), where, "region", "missing (required for metric widgets)")
            previous = None
            for metric in as_list(props.get("metrics")):
                if not isinstance(metric, list) or not metric or isinstance(metric[0], dict):
                    continue  # math expressions
                fields = [f for f in metric if not isinstance(f, dict)]
                # "." repeats the previous metric's field at that position.
                if previous is not None:
                    fields = [previous[k] if f == "." and k < len(previous) else f for k, f in enumerate(fields)]
                previous = fields
                if len(fields) < 2 or len(fields) % 2:
                    c.expect(False, where, "metrics", f"{display(metric)} is not [namespace, name, dim, value…]")
                    continue
                ns, metric_name = fields[0], fields[1]
                dims = dict(zip(fields[2::2], fields[3::2]))
                if isinstance(ns, str) and not ns.startswith("AWS/"):
                    if namespace is not None:
                        c.expect(ns == namespace, where, "metrics",
                                 f"namespace {ns!r} is not the functions' METRICS_NAMESPACE {namespace!r}")
                    check_custom_metric(c, f"{where} {metric_name}", ns, facts, metric_name, dims)


def statement_allows(statement: dict, actions: list[str]) -> bool:
    """Whether an Allow statement's Action list covers every one of `actions` (IAM wildcards)."""
    granted = [a for a in as_list(statement.get("Action")) if isinstance(a, str)]

    def covers(pattern: str, action: str) -> bool:
        regex = "^" + re.escape(pattern.lower()).replace(r"\*", ".*").replace(r"\?", ".") + "$"
        return re.match(regex, action.lower()) is not None

    return statement.get("Effect") == "Allow" and all(any(covers(g, a) for g in granted) for a in actions)


def check_topics(t: Template, c: Checks) -> None:
    notified = set()
    for alarm, _ in t.of_type("AWS::CloudWatch::Alarm"):
        props = t.props(alarm)
        notified |= {target_resource(a) for a in as_list(props.get("AlarmActions")) + as_list(props.get("OKActions"))}
    for topic, _ in t.of_type("AWS::SNS::Topic"):
        key = t.props(topic).get("KmsMasterKeyId")
        if not c.expect(bool(key), topic, "KmsMasterKeyId",
                        "missing: encrypt the topic at rest like the tables, queues and bucket (alias/aws/sns, or a "
                        "key of this template if a service publishes to it)"):
            continue
        if topic not in notified:
            continue
        key_res = target_resource(key)
        is_key = key_res in t.resources and t.resources[key_res].get("Type") == "AWS::KMS::Key"
        if not c.expect(is_key, topic, "KmsMasterKeyId",
                        f"is {display(key)}; alarms notify this topic, and CloudWatch can only publish under a key "
                        "whose policy admits cloudwatch.amazonaws.com: an AWS::KMS::Key of this template"):
            continue
        kprops = t.props(key_res)
        c.expect(truthy(kprops.get("EnableKeyRotation")), key_res, "EnableKeyRotation", "must be true")
        statements = as_list((kprops.get("KeyPolicy") or {}).get("Statement"))
        c.expect(any(isinstance(s, dict) and "cloudwatch.amazonaws.com" in
                     as_list((s.get("Principal") or {}).get("Service"))
                     and statement_allows(s, ["kms:Decrypt", "kms:GenerateDataKey"]) for s in statements),
                 key_res, "KeyPolicy",
                 f"no statement allows cloudwatch.amazonaws.com kms:Decrypt and kms:GenerateDataKey*: the alarms of "
                 f"{topic} would be lost")


def pusher_function(t: Template):
    for fn, res in t.of_type("AWS::Serverless::Function"):
        if ((res.get("Metadata") or {}).get("BuildProperties") or {}).get("Binary") == PUSHER_BINARY:
            return fn
    return None


def check_mutation_budget(t: Template, c: Checks) -> None:
    fn = pusher_function(t)
    if not c.expect(fn is not None, "template", "StockPushFunction", f"no function builds {PUSHER_BINARY!r}"):
        return
    env = t.function_env(fn)
    params = []
    for var in MUTATION_BUDGET_ENV:
        value = env.get(var)
        name = value.get("Ref") if isinstance(value, dict) else None
        if c.expect(isinstance(name, str) and name in (t.doc.get("Parameters") or {}), fn,
                    f"Environment.{var}",
                    f"is {display(value)}, must be !Ref a parameter: operators lower the budget at deploy time"):
            params.append(name)
    for alarm, _ in t.of_type("AWS::CloudWatch::Alarm"):
        props = t.props(alarm)
        if props.get("MetricName") != "CentraRateLimited":
            continue
        text = str(props.get("AlarmDescription") or "")
        for name in params:
            c.expect(name in text, alarm, "AlarmDescription",
                     f"does not name the {name} parameter it asks operators to lower")


def check_outputs(t: Template, c: Checks, redrive_dlqs: set) -> None:
    outputs = t.doc.get("Outputs") or {}
    arns = set()
    for name, output in outputs.items():
        output = output or {}
        c.expect(isinstance(output.get("Description"), str) and output["Description"].strip() != "", name,
                 "Description", "missing: say what the output is for")
        value = output.get("Value")
        if isinstance(value, dict) and "Fn::GetAtt" in value:
            att = value["Fn::GetAtt"]
            att = att.split(".", 1) if isinstance(att, str) else att
            if isinstance(att, list) and len(att) == 2 and att[1] == "Arn":
                arns.add(att[0])
    for dlq in sorted(redrive_dlqs):
        c.expect(dlq in arns, dlq, "Outputs",
                 "no output of this DLQ's ARN (the source of `aws sqs start-message-move-task` for a redrive)")


def run_cfn_lint(path: pathlib.Path) -> int:
    # The cfn-lint installed with this interpreter first (scripts/test.sh runs the pinned one in .venv), else
    # whatever PATH has.
    beside = pathlib.Path(sys.executable).parent / "cfn-lint"
    exe = str(beside) if beside.is_file() else shutil.which("cfn-lint")
    if exe is None:
        print("cfn-lint not found on PATH (python3 -m pip install cfn-lint)", file=sys.stderr)
        return 2
    result = subprocess.run([exe, "--", str(path)], check=False)
    if result.returncode == 0:
        print(f"cfn-lint passed ({path.name})")
    return result.returncode


def run_checks(template: Template) -> Checks:
    checks = Checks()
    root = template.path.resolve().parent
    check_functions(template, checks)
    check_architecture_parameter(template, checks)
    check_public_concurrency(template, checks)
    check_triggers(template, checks)
    redrive_dlqs = check_queues(template, checks)
    check_tables(template, checks)
    check_iam(template, checks)
    namespace = check_environment(template, checks)
    check_reconcile_environment(template, checks)
    check_mutation_budget(template, checks)
    dlqs = redrive_dlqs | check_schedules(template, checks)
    check_buckets(template, checks)
    facts = RustFacts(root)
    check_alarms(template, checks, dlqs, namespace, facts)
    check_topics(template, checks)
    check_outputs(template, checks, redrive_dlqs)
    check_dashboards(template, checks, namespace, facts)
    check_sample_events(root, checks)
    return checks


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("template", nargs="?", default=str(REPO_ROOT / "template.yaml"))
    parser.add_argument("--cfn-lint", action="store_true", help="also run cfn-lint on the template")
    args = parser.parse_args(argv)
    path = pathlib.Path(args.template)
    try:
        template = Template(load_template(path), path)
    except (OSError, ValueError, yaml.YAMLError) as e:
        print(f"template checks failed: cannot read {path}: {e}", file=sys.stderr)
        return 1

    checks = run_checks(template)

    status = 0
    if checks.failures:
        for failure in checks.failures:
            print(f"FAIL {failure}", file=sys.stderr)
        print(f"template checks failed: {len(checks.failures)} of {checks.count} checks", file=sys.stderr)
        status = 1
    else:
        print(f"template checks passed ({checks.count} checks)")
    if args.cfn_lint:
        lint = run_cfn_lint(path)
        status = status or (1 if lint else 0)
    return status


if __name__ == "__main__":
    sys.exit(main())
