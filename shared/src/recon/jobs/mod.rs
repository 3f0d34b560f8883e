//! The reconciliation jobs, one file each.

pub mod availability;
pub mod finance;
pub mod sku_audit;
pub mod stalled;
pub mod stock_drift;
