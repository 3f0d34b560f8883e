//! Building the services from the environment: AWS (`aws`, `orders`, `recon`) and the local run (`local`,
//! `local_orders`).

pub mod aws;
pub mod local;
pub mod local_orders;
pub mod orders;
pub mod recon;
