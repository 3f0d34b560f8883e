//! A minimal client of the moto server for provisioning and inspecting what the functions use: each AWS
//! protocol spoken directly over HTTP (JSON for DynamoDB, SQS, Secrets Manager and SSM; REST for S3; query for
//! SNS). moto does not check signatures, only reads the region and service from the credential scope, so the
//! requests carry an unsigned `Authorization` header. This keeps the black-box crate free of the AWS SDK and of
//! the product's own AWS code, whose behaviour is what the test looks at.

use serde_json::{json, Value};

pub const REGION: &str = "eu-west-1";
/// moto's default account.
pub const ACCOUNT: &str = "123456789012";

pub struct Moto {
    pub endpoint: String,
    http: reqwest::Client,
}

fn auth(service: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential=testing/20260101/{REGION}/{service}/aws4_request, \
         SignedHeaders=host, Signature=0"
    )
}

/// `application/x-www-form-urlencoded` (reqwest's `form` needs a feature the workspace does not enable).
fn form(params: &[(&str, &str)]) -> String {
    let encode = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    params
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

impl Moto {
    /// The moto server `scripts/test.sh` started (`AWS_ENDPOINT_URL`).
    pub fn from_env() -> Moto {
        let endpoint = std::env::var("AWS_ENDPOINT_URL")
            .expect("AWS_ENDPOINT_URL is not set: run scripts/test.sh (starts moto)");
        Moto {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            http: reqwest::Client::new(),
        }
    }

    /// One call of a JSON-protocol service; panics on an error answer, naming it.
    pub async fn call(&self, service: &str, target: &str, version: &str, body: Value) -> Value {
        let response = self
            .http
            .post(format!("{}/", self.endpoint))
            .header("authorization", auth(service))
            .header("x-amz-target", target)
            .header("content-type", format!("application/x-amz-json-{version}"))
            .body(body.to_string())
            .send()
            .await
            .unwrap_or_else(|e| panic!("moto {target}: {e}"));
        let status = response.status();
        let text = response.text().await.expect("moto answer");
        assert!(status.is_success(), "moto {target}: HTTP {status}: {text}");
        if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("moto {target}: {e}: {text}"))
        }
    }

    pub async fn dynamodb(&self, op: &str, body: Value) -> Value {
        self.call("dynamodb", &format!("DynamoDB_20120810.{op}"), "1.0", body)
            .await
    }

    pub async fn sqs(&self, op: &str, body: Value) -> Value {
        self.call("sqs", &format!("AmazonSQS.{op}"), "1.0", body)
            .await
    }

    pub async fn secretsmanager(&self, op: &str, body: Value) -> Value {
        self.call(
            "secretsmanager",
            &format!("secretsmanager.{op}"),
            "1.1",
            body,
        )
        .await
    }

    pub async fn ssm(&self, op: &str, body: Value) -> Value {
        self.call("ssm", &format!("AmazonSSM.{op}"), "1.1", body)
            .await
    }

    /// An S3 request (path-style); returns the status and body.
    pub async fn s3(&self, method: reqwest::Method, path: &str, body: Vec<u8>) -> (u16, Vec<u8>) {
        let response = self
            .http
            .request(
                method,
                format!("{}/{}", self.endpoint, path.trim_start_matches('/')),
            )
            .header("authorization", auth("s3"))
            .body(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("moto S3 {path}: {e}"));
        let status = response.status().as_u16();
        (status, response.bytes().await.expect("S3 body").to_vec())
    }

    /// An SNS (query protocol) call; returns the XML answer.
    pub async fn sns(&self, params: &[(&str, &str)]) -> String {
        let response = self
            .http
            .post(format!("{}/", self.endpoint))
            .header("authorization", auth("sns"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[params, &[("Version", "2010-03-31")]].concat()))
            .send()
            .await
            .expect("moto SNS");
        let status = response.status();
        let text = response.text().await.expect("SNS answer");
        assert!(
            status.is_success(),
            "moto SNS {params:?}: HTTP {status}: {text}"
        );
        text
    }

    pub async fn create_table(&self, name: &str, keys: &[(&str, &str)], ttl: Option<&str>) {
        self.dynamodb(
            "CreateTable",
            json!({
                "TableName": name,
                "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": keys.iter().map(|(n, _)| json!({"AttributeName": n, "AttributeType": "S"})).collect::<Vec<_>>(),
                "KeySchema": keys.iter().map(|(n, k)| json!({"AttributeName": n, "KeyType": k})).collect::<Vec<_>>(),
            }),
        )
        .await;
        if let Some(attribute) = ttl {
            self.dynamodb(
                "UpdateTimeToLive",
                json!({"TableName": name, "TimeToLiveSpecification": {"AttributeName": attribute, "Enabled": true}}),
            )
            .await;
        }
    }

    /// Every item of a table (one page is plenty here).
    pub async fn scan(&self, table: &str) -> Vec<Value> {
        self.dynamodb("Scan", json!({ "TableName": table })).await["Items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Creates a queue; returns its URL.
    pub async fn create_queue(&self, name: &str, attributes: Value) -> String {
        self.sqs(
            "CreateQueue",
            json!({ "QueueName": name, "Attributes": attributes }),
        )
        .await["QueueUrl"]
            .as_str()
            .expect("QueueUrl")
            .to_string()
    }

    pub fn queue_arn(name: &str) -> String {
        format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{name}")
    }

    /// Receives up to 10 messages (with their system attributes).
    pub async fn receive(&self, queue_url: &str) -> Vec<Value> {
        self.sqs(
            "ReceiveMessage",
            json!({
                "QueueUrl": queue_url,
                "MaxNumberOfMessages": 10,
                "MessageSystemAttributeNames": ["All"],
                "AttributeNames": ["All"],
            }),
        )
        .await["Messages"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Creates a secret; returns its ARN.
    pub async fn create_secret(&self, name: &str, value: &str) -> String {
        self.secretsmanager(
            "CreateSecret",
            json!({ "Name": name, "SecretString": value }),
        )
        .await["ARN"]
            .as_str()
            .expect("ARN")
            .to_string()
    }
}
