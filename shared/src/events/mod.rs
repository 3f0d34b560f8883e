//! The store-events contract: strict JSON reading, stock events and `order.placed`, and the messages they
//! become on the queues.

pub mod envelope;
pub mod order_placed;
pub mod orders;
pub mod store_events;
pub mod strict_json;
