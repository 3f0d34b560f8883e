//! Stock-drift sweep at scale: 50 stores × 20,000 SKUs = 1,000,000 (store, SKU) rows compared with Centra, pacing
//! off. Targets: < 60 s wall time, < 256 MB peak RSS (`VmHWM` of this process, which also hosts the page server).
//!
//! ```sh
//! cargo bench -p shared --bench recon                      # 1 M rows, Centra pages over loopback HTTP
//! cargo bench -p shared --bench recon -- --source memory   # same rows, pages handed over in process
//! cargo bench -p shared --bench recon -- --probe-simulator # why not the Centra simulator (see below)
//! ```
//! Without `--bench` (as `cargo test --all-targets` runs it) it sweeps 3 × 2,000 rows as a smoke test.
//!
//! Centra side: a loopback HTTP endpoint that renders Centra-shaped `warehouses { stock }` pages on request,
//! read through the real `CentraClient` (HTTP, JSON parsing) — not the Centra simulator, whose `Warehouse.stock`
//! resolver builds every stock row of every warehouse as JSON for each page it serves and whose seeding looks up
//! sizes by linear scan (`--probe-simulator` measures one page on a single 20,000-size warehouse).
//! Ledger side: a `LedgerStore` that generates each store's rows when listed (the job's own memory is what is
//! measured, not a million-row fixture). 1 % of rows drift, 0.5 % are in flight, 1 % of Centra sizes are not in
//! the ledger; half the stores have `drift_policy = "correct"` (messages are counted, then dropped).

use async_trait::async_trait;
use shared::adapters::memory::MemoryCheckpointStore;
use shared::adapters::memory::MemoryLedgerStore;
use shared::adapters::report_sinks::LocalDirReportSink;
use shared::centra::catalogue::CentraStockRow;
use shared::centra::{CentraClient, CentraError};
use shared::config::mappings::Mappings;
use shared::core::errors::BackendError;
use shared::core::ids::{EventPosition, ItemRef, StoreCode};
use shared::recon::jobs::stock_drift::counter;
use shared::recon::{
    run_stock_drift, ReconContext, ReconSettings, RunOptions, WarehouseStockSource,
};
use shared::stock::ledger::LedgerRow;
use shared::stock::ports::{ApplyWrite, FifoMessage, LedgerStore, StockQueue};
use shared::telemetry::metrics::Metrics;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const FIRST_WAREHOUSE: u64 = 1_000;

#[derive(Debug, Clone, Copy)]
struct Shape {
    stores: usize,
    skus: usize,
}

impl Shape {
    /// Centra lists the ledger's SKUs plus 1 % it has alone.
    fn centra_rows(self) -> usize {
        self.skus + self.skus / 100
    }
}

fn sku(i: usize) -> String {
    format!("SKU-{i:06}")
}

fn believed(store: usize, i: usize) -> i64 {
    ((i * 31 + store * 7) % 40) as i64
}

fn in_flight(i: usize) -> bool {
    i % 200 == 7
}

fn drifts(i: usize) -> bool {
    i % 100 == 3
}

fn centra_physical(store: usize, i: usize) -> i64 {
    believed(store, i) + i64::from(drifts(i))
}

fn store_code(store: usize) -> String {
    format!("ST-{store:02}")
}

fn store_index(code: &StoreCode) -> usize {
    code.as_str()[3..].parse().expect("ST-nn")
}

/// The ledger, generated per store when listed.
struct SyntheticLedger {
    shape: Shape,
}

impl SyntheticLedger {
    fn row(&self, store: &StoreCode, i: usize) -> LedgerRow {
        let s = store_index(store);
        let mut row = LedgerRow::new(store.clone(), ItemRef::Sku(sku(i)));
        row.rev = 3;
        row.version = 2;
        row.epoch = 1;
        row.count_qty = Some(believed(s, i));
        row.count_pushed = true;
        row.last_count = Some(EventPosition {
            occurred_at_ms: 1_700_000_000_000,
            sequence: None,
        });
        row.pushed_version = 2;
        row.updated_at_ms = 1_700_000_000_000;
        if in_flight(i) {
            row.delta_applied = -1;
            row.version = 3;
        }
        row
    }
}

fn unsupported() -> BackendError {
    BackendError::new("bench", "read-only ledger")
}

#[async_trait]
impl LedgerStore for SyntheticLedger {
    async fn get(
        &self,
        store: &StoreCode,
        item: &ItemRef,
    ) -> Result<Option<LedgerRow>, BackendError> {
        let i = item.value()["SKU-".len()..].parse().expect("SKU-nnnnnn");
        Ok(Some(self.row(store, i)))
    }
    async fn apply(
        &self,
        _: &str,
        _: i64,
        _: &LedgerRow,
        _: Option<u64>,
    ) -> Result<ApplyWrite, BackendError> {
        Err(unsupported())
    }
    async fn put(&self, _: &LedgerRow, _: u64) -> Result<bool, BackendError> {
        Err(unsupported())
    }
    async fn list_store(&self, store: &StoreCode) -> Result<Vec<LedgerRow>, BackendError> {
        Ok((0..self.shape.skus).map(|i| self.row(store, i)).collect())
    }
}

