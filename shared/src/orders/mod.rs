//! Kiosk orders: the `order.placed` model, injection into Centra, and the lifecycle back to Cloudshelf.

pub mod local;
pub mod model;
pub mod outbox;
pub mod placed;
pub mod stalled;
pub mod sync;
pub mod wiring;
