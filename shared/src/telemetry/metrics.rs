//! Metrics: aggregated per invocation and written as CloudWatch Embedded Metric Format (EMF) log lines, so
//! they need no API call or IAM permission. The local run reads the same recorder for its summary.

use std::collections::BTreeMap;
use std::sync::Mutex;

pub const SERVICE_DIMENSION: &str = "cloudshelf-centra";

/// Metric names (the template's alarms and dashboard use these).
pub mod names {
    pub const EVENTS_ACCEPTED: &str = "EventsAccepted";
    pub const EVENTS_DUPLICATE: &str = "EventsDuplicate";
    pub const EVENTS_REJECTED: &str = "EventsRejected";
    pub const EVENTS_CONFLICT: &str = "EventsConflict";
    pub const INTAKE_QUEUE_FAILURES: &str = "IntakeQueueFailures";
    pub const MOVEMENTS_APPLIED: &str = "MovementsApplied";
    pub const MOVEMENTS_DUPLICATE: &str = "MovementsDuplicate";
    pub const MOVEMENTS_STALE: &str = "MovementsStale";
    pub const CENTRA_MUTATIONS: &str = "CentraMutations";
    pub const CENTRA_MUTATION_LATENCY: &str = "CentraMutationLatency";
    pub const CENTRA_RATE_LIMITED: &str = "CentraRateLimited";
    pub const CENTRA_UNCERTAIN: &str = "CentraUncertainOutcomes";
    pub const SYNC_LAG: &str = "SyncLag";
    pub const STOCK_EXCEPTIONS: &str = "StockExceptions";
    pub const UNRESOLVED_PUSHES: &str = "UnresolvedPushes";
    /// `order.placed` store events accepted onto the orders queue.
    pub const ORDERS_ACCEPTED: &str = "OrdersAccepted";
    /// Centra webhook calls received (`POST /v1/centra-webhooks`), whatever the answer.
    pub const CENTRA_WEBHOOKS_RECEIVED: &str = "CentraWebhooksReceived";
    /// Centra webhook calls refused with a 4xx (a wrong `CENTRA_WEBHOOK_SECRET` shows here).
    pub const CENTRA_WEBHOOKS_REJECTED: &str = "CentraWebhooksRejected";
    pub const CENTRA_WEBHOOK_EVENTS_QUEUED: &str = "CentraWebhookEventsQueued";
    pub const CENTRA_WEBHOOK_DUPLICATES: &str = "CentraWebhookDuplicates";
    /// Centra webhook events of types the integration does not handle (acknowledged, not queued).
    pub const CENTRA_WEBHOOK_IGNORED: &str = "CentraWebhookIgnored";
    // Reconciliation (recon::jobs).
    /// (store, SKU) rows whose Centra quantity differs from the ledger, found by this invocation.
    pub const DRIFTED_SKUS: &str = "DriftedSkus";
    /// Ledger rows compared with Centra by this invocation.
    pub const RECON_ROWS_COMPARED: &str = "ReconRowsCompared";
    /// Invocations that stopped at their deadline with work left (the next one resumes).
    pub const RECON_RUNS_INCOMPLETE: &str = "ReconRunsIncomplete";
    /// Invocations that failed (Centra or Cloudshelf unreachable, storage errors); counted by the caller.
    pub const RECON_RUNS_FAILED: &str = "ReconRunsFailed";
    /// SKUs missing on either side (SKU audit).
    pub const MISSING_SKUS: &str = "MissingSkus";
    /// All SKU audit findings.
    pub const CATALOGUE_FINDINGS: &str = "CatalogueFindings";
    /// Stock levels sent to Cloudshelf.
    pub const AVAILABILITY_ROWS_PUSHED: &str = "AvailabilityRowsPushed";
    /// (location, variant) whose Cloudshelf `isInStock` disagrees with Centra after the push.
    pub const IN_STOCK_MISMATCHES: &str = "InStockMismatches";
    /// Stalled kiosk orders and store movements not in Centra in time.
    pub const STALLED_ORDERS: &str = "StalledOrders";
    pub const UNPOSTED_STORE_MOVEMENTS: &str = "UnpostedStoreMovements";
    /// Store days whose accepted and posted totals differ at close.
    pub const UNVALIDATED_TOTALS: &str = "UnvalidatedTotals";
    /// Lines written to the event archive (accepted requests and applied movements).
    pub const ARCHIVED_LINES: &str = "ArchivedLines";
    /// Stream records the archiver could not read (archived as `unreadable` lines).
    pub const ARCHIVE_UNREADABLE: &str = "ArchiveUnreadable";
    /// Archive batches S3 did not take (Lambda retries them; after that they go to the archive gap queue).
    pub const ARCHIVE_WRITE_FAILURES: &str = "ArchiveWriteFailures";
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Milliseconds,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
        }
    }
}

