//! Operator actions behind `shelfsync dlq`, `shelfsync orders retry`, `shelfsync exceptions resolve` and
//! `shelfsync archive backfill`, and the read-only `shelfsync trace`.
//!
//! Each action is idempotent (running it twice does it once and says so), has a dry run that changes nothing,
//! and writes who did it and when into what it changes, so every record says how it got where it is.

#[cfg(feature = "dynamodb")]
pub mod archive_backfill;
#[cfg(all(feature = "dynamodb", feature = "sqs"))]
pub mod dlq;
#[cfg(feature = "dynamodb")]
pub mod exceptions;
pub mod order_retry;
pub mod trace;

/// The operator named by `--by`, else `$USER`, else "unknown".
pub fn operator_name(by: Option<String>) -> String {
    by.filter(|b| !b.trim().is_empty())
        .or_else(|| std::env::var("USER").ok().filter(|u| !u.trim().is_empty()))
        .unwrap_or_else(|| "unknown".to_string())
}

/// RFC 3339 (UTC, seconds) of an epoch-ms time, for operator output and message attributes.
pub fn format_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| ms.to_string())
}
