//! Stock sync: the per-(store, SKU) ledger, applying store movements to it, pushing them to Centra under a
//! mutation budget, FIFO batching, item identity, and the ports these use.

pub mod apply;
pub mod batch;
pub mod budget;
pub mod identity;
pub mod ledger;
pub mod ports;
pub mod push;
