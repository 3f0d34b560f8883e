//! The deployed-shape harness itself (shared/tests/deployed) must be able to fail: IAM semantics, how calls map
//! to IAM actions and resources, and — against moto, with the template's real roles — that a missing
//! permission, variable or secret grant fails the way it would in AWS.

use crate::deployed;

use aws_smithy_runtime_api::http::Request;
use aws_smithy_types::body::SdkBody;
use deployed::iam::{evaluate, wildcard, Decision, Statement};
use deployed::recorder::{permissions, Permission};
use deployed::{Stack, StackParameters};
use serde_json::json;

fn statements(policy: serde_json::Value) -> Vec<Statement> {
    policy
        .as_array()
        .unwrap()
        .iter()
        .map(|s| Statement::parse("test", s).unwrap())
        .collect()
}

#[test]
fn wildcards_follow_iam() {
    assert!(wildcard("dynamodb:*", "dynamodb:UpdateItem", true));
    assert!(wildcard("DynamoDB:update*", "dynamodb:UpdateItem", true));
    assert!(wildcard("dynamodb:?etItem", "dynamodb:GetItem", true));
    assert!(!wildcard("dynamodb:?etItem", "dynamodb:BatchGetItem", true));
    assert!(!wildcard("dynamodb:GetItem", "dynamodb:GetItems", true));
    // `*` spans `:` and `/`; resources are case-sensitive.
    assert!(wildcard(
        "arn:aws:s3:::b/*",
        "arn:aws:s3:::b/catalogue/x.json",
        false
    ));
    assert!(wildcard(
        "arn:*:table/t",
        "arn:aws:dynamodb:eu-west-1:1:table/t",
        false
    ));
    assert!(!wildcard("arn:aws:s3:::b/*", "arn:aws:s3:::B/x", false));
    assert!(!wildcard("arn:aws:s3:::b/*", "arn:aws:s3:::b", false));
    assert!(wildcard("*", "", false));
    assert!(wildcard("a*b*c", "aXbYbZc", false));
}

#[test]
fn explicit_deny_wins_and_conditions_only_ever_refuse() {
    let table = "arn:aws:dynamodb:eu-west-1:1:table/t";
    let role = statements(json!([
        {"Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"},
        {"Sid": "NoDeletes", "Effect": "Deny", "Action": "DynamoDB:Delete*", "Resource": table},
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*", "Condition": {"Bool": {"aws:SecureTransport": "true"}}},
        {"Effect": "Deny", "Action": "sqs:*", "Resource": "*", "Condition": {"StringEquals": {"aws:SourceVpc": "vpc-1"}}},
    ]));
    assert!(evaluate(&role, "dynamodb:GetItem", table).is_allowed());
    assert_eq!(
        evaluate(&role, "dynamodb:DeleteItem", table),
        Decision::ExplicitlyDenied {
            by: "test (NoDeletes)".into()
        }
    );
    assert!(evaluate(
        &role,
        "dynamodb:DeleteItem",
        "arn:aws:dynamodb:eu-west-1:1:table/other"
    )
    .is_allowed());
    assert_eq!(
        evaluate(&role, "s3:GetObject", "arn:aws:s3:::b/k"),
        Decision::ImplicitlyDenied,
        "an Allow with a condition grants nothing here"
    );
    assert!(!evaluate(&role, "sqs:SendMessage", "arn:aws:sqs:eu-west-1:1:q").is_allowed());
    assert_eq!(
        evaluate(&[], "sns:Publish", "*"),
        Decision::ImplicitlyDenied
    );
}

#[test]
fn not_action_and_not_resource_invert_the_match() {
    let role = statements(json!([
        {"Effect": "Allow", "NotAction": ["iam:*", "kms:*"], "Resource": "*"},
        {"Effect": "Deny", "Action": "s3:*", "NotResource": "arn:aws:s3:::reports/*"},
    ]));
    assert!(evaluate(&role, "sqs:SendMessage", "arn:aws:sqs:eu-west-1:1:q").is_allowed());
    assert!(!evaluate(&role, "IAM:PassRole", "*").is_allowed());
    assert!(evaluate(&role, "s3:GetObject", "arn:aws:s3:::reports/a").is_allowed());
    assert!(matches!(
        evaluate(&role, "s3:GetObject", "arn:aws:s3:::other/a"),
        Decision::ExplicitlyDenied { .. }
    ));
}

fn request(uri: &str, body: &str) -> Request {
    let mut request = Request::new(SdkBody::from(body.to_string()));
    request.set_uri(uri).unwrap();
    request
}

fn needs(service: &str, operation: &str, uri: &str, body: &str) -> Vec<(String, String)> {
    permissions(
        service,
        operation,
        &request(uri, body),
        "eu-west-1",
        "123456789012",
    )
    .unwrap()
    .into_iter()
    .map(|Permission { action, resource }| (action, resource))
    .collect()
}

