//! The integration tests of `shared`, one test binary: one module per former test file; shared helpers in
//! `common/`, `deployed/`.

mod common;
mod deployed;

mod aws_archive;
mod aws_flow;
mod aws_moto;
mod aws_order_flow;
mod aws_orders_moto;
mod catalogue_clients;
mod centra_answers;
mod centra_orders_client;
mod centra_webhooks;
mod cloudshelf_client;
mod daybook_moto;
mod deployed_shape;
mod finance_close;
mod finance_daybook_flow;
mod graphql_documents;
mod handlers;
mod intake;
mod intake_fuzz;
mod item_identity;
mod module_graph;
mod ops_moto;
mod order_flow;
mod order_intake;
mod recon_drift;
mod recon_jobs;
mod recon_moto;
mod sample_events;
mod stock_flow;
mod store_business_day;
mod trace_flow;
