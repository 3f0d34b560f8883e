//! Operator actions on the deployed stack: `dlq list|redrive`, `orders retry`, `exceptions resolve`.
//!
//! They run with the operator's AWS credentials (profile / SSO), not a function role, and find the stack's
//! queues and tables through the same environment variables as `exceptions` and `unblock` (the stack outputs):
//! `STOCK_TABLE`, `IDEMPOTENCY_TABLE`, `STOCK_QUEUE_URL`, `STOCK_PUSH_QUEUE_URL`, `ORDERS_QUEUE_URL`,
//! `STOCK_DLQ_URL`, `STOCK_PUSH_DLQ_URL`, `ORDERS_DLQ_URL`, `SCHEDULE_DLQ_URL`; `orders retry` also reads Centra
//! (`CENTRA_API_URL`, `CENTRA_API_TOKEN` or `CENTRA_API_TOKEN_SECRET_ARN`).

use clap::{Args, Subcommand};
use shared::adapters::aws::{sdk_config, DynamoLedgerStore, DynamoOrderOutbox, SqsFifoQueue};
use shared::config::env::{env_opt, env_required};
use shared::ops::dlq::{self, DlqName, RedriveStamp};
use shared::ops::exceptions::{ExceptionBook, ResolveOutcome};
use shared::ops::order_retry::{retry_order, RetryOutcome, RetryRequest};
use shared::ops::{format_ms, operator_name};

fn parse_dlq(name: &str) -> Result<DlqName, String> {
    DlqName::parse(name)
}