#[test]
fn calls_map_to_the_actions_aws_authorises() {
    let table = |t: &str| format!("arn:aws:dynamodb:eu-west-1:123456789012:table/{t}");
    let body = json!({"TransactItems": [
        {"Put": {"TableName": "idem", "Item": {}}},
        {"Update": {"TableName": "stock", "Key": {}}},
        {"ConditionCheck": {"TableName": "stock", "Key": {}}},
        {"Delete": {"TableName": "idem", "Key": {}}},
    ]})
    .to_string();
    assert_eq!(
        needs("DynamoDB", "TransactWriteItems", "http://h/", &body),
        [
            ("dynamodb:PutItem".into(), table("idem")),
            ("dynamodb:UpdateItem".into(), table("stock")),
            ("dynamodb:ConditionCheckItem".into(), table("stock")),
            ("dynamodb:DeleteItem".into(), table("idem")),
        ]
    );
    assert_eq!(
        needs(
            "DynamoDB",
            "Query",
            "http://h/",
            r#"{"TableName":"stock","IndexName":"by-order"}"#
        ),
        [(
            "dynamodb:Query".into(),
            format!("{}/index/by-order", table("stock"))
        )]
    );
    assert_eq!(
        needs(
            "DynamoDB",
            "BatchWriteItem",
            "http://h/",
            r#"{"RequestItems":{"stock":[]}}"#
        ),
        [("dynamodb:BatchWriteItem".into(), table("stock"))]
    );
    assert_eq!(
        needs(
            "SQS",
            "SendMessageBatch",
            "http://h/",
            r#"{"QueueUrl":"http://127.0.0.1:5000/123456789012/stock.fifo","Entries":[]}"#
        ),
        [(
            "sqs:SendMessage".into(),
            "arn:aws:sqs:eu-west-1:123456789012:stock.fifo".into()
        )]
    );
    assert_eq!(
        needs(
            "S3",
            "GetObject",
            "http://127.0.0.1:5000/reports/catalogue/centra-sizes.json?x-id=GetObject",
            ""
        ),
        [(
            "s3:GetObject".into(),
            "arn:aws:s3:::reports/catalogue/centra-sizes.json".into()
        )]
    );
    assert_eq!(
        needs(
            "S3",
            "PutObject",
            "http://127.0.0.1:5000/reports/reports/2026-01-01/r%201/a.json",
            "{}"
        ),
        [(
            "s3:PutObject".into(),
            "arn:aws:s3:::reports/reports/2026-01-01/r 1/a.json".into()
        )]
    );
    assert_eq!(
        needs(
            "SNS",
            "Publish",
            "http://h/",
            "Action=Publish&TopicArn=arn%3Aaws%3Asns%3Aeu-west-1%3A123456789012%3Aalerts&Message=m"
        ),
        [(
            "sns:Publish".into(),
            "arn:aws:sns:eu-west-1:123456789012:alerts".into()
        )]
    );
    assert_eq!(
        needs(
            "SSM",
            "GetParameter",
            "http://h/",
            r#"{"Name":"/cloudshelf-centra/mappings"}"#
        ),
        [(
            "ssm:GetParameter".into(),
            "arn:aws:ssm:eu-west-1:123456789012:parameter/cloudshelf-centra/mappings".into()
        )]
    );
    assert_eq!(
        needs(
            "Secrets Manager",
            "GetSecretValue",
            "http://h/",
            r#"{"SecretId":"arn:aws:secretsmanager:eu-west-1:123456789012:secret:t-AbCdEf"}"#
        ),
        [(
            "secretsmanager:GetSecretValue".into(),
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:t-AbCdEf".into()
        )]
    );
    assert!(
        permissions(
            "Kinesis",
            "PutRecord",
            &request("http://h/", "{}"),
            "r",
            "a"
        )
        .is_err(),
        "a service the harness cannot map fails rather than passes"
    );
}

async fn stack() -> Stack {
    Stack::create(StackParameters::new(
        "https://centra.invalid/graphql",
        "token",
        shared::config::mappings::EMBEDDED_DEFAULT,
    ))
    .await
}

#[tokio::test]
async fn a_secret_outside_the_role_stops_start_up() {
    let stack = stack().await;
    let bundle = stack.spec("order-sync").environment["ORDER_API_SECRETS_SECRET_ARN"].clone();
    let spec = stack.spec("order-sync").without_resource(&bundle);
    let err = stack
        .try_build(spec, |env, aws, metrics| async move {
            shared::wiring::orders::order_sync_from(&env, &aws, metrics).await
        })
        .await
        .err()
        .expect("order-sync must not start without its Order-API secrets");
    assert!(err.contains("ORDER_API_SECRETS_SECRET_ARN"), "{err}");
    assert!(
        err.contains(&format!("secretsmanager:GetSecretValue on {bundle}")),
        "{err}"
    );
    assert!(
        stack
            .problems()
            .iter()
            .any(|p| p.contains("order-sync: secretsmanager:GetSecretValue")),
        "{:?}",
        stack.problems()
    );
}

