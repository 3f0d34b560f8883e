//! An SDK interceptor on every client of one function: each call is mapped to the IAM actions and resource ARNs
//! AWS authorises it by, checked against the function's role, recorded, and refused (as AWS would) when denied.

use super::iam::{evaluate, Decision, Statement};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeDeserializationInterceptorContextMut, BeforeTransmitInterceptorContextRef,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::{Request, Response, StatusCode};
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

/// One authorisation AWS makes for a call: an IAM action on a resource.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Permission {
    pub action: String,
    pub resource: String,
}

#[derive(Debug, Clone)]
pub struct Call {
    /// The SDK operation, e.g. `DynamoDB.TransactWriteItems`.
    pub operation: String,
    pub permission: Permission,
    pub decision: Decision,
    /// Why this authorisation was needed when it is not the call's own action (an S3 404 needs ListBucket).
    pub note: Option<String>,
}

/// Everything one function did: its AWS calls and the environment variables it read.
#[derive(Debug)]
pub struct Recorder {
    pub function: String,
    pub statements: Vec<Statement>,
    pub region: String,
    pub account: String,
    /// The environment the template gives the function.
    pub environment: BTreeMap<String, String>,
    calls: Mutex<Vec<Call>>,
    /// (variable, whether the template sets it)
    reads: Mutex<BTreeSet<(String, bool)>>,
    /// Built by its wiring (as its main does), so every variable it reads at start-up has been read.
    started: std::sync::atomic::AtomicBool,
}

impl Recorder {
    pub fn new(
        function: &str,
        statements: Vec<Statement>,
        region: &str,
        account: &str,
        environment: BTreeMap<String, String>,
    ) -> Self {
        Self {
            function: function.into(),
            statements,
            region: region.into(),
            account: account.into(),
            environment,
            calls: Mutex::new(Vec::new()),
            reads: Mutex::new(BTreeSet::new()),
            started: Default::default(),
        }
    }

    pub fn mark_started(&self) {
        self.started
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn started(&self) -> bool {
        self.started.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    pub fn denied(&self) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| !c.decision.is_allowed())
            .collect()
    }

    /// The distinct (action, resource) pairs the function was allowed.
    pub fn used(&self) -> BTreeSet<Permission> {
        self.calls()
            .into_iter()
            .filter(|c| c.decision.is_allowed())
            .map(|c| c.permission)
            .collect()
    }

    pub fn note_read(&self, name: &str, set: bool) {
        self.reads.lock().unwrap().insert((name.to_string(), set));
    }

    pub fn reads(&self) -> BTreeSet<(String, bool)> {
        self.reads.lock().unwrap().clone()
    }

    fn decide(&self, operation: &str, permission: Permission, note: Option<String>) -> Call {
        let decision = evaluate(&self.statements, &permission.action, &permission.resource);
        let call = Call {
            operation: operation.into(),
            permission,
            decision,
            note,
        };
        self.calls.lock().unwrap().push(call.clone());
        call
    }
}

/// The interceptor given to every client the function builds.
#[derive(Debug, Clone)]
pub struct RoleCheck(pub Arc<Recorder>);

/// An S3 read in flight: a 404 is only a 404 to a caller allowed s3:ListBucket on the bucket.
#[derive(Debug, Clone)]
struct S3Read {
    operation: String,
    bucket_arn: String,
    key: String,
}

impl Storable for S3Read {
    type Storer = StoreReplace<Self>;
}

