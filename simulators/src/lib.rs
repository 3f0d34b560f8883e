//! Loopback simulators of the external systems the integration talks to, for tests,
//! benchmarks and local runs.

pub mod centra;
pub mod cloudshelf;
pub mod control;
pub mod graphql;
pub mod http;
pub mod process;
pub mod schema;
