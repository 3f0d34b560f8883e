//! Test harness: the embedded pipeline around a loopback Centra simulator, driven step by step (no sleeps).

use shared::config::mappings::Mappings;
use shared::core::clock::{OffsetClock, SharedClock};
use shared::intake::contract::IntakeResponse;
use shared::wiring::local::{Pipeline, PipelineConfig};
use simulators::centra::{CentraSim, CentraSimConfig};
use std::sync::Arc;

pub const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

pub struct Harness {
    pub sim: CentraSim,
    pub pipeline: Arc<Pipeline>,
    pub clock: OffsetClock,
    pub mappings: Arc<Mappings>,
}

pub fn warehouse(mappings: &Mappings, store: &str) -> u64 {
    mappings
        .store(store)
        .expect("mapped store")
        .centra_warehouse_id
}

pub async fn sim_with(
    skus: &[&str],
    stock: i64,
    config: CentraSimConfig,
) -> (CentraSim, Arc<Mappings>) {
    sim_with_mappings(skus, stock, config, Arc::new(Mappings::embedded_default())).await
}

pub async fn sim_with_mappings(
    skus: &[&str],
    stock: i64,
    config: CentraSimConfig,
    mappings: Arc<Mappings>,
) -> (CentraSim, Arc<Mappings>) {
    let sim = CentraSim::start(config).await;
    for store in mappings.stores() {
        sim.add_warehouse(store.centra_warehouse_id, store.store.as_str());
    }
    for sku in skus {
        sim.add_size(sku, None, true);
        for store in mappings.stores() {
            sim.set_physical(store.centra_warehouse_id, sku, stock);
        }
    }
    (sim, mappings)
}

impl Harness {
    pub async fn new(skus: &[&str], stock: i64) -> Self {
        Self::with(skus, stock, CentraSimConfig::default(), |_| {}).await
    }

    /// Like [`Harness::new`], with other mappings.
    pub async fn with_mappings(skus: &[&str], stock: i64, mappings: Arc<Mappings>) -> Self {
        let (sim, mappings) =
            sim_with_mappings(skus, stock, CentraSimConfig::default(), mappings).await;
        Self::on(sim, mappings, |_| {})
    }

    pub async fn with(
        skus: &[&str],
        stock: i64,
        sim_config: CentraSimConfig,
        tweak: impl FnOnce(&mut PipelineConfig),
    ) -> Self {
        let (sim, mappings) = sim_with(skus, stock, sim_config).await;
        Self::on(sim, mappings, tweak)
    }

    fn on(
        sim: CentraSim,
        mappings: Arc<Mappings>,
        tweak: impl FnOnce(&mut PipelineConfig),
    ) -> Self {
        let clock = OffsetClock::new();
        let mut config = PipelineConfig::new(sim.graphql_url(), sim.token(), SECRET);
        config.clock = Arc::new(clock.clone()) as SharedClock;
        tweak(&mut config);
        let pipeline = Arc::new(Pipeline::new(config, mappings.clone()).expect("valid secret"));
        Self {
            sim,
            pipeline,
            clock,
            mappings,
        }
    }

    pub fn now_ms(&self) -> i64 {
        use shared::core::clock::Clock;
        self.clock.now_millis()
    }

    pub async fn send(&self, id: &str, body: &str) -> IntakeResponse {
        self.pipeline.send_signed(SECRET, id, body.as_bytes()).await
    }

    /// Applies everything queued (batches of 10, like the FIFO trigger).
    pub async fn apply_all(&self) -> usize {
        let mut total = 0;
        for _ in 0..100_000 {
            let n = self.pipeline.apply_round().await;
            if n == 0 {
                return total;
            }
            total += n;
        }
        panic!("apply did not drain");
    }

    /// Applies and pushes until nothing is left that can move now.
    pub async fn settle(&self) {
        for _ in 0..200 {
            self.apply_all().await;
            self.pipeline.push_round().await;
            if self.pipeline.is_settled() {
                return;
            }
        }
        panic!("pipeline did not settle");
    }

    /// Requests to Centra whose document names this root field (`changeStock`, `stockChangeConnection`…).
    pub fn calls_to(&self, root_field: &str) -> usize {
        self.sim
            .requests()
            .iter()
            .filter(|r| r.root_fields.iter().any(|f| f == root_field))
            .count()
    }

    pub fn centra(&self, store: &str, sku: &str) -> i64 {
        self.sim
            .stock(warehouse(&self.mappings, store), sku)
            .map(|s| s.physical)
            .unwrap_or_else(|| panic!("no stock for {store} {sku}"))
    }
}

pub fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

pub fn sale(store: &str, at_ms: i64, lines: &[(&str, i64)]) -> String {
    movement("stock.sale", store, at_ms, lines)
}

/// The currency events of `store` carry: its currency in the embedded mappings (GBP for other stores).
pub fn store_currency(store: &str) -> String {
    Mappings::embedded_default()
        .store(store)
        .map_or_else(|| "GBP".to_string(), |m| m.currency.clone())
}

pub fn movement(kind: &str, store: &str, at_ms: i64, lines: &[(&str, i64)]) -> String {
    let currency = store_currency(store);
    let lines: Vec<serde_json::Value> = lines
        .iter()
        .map(|(sku, q)| {
            if kind == "stock.sale" || kind == "stock.return" {
                serde_json::json!({ "sku": sku, "quantity": q, "unit_price": "10.00", "currency": currency })
            } else {
                serde_json::json!({ "sku": sku, "quantity": q })
            }
        })
        .collect();
    let mut body = serde_json::json!({ "type": kind, "occurred_at": iso(at_ms), "store": store, "lines": lines });
    if kind == "stock.adjustment" {
        body["reason"] = serde_json::json!("damaged");
    }
    body.to_string()
}
