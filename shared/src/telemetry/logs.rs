//! Structured JSON logs for Lambda (CloudWatch Logs Insights can query the fields), compact text locally.

use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// `RUST_LOG` as `level` or `target=level,…` (no regex filters: they would cost each binary a regex engine).
fn filter_from_env(default: &str) -> Targets {
    std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| default.parse().unwrap_or_default())
}

pub fn init_json_logs() {
    let _ = tracing_subscriber::registry()
        .with(
            fmt::layer()
                .json()
                .flatten_event(true)
                .with_current_span(false)
                .with_target(false)
                .without_time(), // Lambda stamps each line itself.
        )
        .with(filter_from_env("info"))
        .try_init();
}

/// Human-readable logs on stderr (stdout is the command's own output).
pub fn init_text_logs(default_filter: &str) {
    let _ = tracing_subscriber::registry()
        .with(
            fmt::layer()
                .compact()
                .with_target(false)
                .with_writer(std::io::stderr),
        )
        .with(filter_from_env(default_filter))
        .try_init();
}

/// Keeps personal data out of logs: `a***@example.com`.
pub fn redact_email(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => {
            let first = local.chars().next().map(String::from).unwrap_or_default();
            format!("{first}***@{domain}")
        }
        None => "***".into(),
    }
}
