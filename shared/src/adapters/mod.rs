//! Implementations of the ports: AWS (`aws`), in memory (`memory`), report sinks without AWS.

pub mod aws;
pub mod memory;
pub mod report_sinks;
