//! Kiosk orders: injection into Centra, the outbox, and the lifecycle back to Cloudshelf.

pub mod outbox;
pub mod stalled;
pub mod sync;
