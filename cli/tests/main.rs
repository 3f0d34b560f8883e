//! The integration tests of this package in one test binary: one module per former test file.

mod centra_check;
mod cli;
