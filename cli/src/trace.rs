//! `shelfsync trace event|item|order`: where a store event, an item or a kiosk order has got to.
//!
//! The trace itself is built in `shared::ops::trace`, from the deployed stack's tables (the same environment as
//! `exceptions`: `STOCK_TABLE`, `IDEMPOTENCY_TABLE`, and `CENTRA_API_URL` + `CENTRA_API_TOKEN[_SECRET_ARN]` for
//! Centra's side) or by a running `shelfsync serve` (`--serve URL`, its `/ops/trace/*` endpoints). This file
//! only renders it: for a person, or `--json`.

use clap::{Args, Subcommand};
use shared::ops::format_ms;
use shared::ops::trace::{
    CentraStock, EventTrace, ItemTrace, LineStage, OrderTrace, PushTrace, RowSummary, Trace,
    TraceSources,
};
use shared::stock::ledger::ChangeKind;
use std::fmt::Write;

#[derive(Args)]
pub struct TraceArgs {
    #[command(subcommand)]
    pub what: TraceCommand,
    /// One JSON document instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// Ask a running `shelfsync serve` (e.g. http://127.0.0.1:8080) instead of the deployed stack.
    #[arg(long, global = true)]
    pub serve: Option<String>,
}

#[derive(Subcommand)]
pub enum TraceCommand {
    /// A store event by its webhook id: accepted when, each line's Centra size, ledger row, push and lag, or
    /// where it waits.
    Event { webhook_id: String },
    /// One store's item: its ledger row, recent movements and pushes, and Centra's stock for it.
    Item {
        #[arg(long)]
        store: String,
        #[arg(long, required_unless_present = "ean")]
        sku: Option<String>,
        #[arg(long, conflicts_with = "sku")]
        ean: Option<String>,
        /// Only movements and pushes this recent (45s, 90m, 36h, 2d).
        #[arg(long)]
        since: Option<String>,
    },
    /// A kiosk order by Cloudshelf order id or Centra order number: states, Centra orders, what Cloudshelf was
    /// told, Centra's webhooks.
    Order { id: String },
}

pub async fn run(args: TraceArgs) -> anyhow::Result<()> {
    let trace = match &args.serve {
        Some(url) => from_serve(url, &args.what).await?,
        None => build(&deployed_sources().await?, &args.what).await?,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&trace)?);
    } else {
        print!("{}", render(&trace));
    }
    Ok(())
}

/// Builds the trace `what` asks for from `sources` (the deployed stack, or serve's pipeline).
pub async fn build(sources: &TraceSources, what: &TraceCommand) -> anyhow::Result<Trace> {
    Ok(match what {
        TraceCommand::Event { webhook_id } => Trace::Event(sources.trace_event(webhook_id).await?),
        TraceCommand::Item {
            store,
            sku,
            ean,
            since,
        } => {
            let store = shared::core::ids::StoreCode::parse(store)
                .map_err(|m| anyhow::anyhow!("--store {m}"))?;
            let item = match (sku, ean) {
                (Some(s), _) => shared::core::ids::ItemRef::Sku(s.clone()),
                (None, Some(e)) => shared::core::ids::ItemRef::Ean(e.clone()),
                (None, None) => anyhow::bail!("give --sku or --ean"),
            };
            let since_ms = since
                .as_deref()
                .map(shared::ops::trace::parse_since)
                .transpose()
                .map_err(|m| anyhow::anyhow!("--since {m}"))?
                .map(|d| sources.clock.now_millis() - d);
            Trace::Item(sources.trace_item(&store, &item, since_ms).await?)
        }
        TraceCommand::Order { id } => Trace::Order(sources.trace_order(id).await?),
    })
}