#[derive(Subcommand)]
pub enum DlqCommand {
    /// Show what a dead-letter queue holds, decoded, with why it is there where known. Messages are hidden for
    /// a moment while read and then made visible again (their receive count goes up by one).
    List {
        /// stock | stock-push | orders | schedules | archive
        #[arg(value_parser = parse_dlq)]
        queue: DlqName,
        /// At most this many messages.
        #[arg(long, default_value_t = 100)]
        max: usize,
        /// One JSON document instead of text.
        #[arg(long)]
        json: bool,
        /// Ask a running `shelfsync serve` (e.g. http://127.0.0.1:8080; stock and orders) instead of the stack.
        #[arg(long)]
        serve: Option<String>,
    },
    /// Move messages back to the queue they came from, keeping FIFO group and dedup ids and each group's order;
    /// stamps `redriven_by` / `redriven_at` / `redriven_from` message attributes. Not for `schedules`.
    Redrive {
        /// stock | stock-push | orders
        #[arg(value_parser = parse_dlq)]
        queue: DlqName,
        /// At most this many messages.
        #[arg(long, default_value_t = 1000)]
        max: usize,
        /// Show what would move; move nothing.
        #[arg(long)]
        dry_run: bool,
        /// Who is redriving (default: $USER).
        #[arg(long)]
        by: Option<String>,
        /// Redrive inside a running `shelfsync serve` (stock and orders) instead of the stack.
        #[arg(long)]
        serve: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum ArchiveCommand {
    /// Fill a gap of the event archive (`shelfsync dlq list archive` names each) from the idempotency table,
    /// which keeps accepted events 15 days. Rerunning the same window rewrites the same objects.
    Backfill {
        /// Start of the window (RFC 3339, e.g. 2026-12-07T04:10:01Z).
        #[arg(long, value_parser = parse_time)]
        from: i64,
        /// End of the window (RFC 3339), inclusive.
        #[arg(long, value_parser = parse_time)]
        to: i64,
        /// Count what would be written; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// One JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
}

fn parse_time(text: &str) -> Result<i64, String> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_millis())
        .map_err(|e| format!("{text:?} is not an RFC 3339 time: {e}"))
}

/// `shelfsync archive backfill`: `IDEMPOTENCY_TABLE` and `ARCHIVE_BUCKET` (the stack's `ReportsBucketName`).
pub async fn archive(command: ArchiveCommand) -> anyhow::Result<()> {
    let ArchiveCommand::Backfill {
        from,
        to,
        dry_run,
        json,
    } = command;
    anyhow::ensure!(from <= to, "--from is after --to");
    let aws = shared::adapters::aws::AwsConfig::from_env().await;
    let sink =
        shared::adapters::aws::recon::S3ReportSink::new(aws.s3(), env_required("ARCHIVE_BUCKET")?);
    let report = shared::ops::archive_backfill::backfill(
        &aws.dynamodb(),
        &env_required("IDEMPOTENCY_TABLE")?,
        &sink,
        from,
        to,
        dry_run,
    )
    .await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!(
        "{} {} accepted event(s), {} applied movement(s), {} unreadable record(s) from {} to {} in {} object(s){}",
        if dry_run { "would archive" } else { "archived" },
        report.accepted,
        report.applied,
        report.unreadable,
        format_ms(from),
        format_ms(to),
        report.objects.len(),
        if dry_run { " (dry run: nothing written)" } else { "" }
    );
    for key in &report.objects {
        println!("  {key}");
    }
    Ok(())
}

#[derive(Subcommand)]
pub enum OrdersCommand {
    /// Re-open a kiosk order parked in `exception` after its cause is fixed and queue it for order-sync again.
    /// Never makes a second Centra order: an order Centra already holds is adopted.
    Retry {
        /// The Cloudshelf order id (gid://cloudshelf/Order/…), as `shelfsync exceptions` shows it.
        cloudshelf_order_id: String,
        /// Show what would happen; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Who is retrying (default: $USER).
        #[arg(long)]
        by: Option<String>,
        /// Retry inside a running `shelfsync serve` instead of the stack.
        #[arg(long)]
        serve: Option<String>,
    },
}

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ExceptionsArgs {
    #[command(subcommand)]
    pub command: Option<ExceptionsCommand>,
    #[arg(long)]
    pub store: Option<String>,
    /// Only this kind (unmapped_shipping_method, centra_rejected_line, …).
    #[arg(long)]
    pub kind: Option<String>,
    /// One JSON document instead of text.
    #[arg(long)]
    pub json: bool,
    /// Also list resolved exceptions.
    #[arg(long)]
    pub all: bool,
}

#[derive(Subcommand)]
pub enum ExceptionsCommand {
    /// Record on an exception that it was dealt with (who, when, what). Resolving twice changes nothing.
    Resolve {
        /// The exception id, as listed.
        id: String,
        /// What was done.
        #[arg(long)]
        note: String,
        /// Only needed when the id exists in more than one store.
        #[arg(long)]
        store: Option<String>,
        #[arg(long)]
        dry_run: bool,
        /// Who resolved it (default: $USER).
        #[arg(long)]
        by: Option<String>,
    },
}

fn now_ms() -> i64 {
    shared::core::clock::system_clock().now_millis()
}

// ---------------------------------------------------------------- dlq

/// One call to a running `shelfsync serve`'s operator endpoints; a refusal is the error, with serve's reason.
pub async fn serve_call(method: reqwest::Method, url: &str) -> anyhow::Result<serde_json::Value> {
    let response = reqwest::Client::new()
        .request(method, url)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("{url}: {e}"))?;
    let status = response.status();
    let body = response.text().await?;
    let value: serde_json::Value = serde_json::from_str(&body)
        .map_err(|e| anyhow::anyhow!("{url}: {status}: not JSON ({e}): {body}"))?;
    if !status.is_success() {
        let message = value["error"]["message"].as_str().unwrap_or(&body);
        anyhow::bail!("{status}: {message}");
    }
    Ok(value)
}

fn query_flag(name: &str, value: &Option<String>) -> String {
    value
        .as_deref()
        .map(|v| format!("&{name}={}", crate::trace::encode(v)))
        .unwrap_or_default()
}