#[tokio::test]
async fn a_missing_variable_stops_start_up() {
    let stack = stack().await;
    let mut spec = stack.spec("stock-apply");
    spec.environment.remove("STOCK_TABLE");
    let err = stack
        .try_build(spec, |env, aws, metrics| async move {
            shared::wiring::aws::applier_from(&env, &aws, metrics).await
        })
        .await
        .err()
        .expect("stock-apply must not start without STOCK_TABLE");
    assert!(err.contains("STOCK_TABLE"), "{err}");
}

#[tokio::test]
async fn an_unset_feature_and_an_unread_variable_are_reported() {
    let stack = stack().await;
    let mut spec = stack.spec("webhook-intake");
    // Unset, intake silently refuses kiosk orders (400 unsupported_type): it must not pass as deployable.
    spec.environment.remove("ORDERS_QUEUE_URL");
    spec.environment.insert("UNUSED_SETTING".into(), "1".into());
    stack
        .try_build(spec, |env, aws, metrics| async move {
            shared::wiring::aws::intake_from(&env, &aws, metrics).await
        })
        .await
        .unwrap();
    let problems = stack.problems();
    assert!(
        problems.contains(
            &"webhook-intake: reads ORDERS_QUEUE_URL, which template.yaml does not set for it"
                .into()
        ),
        "{problems:?}"
    );
    assert!(
        problems.contains(
            &"webhook-intake: template.yaml sets UNUSED_SETTING, which the function never reads"
                .into()
        ),
        "{problems:?}"
    );
}

#[tokio::test]
async fn a_denied_call_fails_like_aws_and_names_function_action_and_resource() {
    let stack = stack().await;
    let table = stack.resources["StockTable"].reference.clone();
    let d = stack.deploy(
        stack
            .spec("stock-apply")
            .without_action("dynamodb:UpdateItem"),
    );
    let err = d
        .aws
        .dynamodb()
        .update_item()
        .table_name(&table)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S("daybook#LDN-01#2026-01-01".into()),
        )
        .key("sk", aws_sdk_dynamodb::types::AttributeValue::S("x".into()))
        .update_expression("SET a = :a")
        .expression_attribute_values(":a", aws_sdk_dynamodb::types::AttributeValue::N("1".into()))
        .send()
        .await
        .expect_err("denied");
    assert!(
        format!("{}", aws_sdk_dynamodb::error::DisplayErrorContext(&err)).contains("AccessDenied"),
        "{err:?}"
    );
    let arn = stack.resources["StockTable"].attributes["Arn"].clone();
    assert_eq!(
        stack.problems(),
        [format!(
            "stock-apply: dynamodb:UpdateItem on {arn} is denied by its role in template.yaml \
             (DynamoDB.UpdateItem, ImplicitlyDenied)"
        )]
    );
    // Nothing was written: the request never left.
    let item = stack
        .admin
        .dynamodb()
        .get_item()
        .table_name(&table)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S("daybook#LDN-01#2026-01-01".into()),
        )
        .key("sk", aws_sdk_dynamodb::types::AttributeValue::S("x".into()))
        .send()
        .await
        .unwrap();
    assert!(item.item().is_none());
}

#[tokio::test]
async fn a_missing_key_is_403_without_list_bucket_as_in_s3() {
    let stack = stack().await;
    let bucket = stack.resources["ReportsBucket"].reference.clone();
    let get = |aws: shared::adapters::aws::AwsConfig| {
        let bucket = bucket.clone();
        async move {
            aws.s3()
                .get_object()
                .bucket(bucket)
                .key(shared::stock::identity::SNAPSHOT_KEY)
                .send()
                .await
                .expect_err("no snapshot yet")
        }
    };
    let with_list = stack.deploy(stack.spec("webhook-intake"));
    assert!(get(with_list.aws.clone())
        .await
        .as_service_error()
        .is_some_and(|e| e.is_no_such_key()));
    assert!(stack.problems().is_empty(), "{:?}", stack.problems());

    let without_list = stack.deploy(stack.spec("webhook-intake").without_action("s3:ListBucket"));
    let err = get(without_list.aws.clone()).await;
    assert_eq!(
        err.as_service_error().and_then(|e| e.meta().code()),
        Some("AccessDenied"),
        "{err:?}"
    );
    assert!(
        stack.problems().iter().any(|p| p.contains("s3:ListBucket")
            && p.contains("answers 403 AccessDenied, not 404")),
        "{:?}",
        stack.problems()
    );
}
