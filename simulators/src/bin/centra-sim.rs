//! `centra-sim`: the Centra simulator as a separate process, for black-box tests and manual runs.
//!
//! `centra-sim [--port N] [--token T]` listens on 127.0.0.1 (port 0, the default, picks a free one),
//! prints exactly one JSON line once it listens, `{"graphql_url": "...", "control_url": "..."}`, and
//! serves until killed or until its stdin closes (so a test process that dies leaves no simulator
//! behind; run it with stdin open, e.g. from a terminal or a pipe). The control API is under `/_sim`
//! (see `simulators::control`).

use simulators::centra::{CentraSim, CentraSimConfig};
use simulators::control::Listening;
use simulators::process::{announce_and_serve, parse_args};

fn main() {
    let args = parse_args("usage: centra-sim [--port N] [--token T]");
    let mut config = CentraSimConfig {
        control_api: true,
        port: args.port,
        ..CentraSimConfig::default()
    };
    if let Some(token) = args.token {
        config.token = token;
    }
    let runtime = tokio::runtime::Runtime::new().expect("Tokio runtime");
    runtime.block_on(async {
        let sim = CentraSim::start(config).await;
        let listening = Listening {
            graphql_url: sim.graphql_url(),
            control_url: sim.control_url(),
        };
        announce_and_serve(serde_json::to_value(&listening).expect("JSON of two strings")).await;
        drop(sim);
    });
}