async fn deployed_sources() -> anyhow::Result<TraceSources> {
    use shared::adapters::aws::{sdk_config, DynamoLedgerStore, DynamoOrderOutbox};
    use shared::config::env::{env_opt, env_required};
    use std::sync::Arc;
    let sdk = sdk_config().await;
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    let stock_table = env_required("STOCK_TABLE")?;
    let idempotency_table = env_required("IDEMPOTENCY_TABLE")?;
    let ledger = Arc::new(DynamoLedgerStore::new(
        dynamo.clone(),
        stock_table.clone(),
        idempotency_table.clone(),
    ));
    // Centra is optional: without it the trace says Centra was not asked.
    let centra = match env_opt("CENTRA_API_URL") {
        Some(url) => Some(shared::centra::CentraClient::new(
            url,
            shared::adapters::aws::settings::resolve_secret("CENTRA_API_TOKEN").await?,
            std::time::Duration::from_secs(10),
        )),
        None => None,
    };
    Ok(TraceSources {
        idempotency: Arc::new(
            shared::adapters::aws::idempotency::DynamoIdempotencyStore::new(
                dynamo.clone(),
                idempotency_table,
            ),
        ),
        ledger: ledger.clone(),
        markers: ledger.clone(),
        push_log: ledger.clone(),
        exceptions: ledger,
        outbox: Some(Arc::new(DynamoOrderOutbox::new(dynamo, stock_table))),
        centra,
        mappings: Arc::new(shared::adapters::aws::settings::load_mappings(true).await?),
        clock: shared::core::clock::system_clock(),
    })
}

/// Path segments and query values: everything but unreserved characters percent-encoded (Cloudshelf ids
/// contain `/` and `:`).
pub fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The same trace from a running `serve`.
async fn from_serve(base: &str, what: &TraceCommand) -> anyhow::Result<Trace> {
    let base = base.trim_end_matches('/');
    let url = match what {
        TraceCommand::Event { webhook_id } => {
            format!("{base}/ops/trace/event/{}", encode(webhook_id))
        }
        TraceCommand::Item {
            store,
            sku,
            ean,
            since,
        } => {
            let mut url = format!("{base}/ops/trace/item?store={}", encode(store));
            if let Some(s) = sku {
                write!(url, "&sku={}", encode(s))?;
            }
            if let Some(e) = ean {
                write!(url, "&ean={}", encode(e))?;
            }
            if let Some(s) = since {
                write!(url, "&since={}", encode(s))?;
            }
            url
        }
        TraceCommand::Order { id } => format!("{base}/ops/trace/order/{}", encode(id)),
    };
    let response = reqwest::get(&url)
        .await
        .map_err(|e| anyhow::anyhow!("{url}: {e}"))?;
    let status = response.status();
    let body = response.text().await?;
    anyhow::ensure!(status.is_success(), "{url}: {status}: {body}");
    serde_json::from_str(&body).map_err(|e| anyhow::anyhow!("{url}: not a trace ({e}): {body}"))
}

// ---------------------------------------------------------------- rendering

fn at(ms: i64) -> String {
    format_ms(ms)
}

fn seconds(ms: i64) -> String {
    format!("{:.1} s", ms as f64 / 1000.0)
}

pub fn render(trace: &Trace) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = match trace {
        Trace::Event(t) => render_event(&mut out, t),
        Trace::Item(t) => render_item(&mut out, t),
        Trace::Order(t) => render_order(&mut out, t),
    };
    out
}

fn render_notes(out: &mut String, notes: &[String]) -> std::fmt::Result {
    for note in notes {
        writeln!(out, "  note: {note}")?;
    }
    Ok(())
}

fn render_exceptions(
    out: &mut String,
    exceptions: &[shared::stock::ports::ExceptionRecord],
) -> std::fmt::Result {
    for e in exceptions {
        writeln!(
            out,
            "  exception {} [{}] at {}: {}",
            e.id,
            e.kind,
            at(e.created_at_ms),
            e.message
        )?;
        if let Some(c) = &e.centra_message {
            writeln!(out, "    Centra said: {c}")?;
        }
    }
    Ok(())
}

