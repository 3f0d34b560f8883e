//! Common crate of the Cloudshelf ⇄ Centra integration.
//!
//! The domain modules (`store_events`, `ledger`, `intake`, `apply`, `push`, …) know no AWS types: they talk to
//! storage and queues through the small traits in `ports`. `aws` holds the DynamoDB / SQS / Secrets Manager
//! implementations, `embedded` the in-process ones used by the local run, tests and benchmarks.

pub mod apply;
pub mod audit;
pub mod aws;
pub mod batch;
pub mod budget;
pub mod centra;
pub mod centra_catalogue;
pub mod centra_order_reads;
pub mod centra_orders;
pub mod centra_webhooks;
pub mod cloudshelf;
pub mod cloudshelf_catalogue;
pub mod config;
pub mod domain;
pub mod embedded;
pub mod finance;
pub mod graphql_documents;
pub mod http_client;
pub mod identity;
pub mod intake;
pub mod lambda_sqs;
pub mod ledger;
pub mod local;
pub mod mappings;
pub mod metrics;
pub mod ops;
pub mod orders;
pub mod ports;
pub mod push;
pub mod recon;
pub mod signature;
pub mod store_events;
pub mod strict_json;
pub mod telemetry;
pub mod time;
pub mod wiring;
