//! AWS implementations of the ports: DynamoDB, SQS, S3, SNS, Secrets Manager / SSM.
//!
//! No code path is special to local emulators: the SDK follows `AWS_ENDPOINT_URL`, so the same clients reach
//! moto in tests and the real services in Lambda.

#[cfg(feature = "dynamodb")]
pub mod archive_stream;
#[cfg(feature = "dynamodb")]
pub(crate) mod attrs;
#[cfg(feature = "dynamodb")]
pub mod budget;
#[cfg(feature = "dynamodb")]
pub mod daybook;
#[cfg(feature = "dynamodb")]
pub mod idempotency;
#[cfg(feature = "dynamodb")]
pub mod ledger;
#[cfg(feature = "dynamodb")]
pub mod orders;
#[cfg(feature = "test-support")]
pub mod provision;
pub mod recon;
pub mod secrets;
pub mod settings;
#[cfg(feature = "sqs")]
pub mod sqs;

use aws_smithy_runtime_api::client::interceptors::{Intercept, SharedInterceptor};
#[cfg(feature = "dynamodb")]
pub use budget::DynamoMutationBudget;
#[cfg(feature = "dynamodb")]
pub use daybook::DynamoDaybook;
#[cfg(feature = "dynamodb")]
pub use idempotency::DynamoIdempotencyStore;
#[cfg(feature = "dynamodb")]
pub use ledger::DynamoLedgerStore;
#[cfg(feature = "dynamodb")]
pub use orders::DynamoOrderOutbox;
#[cfg(feature = "sqs")]
pub use sqs::{ReceivedMessage, SqsFifoQueue, SqsPushQueue};

/// The SDK configuration from the environment (region, credentials, `AWS_ENDPOINT_URL`), latest behavior.
///
/// In Lambda the region and the role's credentials are environment variables and there is no `~/.aws`, so the
/// loader is told exactly that: no profile files (they would be looked for on every cold start) and credentials
/// from the environment only (not the whole default chain: profile, SSO, web identity, ECS, IMDS). Elsewhere
/// (the CLI, tests) the full default chain applies.
pub async fn sdk_config() -> aws_config::SdkConfig {
    config_loader(in_lambda()).load().await
}

/// Whether this process runs as a Lambda function (the runtime sets `AWS_LAMBDA_FUNCTION_NAME`).
pub fn in_lambda() -> bool {
    std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some()
}

fn config_loader(lambda: bool) -> aws_config::ConfigLoader {
    use aws_runtime::env_config::file::{EnvConfigFileKind, EnvConfigFiles};
    let loader =
        aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(https_client());
    if !lambda {
        return loader;
    }
    loader
        .profile_files(
            EnvConfigFiles::builder()
                .with_contents(EnvConfigFileKind::Config, "")
                .build(),
        )
        .credentials_provider(
            aws_config::environment::credentials::EnvironmentVariableCredentialsProvider::new(),
        )
}

/// The SDK's HTTPS client: the SDK's default hyper 1.x client (proxy from the environment, connector settings
/// and sleep from the runtime components), with rustls on `ring` instead of aws-lc, which keeps ~2 MB of
/// aws-lc out of every function (BENCHMARKS.md), and its TLS connector (the platform's CA roots, read and parsed)
/// built on the first request instead of when each client is created.
pub fn https_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
    use aws_smithy_http_client::{proxy::ProxyConfig, Builder, ConnectorBuilder};
    let client = Builder::new().build_with_connector_fn(|settings, components| {
        let mut connector =
            ConnectorBuilder::default().tls_provider(Provider::Rustls(CryptoMode::Ring));
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.set_proxy_config(Some(ProxyConfig::from_env()));
        connector.build()
    });
    aws_smithy_runtime_api::client::http::SharedHttpClient::new(ConnectOnFirstRequest(client))
}

/// Delegates to the SDK's client, except that it does not build a connector when a client is created: the
/// hyper client does so on purpose ("so that native certs load at client initialization"), which put the CA
/// bundle's reading and parsing (~4 ms of a 9 ms cold init here) into every function's init, even one whose
/// invocation then makes no AWS call for a while. The first request builds it instead (once per instance).
#[derive(Debug)]
struct ConnectOnFirstRequest(aws_smithy_runtime_api::client::http::SharedHttpClient);

impl aws_smithy_runtime_api::client::http::HttpClient for ConnectOnFirstRequest {
    fn http_connector(
        &self,
        settings: &aws_smithy_runtime_api::client::http::HttpConnectorSettings,
        components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
    ) -> aws_smithy_runtime_api::client::http::SharedHttpConnector {
        self.0.http_connector(settings, components)
    }

    fn connector_metadata(
        &self,
    ) -> Option<aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata> {
        self.0.connector_metadata()
    }
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

    #[cfg(feature = "dynamodb")]
    pub fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        let mut config = aws_sdk_dynamodb::config::Builder::from(&self.sdk);
        for i in &self.interceptors {
            config.push_interceptor(i.clone());
        }
        aws_sdk_dynamodb::Client::from_conf(config.build())
    }

    #[cfg(feature = "sqs")]
    pub fn sqs(&self) -> aws_sdk_sqs::Client {
        let mut config = aws_sdk_sqs::config::Builder::from(&self.sdk);
        for i in &self.interceptors {
            config.push_interceptor(i.clone());
        }
        aws_sdk_sqs::Client::from_conf(config.build())
    }

    #[cfg(feature = "s3")]
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

    #[cfg(feature = "sns")]
    pub fn sns(&self) -> aws_sdk_sns::Client {
        let mut config = aws_sdk_sns::config::Builder::from(&self.sdk);
        for i in &self.interceptors {
            config.push_interceptor(i.clone());
        }
        aws_sdk_sns::Client::from_conf(config.build())
    }

    #[cfg(feature = "secretsmanager")]
    pub fn secrets_manager(&self) -> aws_sdk_secretsmanager::Client {
        let mut config = aws_sdk_secretsmanager::config::Builder::from(&self.sdk);
        for i in &self.interceptors {
            config.push_interceptor(i.clone());
        }
        aws_sdk_secretsmanager::Client::from_conf(config.build())
    }

    #[cfg(feature = "ssm")]
    pub fn ssm(&self) -> aws_sdk_ssm::Client {
        let mut config = aws_sdk_ssm::config::Builder::from(&self.sdk);
        for i in &self.interceptors {
            config.push_interceptor(i.clone());
        }
        aws_sdk_ssm::Client::from_conf(config.build())
    }
}
