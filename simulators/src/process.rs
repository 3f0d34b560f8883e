//! What the simulator binaries (`centra-sim`, `cloudshelf-sim`) share: their two flags, the one readiness line
//! on stdout, and stopping when whoever started them is gone (stdin closed) or on Ctrl-C.

use std::io::{Read, Write};

/// `--port N` (0, the default, picks a free one) and `--token T`.
pub struct ProcessArgs {
    pub port: u16,
    pub token: Option<String>,
}

/// Reads the flags; prints `usage` and exits on `--help` or a bad argument (status 2).
pub fn parse_args(usage: &str) -> ProcessArgs {
    let fail = |message: String| -> ! {
        eprintln!("{message}\n{usage}");
        std::process::exit(2)
    };
    let mut parsed = ProcessArgs {
        port: 0,
        token: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .unwrap_or_else(|| fail(format!("{name} needs a value")))
        };
        match arg.as_str() {
            "--port" => {
                parsed.port = value("--port")
                    .parse()
                    .unwrap_or_else(|e| fail(format!("--port: {e}")))
            }
            "--token" => parsed.token = Some(value("--token")),
            "-h" | "--help" => {
                println!("{usage}");
                std::process::exit(0)
            }
            other => fail(format!("unknown argument {other:?}")),
        }
    }
    parsed
}

/// Prints `line` (one JSON line: where the simulator listens), then waits until stdin closes or Ctrl-C.
pub async fn announce_and_serve(line: serde_json::Value) {
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
}
