#!/usr/bin/env python3
"""Each function's deployed role and environment, as the SAM translator turns template.yaml into CloudFormation.

    python3 scripts/template-roles.py [template.yaml] [-o out.json]

The AWS flow tests (shared/tests/deployed/) run every function under the permissions this file lists and with
exactly this environment: scripts/test.sh writes it and passes its path in TEMPLATE_ROLES_JSON. Written per
function, keyed by its binary (Metadata.BuildProperties.Binary):

    {"functions": {"order-sync": {"logical_id": "OrderSyncFunction", "role": "OrderSyncFunctionRole",
                                  "environment": {"STOCK_TABLE": {"Ref": "StockTable"}, ...},
                                  "policies": [{"source": "...", "statements": [...]}, ...]}, ...},
     "parameters": {...}, "resources": {"StockTable": {"Type": "AWS::DynamoDB::Table", "Properties": {...}}, ...}}

Intrinsics (Ref, Fn::GetAtt, Fn::Sub, Fn::Join) are kept as CloudFormation JSON; the tests resolve them against
the resources they create. The AWS-managed policies SAM attaches are expanded from KNOWN_MANAGED_POLICIES; any
other managed policy, or a role this script cannot see into, is an error rather than a silent gap.

Needs aws-sam-translator (pinned in scripts/test.sh) and boto3 (only for the translator's region lookup).
"""

from __future__ import annotations

import argparse
import copy
import json
import pathlib
import sys

import boto3
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator
from samtranslator.yaml_helper import yaml_parse

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
# Only the translator's own region lookup needs one; intrinsics in policies and environments stay unresolved.
TRANSLATION_REGION = "eu-west-1"

# The statements of the AWS-managed policies SAM attaches to function roles (basic execution, X-Ray tracing,
# SQS event sources), as AWS publishes them. They matter: a call only these allow is still allowed.
KNOWN_MANAGED_POLICIES = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole": [
        {
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": "*",
        }
    ],
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess": [
        {
            "Effect": "Allow",
            "Action": [
                "xray:PutTraceSegments",
                "xray:PutTelemetryRecords",
                "xray:GetSamplingRules",
                "xray:GetSamplingTargets",
                "xray:GetSamplingStatisticSummaries",
            ],
            "Resource": ["*"],
        }
    ],
    # What SAM attaches for a DynamoDB stream event source (the stream is read by Lambda with the role).
    "arn:aws:iam::aws:policy/service-role/AWSLambdaDynamoDBExecutionRole": [
        {
            "Effect": "Allow",
            "Action": [
                "dynamodb:DescribeStream",
                "dynamodb:GetRecords",
                "dynamodb:GetShardIterator",
                "dynamodb:ListStreams",
                "logs:CreateLogGroup",
                "logs:CreateLogStream",
                "logs:PutLogEvents",
            ],
            "Resource": "*",
        }
    ],
    "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole": [
        {
            "Effect": "Allow",
            "Action": [
                "sqs:ReceiveMessage",
                "sqs:DeleteMessage",
                "sqs:GetQueueAttributes",
                "logs:CreateLogGroup",
                "logs:CreateLogStream",
                "logs:PutLogEvents",
            ],
            "Resource": "*",
        }
    ],
}


class RolesError(Exception):
    pass


def translate(path: pathlib.Path) -> tuple[dict, dict]:
    """(the SAM template, its CloudFormation translation)."""
    sam = yaml_parse(path.read_text(encoding="utf-8"))
    packaged = copy.deepcopy(sam)
    for resource in packaged.get("Resources", {}).values():
        # What `sam package` does before the transform: local code becomes an S3 object.
        if resource.get("Type") == "AWS::Serverless::Function":
            code = (resource.get("Properties") or {}).get("CodeUri")
            if isinstance(code, str) and not code.startswith("s3://"):
                resource["Properties"]["CodeUri"] = "s3://packaged/code.zip"
    translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name=TRANSLATION_REGION))
    cfn = translator.translate(packaged, parameter_values={}, get_managed_policy_map=lambda: {})
    return sam, cfn


def as_list(value) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def role_logical_id(function: str, props: dict) -> str:
    role = props.get("Role")
    if isinstance(role, dict) and "Fn::GetAtt" in role:
        att = role["Fn::GetAtt"]
        att = att.split(".", 1) if isinstance(att, str) else att
        if len(att) == 2 and att[1] == "Arn":
            return att[0]
    raise RolesError(f"{function}: Role {json.dumps(role)} is not a role of this template; its policies are unknown")


