//! Build script of every function (and of tools/hello-lambda, so the cold-init baseline is linked alike).
//!
//! The binary links as a position-dependent executable (Linux only; the binary alone, not its dependencies):
//! a PIE this size carries ~1.4 MB of relative relocations (the SDK's and serde's static tables) that the loader
//! applies, writing to ~400 pages, on every cold start — about 1 ms of CPU and 13% of the file
//! (BENCHMARKS.md, "Deployable builds"). The cost is no ASLR for the executable's own image.
fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