/// Correction messages are counted and dropped.
#[derive(Default)]
struct CountingQueue(AtomicU64);

#[async_trait]
impl StockQueue for CountingQueue {
    async fn send_all(&self, messages: &[FifoMessage]) -> Result<(), BackendError> {
        self.0.fetch_add(messages.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}

fn page_rows(shape: Shape, warehouse_id: u64, page: u32, limit: u32) -> Vec<CentraStockRow> {
    let store = (warehouse_id - FIRST_WAREHOUSE) as usize;
    let start = (page.max(1) as usize - 1) * limit as usize;
    let end = (start + limit as usize).min(shape.centra_rows());
    (start..end)
        .map(|i| {
            let (sku, physical) = if i < shape.skus {
                (sku(i), centra_physical(store, i))
            } else {
                (format!("CENTRA-ONLY-{i}"), 1)
            };
            CentraStockRow {
                size_id: i as u64 + 1,
                sku,
                ean: Some(format!("73{:011}", i)),
                physical,
                free_to_allocate: physical,
            }
        })
        .collect()
}

/// Pages handed over in process (no HTTP, no JSON).
struct MemoryPages(Shape);

#[async_trait]
impl WarehouseStockSource for MemoryPages {
    async fn stock_page(
        &self,
        warehouse_id: u64,
        page: u32,
        limit: u32,
    ) -> Result<Vec<CentraStockRow>, CentraError> {
        Ok(page_rows(self.0, warehouse_id, page, limit))
    }
}

/// The GraphQL answer Centra gives to the client's `WarehouseStock` query.
fn render_page(shape: Shape, warehouse_id: u64, page: u32, limit: u32) -> String {
    let mut out = String::with_capacity(limit as usize * 130 + 64);
    let _ = write!(
        out,
        "{{\"data\":{{\"warehouses\":[{{\"id\":{warehouse_id},\"stock\":["
    );
    for (n, row) in page_rows(shape, warehouse_id, page, limit)
        .iter()
        .enumerate()
    {
        if n > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            "{{\"productSize\":{{\"id\":{},\"SKU\":\"{}\",\"EAN\":\"{}\"}},\"physicalQuantity\":{},\"freeToAllocateQuantity\":{}}}",
            row.size_id,
            row.sku,
            row.ean.as_deref().unwrap_or(""),
            row.physical,
            row.free_to_allocate
        );
    }
    out.push_str("]}]}}");
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// One keep-alive HTTP/1.1 connection: POST with Content-Length in, JSON out.
async fn serve_connection(mut socket: tokio::net::TcpStream, shape: Shape) {
    let mut buffer = Vec::with_capacity(16 * 1024);
    loop {
        let header_end = loop {
            if let Some(at) = find(&buffer, b"\r\n\r\n") {
                break at + 4;
            }
            match socket.read_buf(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        };
        let head = String::from_utf8_lossy(&buffer[..header_end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while buffer.len() < header_end + length {
            match socket.read_buf(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
        let request: serde_json::Value =
            serde_json::from_slice(&buffer[header_end..header_end + length]).unwrap_or_default();
        buffer.drain(..header_end + length);
        let vars = &request["variables"];
        let arg = |name: &str| vars[name].as_u64().unwrap_or(1);
        let body = render_page(shape, arg("wh"), arg("page") as u32, arg("limit") as u32);
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        if socket.write_all(response.as_bytes()).await.is_err() {
            return;
        }
    }
}

async fn start_page_server(shape: Shape) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(serve_connection(socket, shape));
        }
    });
    format!("http://{addr}/graphql")
}

fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn mappings(shape: Shape) -> Mappings {
    let mut toml = String::new();
    for s in 0..shape.stores {
        let policy = if s % 2 == 0 { "correct" } else { "report" };
        let _ = writeln!(
            toml,
            "[stores.{}]\ncentra_warehouse_id = {}\ncloudshelf_location = \"gid://external/CentraWarehouse/{}\"\ncurrency = \"GBP\"\ndrift_policy = \"{policy}\"",
            store_code(s),
            FIRST_WAREHOUSE + s as u64,
            FIRST_WAREHOUSE + s as u64,
        );
    }
    Mappings::from_toml(&toml).expect("generated mappings")
}

async fn sweep(shape: Shape, over_http: bool) -> bool {
    let centra_stock: Arc<dyn WarehouseStockSource> = if over_http {
        let url = start_page_server(shape).await;
        Arc::new(CentraClient::new(
            url,
            "bench-token",
            Duration::from_secs(30),
        ))
    } else {
        Arc::new(MemoryPages(shape))
    };
    let reports_dir = std::env::temp_dir().join(format!("recon-bench-{}", std::process::id()));
    let queue = Arc::new(CountingQueue::default());
    let ctx = ReconContext {
        mappings: Arc::new(mappings(shape)),
        ledger: Arc::new(SyntheticLedger { shape }),
        stock_queue: queue.clone(),
        exceptions: Arc::new(MemoryLedgerStore::new()),
        centra_stock,
        checkpoints: Arc::new(MemoryCheckpointStore::new()),
        reports: Arc::new(LocalDirReportSink::new(&reports_dir)),
        metrics: Arc::new(Metrics::new()),
        clock: shared::core::clock::system_clock(),
        settings: ReconSettings {
            page_interval: Duration::ZERO,
            ..Default::default()
        },
        alerts: None,
        sources: Default::default(),
    };
    let rss_before = peak_rss_kb().unwrap_or(0);
    let started = Instant::now();
    let run = run_stock_drift(
        &ctx,
        &RunOptions {
            deadline_ms: chrono::Utc::now().timestamp_millis() + 3_600_000,
            ..Default::default()
        },
    )
    .await
    .expect("sweep runs");
    let elapsed = started.elapsed();
    let peak = peak_rss_kb().unwrap_or(0);
    let _ = std::fs::remove_dir_all(&reports_dir);

    let rows = (shape.stores * shape.skus) as u64;
    let expected_drift = (shape.stores * (0..shape.skus).filter(|i| drifts(*i)).count()) as u64;
    let expected_in_flight =
        (shape.stores * (0..shape.skus).filter(|i| in_flight(*i)).count()) as u64;
    let c = &run.counters;
    let correct = run.finished
        && c.get(counter::LEDGER_ROWS) == rows
        && c.get(counter::DRIFTED) == expected_drift
        && c.get(counter::IN_FLIGHT) == expected_in_flight
        && c.get(counter::ROWS_COMPARED) == rows - expected_in_flight
        && c.get(counter::NOT_IN_LEDGER)
            == (shape.stores * (shape.centra_rows() - shape.skus)) as u64;
    let secs = elapsed.as_secs_f64();
    println!(
        "recon stock drift ({}): {} stores x {} SKUs = {rows} rows, {} pages, {} drifted, {} corrections queued",
        if over_http { "loopback HTTP pages" } else { "in-process pages" },
        shape.stores,
        shape.skus,
        c.get(counter::PAGES),
        c.get(counter::DRIFTED),
        queue.0.load(Ordering::Relaxed),
    );
    println!(
        "  wall {secs:.2} s ({:.0} rows/s), peak RSS (VmHWM) {:.1} MB (before the sweep {:.1} MB)",
        rows as f64 / secs,
        peak as f64 / 1024.0,
        rss_before as f64 / 1024.0
    );
    println!("  counts as expected: {correct}");
    correct
}

/// One page from the Centra simulator with a single warehouse of `sizes` stocked sizes.
async fn probe_simulator(sizes: usize) {
    use simulators::centra::{CentraSim, CentraSimConfig};
    let sim = CentraSim::start(CentraSimConfig {
        rate_limits_enabled: false,
        ..Default::default()
    })
    .await;
    sim.add_warehouse(FIRST_WAREHOUSE, "probe");
    let seeding = Instant::now();
    for i in 0..sizes {
        sim.add_size(&sku(i), None, true);
        sim.set_physical(FIRST_WAREHOUSE, &sku(i), 1);
    }
    let seeded = seeding.elapsed();
    let client = CentraClient::new(sim.graphql_url(), sim.token(), Duration::from_secs(120));
    let started = Instant::now();
    let pages = 3;
    for page in 1..=pages {
        let rows = client
            .warehouse_stock_page(FIRST_WAREHOUSE, page, 200)
            .await
            .expect("simulator page");
        assert_eq!(rows.len(), 200);
    }
    let per_page = started.elapsed() / pages;
    println!(
        "Centra simulator, 1 warehouse x {sizes} sizes: seeding {:.1} s, {:.0} ms per 200-row page \
         (a 1 M-row sweep reads 5,000 pages: {:.0} s at this cost, before each page also filters 50 warehouses' rows)",
        seeded.as_secs_f64(),
        per_page.as_secs_f64() * 1000.0,
        per_page.as_secs_f64() * 5_000.0,
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let has = |flag: &str| args.iter().any(|a| a == flag);
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let benching = has("--bench");
    let shape = Shape {
        stores: value("--stores")
            .and_then(|v| v.parse().ok())
            .unwrap_or(if benching { 50 } else { 3 }),
        skus: value("--skus")
            .and_then(|v| v.parse().ok())
            .unwrap_or(if benching { 20_000 } else { 2_000 }),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    if has("--probe-simulator") {
        runtime.block_on(probe_simulator(shape.skus));
        return;
    }
    let over_http = value("--source").as_deref() != Some("memory");
    if !runtime.block_on(sweep(shape, over_http)) {
        eprintln!("the sweep's counts are wrong");
        std::process::exit(1);
    }
}