/// `dlq list|redrive --serve URL`: the embedded queues' dead letters.
async fn dlq_on_serve(command: DlqCommand) -> anyhow::Result<()> {
    match command {
        DlqCommand::List {
            queue,
            max,
            json,
            serve: Some(base),
        } => {
            let doc = serve_call(
                reqwest::Method::GET,
                &format!("{}/ops/dlq/{}", base.trim_end_matches('/'), queue.as_str()),
            )
            .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&doc)?);
                return Ok(());
            }
            let messages = doc["messages"].as_array().cloned().unwrap_or_default();
            println!(
                "{} DLQ (serve): {} message(s)",
                queue.as_str(),
                messages.len()
            );
            for m in messages.iter().take(max) {
                println!("{}", m["summary"].as_str().unwrap_or("-"));
                println!(
                    "    message {}, received {} time(s), group {}",
                    m["message"]["message_id"].as_str().unwrap_or("-"),
                    m["message"]["receive_count"],
                    m["message"]["group_id"].as_str().unwrap_or("-")
                );
                for r in m["recorded"].as_array().into_iter().flatten() {
                    println!("    {}", r.as_str().unwrap_or_default());
                }
            }
            Ok(())
        }
        DlqCommand::Redrive {
            queue,
            max,
            dry_run,
            by,
            serve: Some(base),
        } => {
            let doc = serve_call(
                reqwest::Method::POST,
                &format!(
                    "{}/ops/dlq/{}/redrive?max={max}&dry_run={dry_run}{}",
                    base.trim_end_matches('/'),
                    queue.as_str(),
                    query_flag("by", &by)
                ),
            )
            .await?;
            let moved = doc["messages"].as_array().cloned().unwrap_or_default();
            println!(
                "{} {} message(s) from the {} DLQ back to their groups (serve, by {})",
                if dry_run { "would move" } else { "moved" },
                moved.len(),
                queue.as_str(),
                doc["by"].as_str().unwrap_or("-")
            );
            for m in moved {
                println!(
                    "  {} group {}",
                    m["message_id"].as_str().unwrap_or("-"),
                    m["group_id"].as_str().unwrap_or("-")
                );
            }
            Ok(())
        }
        _ => unreachable!("called with --serve only"),
    }
}