fn render_row(out: &mut String, indent: &str, row: &RowSummary) -> std::fmt::Result {
    writeln!(
        out,
        "{indent}ledger row {} {}: version {}, Centra holds through {}, epoch {}",
        row.store, row.item, row.version, row.pushed_version, row.epoch
    )?;
    let count = match (row.count_qty, row.last_count_at_ms) {
        (Some(q), Some(t)) => format!("count {q} at {}", at(t)),
        _ => "no count yet".into(),
    };
    writeln!(
        out,
        "{indent}  {count}; deltas applied {} (pushed {}); store quantity {}; {} pending; {} stale ignored",
        row.delta_applied,
        row.delta_pushed,
        row.store_quantity
            .map_or("unknown (no count)".into(), |q| q.to_string()),
        row.pending,
        row.stale_ignored
    )?;
    if let Some(b) = &row.blocked {
        writeln!(out, "{indent}  BLOCKED: {b}")?;
    }
    if let (Some(p), Some(u)) = (&row.lease_push_id, row.lease_until_ms) {
        writeln!(out, "{indent}  leased by push {p} until {}", at(u))?;
    }
    Ok(())
}

fn render_push(out: &mut String, indent: &str, p: &PushTrace) -> std::fmt::Result {
    let mutation = match (p.mutation_index, p.mutation_status) {
        (Some(i), Some(s)) => format!("mutation {i} ({s:?})"),
        _ => "mutation not in the push record".into(),
    };
    let change = match p.kind {
        ChangeKind::Decrease => "changeStock out",
        ChangeKind::Increase => "changeStock in",
        ChangeKind::Set => "setStock to",
    };
    writeln!(
        out,
        "{indent}push {}: {change} {} through version {}, {mutation}, warehouse {}",
        p.push_id,
        p.quantity,
        p.version_through,
        p.warehouse_id.map_or("?".into(), |w| w.to_string())
    )?;
    writeln!(
        out,
        "{indent}  Centra stock change {}{}; recorded held at {}",
        p.centra_change_id.as_deref().unwrap_or("(id unknown)"),
        p.centra_change_at
            .as_deref()
            .map_or(String::new(), |t| format!(" created {t}")),
        at(p.recorded_at_ms)
    )
}

fn render_event(out: &mut String, t: &EventTrace) -> std::fmt::Result {
    writeln!(out, "event {}", t.webhook_id)?;
    if let Some(a) = &t.accepted {
        writeln!(
            out,
            "  accepted {} ({}) store {} type {}{}",
            at(a.received_at_ms),
            a.intake_status,
            a.store,
            a.event_type,
            a.occurred_at_ms
                .map_or(String::new(), |o| format!(", occurred {}", at(o)))
        )?;
    }
    for l in &t.lines {
        let name = match (&l.sku, &l.ean) {
            (Some(s), Some(e)) => format!("sku {s} / ean {e}"),
            (Some(s), None) => format!("sku {s}"),
            (None, Some(e)) => format!("ean {e}"),
            (None, None) => "?".into(),
        };
        writeln!(
            out,
            "  line {}: {name} × {} → {}",
            l.line,
            l.quantity,
            l.resolved_to.as_deref().unwrap_or("(not resolved yet)")
        )?;
        let stage = match l.stage {
            LineStage::NotApplied => "NOT APPLIED",
            LineStage::WaitingForPush => "WAITING",
            LineStage::Blocked => "BLOCKED",
            LineStage::Stale => "STALE",
            LineStage::InCentra => "IN CENTRA",
            LineStage::Unknown => "UNKNOWN",
        };
        writeln!(out, "    {stage}: {}", l.detail)?;
        if let (Some(v), Some(a)) = (l.version, l.applied_at_ms) {
            writeln!(out, "    applied as row version {v} at {}", at(a))?;
        }
        if l.merged_into_line.is_none() {
            if let Some(row) = &l.row {
                render_row(out, "    ", row)?;
            }
            if let Some(p) = &l.push {
                render_push(out, "    ", p)?;
            }
        }
        if let (Some(a), Some(o)) = (l.accepted_to_centra_ms, l.occurred_to_centra_ms) {
            writeln!(
                out,
                "    lag: {} after accepted, {} after it occurred",
                seconds(a),
                seconds(o)
            )?;
        }
    }
    render_exceptions(out, &t.exceptions)?;
    render_notes(out, &t.notes)
}

