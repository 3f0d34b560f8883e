//! AWS implementations of the ports: DynamoDB, SQS, S3, SNS, Secrets Manager / SSM.
//!
//! No code path is special to local emulators: the SDK follows `AWS_ENDPOINT_URL`, so the same clients reach
//! moto in tests and the real services in Lambda.

mod attrs;
pub mod budget;
pub mod daybook;
pub mod idempotency;
pub mod ledger;
pub mod orders;
pub mod provision;
pub mod secrets;
pub mod sqs;

use aws_smithy_runtime_api::client::interceptors::{Intercept, SharedInterceptor};
pub use budget::DynamoMutationBudget;
pub use daybook::DynamoDaybook;
pub use idempotency::DynamoIdempotencyStore;
pub use ledger::DynamoLedgerStore;
pub use orders::DynamoOrderOutbox;
pub use sqs::{ReceivedMessage, SqsPushQueue, SqsStockQueue};

/// The SDK configuration from the environment (region, credentials, `AWS_ENDPOINT_URL`), latest behavior.
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

/// What a function builds its AWS clients from: the SDK configuration, and interceptors every client gets (none
/// in the Lambdas; the tests attach one that checks each call against the function's role in the template).
#[derive(Clone, Debug)]
pub struct AwsConfig {
    pub sdk: aws_config::SdkConfig,
    interceptors: Vec<SharedInterceptor>,
}

impl AwsConfig {
    pub fn new(sdk: aws_config::SdkConfig) -> Self {
        Self {
            sdk,
            interceptors: Vec::new(),
        }
    }

    pub async fn from_env() -> Self {
        Self::new(sdk_config().await)
    }

    pub fn with_interceptor(mut self, interceptor: impl Intercept + 'static) -> Self {
        self.interceptors.push(SharedInterceptor::new(interceptor));
        self
    }

    pub fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        let mut config = aws_sdk_dynamodb::config::Builder::from(&self.sdk);
        for i in &self.interceptors {
            config.push_interceptor(i.clone());
        }
        aws_sdk_dynamodb::Client::from_conf(config.build())
    }

    pub fn sqs(&self) -> aws_sdk_sqs::Client {
        let mut config = aws_sdk_sqs::config::Builder::from(&self.sdk);
        for i in &self.interceptors {
            config.push_interceptor(i.clone());
        }
        aws_sdk_sqs::Client::from_conf(config.build())
    }

    /// Path-style addressing when the configuration names a custom endpoint (`AWS_ENDPOINT_URL`, an emulator),
    /// virtual-hosted style (the AWS default) otherwise.
    pub fn s3(&self) -> aws_sdk_s3::Client {
        let mut config = aws_sdk_s3::config::Builder::from(&self.sdk)
            .force_path_style(self.sdk.endpoint_url().is_some());
        for i in &self.interceptors {
            config.push_interceptor(i.clone());
        }
        aws_sdk_s3::Client::from_conf(config.build())
    }

    pub fn sns(&self) -> aws_sdk_sns::Client {
        let mut config = aws_sdk_sns::config::Builder::from(&self.sdk);
        for i in &self.interceptors {
            config.push_interceptor(i.clone());
        }
        aws_sdk_sns::Client::from_conf(config.build())
    }

    pub fn secrets_manager(&self) -> aws_sdk_secretsmanager::Client {
        let mut config = aws_sdk_secretsmanager::config::Builder::from(&self.sdk);
        for i in &self.interceptors {
            config.push_interceptor(i.clone());
        }
        aws_sdk_secretsmanager::Client::from_conf(config.build())
    }

    pub fn ssm(&self) -> aws_sdk_ssm::Client {
        let mut config = aws_sdk_ssm::config::Builder::from(&self.sdk);
        for i in &self.interceptors {
            config.push_interceptor(i.clone());
        }
        aws_sdk_ssm::Client::from_conf(config.build())
    }
}