impl Intercept for RoleCheck {
    fn name(&self) -> &'static str {
        "TemplateRoleCheck"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let recorder = &self.0;
        let metadata = cfg
            .load::<Metadata>()
            .ok_or("the SDK gave no operation metadata")?
            .clone();
        let operation = format!("{}.{}", metadata.service(), metadata.name());
        let needed = permissions(
            metadata.service(),
            metadata.name(),
            context.request(),
            &recorder.region,
            &recorder.account,
        )
        .map_err(|e| format!("{}: {operation}: {e}", recorder.function))?;
        let mut refused = Vec::new();
        for permission in needed {
            let call = recorder.decide(&operation, permission, None);
            if !call.decision.is_allowed() {
                refused.push(call);
            }
        }
        if let Some(call) = refused.first() {
            // What the caller sees instead of AWS's AccessDenied: the request never reaches the emulator.
            return Err(format!(
                "AccessDenied by the template role of {}: {} on {} ({:?})",
                recorder.function, call.permission.action, call.permission.resource, call.decision
            )
            .into());
        }
        if metadata.service() == "S3" && matches!(metadata.name(), "GetObject" | "HeadObject") {
            let (bucket, key) = s3_bucket_and_key(context.request().uri())?;
            cfg.interceptor_state().store_put(S3Read {
                operation,
                bucket_arn: format!("arn:aws:s3:::{bucket}"),
                key,
            });
        }
        Ok(())
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(read) = cfg.load::<S3Read>().cloned() else {
            return Ok(());
        };
        if context.response().status().as_u16() != 404 {
            return Ok(());
        }
        let call = self.0.decide(
            &read.operation,
            Permission {
                action: "s3:ListBucket".into(),
                resource: read.bucket_arn,
            },
            Some(format!(
                "{} of the missing key {} answers 403 AccessDenied, not 404, without it",
                read.operation, read.key
            )),
        );
        if !call.decision.is_allowed() {
            // S3 does not tell a caller who may not list the bucket whether a key exists.
            *context.response_mut() = Response::new(
                StatusCode::try_from(403u16).expect("status"),
                SdkBody::from(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code>\
                     <Message>Access Denied</Message></Error>",
                ),
            );
        }
        Ok(())
    }
}

fn json_body(request: &Request) -> Result<Value, String> {
    let bytes = request
        .body()
        .bytes()
        .ok_or("the request body is streamed; cannot read its resource")?;
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(bytes).map_err(|e| format!("request body is not JSON: {e}"))
}

fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' if plus_is_space => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn form_field(request: &Request, name: &str) -> Result<Option<String>, String> {
    let bytes = request
        .body()
        .bytes()
        .ok_or("the request body is streamed; cannot read its resource")?;
    let text = std::str::from_utf8(bytes).map_err(|e| e.to_string())?;
    Ok(text.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (percent_decode(k, true) == name).then(|| percent_decode(v, true))
    }))
}

/// (bucket, key) of a path-style S3 URL, as the tests' clients address moto.
fn s3_bucket_and_key(uri: &str) -> Result<(String, String), String> {
    let after_scheme = uri.split_once("://").map_or(uri, |(_, rest)| rest);
    let path = after_scheme
        .split_once('/')
        .map_or("", |(_, p)| p)
        .split('?')
        .next()
        .unwrap_or("");
    let (bucket, key) = path.split_once('/').unwrap_or((path, ""));
    if bucket.is_empty() {
        return Err(format!(
            "{uri} is not a path-style S3 URL (the tests' endpoint makes clients path-style)"
        ));
    }
    Ok((percent_decode(bucket, false), percent_decode(key, false)))
}

fn table_arn(table: &str, region: &str, account: &str) -> String {
    if table.starts_with("arn:") {
        table.to_string()
    } else {
        format!("arn:aws:dynamodb:{region}:{account}:table/{table}")
    }
}

fn queue_arn(url: &str, region: &str) -> Result<String, String> {
    // https://sqs.<region>.amazonaws.com/<account>/<name>, or the emulator's http://host:port/<account>/<name>.
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let segments: Vec<&str> = after_scheme.split('/').skip(1).collect();
    match segments.as_slice() {
        [account, name] if !account.is_empty() && !name.is_empty() => {
            Ok(format!("arn:aws:sqs:{region}:{account}:{name}"))
        }
        _ => Err(format!("{url} is not a queue URL")),
    }
}

fn field<'a>(body: &'a Value, name: &str) -> Result<&'a str, String> {
    body.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("no {name} in the request"))
}

