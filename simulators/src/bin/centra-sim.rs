//! `centra-sim`: the Centra simulator as a separate process, for black-box tests and manual runs.
//!
//! `centra-sim [--port N] [--token T]` listens on 127.0.0.1 (port 0, the default, picks a free one),
//! prints exactly one JSON line once it listens, `{"graphql_url": "...", "control_url": "..."}`, and
//! serves until killed or until its stdin closes (so a test process that dies leaves no simulator
//! behind; run it with stdin open, e.g. from a terminal or a pipe). The control API is under `/_sim`
//! (see `simulators::control`).

use std::io::{Read, Write};

use simulators::centra::{CentraSim, CentraSimConfig};
use simulators::control::Listening;

const USAGE: &str = "usage: centra-sim [--port N] [--token T]";

fn main() {
    let mut config = CentraSimConfig {
        control_api: true,
        ..CentraSimConfig::default()
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next().unwrap_or_else(|| {
                eprintln!("{name} needs a value\n{USAGE}");
                std::process::exit(2)
            })
        };
        match arg.as_str() {
            "--port" => {
                config.port = value("--port").parse().unwrap_or_else(|e| {
                    eprintln!("--port: {e}\n{USAGE}");
                    std::process::exit(2)
                })
            }
            "--token" => config.token = value("--token"),
            "-h" | "--help" => {
                println!("{USAGE}");
                return;
            }
            other => {
                eprintln!("unknown argument {other:?}\n{USAGE}");
                std::process::exit(2)
            }
        }
    }

    let runtime = tokio::runtime::Runtime::new().expect("Tokio runtime");
    runtime.block_on(async {
        let sim = CentraSim::start(config).await;
        let listening = Listening {
            graphql_url: sim.graphql_url(),
            control_url: sim.control_url(),
        };
        let mut stdout = std::io::stdout().lock();
        let line = serde_json::to_string(&listening).expect("JSON of two strings");
        if writeln!(stdout, "{line}")
            .and_then(|()| stdout.flush())
            .is_err()
        {
            std::process::exit(1);
        }
        drop(stdout);

        // End of stdin means whoever started us is gone.
        std::thread::spawn(|| {
            let mut buf = [0u8; 256];
            let mut stdin = std::io::stdin();
            loop {
                match stdin.read(&mut buf) {
                    Ok(0) | Err(_) => std::process::exit(0),
                    Ok(_) => {}
                }
            }
        });
        let _ = tokio::signal::ctrl_c().await;
        drop(sim);
    });
}
