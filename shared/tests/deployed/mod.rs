//! The deployed shape, in the tests.
//!
//! A [`Stack`] creates in moto the data stores template.yaml defines (tables with the template's keys, queues with
//! their DLQs, buckets, topics) and the secrets and SSM parameter its parameters point at. Each function is then
//! built by its own wiring (`*_from`, exactly as its main does) with exactly the template's environment for it,
//! intrinsics resolved to those resources, and every AWS client it builds carries a [`recorder::RoleCheck`] holding
//! its role's statements as the SAM translator produces them (`scripts/template-roles.py`; `scripts/test.sh` puts
//! the file's path in `TEMPLATE_ROLES_JSON`). A call the role does not allow fails as AWS would fail it, and
//! [`Stack::assert_deployable`] fails the test naming function, action and resource. It also holds the
//! environment to the template: every variable a function reads is set for it (bar the defaults in
//! [`DEFAULTED`]) and every variable the template sets for it is read.

pub mod iam;
pub mod recorder;

use iam::Statement;
use recorder::{Recorder, RoleCheck};
use serde_json::Value;
use shared::adapters::aws::AwsConfig;
use shared::config::env::{ConfigError, Env};
use shared::telemetry::metrics::Metrics;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

/// Settings a function reads whose default the deployment relies on: template.yaml leaves them unset on purpose.
pub const DEFAULTED: &[&str] = &[
    "CENTRA_TIMEOUT_SECONDS",
    "CLOUDSHELF_TIMEOUT_SECONDS",
    "IDEMPOTENCY_TTL_DAYS",
    "ORDER_LEASE_SECONDS",
    "CLOUDSHELF_SAFETY_STOCK",
];

/// Read by the log subscriber before any wiring runs (shared/src/telemetry.rs), not through `Env`.
const READ_OUTSIDE_WIRING: &[&str] = &["RUST_LOG"];

/// The test values every stack starts from; a test overrides what it needs (Centra, Cloudshelf, mappings).
pub const STORE_EVENTS_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
pub const CENTRA_WEBHOOK_SECRET: &str = "centra-endpoint-secret";

/// A data store of the stack: what `Ref` gives and its `Fn::GetAtt` attributes.
#[derive(Debug, Clone)]
pub struct Physical {
    pub reference: String,
    pub attributes: BTreeMap<String, String>,
}

