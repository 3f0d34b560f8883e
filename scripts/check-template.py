#!/usr/bin/env python3
"""Project checks of the SAM template: the settings that matter here and that cfn-lint does not catch.

    python3 scripts/check-template.py [template.yaml] [--cfn-lint]

cfn-lint accepts a misspelt `ReportBatchItemFailures`, a wrong runtime name or a visibility timeout shorter than the
function's, and each of those loses or delays stock silently. This script fails (exit 1) naming the resource and the
setting when:

- a function is not provided.al2023 / arm64 / Handler bootstrap / BuildMethod rust-cargolambda with a Binary that
  is a binary target of the Cargo workspace at its CodeUri (and unique across functions);
- an SQS trigger lacks FunctionResponseTypes [ReportBatchItemFailures] (exact spelling), does not name a queue of
  this template, or its queue has no RedrivePolicy (failed messages must park in a DLQ, not expire);
- a queue's VisibilityTimeout is less than 6 × the Timeout of a function it triggers;
- a FIFO trigger sets MaximumBatchingWindowInSeconds or a BatchSize above 10; a standard-queue trigger with a
  BatchSize above 10 has no batching window (AWS requires one);
- a queue with a RedrivePolicy has a maxReceiveCount other than 5, or a DLQ that is not a queue of this template
  or not of the same type (a FIFO queue needs a FIFO DLQ, a standard queue a standard one);
- a FIFO queue sets only one of the two high-throughput settings (DeduplicationScope messageGroup,
  FifoThroughputLimit perMessageGroupId), which silently falls back to the normal limits;
- a DynamoDB table is not PAY_PER_REQUEST or has no point-in-time recovery; the IdempotencyTable has no TTL on
  `expiration`;
- an IAM statement grants a dynamodb/sqs action (or `*`) on Resource "*";
- PUSH_LEASE_SECONDS is not above the Timeout of the function it configures;
- an alarm does not notify (AlarmActions) or does not treat missing data as notBreaching; an alarm on a custom
  namespace does not use the functions' METRICS_NAMESPACE; a DLQ has no ApproximateNumberOfMessagesVisible alarm;
  a function has no Errors alarm.

Prints "template checks passed (N checks)" on success. Needs Python 3.11+ (tomllib) and PyYAML, which cfn-lint
installs (`pip install cfn-lint`). With --cfn-lint it also runs `cfn-lint` on the template.
"""

from __future__ import annotations

import argparse
import json
import pathlib
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
ARCHITECTURES = ["arm64"]
BUILD_METHOD = "rust-cargolambda"
BATCH_FAILURES = "ReportBatchItemFailures"
MAX_RECEIVE_COUNT = 5
VISIBILITY_FACTOR = 6
SAM_DEFAULT_TIMEOUT = 3
SQS_DEFAULT_VISIBILITY = 30
FIFO_MAX_BATCH = 10


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
        c.expect(arch == ARCHITECTURES, fn, "Architectures", f"is {display(arch)}, must be {ARCHITECTURES}")
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


def check_alarms(t: Template, c: Checks, dlqs: set, namespace: str | None) -> None:
    dlq_alarmed = set()
    errors_alarmed = set()
    for alarm, _ in t.of_type("AWS::CloudWatch::Alarm"):
        props = t.props(alarm)
        c.expect(props.get("TreatMissingData") == "notBreaching", alarm, "TreatMissingData",
                 f"is {display(props.get('TreatMissingData'))}, must be notBreaching")
        c.expect(bool(as_list(props.get("AlarmActions"))), alarm, "AlarmActions", "missing: nobody would be told")
        ns = props.get("Namespace")
        dims = {d.get("Name"): d.get("Value") for d in as_list(props.get("Dimensions")) if isinstance(d, dict)}
        if isinstance(ns, str) and not ns.startswith("AWS/") and namespace is not None:
            c.expect(ns == namespace, alarm, "Namespace",
                     f"is {ns!r} but the functions publish to METRICS_NAMESPACE {namespace!r}")
        if ns == "AWS/SQS" and props.get("MetricName") == "ApproximateNumberOfMessagesVisible":
            dlq_alarmed.add(target_resource(dims.get("QueueName")))
        if ns == "AWS/Lambda" and props.get("MetricName") == "Errors":
            errors_alarmed.add(target_resource(dims.get("FunctionName")))
    for dlq in sorted(dlqs):
        c.expect(dlq in dlq_alarmed, dlq, "alarm",
                 "no ApproximateNumberOfMessagesVisible alarm: a parked message would go unnoticed")
    for fn, _ in t.of_type("AWS::Serverless::Function"):
        c.expect(fn in errors_alarmed, fn, "alarm", "no AWS/Lambda Errors alarm on this function")


def run_cfn_lint(path: pathlib.Path) -> int:
    exe = shutil.which("cfn-lint")
    if exe is None:
        print("cfn-lint not found on PATH (python3 -m pip install cfn-lint)", file=sys.stderr)
        return 2
    result = subprocess.run([exe, "--", str(path)], check=False)
    if result.returncode == 0:
        print(f"cfn-lint passed ({path.name})")
    return result.returncode


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

    checks = Checks()
    check_functions(template, checks)
    check_triggers(template, checks)
    dlqs = check_queues(template, checks)
    check_tables(template, checks)
    check_iam(template, checks)
    namespace = check_environment(template, checks)
    check_alarms(template, checks, dlqs, namespace)

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
