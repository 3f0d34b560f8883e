"""Each rule of scripts/check-template.py catches a template that breaks it.

    python3 -m unittest scripts/test_check_template.py      (scripts/test.sh runs it)

Every test changes one thing in a copy of template.yaml (as parsed, intrinsics in their long form) and runs the
checks on it: the change must fail them, naming the resource and setting. The unchanged template passes.
"""

from __future__ import annotations

import copy
import importlib.util
import pathlib
import unittest

ROOT = pathlib.Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("check_template", ROOT / "scripts" / "check-template.py")
check_template = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check_template)

TEMPLATE = ROOT / "template.yaml"


class TemplateRules(unittest.TestCase):
    doc: dict

    @classmethod
    def setUpClass(cls) -> None:
        cls.doc = check_template.load_template(TEMPLATE)

    def failures(self, change) -> list[str]:
        doc = copy.deepcopy(self.doc)
        change(doc)
        # The copy keeps the real path: the checks read the Cargo workspace, shared/src and events/ beside it.
        return check_template.run_checks(check_template.Template(doc, TEMPLATE)).failures

    def assert_caught(self, change, *fragments: str) -> None:
        failures = self.failures(change)
        self.assertTrue(any(all(f in failure for f in fragments) for failure in failures),
                        f"no failure naming {fragments}: {failures}")

    def resource(self, doc: dict, name: str) -> dict:
        return doc["Resources"][name]["Properties"]

    def test_the_template_passes(self) -> None:
        self.assertEqual(self.failures(lambda doc: None), [])

    def test_a_table_without_deletion_protection(self) -> None:
        self.assert_caught(lambda d: self.resource(d, "StockTable").pop("DeletionProtectionEnabled"),
                           "StockTable: DeletionProtectionEnabled")
        self.assert_caught(lambda d: self.resource(d, "IdempotencyTable").update(DeletionProtectionEnabled=False),
                           "IdempotencyTable: DeletionProtectionEnabled")

    def test_the_public_intake_without_reserved_concurrency(self) -> None:
        self.assert_caught(lambda d: self.resource(d, "WebhookIntakeFunction").pop("ReservedConcurrentExecutions"),
                           "WebhookIntakeFunction: ReservedConcurrentExecutions")
        # A literal is no parameter; a parameter defaulting to 0 reserves nothing.
        self.assert_caught(
            lambda d: self.resource(d, "WebhookIntakeFunction").update(ReservedConcurrentExecutions=50),
            "WebhookIntakeFunction: ReservedConcurrentExecutions")
        self.assert_caught(lambda d: d["Parameters"]["IntakeReservedConcurrency"].update(Default=0),
                           "WebhookIntakeFunction: ReservedConcurrentExecutions")

    def test_an_alarm_without_ok_actions(self) -> None:
        self.assert_caught(lambda d: self.resource(d, "OrdersDLQAlarm").pop("OKActions"),
                           "OrdersDLQAlarm: OKActions")

    def test_an_output_without_description(self) -> None:
        self.assert_caught(lambda d: d["Outputs"]["OrdersQueueUrl"].pop("Description"),
                           "OrdersQueueUrl: Description")

    def test_a_dlq_without_its_arn_output(self) -> None:
        self.assert_caught(lambda d: d["Outputs"].pop("OrdersDLQArn"), "OrdersDLQ: Outputs")

    def test_a_topic_without_encryption(self) -> None:
        self.assert_caught(lambda d: self.resource(d, "AlertTopic").pop("KmsMasterKeyId"),
                           "AlertTopic: KmsMasterKeyId")

    def test_alarms_to_a_topic_under_the_aws_managed_key(self) -> None:
        self.assert_caught(lambda d: self.resource(d, "AlarmTopic").update(KmsMasterKeyId="alias/aws/sns"),
                           "AlarmTopic: KmsMasterKeyId", "cloudwatch.amazonaws.com")

    def test_an_alarm_key_cloudwatch_may_not_use(self) -> None:
        def drop_cloudwatch(d):
            policy = self.resource(d, "AlarmTopicKey")["KeyPolicy"]
            policy["Statement"] = [s for s in policy["Statement"] if s.get("Sid") != "CloudWatchAlarmsPublish"]
        self.assert_caught(drop_cloudwatch, "AlarmTopicKey: KeyPolicy")

        def decrypt_only(d):
            for s in self.resource(d, "AlarmTopicKey")["KeyPolicy"]["Statement"]:
                if s.get("Sid") == "CloudWatchAlarmsPublish":
                    s["Action"] = ["kms:Decrypt"]
        self.assert_caught(decrypt_only, "AlarmTopicKey: KeyPolicy")

    def test_a_mutation_budget_not_from_a_parameter(self) -> None:
        def literal(d):
            self.resource(d, "StockPushFunction")["Environment"]["Variables"]["CENTRA_MUTATIONS_PER_10S"] = "10"
        self.assert_caught(literal, "StockPushFunction: Environment.CENTRA_MUTATIONS_PER_10S")

        def unset(d):
            self.resource(d, "StockPushFunction")["Environment"]["Variables"].pop("CENTRA_MUTATIONS_PER_HOUR")
        self.assert_caught(unset, "StockPushFunction: Environment.CENTRA_MUTATIONS_PER_HOUR")

    def test_a_rate_limit_alarm_that_names_no_budget_parameter(self) -> None:
        self.assert_caught(
            lambda d: self.resource(d, "CentraRateLimitedAlarm").update(
                AlarmDescription="Centra answered 429: lower CENTRA_MUTATIONS_PER_10S."),
            "CentraRateLimitedAlarm: AlarmDescription", "CentraMutationsPer10s")

    def test_an_architecture_not_from_the_parameter(self) -> None:
        self.assert_caught(lambda d: d["Globals"]["Function"].update(Architectures=["arm64"]),
                           "WebhookIntakeFunction: Architectures")
        self.assert_caught(lambda d: self.resource(d, "ReconcileFunction").update(Architectures=["x86_64"]),
                           "ReconcileFunction: Architectures")

    def test_an_architecture_parameter_with_other_values(self) -> None:
        self.assert_caught(lambda d: d["Parameters"]["Architecture"].update(AllowedValues=["arm64"]),
                           "Architecture: AllowedValues")
        self.assert_caught(lambda d: d["Parameters"]["Architecture"].update(Default="x86_64"),
                           "Architecture: Default")

    def test_reconcile_environment_with_an_unread_variable(self) -> None:
        def rate_tier(d):
            self.resource(d, "ReconcileFunction")["Environment"]["Variables"]["CENTRA_RATE_TIER"] = {
                "Ref": "CentraRateTier"}
        self.assert_caught(rate_tier, "ReconcileFunction: Environment.Variables", "CENTRA_RATE_TIER")


if __name__ == "__main__":
    unittest.main()
