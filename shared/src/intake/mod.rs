//! The two webhook endpoints (store events, Centra webhooks), their signatures and the HTTP adapter.

pub mod centra_webhooks;
pub mod contract;
pub mod http;
pub mod signature;
pub mod store_events;