#[derive(Debug, Default)]
struct Series {
    unit: Option<Unit>,
    sum: f64,
    values: Vec<f64>,
}

/// Thread-safe aggregation of counts and distributions.
#[derive(Debug, Default)]
pub struct Metrics {
    series: Mutex<BTreeMap<&'static str, Series>>,
}

/// EMF accepts at most 100 values per metric per document.
const EMF_MAX_VALUES: usize = 100;

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn count(&self, name: &'static str, n: u64) {
        if n == 0 {
            return;
        }
        let mut s = self.series.lock().expect("metrics lock");
        let e = s.entry(name).or_default();
        e.unit = Some(Unit::Count);
        e.sum += n as f64;
    }

    pub fn observe_ms(&self, name: &'static str, ms: i64) {
        let mut s = self.series.lock().expect("metrics lock");
        let e = s.entry(name).or_default();
        e.unit = Some(Unit::Milliseconds);
        e.values.push(ms.max(0) as f64);
    }

    pub fn total(&self, name: &str) -> f64 {
        let s = self.series.lock().expect("metrics lock");
        s.get(name)
            .map(|e| e.sum + e.values.iter().sum::<f64>())
            .unwrap_or(0.0)
    }

    /// All observed values of a distribution (benchmarks compute percentiles from it).
    pub fn values(&self, name: &str) -> Vec<f64> {
        let s = self.series.lock().expect("metrics lock");
        s.get(name).map(|e| e.values.clone()).unwrap_or_default()
    }

    pub fn counts(&self) -> BTreeMap<String, f64> {
        let s = self.series.lock().expect("metrics lock");
        s.iter()
            .filter(|(_, e)| e.unit == Some(Unit::Count))
            .map(|(k, e)| (k.to_string(), e.sum))
            .collect()
    }

    /// Renders and clears everything as EMF JSON documents (one per line).
    pub fn drain_emf(&self, namespace: &str, timestamp_ms: i64) -> Vec<String> {
        let taken = std::mem::take(&mut *self.series.lock().expect("metrics lock"));
        let mut docs = Vec::new();
        let mut counts = serde_json::Map::new();
        let mut count_defs = Vec::new();
        for (name, series) in &taken {
            match series.unit {
                Some(Unit::Count) => {
                    counts.insert(name.to_string(), serde_json::json!(series.sum));
                    count_defs.push(serde_json::json!({"Name": name, "Unit": "Count"}));
                }
                Some(unit @ Unit::Milliseconds) => {
                    for chunk in series.values.chunks(EMF_MAX_VALUES) {
                        let mut doc = emf_envelope(
                            namespace,
                            timestamp_ms,
                            vec![serde_json::json!({"Name": name, "Unit": unit.as_str()})],
                        );
                        doc.insert(name.to_string(), serde_json::json!(chunk));
                        docs.push(serde_json::Value::Object(doc).to_string());
                    }
                }
                None => {}
            }
        }
        if !count_defs.is_empty() {
            let mut doc = emf_envelope(namespace, timestamp_ms, count_defs);
            doc.extend(counts);
            docs.insert(0, serde_json::Value::Object(doc).to_string());
        }
        docs
    }

    /// Writes the EMF documents to stdout, where the Lambda log agent picks them up.
    pub fn flush_to_stdout(&self, namespace: &str, timestamp_ms: i64) {
        for line in self.drain_emf(namespace, timestamp_ms) {
            println!("{line}");
        }
    }
}

fn emf_envelope(
    namespace: &str,
    timestamp_ms: i64,
    metric_defs: Vec<serde_json::Value>,
) -> serde_json::Map<String, serde_json::Value> {
    let mut doc = serde_json::Map::new();
    doc.insert(
        "_aws".into(),
        serde_json::json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [["Service"]],
                "Metrics": metric_defs,
            }]
        }),
    );
    doc.insert("Service".into(), serde_json::json!(SERVICE_DIMENSION));
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_documents_carry_counts_and_chunked_values() {
        let m = Metrics::new();
        m.count(names::EVENTS_ACCEPTED, 2);
        m.count(names::EVENTS_ACCEPTED, 1);
        for i in 0..150 {
            m.observe_ms(names::SYNC_LAG, i);
        }
        let docs = m.drain_emf("NS", 5);
        assert_eq!(docs.len(), 3);
        let first: serde_json::Value = serde_json::from_str(&docs[0]).unwrap();
        assert_eq!(first["EventsAccepted"], 3.0);
        assert_eq!(first["_aws"]["CloudWatchMetrics"][0]["Namespace"], "NS");
        assert_eq!(first["Service"], SERVICE_DIMENSION);
        let lag: serde_json::Value = serde_json::from_str(&docs[1]).unwrap();
        assert_eq!(lag["SyncLag"].as_array().unwrap().len(), 100);
        assert!(m.drain_emf("NS", 5).is_empty(), "drain clears");
    }
}
