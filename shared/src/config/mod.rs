//! Settings: the environment (`env`) and the store mappings (`mappings`).

pub mod env;
pub mod mappings;