pub async fn dlq(command: DlqCommand) -> anyhow::Result<()> {
    if matches!(
        &command,
        DlqCommand::List { serve: Some(_), .. } | DlqCommand::Redrive { serve: Some(_), .. }
    ) {
        return dlq_on_serve(command).await;
    }
    let sdk = sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    match command {
        DlqCommand::List {
            queue, max, json, ..
        } => {
            let url = env_required(queue.dlq_env())?;
            // Held 30 s while read, released right after: long enough for the lookups below.
            let messages = dlq::receive(&sqs, &url, max, 30).await?;
            dlq::release(&sqs, &url, &messages).await?;
            // Our own records about each message, when the stock table is configured.
            let stores = match (env_opt("STOCK_TABLE"), env_opt("IDEMPOTENCY_TABLE")) {
                (Some(stock), idempotency) => {
                    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
                    Some((
                        DynamoLedgerStore::new(
                            dynamo.clone(),
                            stock.clone(),
                            idempotency.unwrap_or_default(),
                        ),
                        DynamoOrderOutbox::new(dynamo, stock),
                    ))
                }
                (None, _) => None,
            };
            let mut entries = Vec::new();
            for m in messages {
                let decoded = dlq::decode(queue, &m.body);
                let recorded = match &stores {
                    Some((ledger, outbox)) => {
                        dlq::recorded_errors(&decoded, ledger, outbox).await?
                    }
                    None => vec!["(STOCK_TABLE not set: our records not consulted)".into()],
                };
                entries.push((m, decoded, recorded));
            }
            if json {
                let doc: Vec<_> = entries
                    .iter()
                    .map(|(m, d, r)| {
                        serde_json::json!({
                            "message": m, "decoded": d, "summary": dlq::describe(d), "recorded": r
                        })
                    })
                    .collect();
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "queue": queue.as_str(), "count": doc.len(), "messages": doc
                    }))?
                );
                return Ok(());
            }
            println!("{} DLQ: {} message(s)", queue.as_str(), entries.len());
            for (m, d, recorded) in entries {
                println!(
                    "{}  {}",
                    m.sent_at.as_deref().unwrap_or("-"),
                    dlq::describe(&d)
                );
                let mut sqs_facts = vec![
                    format!("message {}", m.message_id),
                    format!("received {} time(s)", m.receive_count),
                ];
                if let Some(g) = &m.group_id {
                    sqs_facts.push(format!("group {g}"));
                }
                if let Some(s) = &m.source_arn {
                    sqs_facts.push(format!("from {s}"));
                }
                println!("    {}", sqs_facts.join(", "));
                for (k, v) in &m.attributes {
                    println!("    {k}: {v}");
                }
                for r in recorded {
                    println!("    {r}");
                }
            }
            Ok(())
        }
        DlqCommand::Redrive {
            queue,
            max,
            dry_run,
            by,
            ..
        } => {
            let Some(source_env) = queue.source_env() else {
                if queue == DlqName::Archive {
                    anyhow::bail!(
                        "archive: the gap queue holds stream positions, not events — the stream keeps records 24 \
                         hours only. Fill each gap from the idempotency table (15 days) with the command \
                         `shelfsync dlq list archive` prints for it (`shelfsync archive backfill --from … --to …`), \
                         then purge the queue"
                    );
                }
                anyhow::bail!(
                    "schedules: the Scheduler DLQ has no source queue to redrive to — its messages are \
                     invocations Scheduler could not deliver. Read them (`shelfsync dlq list schedules`), fix the \
                     cause (role, throttling), run the job by hand if it cannot wait for its next tick (deploy.md \
                     §5), then purge the queue"
                );
            };
            let dlq_url = env_required(queue.dlq_env())?;
            let source_url = env_required(source_env)?;
            let stamp = RedriveStamp {
                by: operator_name(by),
                at_ms: now_ms(),
                from: queue,
            };
            let report = dlq::redrive(
                &sqs,
                &dlq_url,
                &source_url,
                queue.fifo(),
                max,
                &stamp,
                dry_run,
            )
            .await?;
            let verb = if dry_run { "would move" } else { "moved" };
            println!(
                "{} DLQ: {verb} {} message(s) to {source_env}{}",
                queue.as_str(),
                report.messages.len(),
                if dry_run {
                    String::new()
                } else {
                    format!(
                        " (redriven_by {}, redriven_at {})",
                        stamp.by,
                        format_ms(stamp.at_ms)
                    )
                }
            );
            for m in &report.messages {
                println!(
                    "  {}{}  {}",
                    m.message_id,
                    m.group_id
                        .as_deref()
                        .map(|g| format!(" [group {g}]"))
                        .unwrap_or_default(),
                    dlq::describe(&dlq::decode(queue, &m.body))
                );
            }
            Ok(())
        }
    }
}

// ---------------------------------------------------------------- orders retry

