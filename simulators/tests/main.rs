//! The integration tests of this package in one test binary: one module per former test file.

mod catalogue_sims;
mod centra_awkward;
mod centra_orders_sim;
mod centra_schema;
mod centra_sim;
mod centra_sim_process;
mod cloudshelf_sim;
