//! What every layer shares and that depends on nothing in the crate: identifiers, time, errors, money, the
//! object store port, gzip, operator actions.

pub mod clock;
pub mod errors;
pub mod gzip;
pub mod ids;
pub mod money;
pub mod objects;
pub mod operator;