def role_policies(cfn: dict, role: str) -> list[dict]:
    resources = cfn["Resources"]
    res = resources.get(role) or {}
    if res.get("Type") != "AWS::IAM::Role":
        raise RolesError(f"{role}: not an AWS::IAM::Role")
    props = res.get("Properties") or {}
    if props.get("PermissionsBoundary"):
        raise RolesError(f"{role}: a permissions boundary is not evaluated by the tests")
    policies = []
    for policy in as_list(props.get("Policies")):
        policies.append({
            "source": f"{role}.{policy.get('PolicyName')}",
            "statements": as_list((policy.get("PolicyDocument") or {}).get("Statement")),
        })
    for arn in as_list(props.get("ManagedPolicyArns")):
        if isinstance(arn, str) and arn in KNOWN_MANAGED_POLICIES:
            policies.append({"source": arn, "statements": KNOWN_MANAGED_POLICIES[arn]})
        elif isinstance(arn, dict) and isinstance(arn.get("Ref"), str) and \
                (resources.get(arn["Ref"]) or {}).get("Type") == "AWS::IAM::ManagedPolicy":
            doc = (resources[arn["Ref"]].get("Properties") or {}).get("PolicyDocument") or {}
            policies.append({"source": arn["Ref"], "statements": as_list(doc.get("Statement"))})
        else:
            raise RolesError(f"{role}: managed policy {json.dumps(arn)} is not known to scripts/template-roles.py")
    # Policies attached from outside the role.
    for name, other in resources.items():
        if other.get("Type") not in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            continue
        oprops = other.get("Properties") or {}
        if {"Ref": role} in as_list(oprops.get("Roles")):
            policies.append({"source": name, "statements": as_list((oprops.get("PolicyDocument") or {}).get("Statement"))})
    return policies


def roles(path: pathlib.Path) -> dict:
    sam, cfn = translate(path)
    functions = {}
    for logical_id, res in sam["Resources"].items():
        if res.get("Type") != "AWS::Serverless::Function":
            continue
        binary = ((res.get("Metadata") or {}).get("BuildProperties") or {}).get("Binary")
        if not binary:
            raise RolesError(f"{logical_id}: no Metadata.BuildProperties.Binary")
        props = (cfn["Resources"].get(logical_id) or {}).get("Properties") or {}
        role = role_logical_id(logical_id, props)
        functions[binary] = {
            "logical_id": logical_id,
            "role": role,
            "environment": (props.get("Environment") or {}).get("Variables") or {},
            "policies": role_policies(cfn, role),
        }
        # The filters of its DynamoDB stream event source: the tests deliver stream records through them.
        for mapping in cfn["Resources"].values():
            mprops = mapping.get("Properties") or {}
            if mapping.get("Type") == "AWS::Lambda::EventSourceMapping" and \
                    mprops.get("FunctionName") == {"Ref": logical_id} and "FilterCriteria" in mprops:
                functions[binary]["stream_filters"] = [
                    f["Pattern"] for f in mprops["FilterCriteria"].get("Filters") or []]
    # The data stores the tests create for a stack (tables, queues, buckets, topics, keys), by logical id.
    kept = ("AWS::DynamoDB::Table", "AWS::SQS::Queue", "AWS::S3::Bucket", "AWS::SNS::Topic", "AWS::KMS::Key")
    return {
        "template": str(path),
        "functions": functions,
        "parameters": cfn.get("Parameters") or {},
        "resources": {k: v for k, v in cfn["Resources"].items() if v.get("Type") in kept},
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("template", nargs="?", default=str(REPO_ROOT / "template.yaml"))
    parser.add_argument("-o", "--output", help="write here instead of stdout")
    args = parser.parse_args(argv)
    try:
        result = roles(pathlib.Path(args.template))
    except Exception as e:  # noqa: BLE001 - translator errors come in many types; all end the run
        print(f"template-roles: {e}", file=sys.stderr)
        return 1
    text = json.dumps(result, indent=1, sort_keys=True)
    if args.output:
        pathlib.Path(args.output).write_text(text + "\n", encoding="utf-8")
        print(f"template roles of {len(result['functions'])} functions written to {args.output}")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
