//! `cloudshelf-sim`: the Cloudshelf simulator as a separate process.
//!
//! `cloudshelf-sim [--port N] [--token API_KEY]` listens on 127.0.0.1 (port 0, the default, picks a free
//! one), prints exactly one JSON line once it listens, `{"graphql_url": "..."}`, and serves until killed
//! or until its stdin closes. It has no control API: seed it through its GraphQL upserts.

use std::io::{Read, Write};

use simulators::cloudshelf::{CloudshelfSim, CloudshelfSimConfig};

const USAGE: &str = "usage: cloudshelf-sim [--port N] [--token API_KEY]";

fn main() {
    let mut config = CloudshelfSimConfig::default();
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
            "--token" => config.api_key = value("--token"),
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
        let sim = CloudshelfSim::start(config).await;
        let line = serde_json::json!({ "graphql_url": sim.graphql_url() });
        let mut stdout = std::io::stdout().lock();
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
