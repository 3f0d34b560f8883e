//! Operator commands against the deployed tables (AWS credentials and the stack's table/queue names in the
//! environment: `STOCK_TABLE`, `IDEMPOTENCY_TABLE`, `STOCK_PUSH_QUEUE_URL`); the newer actions are in `operator`.

use shared::adapters::aws::{sdk_config, DynamoLedgerStore, SqsPushQueue};
use shared::config::env::env_required;
use shared::core::ids::{ItemRef, StoreCode};
use shared::ops::exceptions::ExceptionBook;

async fn ledger() -> anyhow::Result<DynamoLedgerStore> {
    let sdk = sdk_config().await;
    Ok(DynamoLedgerStore::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        env_required("STOCK_TABLE")?,
        env_required("IDEMPOTENCY_TABLE")?,
    ))
}

pub async fn list_exceptions(
    book: &ExceptionBook,
    store: Option<String>,
    kind: Option<String>,
    json: bool,
    all: bool,
) -> anyhow::Result<()> {
    let mut exceptions = book.list(store.as_deref(), kind.as_deref()).await?;
    let resolved = exceptions.iter().filter(|e| e.resolution.is_some()).count();
    if !all {
        exceptions.retain(|e| e.resolution.is_none());
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&exceptions)?);
        return Ok(());
    }
    if all {
        println!("{} exception(s), {resolved} resolved", exceptions.len());
    } else {
        println!(
            "{} open exception(s) ({resolved} resolved not shown: --all)",
            exceptions.len()
        );
    }
    for entry in exceptions {
        let e = &entry.record;
        println!(
            "{}  [{}] store {} item {}  id {}",
            shared::ops::format_ms(e.created_at_ms),
            e.kind,
            e.store,
            e.item.as_deref().unwrap_or("-"),
            e.id
        );
        println!("    {}", e.message);
        if let Some(key) = &e.mapping_key {
            println!("    mapping key to add or fix: {key}");
        }
        if let Some(c) = &e.centra_message {
            println!("    Centra said: {c}");
        }
        if let Some(n) = e.attempts {
            println!("    attempts: {n}");
        }
        if !e.event_ids.is_empty() {
            println!("    events: {}", e.event_ids.join(", "));
        }
        if let Some(r) = &entry.resolution {
            println!(
                "    resolved by {} at {}: {}",
                r.by,
                shared::ops::format_ms(r.at_ms),
                r.note
            );
        }
    }
    Ok(())
}

pub async fn unblock(
    store: String,
    sku: Option<String>,
    ean: Option<String>,
    verdict: Option<shared::stock::push::PushVerdict>,
) -> anyhow::Result<()> {
    let item = match (sku, ean) {
        (Some(s), _) => ItemRef::Sku(s),
        (None, Some(e)) => ItemRef::Ean(e),
        (None, None) => anyhow::bail!("give --sku or --ean"),
    };
    let store = StoreCode::parse(&store).map_err(|m| anyhow::anyhow!("--store {m}"))?;
    let ledger = ledger().await?;
    let sdk = sdk_config().await;
    let queue = SqsPushQueue::new(
        aws_sdk_sqs::Client::new(&sdk),
        env_required("STOCK_PUSH_QUEUE_URL")?,
    );
    use shared::stock::push::UnblockOutcome;
    let now = chrono::Utc::now().timestamp_millis();
    match shared::stock::push::unblock(&ledger, &queue, &store, &item, verdict, now).await? {
        UnblockOutcome::Unblocked => {
            println!("{store} {item}: unblocked and queued for the next push")
        }
        UnblockOutcome::NotBlocked => println!("{store} {item}: not blocked (nothing to do)"),
        UnblockOutcome::NeedsVerdict { marker } => anyhow::bail!(
            "{store} {item} waits on a push whose outcome is unknown: look in the store's Centra warehouse for a \
             stock change whose comment contains \"{}\", then run again with --applied (found) or --not-applied",
            marker.trim_end()
        ),
    }
    Ok(())
}
