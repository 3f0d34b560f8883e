//! AWS implementations of the ports: DynamoDB, SQS, Secrets Manager / SSM.
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