fn unique(prefix: &str) -> String {
    format!(
        "{}-{}",
        prefix.to_lowercase(),
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
}

fn roles_file() -> Value {
    let path = std::env::var("TEMPLATE_ROLES_JSON").unwrap_or_else(|_| {
        panic!(
            "TEMPLATE_ROLES_JSON is not set: run scripts/test.sh (it translates template.yaml with \
             scripts/template-roles.py)"
        )
    });
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// What a test sets before the stack is created: template parameter values, and secrets and SSM parameters
/// created in moto whose ARN / name becomes the parameter's value.
#[derive(Debug, Clone, Default)]
pub struct StackParameters {
    values: BTreeMap<String, String>,
    secrets: BTreeMap<String, String>,
    ssm: BTreeMap<String, String>,
}

impl StackParameters {
    /// Every parameter the template needs a value for, with test values; Centra, Cloudshelf and the mappings
    /// are the test's own.
    pub fn new(centra_url: &str, centra_token: &str, mappings_toml: &str) -> Self {
        Self::default()
            .value("CentraApiUrl", centra_url)
            .secret("CentraApiTokenSecretArn", centra_token)
            .secret("StoreEventsSecretArn", STORE_EVENTS_SECRET)
            .secret("CentraWebhookSecretArn", CENTRA_WEBHOOK_SECRET)
            // The Order-API secrets the embedded mappings name, as the deploy guide's bundle holds them.
            .secret(
                "OrderApiSecretsArn",
                r#"{"CENTRA_ORDER_API_SECRET_UK":"uk-secret","CENTRA_ORDER_API_SECRET_SE":"se-secret"}"#,
            )
            .value("CloudshelfApiUrl", "https://cloudshelf.invalid/graphql")
            .secret("CloudshelfApiKeySecretArn", "cloudshelf-key")
            .ssm("MappingsParameterName", mappings_toml)
    }

    pub fn value(mut self, name: &str, value: impl Into<String>) -> Self {
        self.values.insert(name.into(), value.into());
        self
    }

    /// A Secrets Manager secret holding `value`; the parameter becomes its ARN.
    pub fn secret(mut self, name: &str, value: impl Into<String>) -> Self {
        self.secrets.insert(name.into(), value.into());
        self
    }

    /// An SSM String parameter holding `value`; the parameter becomes its name.
    pub fn ssm(mut self, name: &str, value: impl Into<String>) -> Self {
        self.ssm.insert(name.into(), value.into());
        self
    }
}

/// One function as the template deploys it: its environment and its role's statements (both resolved). A
/// harness self-test changes them to show a missing variable or permission fails.
#[derive(Debug, Clone)]
pub struct FunctionSpec {
    pub binary: String,
    pub environment: BTreeMap<String, String>,
    pub statements: Vec<Statement>,
}

impl FunctionSpec {
    /// Removes `action` from every statement naming it exactly (the shape of deleting it from template.yaml).
    pub fn without_action(mut self, action: &str) -> Self {
        for s in &mut self.statements {
            if let iam::Patterns::Any(actions) = &mut s.actions {
                actions.retain(|a| !a.eq_ignore_ascii_case(action));
            }
        }
        self
    }

    /// Removes `resource` from every statement listing it.
    pub fn without_resource(mut self, resource: &str) -> Self {
        for s in &mut self.statements {
            if let iam::Patterns::Any(resources) = &mut s.resources {
                resources.retain(|r| r != resource);
            }
        }
        self
    }
}

/// A function built for a test: the environment and clients its wiring gets, and what it did with them.
pub struct Deployed {
    pub env: Env,
    pub aws: AwsConfig,
    pub recorder: Arc<Recorder>,
}

/// The functions of a stack, to check right after an invocation that none was denied a call: the test then fails
/// naming function, action and resource, not at a later assertion the denial made false.
#[derive(Clone, Default)]
pub struct Watch(Arc<Mutex<Vec<Arc<Recorder>>>>);

impl Watch {
    pub fn denials(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .flat_map(|r| {
                r.denied()
                    .into_iter()
                    .map(move |call| describe_denial(&r.function, &call))
            })
            .collect()
    }

    pub fn assert_no_denials(&self) {
        let denials = self.denials();
        assert!(
            denials.is_empty(),
            "a function was denied a call by its role in template.yaml:\n  {}",
            denials.join("\n  ")
        );
    }
}

fn describe_denial(function: &str, call: &recorder::Call) -> String {
    format!(
        "{function}: {} on {} is denied by its role in template.yaml ({}, {:?}){}",
        call.permission.action,
        call.permission.resource,
        call.operation,
        call.decision,
        call.note
            .as_ref()
            .map(|n| format!(": {n}"))
            .unwrap_or_default()
    )
}

pub struct Stack {
    /// The test's own clients (creating resources, driving the queues as the Lambda triggers do): full rights,
    /// not checked.
    pub admin: AwsConfig,
    pub region: String,
    pub account: String,
    roles: Value,
    parameters: BTreeMap<String, String>,
    pub resources: BTreeMap<String, Physical>,
    order_api_secret_names: BTreeSet<String>,
    deployed: Watch,
}

impl Stack {
    pub async fn create(parameters: StackParameters) -> Stack {
        if std::env::var_os("AWS_ENDPOINT_URL").is_none() {
            panic!("AWS_ENDPOINT_URL is not set: run scripts/test.sh (starts moto)");
        }
        let roles = roles_file();
        let admin = AwsConfig::from_env().await;
        let region = admin
            .sdk
            .region()
            .expect("AWS_REGION is set by scripts/test.sh")
            .to_string();
        let mut values = parameters.values;
        let mut account = None;
        let secrets = admin.secrets_manager();
        for (param, secret) in &parameters.secrets {
            let created = secrets
                .create_secret()
                .name(unique(param))
                .secret_string(secret)
                .send()
                .await
                .unwrap_or_else(|e| panic!("create secret for {param}: {e:?}"));
            let arn = created.arn().expect("secret ARN").to_string();
            account = arn.split(':').nth(4).map(str::to_string);
            values.insert(param.clone(), arn);
        }
        let ssm = admin.ssm();
        let mut order_api_secret_names = BTreeSet::new();
        for (param, value) in &parameters.ssm {
            let name = format!("/{}/{}", unique("cloudshelf-centra"), param);
            ssm.put_parameter()
                .name(&name)
                .value(value)
                .r#type(aws_sdk_ssm::types::ParameterType::String)
                .send()
                .await
                .unwrap_or_else(|e| panic!("put SSM parameter for {param}: {e:?}"));
            if let Ok(m) = shared::config::mappings::Mappings::from_toml(value) {
                order_api_secret_names.extend(m.order_apis().map(|a| a.secret.clone()));
            }
            values.insert(param.clone(), name);
        }
        let mut stack = Stack {
            admin,
            region,
            account: account.unwrap_or_else(|| "123456789012".into()),
            roles,
            parameters: values,
            resources: BTreeMap::new(),
            order_api_secret_names,
            deployed: Watch::default(),
        };
        stack.create_resources().await;
        stack
    }

    async fn create_resources(&mut self) {
        let defined: Vec<(String, Value)> = self.roles["resources"]
            .as_object()
            .expect("resources in the roles file")
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        // Queues with a redrive policy after their DLQs (its ARN is part of the policy).
        let mut ordered: Vec<&(String, Value)> = defined.iter().collect();
        ordered.sort_by_key(|(_, v)| v["Properties"].get("RedrivePolicy").is_some());
        for (logical, resource) in ordered {
            let props = &resource["Properties"];
            let physical = match resource["Type"].as_str().unwrap_or("") {
                "AWS::DynamoDB::Table" => self.create_table(logical, props).await,
                "AWS::SQS::Queue" => self.create_queue(logical, props).await,
                "AWS::S3::Bucket" => self.create_bucket(logical).await,
                "AWS::SNS::Topic" => self.create_topic(logical).await,
                // Not called by any function (SNS uses the key on the publisher's behalf): checked by
                // scripts/check-template.py instead.
                _ => continue,
            };
            self.resources.insert(logical.clone(), physical);
        }
    }

    async fn create_table(&self, logical: &str, props: &Value) -> Physical {
        use aws_sdk_dynamodb::types::{
            AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
            TimeToLiveSpecification,
        };
        let dynamo = self.admin.dynamodb();
        let name = unique(logical);
        let definitions = props["AttributeDefinitions"]
            .as_array()
            .expect("AttributeDefinitions")
            .iter()
            .map(|d| {
                AttributeDefinition::builder()
                    .attribute_name(d["AttributeName"].as_str().unwrap())
                    .attribute_type(ScalarAttributeType::from(
                        d["AttributeType"].as_str().unwrap(),
                    ))
                    .build()
                    .unwrap()
            })
            .collect();
        let keys = props["KeySchema"]
            .as_array()
            .expect("KeySchema")
            .iter()
            .map(|k| {
                KeySchemaElement::builder()
                    .attribute_name(k["AttributeName"].as_str().unwrap())
                    .key_type(KeyType::from(k["KeyType"].as_str().unwrap()))
                    .build()
                    .unwrap()
            })
            .collect();
        assert!(
            props.get("GlobalSecondaryIndexes").is_none()
                && props.get("LocalSecondaryIndexes").is_none(),
            "{logical}: secondary indexes are not created by shared/tests/deployed yet"
        );
        let created = dynamo
            .create_table()
            .table_name(&name)
            .billing_mode(BillingMode::PayPerRequest)
            .set_attribute_definitions(Some(definitions))
            .set_key_schema(Some(keys))
            .set_stream_specification(props.get("StreamSpecification").map(|spec| {
                aws_sdk_dynamodb::types::StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(aws_sdk_dynamodb::types::StreamViewType::from(
                        spec["StreamViewType"].as_str().expect("StreamViewType"),
                    ))
                    .build()
                    .unwrap()
            }))
            .send()
            .await
            .unwrap_or_else(|e| panic!("create table {logical}: {e:?}"));
        // moto creates tables ACTIVE; anything else would need a wait the tests do not do.
        assert_eq!(
            created
                .table_description()
                .and_then(|t| t.table_status())
                .map(|s| s.as_str()),
            Some("ACTIVE"),
            "{logical}"
        );
        if let Some(ttl) = props.get("TimeToLiveSpecification") {
            dynamo
                .update_time_to_live()
                .table_name(&name)
                .time_to_live_specification(
                    TimeToLiveSpecification::builder()
                        .attribute_name(ttl["AttributeName"].as_str().unwrap())
                        .enabled(ttl["Enabled"].as_bool().unwrap_or(false))
                        .build()
                        .unwrap(),
                )
                .send()
                .await
                .unwrap_or_else(|e| panic!("TTL of {logical}: {e:?}"));
        }
        let mut attributes = BTreeMap::from([(
            "Arn".into(),
            format!(
                "arn:aws:dynamodb:{}:{}:table/{name}",
                self.region, self.account
            ),
        )]);
        if let Some(stream) = created
            .table_description()
            .and_then(|t| t.latest_stream_arn())
        {
            attributes.insert("StreamArn".into(), stream.to_string());
        }
        Physical {
            attributes,
            reference: name,
        }
    }

    async fn create_queue(&self, logical: &str, props: &Value) -> Physical {
        use aws_sdk_sqs::types::QueueAttributeName as A;
        let fifo = props
            .get("FifoQueue")
            .is_some_and(|v| v == &Value::Bool(true) || v == "true");
        let name = if fifo {
            format!("{}.fifo", unique(logical))
        } else {
            unique(logical)
        };
        let mut attributes = BTreeMap::new();
        if fifo {
            attributes.insert(A::FifoQueue, "true".to_string());
        }
        for (key, attribute) in [
            ("ContentBasedDeduplication", A::ContentBasedDeduplication),
            ("VisibilityTimeout", A::VisibilityTimeout),
            ("MessageRetentionPeriod", A::MessageRetentionPeriod),
        ] {
            if let Some(v) = props.get(key) {
                let v = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                attributes.insert(attribute, v);
            }
        }
        if let Some(redrive) = props.get("RedrivePolicy") {
            let resolved = self
                .resolve(redrive)
                .unwrap_or_else(|e| panic!("{logical}: {e}"));
            attributes.insert(A::RedrivePolicy, resolved.to_string());
        }
        let sqs = self.admin.sqs();
        let url = sqs
            .create_queue()
            .queue_name(&name)
            .set_attributes(Some(attributes.into_iter().collect()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("create queue {logical}: {e:?}"))
            .queue_url
            .expect("queue URL");
        Physical {
            attributes: BTreeMap::from([
                (
                    "Arn".into(),
                    format!("arn:aws:sqs:{}:{}:{name}", self.region, self.account),
                ),
                ("QueueName".into(), name.clone()),
                ("QueueUrl".into(), url.clone()),
            ]),
            reference: url,
        }
    }

    async fn create_bucket(&self, logical: &str) -> Physical {
        let name = unique(logical);
        let s3 = self.admin.s3();
        let mut request = s3.create_bucket().bucket(&name);
        if self.region != "us-east-1" {
            request = request.create_bucket_configuration(
                aws_sdk_s3::types::CreateBucketConfiguration::builder()
                    .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(
                        self.region.as_str(),
                    ))
                    .build(),
            );
        }
        request
            .send()
            .await
            .unwrap_or_else(|e| panic!("create bucket {logical}: {e:?}"));
        Physical {
            attributes: BTreeMap::from([("Arn".into(), format!("arn:aws:s3:::{name}"))]),
            reference: name,
        }
    }

    async fn create_topic(&self, logical: &str) -> Physical {
        let name = unique(logical);
        let arn = self
            .admin
            .sns()
            .create_topic()
            .name(&name)
            .send()
            .await
            .unwrap_or_else(|e| panic!("create topic {logical}: {e:?}"))
            .topic_arn
            .expect("topic ARN");
        Physical {
            attributes: BTreeMap::from([
                ("TopicArn".into(), arn.clone()),
                ("TopicName".into(), name),
            ]),
            reference: arn,
        }
    }

    /// `Ref` of a parameter, a pseudo parameter or a resource of this stack.
    fn reference(&self, name: &str) -> Result<String, String> {
        if let Some(v) = self.parameters.get(name) {
            return Ok(v.clone());
        }
        if let Some(r) = self.resources.get(name) {
            return Ok(r.reference.clone());
        }
        match name {
            "AWS::Region" => return Ok(self.region.clone()),
            "AWS::AccountId" => return Ok(self.account.clone()),
            "AWS::Partition" => return Ok("aws".into()),
            "AWS::URLSuffix" => return Ok("amazonaws.com".into()),
            "AWS::StackName" => return Ok("cloudshelf-centra-test".into()),
            _ => {}
        }
        if let Some(default) = self.roles["parameters"][name].get("Default") {
            return Ok(match default {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            });
        }
        if self.roles["parameters"].get(name).is_some() {
            return Err(format!(
                "parameter {name} has no default and the test set no value for it"
            ));
        }
        Err(format!(
            "{name} is not a parameter of the template or a resource this test stack creates"
        ))
    }

    fn attribute(&self, resource: &str, attribute: &str) -> Result<String, String> {
        self.resources
            .get(resource)
            .ok_or_else(|| {
                format!("Fn::GetAtt {resource}.{attribute}: no such resource in the test stack")
            })?
            .attributes
            .get(attribute)
            .cloned()
            .ok_or_else(|| {
                format!("Fn::GetAtt {resource}.{attribute}: attribute not known to the test stack")
            })
    }

    fn substitute(&self, text: &str, locals: &BTreeMap<String, String>) -> Result<String, String> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let end = rest[start..]
                .find('}')
                .ok_or_else(|| format!("unclosed ${{ in Fn::Sub {text:?}"))?
                + start;
            let var = &rest[start + 2..end];
            if let Some(literal) = var.strip_prefix('!') {
                out.push_str("${");
                out.push_str(literal);
                out.push('}');
            } else if let Some(v) = locals.get(var) {
                out.push_str(v);
            } else if let Some((resource, attribute)) = var.split_once('.') {
                out.push_str(&self.attribute(resource, attribute)?);
            } else {
                out.push_str(&self.reference(var)?);
            }
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// `value` with Ref, Fn::GetAtt, Fn::Sub, Fn::Join and Fn::Select resolved against this stack.
    pub fn resolve(&self, value: &Value) -> Result<Value, String> {
        match value {
            Value::Array(items) => items.iter().map(|v| self.resolve(v)).collect(),
            Value::Object(map) if map.len() == 1 => {
                let (key, arg) = map.iter().next().unwrap();
                match key.as_str() {
                    "Ref" => Ok(Value::String(self.reference(arg.as_str().ok_or("Ref of a non-string")?)?)),
                    "Fn::GetAtt" => {
                        let (resource, attribute) = match arg {
                            Value::String(s) => s.split_once('.').ok_or("Fn::GetAtt without an attribute")?,
                            Value::Array(a) if a.len() == 2 => (
                                a[0].as_str().ok_or("Fn::GetAtt resource")?,
                                a[1].as_str().ok_or("Fn::GetAtt attribute")?,
                            ),
                            other => return Err(format!("Fn::GetAtt {other}")),
                        };
                        Ok(Value::String(self.attribute(resource, attribute)?))
                    }
                    "Fn::Sub" => {
                        let (text, locals) = match arg {
                            Value::String(s) => (s.as_str(), BTreeMap::new()),
                            Value::Array(a) if a.len() == 2 => {
                                let locals = a[1]
                                    .as_object()
                                    .ok_or("Fn::Sub variables")?
                                    .iter()
                                    .map(|(k, v)| match self.resolve(v)? {
                                        Value::String(s) => Ok((k.clone(), s)),
                                        other => Err(format!("Fn::Sub variable {k} is {other}")),
                                    })
                                    .collect::<Result<_, String>>()?;
                                (a[0].as_str().ok_or("Fn::Sub text")?, locals)
                            }
                            other => return Err(format!("Fn::Sub {other}")),
                        };
                        Ok(Value::String(self.substitute(text, &locals)?))
                    }
                    "Fn::Join" => {
                        let a = arg.as_array().filter(|a| a.len() == 2).ok_or("Fn::Join")?;
                        let delimiter = a[0].as_str().ok_or("Fn::Join delimiter")?;
                        let parts = self.resolve(&a[1])?;
                        let parts: Vec<String> = parts
                            .as_array()
                            .ok_or("Fn::Join list")?
                            .iter()
                            .map(|p| p.as_str().map(str::to_string).ok_or(format!("Fn::Join part {p}")))
                            .collect::<Result<_, _>>()?;
                        Ok(Value::String(parts.join(delimiter)))
                    }
                    "Fn::Select" => {
                        let a = arg.as_array().filter(|a| a.len() == 2).ok_or("Fn::Select")?;
                        let index = match self.resolve(&a[0])? {
                            Value::String(s) => s.parse::<usize>().map_err(|e| e.to_string())?,
                            Value::Number(n) => n.as_u64().ok_or("Fn::Select index")? as usize,
                            other => return Err(format!("Fn::Select index {other}")),
                        };
                        self.resolve(&a[1])?
                            .as_array()
                            .and_then(|l| l.get(index).cloned())
                            .ok_or_else(|| format!("Fn::Select {index} out of range"))
                    }
                    k if k.starts_with("Fn::") || k == "Condition" => Err(format!(
                        "{k} is not resolved by shared/tests/deployed (add it if the template needs it)"
                    )),
                    _ => Ok(Value::Object(
                        [(key.clone(), self.resolve(arg)?)].into_iter().collect(),
                    )),
                }
            }
            Value::Object(map) => Ok(Value::Object(
                map.iter()
                    .map(|(k, v)| Ok((k.clone(), self.resolve(v)?)))
                    .collect::<Result<_, String>>()?,
            )),
            other => Ok(other.clone()),
        }
    }

    /// The function whose binary is `binary`, as the template deploys it.
    pub fn spec(&self, binary: &str) -> FunctionSpec {
        let function = self.roles["functions"]
            .get(binary)
            .unwrap_or_else(|| panic!("template.yaml has no function building {binary}"));
        let environment = function["environment"]
            .as_object()
            .expect("environment")
            .iter()
            .map(|(name, value)| {
                let resolved = self
                    .resolve(value)
                    .unwrap_or_else(|e| panic!("{binary}: environment {name}: {e}"));
                let text = match resolved {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                (name.clone(), text)
            })
            .collect();
        let mut statements = Vec::new();
        for policy in function["policies"].as_array().expect("policies") {
            let source = policy["source"].as_str().unwrap_or("?");
            for statement in policy["statements"].as_array().expect("statements") {
                let resolved = self
                    .resolve(statement)
                    .unwrap_or_else(|e| panic!("{binary}: {source}: {e}"));
                statements.push(
                    Statement::parse(source, &resolved).unwrap_or_else(|e| panic!("{binary}: {e}")),
                );
            }
        }
        FunctionSpec {
            binary: binary.into(),
            environment,
            statements,
        }
    }

    /// The environment and clients of `spec`'s function: every read and call is recorded for
    /// [`Stack::assert_deployable`].
    pub fn deploy(&self, spec: FunctionSpec) -> Deployed {
        let recorder = Arc::new(Recorder::new(
            &spec.binary,
            spec.statements,
            &self.region,
            &self.account,
            spec.environment.clone(),
        ));
        self.deployed.0.lock().unwrap().push(recorder.clone());
        let variables = spec.environment;
        let reads = recorder.clone();
        Deployed {
            env: Env::from_fn(move |name| {
                let value = variables.get(name).cloned();
                reads.note_read(name, value.is_some());
                value
            }),
            aws: AwsConfig::new(self.admin.sdk.clone())
                .with_interceptor(RoleCheck(recorder.clone())),
            recorder,
        }
    }

    /// Builds `binary` the way its main does, from `spec`; a start-up error is returned, with what was denied.
    pub async fn try_build<T, F, Fut>(&self, spec: FunctionSpec, wiring: F) -> Result<T, String>
    where
        F: FnOnce(Env, AwsConfig, Arc<Metrics>) -> Fut,
        Fut: std::future::Future<Output = Result<T, ConfigError>>,
    {
        let binary = spec.binary.clone();
        let d = self.deploy(spec);
        let built = wiring(d.env.clone(), d.aws.clone(), Arc::new(Metrics::new())).await;
        // The main reads the metrics namespace next.
        shared::config::env::metrics_namespace_in(&d.env);
        if built.is_ok() {
            d.recorder.mark_started();
        }
        built.map_err(|e| {
            let denied: Vec<String> = d
                .recorder
                .denied()
                .iter()
                .map(|c| format!("{} on {}", c.permission.action, c.permission.resource))
                .collect();
            format!("{binary} does not start: {e} (denied: {denied:?})")
        })
    }

    async fn build<T, F, Fut>(&self, binary: &str, wiring: F) -> T
    where
        F: FnOnce(Env, AwsConfig, Arc<Metrics>) -> Fut,
        Fut: std::future::Future<Output = Result<T, ConfigError>>,
    {
        self.try_build(self.spec(binary), wiring)
            .await
            .unwrap_or_else(|e| panic!("with the template's environment and role, {e}"))
    }

    pub async fn webhook_intake(&self) -> shared::intake::http::WebhookIntake {
        self.build("webhook-intake", |env, aws, metrics| async move {
            shared::wiring::aws::intake_from(&env, &aws, metrics).await
        })
        .await
    }

    pub async fn stock_apply(&self) -> shared::stock::apply::StockApplier {
        self.build("stock-apply", |env, aws, metrics| async move {
            shared::wiring::aws::applier_from(&env, &aws, metrics).await
        })
        .await
    }

    pub async fn stock_push(&self) -> shared::stock::push::StockPusher {
        self.build("stock-push", |env, aws, metrics| async move {
            shared::wiring::aws::pusher_from(&env, &aws, metrics).await
        })
        .await
    }

    pub async fn order_sync(&self) -> shared::orders::sync::OrderSync {
        self.build("order-sync", |env, aws, metrics| async move {
            shared::wiring::orders::order_sync_from(&env, &aws, metrics).await
        })
        .await
    }

    pub async fn reconcile(&self) -> shared::recon::ReconContext {
        self.build("reconcile", |env, aws, metrics| async move {
            shared::wiring::recon::recon_from(&env, &aws, metrics).await
        })
        .await
    }

    pub async fn event_archive(&self) -> shared::archive::EventArchiver {
        self.build("event-archive", |env, aws, metrics| async move {
            shared::wiring::aws::archiver_from(&env, &aws, metrics).await
        })
        .await
    }

    /// The stream filters of `binary`'s DynamoDB event source, as the template gives them to Lambda.
    pub fn stream_filters(&self, binary: &str) -> Vec<Value> {
        self.roles["functions"][binary]["stream_filters"]
            .as_array()
            .unwrap_or_else(|| panic!("template.yaml gives {binary} no stream event source"))
            .iter()
            .map(|p| serde_json::from_str(p.as_str().expect("a filter pattern")).unwrap())
            .collect()
    }

    /// Writes the catalogue snapshot as the SKU audit would (with the test's own rights).
    pub async fn put_catalogue_snapshot(&self, sizes: Vec<shared::centra::SizeRecord>) {
        let snapshot = shared::stock::identity::CatalogueSnapshot {
            taken_at_ms: chrono::Utc::now().timestamp_millis(),
            sizes,
        };
        self.admin
            .s3()
            .put_object()
            .bucket(&self.resources["ReportsBucket"].reference)
            .key(shared::stock::identity::SNAPSHOT_KEY)
            .body(serde_json::to_vec(&snapshot).unwrap().into())
            .send()
            .await
            .expect("put the catalogue snapshot");
    }

    /// A handle that checks, at any time, that no function of this stack was denied a call.
    pub fn watch(&self) -> Watch {
        self.deployed.clone()
    }

    pub fn assert_no_denials(&self) {
        self.deployed.assert_no_denials();
    }

    pub fn recorders(&self) -> Vec<Arc<Recorder>> {
        self.deployed.0.lock().unwrap().clone()
    }

    /// Whether a read of the unset variable `name` by `r`'s function is one the template may leave unset.
    fn unset_read_allowed(&self, r: &Recorder, name: &str) -> bool {
        if DEFAULTED.contains(&name) {
            return true;
        }
        let set = |n: &str| r.environment.contains_key(n);
        let chain_set = |base: &str| {
            set(base) || set(&format!("{base}_SECRET_ARN")) || set(&format!("{base}_SSM_PARAMETER"))
        };
        // A secret is looked up as NAME, NAME_SECRET_ARN, NAME_SSM_PARAMETER: the others are unset by design.
        let base = name
            .strip_suffix("_SECRET_ARN")
            .or_else(|| name.strip_suffix("_SSM_PARAMETER"))
            .unwrap_or(name);
        if chain_set(base) {
            return true;
        }
        // An Order-API secret the mappings name is found in the ORDER_API_SECRETS bundle when not set alone.
        if self.order_api_secret_names.contains(base) && chain_set("ORDER_API_SECRETS") {
            return true;
        }
        // Mappings: inline or a file locally, the SSM parameter when deployed.
        matches!(name, "MAPPINGS" | "MAPPINGS_PATH") && set("MAPPINGS_SSM_PARAMETER")
    }

    /// What makes the deployed stack not work as tested: calls a role denied, variables read but not set, and
    /// variables set but never read. Empty when the template holds.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for r in self.recorders() {
            for call in r.denied() {
                problems.push(describe_denial(&r.function, &call));
            }
            let reads = r.reads();
            for (name, set) in &reads {
                if !set && !self.unset_read_allowed(&r, name) {
                    problems.push(format!(
                        "{}: reads {name}, which template.yaml does not set for it",
                        r.function
                    ));
                }
            }
            // Only a function its wiring built has read what it reads at start-up.
            for name in r.environment.keys().filter(|_| r.started()) {
                if !READ_OUTSIDE_WIRING.contains(&name.as_str())
                    && !reads.iter().any(|(read, _)| read == name)
                {
                    problems.push(format!(
                        "{}: template.yaml sets {name}, which the function never reads",
                        r.function
                    ));
                }
            }
        }
        problems
    }

    /// `arn` with the stack's physical names replaced by the template's logical ids and parameter names.
    pub fn logical(&self, arn: &str) -> String {
        let mut named: Vec<(String, String)> = Vec::new();
        for (logical, physical) in &self.resources {
            for value in physical.attributes.values().chain([&physical.reference]) {
                if value.starts_with("arn:") {
                    named.push((value.clone(), logical.clone()));
                }
            }
        }
        for (parameter, value) in &self.parameters {
            if value.starts_with("arn:") {
                named.push((value.clone(), format!("${{{parameter}}}")));
            } else if value.starts_with('/') {
                named.push((
                    format!(
                        "arn:aws:ssm:{}:{}:parameter{value}",
                        self.region, self.account
                    ),
                    format!("parameter ${{{parameter}}}"),
                ));
            }
        }
        // Longest first: a bucket's ARN is a prefix of its objects'.
        named.sort_by_key(|(arn, _)| std::cmp::Reverse(arn.len()));
        named
            .iter()
            .find_map(|(value, name)| {
                arn.strip_prefix(value.as_str())
                    .map(|rest| format!("{name}{rest}"))
            })
            .unwrap_or_else(|| arn.to_string())
    }

    /// Fails the test with every problem of [`Stack::problems`]. With `DEPLOYED_CALLS_LOG` set, first appends
    /// every allowed (function, action, resource) to that file: the record of what each role is used for.
    pub fn assert_deployable(&self) {
        if let Ok(path) = std::env::var("DEPLOYED_CALLS_LOG") {
            use std::io::Write;
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .unwrap_or_else(|e| panic!("{path}: {e}"));
            for (function, action, resource) in self.used_permissions() {
                writeln!(file, "{function}\t{action}\t{}", self.logical(&resource)).unwrap();
            }
        }
        let problems = self.problems();
        assert!(
            problems.is_empty(),
            "the functions do not work as template.yaml deploys them:\n  {}",
            problems.join("\n  ")
        );
    }

    /// (function, action, resource) of every allowed call so far, for the record of what each role needs.
    pub fn used_permissions(&self) -> BTreeSet<(String, String, String)> {
        self.recorders()
            .iter()
            .flat_map(|r| {
                r.used()
                    .into_iter()
                    .map(|p| (r.function.clone(), p.action, p.resource))
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

/// `POST /v1/store-events` through the intake's HTTP route (the Lambda handler's), signed with the stack's
/// store-events secret: (status, body).
pub async fn post_store_event(
    intake: &shared::intake::http::WebhookIntake,
    id: &str,
    body: &str,
) -> (u16, String) {
    let ts = chrono::Utc::now().timestamp();
    let signature = shared::intake::signature::sign(STORE_EVENTS_SECRET, id, ts, body.as_bytes());
    let mut headers = http::HeaderMap::new();
    headers.insert("content-type", "application/json".parse().unwrap());
    headers.insert("webhook-id", id.parse().unwrap());
    headers.insert("webhook-timestamp", ts.to_string().parse().unwrap());
    headers.insert("webhook-signature", signature.parse().unwrap());
    let response = shared::intake::http::route(
        intake,
        &http::Method::POST,
        shared::intake::http::STORE_EVENTS_PATH,
        &headers,
        body.as_bytes(),
    )
    .await;
    (response.status().as_u16(), response.into_body())
}

/// `POST /v1/centra-webhooks` (form-encoded `payload=…`), signed with the stack's Centra webhook secret.
pub async fn post_centra_webhook(
    intake: &shared::intake::http::WebhookIntake,
    payload: &str,
) -> (u16, String) {
    let form = format!("payload={}", form_encode(payload));
    let t = chrono::Utc::now().timestamp();
    let signature =
        shared::intake::centra_webhooks::sign_centra(CENTRA_WEBHOOK_SECRET, t, form.as_bytes());
    let mut headers = http::HeaderMap::new();
    headers.insert(
        "content-type",
        "application/x-www-form-urlencoded".parse().unwrap(),
    );
    headers.insert(
        shared::intake::centra_webhooks::SIGNATURE_HEADER,
        signature.parse().unwrap(),
    );
    let response = shared::intake::http::route(
        intake,
        &http::Method::POST,
        shared::intake::http::CENTRA_WEBHOOKS_PATH,
        &headers,
        form.as_bytes(),
    )
    .await;
    (response.status().as_u16(), response.into_body())
}

fn form_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The stock path of a stack: intake, apply and push as built for their Lambdas, driven as their SQS triggers
/// drive them. The trigger's receive and delete are the Lambda service's (AWSLambdaSQSQueueExecutionRole), not
/// the function code's, so they use the test's own client.
pub struct StockPipeline {
    pub intake: shared::intake::http::WebhookIntake,
    pub applier: shared::stock::apply::StockApplier,
    pub pusher: shared::stock::push::StockPusher,
    pub sqs: aws_sdk_sqs::Client,
    pub stock_queue: String,
    pub push_queue: String,
    watch: Watch,
}

impl StockPipeline {
    pub async fn new(stack: &Stack) -> Self {
        Self {
            watch: stack.watch(),
            intake: stack.webhook_intake().await,
            applier: stack.stock_apply().await,
            pusher: stack.stock_push().await,
            sqs: stack.admin.sqs(),
            stock_queue: stack.resources["StockQueue"].reference.clone(),
            push_queue: stack.resources["StockPushQueue"].reference.clone(),
        }
    }

    /// A signed store event through intake's HTTP route; its status (a 5xx fails the test: intake is broken).
    pub async fn send(&self, id: &str, body: &str) -> u16 {
        let (status, answer) = post_store_event(&self.intake, id, body).await;
        self.watch.assert_no_denials();
        assert!(status < 500, "{status} {answer}");
        status
    }

    /// One FIFO trigger invocation. `delete` false simulates a crash before the trigger deletes the batch.
    pub async fn apply_batch(&self, delete: bool) -> usize {
        use shared::adapters::aws::sqs::{change_visibility, delete_messages, receive_batch};
        let got = receive_batch(&self.sqs, &self.stock_queue, 10, 30)
            .await
            .unwrap();
        let items = got
            .iter()
            .map(|m| shared::stock::batch::FifoItem {
                message_id: m.message_id.clone(),
                group_id: m.group_id.clone().expect("FIFO messages carry a group"),
                payload: m.body.clone(),
            })
            .collect();
        let failed = self.applier.process_batch(items).await;
        self.watch.assert_no_denials();
        for m in &got {
            if failed.contains(&m.message_id) || !delete {
                change_visibility(&self.sqs, &self.stock_queue, &m.receipt_handle, 0)
                    .await
                    .unwrap();
            } else {
                delete_messages(
                    &self.sqs,
                    &self.stock_queue,
                    std::slice::from_ref(&m.receipt_handle),
                )
                .await
                .unwrap();
            }
        }
        got.len()
    }

    pub async fn apply_all(&self) {
        while self.apply_batch(true).await > 0 {}
    }

    /// Push trigger invocations until the push queue is empty; every key must be pushed.
    pub async fn push_all(&self) {
        use shared::adapters::aws::sqs::{delete_messages, receive_batch};
        loop {
            let got = receive_batch(&self.sqs, &self.push_queue, 10, 30)
                .await
                .unwrap();
            if got.is_empty() {
                return;
            }
            let keys: Vec<shared::stock::ports::DirtyKey> = got
                .iter()
                .map(|m| serde_json::from_str(&m.body).unwrap())
                .collect();
            let report = self
                .pusher
                .push_keys(keys, self.pusher.clock.now_millis() + 30_000)
                .await;
            self.watch.assert_no_denials();
            assert!(report.failed_keys.is_empty(), "{report:?}");
            let handles: Vec<String> = got.iter().map(|m| m.receipt_handle.clone()).collect();
            delete_messages(&self.sqs, &self.push_queue, &handles)
                .await
                .unwrap();
        }
    }

    /// Applies and pushes until both queues are empty.
    pub async fn settle(&self) {
        self.apply_all().await;
        self.push_all().await;
    }
}

/// Every record of `table`'s stream so far, as the DynamoDB Streams API answers them (the JSON Lambda delivers in
/// an event's `Records`), read from moto over the wire: DescribeStream, GetShardIterator (TRIM_HORIZON),
/// GetRecords until a shard has nothing more.
pub async fn stream_records(stack: &Stack, table: &str) -> Vec<Value> {
    let stream = stack.resources[table].attributes["StreamArn"].clone();
    let http = reqwest::Client::new();
    let endpoint = std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL");
    let call = |target: &'static str, body: Value| {
        let (http, endpoint) = (http.clone(), endpoint.clone());
        async move {
            let answer = http
                .post(&endpoint)
                .header("content-type", "application/x-amz-json-1.0")
                .header("x-amz-target", format!("DynamoDBStreams_20120810.{target}"))
                // moto routes by the credential scope's service; it does not check signatures.
                .header(
                    "authorization",
                    "AWS4-HMAC-SHA256 Credential=test/20260101/eu-west-1/dynamodb/aws4_request, \
                     SignedHeaders=host, Signature=0",
                )
                .body(body.to_string())
                .send()
                .await
                .unwrap_or_else(|e| panic!("{target}: {e}"));
            let status = answer.status();
            let text = answer.text().await.unwrap();
            assert!(status.is_success(), "{target}: {status} {text}");
            serde_json::from_str::<Value>(&text).unwrap()
        }
    };
    let described = call("DescribeStream", serde_json::json!({ "StreamArn": stream })).await;
    let mut records = Vec::new();
    for shard in described["StreamDescription"]["Shards"].as_array().unwrap() {
        let iterator = call(
            "GetShardIterator",
            serde_json::json!({
                "StreamArn": stream,
                "ShardId": shard["ShardId"],
                "ShardIteratorType": "TRIM_HORIZON",
            }),
        )
        .await;
        let mut next = iterator["ShardIterator"].clone();
        while next.is_string() {
            let page = call("GetRecords", serde_json::json!({ "ShardIterator": next })).await;
            let got = page["Records"].as_array().cloned().unwrap_or_default();
            if got.is_empty() {
                break;
            }
            records.extend(got);
            next = page["NextShardIterator"].clone();
        }
    }
    records
}

/// Whether `record` passes a Lambda event filter `pattern` (the subset the template uses: lists of values,
/// `{"prefix": …}`, `{"exists": …}`, nested objects).
pub fn filter_matches(pattern: &Value, record: &Value) -> bool {
    let Value::Object(fields) = pattern else {
        return false;
    };
    fields.iter().all(|(name, rule)| {
        let value = record.get(name);
        match rule {
            Value::Object(_) => value.is_some_and(|v| filter_matches(rule, v)),
            Value::Array(options) => options.iter().any(|option| match option {
                Value::Object(o) if o.contains_key("exists") => {
                    o["exists"].as_bool() == Some(value.is_some())
                }
                Value::Object(o) if o.contains_key("prefix") => value
                    .and_then(Value::as_str)
                    .zip(o["prefix"].as_str())
                    .is_some_and(|(v, p)| v.starts_with(p)),
                exact => value == Some(exact),
            }),
            _ => false,
        }
    })
}