fn render_item(out: &mut String, t: &ItemTrace) -> std::fmt::Result {
    writeln!(
        out,
        "item {} at {} (Centra warehouse {}){}",
        t.item,
        t.store,
        t.warehouse_id.map_or("?".into(), |w| w.to_string()),
        t.since_ms
            .map_or(String::new(), |s| format!(", since {}", at(s)))
    )?;
    if let Some(row) = &t.row {
        render_row(out, "  ", row)?;
    }
    match &t.centra_stock {
        CentraStock::Found {
            size_id,
            physical,
            free_to_allocate,
        } => writeln!(
            out,
            "  Centra now: physical {physical}, free to allocate {free_to_allocate} (size {size_id})"
        )?,
        CentraStock::Absent => writeln!(out, "  Centra now: no stock row for this size in the warehouse")?,
        CentraStock::NotAsked { reason } => writeln!(out, "  Centra not asked: {reason}")?,
        CentraStock::Failed { message } => writeln!(out, "  Centra stock read failed: {message}")?,
    }
    if !t.movements.is_empty() {
        writeln!(out, "  movements (newest last):")?;
    }
    for m in &t.movements {
        let change = match m.movement {
            shared::core::ids::Movement::Delta(d) => format!("{d:+}"),
            shared::core::ids::Movement::Count(c) => format!("count {c}"),
        };
        writeln!(
            out,
            "    {} {} {change} occurred {} applied {} → {}",
            m.event_id,
            m.event_type,
            at(m.occurred_at_ms),
            at(m.applied_at_ms),
            m.version
                .map_or("stale, ignored".into(), |v| format!("version {v}"))
        )?;
    }
    if !t.pending.is_empty() {
        writeln!(out, "  not in Centra yet:")?;
    }
    for p in &t.pending {
        writeln!(
            out,
            "    version {} event {} received {}",
            p.version,
            p.event_id,
            at(p.received_at_ms)
        )?;
    }
    if !t.pushes.is_empty() {
        writeln!(out, "  pushes (newest last):")?;
    }
    for p in &t.pushes {
        render_push(out, "    ", p)?;
    }
    render_exceptions(out, &t.exceptions)?;
    render_notes(out, &t.notes)
}

fn render_order(out: &mut String, t: &OrderTrace) -> std::fmt::Result {
    writeln!(
        out,
        "order {}",
        t.cloudshelf_order_id.as_deref().unwrap_or(&t.query)
    )?;
    if let Some(o) = &t.order {
        writeln!(
            out,
            "  store {} event {}{}; state {} after {} attempt(s)",
            o.store,
            o.event_id,
            o.accepted_at_ms
                .map_or(String::new(), |a| format!(" accepted {}", at(a))),
            o.state.as_str(),
            o.attempts
        )?;
        let numbers: Vec<String> = o.centra_orders.iter().map(u64::to_string).collect();
        writeln!(
            out,
            "  Centra order(s): {}; Cloudshelf told: {}",
            if numbers.is_empty() {
                "none".into()
            } else {
                numbers.join(", ")
            },
            o.reported_status.as_deref().unwrap_or("nothing yet")
        )?;
        if let Some(e) = &o.exception {
            writeln!(out, "  exception: {e}")?;
        }
    }
    for step in &t.history {
        writeln!(out, "  {}  {}", at(step.at_ms), step.state.as_str())?;
    }
    for l in &t.lifecycle {
        writeln!(
            out,
            "  webhook {} received {} handled {}: {}",
            l.note.event,
            l.received_at_ms.map_or("?".into(), at),
            at(l.note.handled_at_ms),
            l.note.outcome
        )?;
    }
    for a in &t.operator_actions {
        writeln!(
            out,
            "  {} by {} at {}{}",
            a.action,
            a.by,
            at(a.at_ms),
            a.note
                .as_deref()
                .map_or(String::new(), |n| format!(": {n}"))
        )?;
    }
    render_exceptions(out, &t.exceptions)?;
    render_notes(out, &t.notes)
}