/// The IAM authorisations AWS makes for `service.operation` with this request.
pub fn permissions(
    service: &str,
    operation: &str,
    request: &Request,
    region: &str,
    account: &str,
) -> Result<Vec<Permission>, String> {
    let p = |action: String, resource: String| Permission { action, resource };
    match service {
        "DynamoDB" => {
            let body = json_body(request)?;
            let table = |name: &str| table_arn(name, region, account);
            match operation {
                // Each item is authorised as its own action (Put → PutItem, ConditionCheck →
                // ConditionCheckItem, …): DynamoDB developer guide, "Using IAM with DynamoDB transactions".
                "TransactWriteItems" | "TransactGetItems" => {
                    let items = body
                        .get("TransactItems")
                        .and_then(Value::as_array)
                        .ok_or("no TransactItems")?;
                    items
                        .iter()
                        .map(|item| {
                            let (kind, inner) = item
                                .as_object()
                                .and_then(|o| o.iter().next())
                                .ok_or("an empty transact item")?;
                            let action = match kind.as_str() {
                                "Put" => "PutItem",
                                "Update" => "UpdateItem",
                                "Delete" => "DeleteItem",
                                "ConditionCheck" => "ConditionCheckItem",
                                "Get" => "GetItem",
                                other => return Err(format!("transact item kind {other}")),
                            };
                            Ok(p(format!("dynamodb:{action}"), table(field(inner, "TableName")?)))
                        })
                        .collect()
                }
                "BatchWriteItem" | "BatchGetItem" => {
                    let tables = body
                        .get("RequestItems")
                        .and_then(Value::as_object)
                        .ok_or("no RequestItems")?;
                    Ok(tables
                        .keys()
                        .map(|t| p(format!("dynamodb:{operation}"), table(t)))
                        .collect())
                }
                "Query" | "Scan" => {
                    let mut resource = table(field(&body, "TableName")?);
                    if let Some(index) = body.get("IndexName").and_then(Value::as_str) {
                        resource = format!("{resource}/index/{index}");
                    }
                    Ok(vec![p(format!("dynamodb:{operation}"), resource)])
                }
                _ => Ok(vec![p(
                    format!("dynamodb:{operation}"),
                    match body.get("TableName").and_then(Value::as_str) {
                        Some(t) => table(t),
                        None => "*".into(),
                    },
                )]),
            }
        }
        "SQS" => {
            let body = json_body(request)?;
            // The batch APIs are authorised as their single-message actions.
            let action = match operation {
                "SendMessageBatch" => "SendMessage",
                "DeleteMessageBatch" => "DeleteMessage",
                "ChangeMessageVisibilityBatch" => "ChangeMessageVisibility",
                other => other,
            };
            let resource = match body.get("QueueUrl").and_then(Value::as_str) {
                Some(url) => queue_arn(url, region)?,
                None => match body.get("QueueName").and_then(Value::as_str) {
                    Some(name) => format!("arn:aws:sqs:{region}:{account}:{name}"),
                    None => "*".into(),
                },
            };
            Ok(vec![p(format!("sqs:{action}"), resource)])
        }
        "S3" => {
            let (bucket, key) = s3_bucket_and_key(request.uri())?;
            let object = format!("arn:aws:s3:::{bucket}/{key}");
            let bucket_arn = format!("arn:aws:s3:::{bucket}");
            Ok(vec![match operation {
                "GetObject" | "HeadObject" => p("s3:GetObject".into(), object),
                "PutObject" | "CopyObject" | "CreateMultipartUpload" | "UploadPart"
                | "CompleteMultipartUpload" => p("s3:PutObject".into(), object),
                "DeleteObject" => p("s3:DeleteObject".into(), object),
                "ListObjects" | "ListObjectsV2" | "HeadBucket" => {
                    p("s3:ListBucket".into(), bucket_arn)
                }
                other => p(format!("s3:{other}"), bucket_arn),
            }])
        }
        "SNS" => {
            let topic = form_field(request, "TopicArn")?.unwrap_or_else(|| "*".into());
            Ok(vec![p(format!("sns:{operation}"), topic)])
        }
        "Secrets Manager" => {
            let body = json_body(request)?;
            let id = field(&body, "SecretId")?;
            let resource = if id.starts_with("arn:") {
                id.to_string()
            } else {
                // A name: the ARN's random suffix is unknown, so only a policy with a wildcard suffix matches.
                format!("arn:aws:secretsmanager:{region}:{account}:secret:{id}")
            };
            Ok(vec![p(format!("secretsmanager:{operation}"), resource)])
        }
        "SSM" => {
            let body = json_body(request)?;
            let names: Vec<String> = match operation {
                "GetParameters" => body
                    .get("Names")
                    .and_then(Value::as_array)
                    .ok_or("no Names")?
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect(),
                _ => vec![field(&body, "Name")?.to_string()],
            };
            Ok(names
                .into_iter()
                .map(|name| {
                    let path = if name.starts_with('/') {
                        name
                    } else {
                        format!("/{name}")
                    };
                    p(
                        format!("ssm:{operation}"),
                        format!("arn:aws:ssm:{region}:{account}:parameter{path}"),
                    )
                })
                .collect())
        }
        other => Err(format!(
            "service {other} is not known to shared/tests/deployed/recorder.rs: add how AWS authorises it"
        )),
    }
}
