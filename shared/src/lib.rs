//! Common crate of the Cloudshelf ⇄ Centra integration.
//!
//! # Layers
//!
//! `core` ← `config` / `events` ← domain (`intake`, `stock`, `orders`, `finance`, `recon`, `archive`) ← clients and adapters
//! (`centra`, `cloudshelf`, `adapters`) ← `wiring` / `lambda` / `ops`. A module imports only from its own layer or the
//! ones left of it; the domain knows no AWS types and talks to storage and queues through its ports. The test
//! `module_graph` (shared/tests/module_graph.rs, in the `integration` test binary) fails on an import cycle or a layer broken.
//!
//! # Crate map
//!
//! ```text
//! core/           ids (store, item, movement), clock, backend errors, money, object store port, gzip, operator
//!                 actions — imports nothing from the crate
//! config/         env (settings), mappings (stores, warehouses, currencies) — no AWS calls
//! events/         the store-events contract: strict_json, store_events (stock), order_placed, orders (messages)
//! intake/         signature, store_events and centra_webhooks (the two endpoints), http (the HTTP adapter)
//! stock/          ledger, apply, push, budget, batch, identity, ports (queues, ledger, budget)
//! orders/         outbox, sync (to Centra and Cloudshelf), stalled
//! finance/        daybook, day close, unposted movements
//! archive/        the event archive: accepted requests and applied movements as gzip JSON lines per store and day
//! recon/          run, checkpoint, request, snapshot, compare (pure comparisons), jobs/ (one per job), report/
//! centra/         Centra Integration API client: stock (mod), catalogue, order_reads, orders
//! cloudshelf/     Cloudshelf GraphQL client: orders (mod), catalogue
//! graphql_documents  every GraphQL document the clients send (checked against schema/)
//! http_client     the HTTPS client both API clients use
//! adapters/       aws/ (DynamoDB, SQS, S3, SNS, secrets; provision behind `test-support`), memory/ (in process),
//!                 report_sinks
//! telemetry/      logs, metrics (every metric name)
//! lambda/         SQS batch helpers and one handler per function
//! ops/            operators' actions (the CLI's): dlq list/redrive, orders retry, exceptions resolve, trace
//! wiring/         building the services: aws, orders, recon (from the environment), local, local_orders
//! ```

pub mod adapters;
pub mod archive;
pub mod centra;
pub mod cloudshelf;
pub mod config;
pub mod core;
pub mod events;
pub mod finance;
pub mod graphql_documents;
pub mod http_client;
pub mod intake;
pub mod lambda;
pub mod ops;
pub mod orders;
pub mod recon;
pub mod stock;
pub mod telemetry;
pub mod wiring;
