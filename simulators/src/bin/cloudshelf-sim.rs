//! `cloudshelf-sim`: the Cloudshelf simulator as a separate process.
//!
//! `cloudshelf-sim [--port N] [--token API_KEY]` listens on 127.0.0.1 (port 0, the default, picks a free
//! one), prints exactly one JSON line once it listens, `{"graphql_url": "..."}`, and serves until killed
//! or until its stdin closes. It has no control API: seed it through its GraphQL upserts.

use simulators::cloudshelf::{CloudshelfSim, CloudshelfSimConfig};
use simulators::process::{announce_and_serve, parse_args};

fn main() {
    let args = parse_args("usage: cloudshelf-sim [--port N] [--token API_KEY]");
    let mut config = CloudshelfSimConfig {
        port: args.port,
        ..CloudshelfSimConfig::default()
    };
    if let Some(token) = args.token {
        config.api_key = token;
    }
    let runtime = tokio::runtime::Runtime::new().expect("Tokio runtime");
    runtime.block_on(async {
        let sim = CloudshelfSim::start(config).await;
        announce_and_serve(serde_json::json!({ "graphql_url": sim.graphql_url() })).await;
        drop(sim);
    });
}