pub async fn orders(command: OrdersCommand) -> anyhow::Result<()> {
    let OrdersCommand::Retry {
        cloudshelf_order_id,
        dry_run,
        by,
        serve,
    } = command;
    if let Some(base) = serve {
        let doc = serve_call(
            reqwest::Method::POST,
            &format!(
                "{}/ops/orders/retry/{}?dry_run={dry_run}{}",
                base.trim_end_matches('/'),
                crate::trace::encode(&cloudshelf_order_id),
                query_flag("by", &by)
            ),
        )
        .await?;
        println!("{}", doc["message"].as_str().unwrap_or_default());
        return Ok(());
    }
    let sdk = sdk_config().await;
    let outbox = DynamoOrderOutbox::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        env_required("STOCK_TABLE")?,
    );
    let queue = SqsFifoQueue::new(
        aws_sdk_sqs::Client::new(&sdk),
        env_required("ORDERS_QUEUE_URL")?,
    );
    let centra = shared::centra::CentraClient::new(
        env_required("CENTRA_API_URL")?,
        shared::adapters::aws::settings::resolve_secret("CENTRA_API_TOKEN").await?,
        std::time::Duration::from_secs(10),
    );
    let request = RetryRequest {
        cloudshelf_order_id: cloudshelf_order_id.clone(),
        by: operator_name(by),
        dry_run,
        lookup_margin_ms: shared::orders::sync::OrderSyncSettings::default().lookup_margin_ms,
    };
    let clock = shared::core::clock::system_clock();
    let outcome = retry_order(&outbox, &centra, &queue, clock.as_ref(), &request).await?;
    println!(
        "{}",
        describe_retry(&cloudshelf_order_id, &request.by, &outcome)
    );
    Ok(())
}

pub fn describe_retry(id: &str, by: &str, outcome: &RetryOutcome) -> String {
    let centra = |found: &[u64]| {
        if found.is_empty() {
            "Centra holds no order for it".to_string()
        } else {
            format!(
                "Centra already holds order(s) {}: adopted, not placed again",
                found
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    };
    match outcome {
        RetryOutcome::WouldReopen {
            to,
            found_in_centra,
            would_queue,
        } => format!(
            "dry run: {id} would be re-opened from exception to {} by {by}; {}; {}",
            to.as_str(),
            centra(found_in_centra),
            if *would_queue {
                "the parked order would be queued for order-sync"
            } else {
                "no parked order is kept: the order event would have to be sent again"
            }
        ),
        RetryOutcome::Reopened {
            to,
            found_in_centra,
            queued,
            rev,
        } => format!(
            "{id}: re-opened from exception to {} by {by} (rev {rev}); {}; {}",
            to.as_str(),
            centra(found_in_centra),
            if *queued {
                "queued for order-sync"
            } else {
                "no parked order is kept (parked before orders were kept): have the order event sent again \
                 from Cloudshelf / the kiosk; it is placed once"
            }
        ),
        RetryOutcome::AlreadyReopened {
            by: earlier,
            at_ms,
            state,
            requeued,
        } => format!(
            "{id}: already re-opened by {earlier} at {}; now {}{}",
            format_ms(*at_ms),
            state.as_str(),
            if *requeued {
                "; nothing happened since, so it was queued again (a duplicate is absorbed)"
            } else {
                ""
            }
        ),
    }
}

// ---------------------------------------------------------------- exceptions

pub async fn exceptions(args: ExceptionsArgs) -> anyhow::Result<()> {
    let sdk = sdk_config().await;
    let book = ExceptionBook::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        env_required("STOCK_TABLE")?,
    );
    match args.command {
        None => {
            crate::ops::list_exceptions(&book, args.store, args.kind, args.json, args.all).await
        }
        Some(ExceptionsCommand::Resolve {
            id,
            note,
            store,
            dry_run,
            by,
        }) => {
            let by = operator_name(by);
            let outcome = book
                .resolve(&id, store.as_deref(), &note, &by, now_ms(), dry_run)
                .await?;
            match outcome {
                ResolveOutcome::WouldResolve(_) => {
                    println!("dry run: {id} would be resolved by {by}: {note}")
                }
                ResolveOutcome::Resolved(e) => {
                    let r = e.resolution.expect("set when resolved");
                    println!(
                        "{id}: resolved by {} at {}: {}",
                        r.by,
                        format_ms(r.at_ms),
                        r.note
                    )
                }
                ResolveOutcome::AlreadyResolved(e) => {
                    let r = e.resolution.expect("set when already resolved");
                    println!(
                        "{id}: already resolved by {} at {} ({}); nothing changed",
                        r.by,
                        format_ms(r.at_ms),
                        r.note
                    )
                }
            }
            Ok(())
        }
    }
}
