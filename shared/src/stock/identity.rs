//! One identity per item: a line names a Centra product size by SKU, EAN or both; intake resolves it to that
//! one size before anything is queued, so every name of a size shares one FIFO group, one ledger row and one
//! line per Centra mutation. Names that disagree are refused, and so are names Centra does not know.
//!
//! The catalogue answers from memory on the hot path: a snapshot of Centra's sizes (written by the
//! reconciliation's SKU audit, which reads the whole catalogue anyway) is loaded on first use; a name it lacks
//! is looked up in Centra once (`productSizes(where: {SKU|EAN: {equals}})`), and a name Centra does not know
//! is remembered as unknown for a while. Lookups are paced, so a flood of unknown names costs Centra a bounded
//! number of requests however many events name them.

use crate::centra::{CentraClient, CentraError, SizeRecord};
use crate::core::clock::SharedClock;
use crate::core::ids::ItemRef;
use crate::events::store_events::{invalid, StockEvent, ValidationError};
use crate::events::strict_json::clip;
use crate::recon::ports::ReportSink;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

/// Where the reconciliation keeps the catalogue snapshot (in the reports bucket).
pub const SNAPSHOT_KEY: &str = "catalogue/centra-sizes.json";

/// Every Centra size at one moment: id, SKU, EAN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogueSnapshot {
    pub taken_at_ms: i64,
    pub sizes: Vec<SizeRecord>,
}

/// Where the catalogue's sizes come from on first use.
#[async_trait]
pub trait SizeSource: Send + Sync {
    /// Every size; `None` when there is nothing to load yet.
    async fn load(&self) -> Result<Option<CatalogueSnapshot>, String>;
}

/// The snapshot object the SKU audit writes (an S3 object in the deployed stack).
pub struct SnapshotObject {
    pub sink: Arc<dyn ReportSink>,
    pub key: String,
}

#[async_trait]
impl SizeSource for SnapshotObject {
    async fn load(&self) -> Result<Option<CatalogueSnapshot>, String> {
        match self.sink.get(&self.key).await {
            Ok(Some(bytes)) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| format!("snapshot {} unreadable: {e}", self.key)),
            Ok(None) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// A whole read of Centra's catalogue (products → variants → sizes): the local run and `serve`, where no
/// reconciliation writes a snapshot.
pub struct CatalogueRead(pub CentraClient);

#[async_trait]
impl SizeSource for CatalogueRead {
    async fn load(&self) -> Result<Option<CatalogueSnapshot>, String> {
        let sizes = self
            .0
            .all_product_sizes(crate::centra::catalogue::MAX_PAGE_LIMIT)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Some(CatalogueSnapshot {
            taken_at_ms: chrono::Utc::now().timestamp_millis(),
            sizes: sizes.iter().map(SizeRecord::from).collect(),
        }))
    }
}

impl From<&crate::centra::catalogue::CentraSize> for SizeRecord {
    fn from(s: &crate::centra::catalogue::CentraSize) -> Self {
        SizeRecord {
            id: s.size_id,
            sku: Some(s.sku.clone()),
            ean: s.ean.clone(),
        }
    }
}

/// Centra's answer for one name.
#[async_trait]
pub trait SizeDirectory: Send + Sync {
    async fn sizes_named(&self, item: &ItemRef) -> Result<Vec<SizeRecord>, CentraError>;
}

#[async_trait]
impl SizeDirectory for CentraClient {
    async fn sizes_named(&self, item: &ItemRef) -> Result<Vec<SizeRecord>, CentraError> {
        CentraClient::sizes_named(self, item).await
    }
}

/// What the catalogue knows of a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    Known(SizeRecord),
    /// Centra has no size of that name.
    Unknown,
    /// Several sizes carry it (a catalogue error in Centra, e.g. one EAN on two sizes).
    Ambiguous(Vec<SizeRecord>),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogueError {
    /// Too many lookups just now; the caller should answer "retry" (503), not guess.
    #[error("the item catalogue is busy looking up other names; retry in {retry_after_s} s")]
    Busy { retry_after_s: u32 },
    #[error("the item catalogue could not ask Centra: {0}")]
    Unavailable(String),
}

#[derive(Debug, Clone)]
pub struct CatalogueSettings {
    /// How long a name Centra did not know is answered as unknown without asking again.
    pub unknown_ttl_ms: i64,
    /// Centra lookups per second (sustained) and in a burst, per process.
    pub lookups_per_second: f64,
    pub lookup_burst: f64,
    /// After a failed snapshot load, wait this long before trying again.
    pub reload_after_failure_ms: i64,
}

impl Default for CatalogueSettings {
    fn default() -> Self {
        Self {
            unknown_ttl_ms: 5 * 60_000,
            // Centra's Growth tier allows 60 requests per 10 s for every integration together.
            lookups_per_second: 1.0,
            lookup_burst: 5.0,
            reload_after_failure_ms: 60_000,
        }
    }
}

#[derive(Default)]
struct Index {
    by_sku: HashMap<String, Vec<SizeRecord>>,
    by_ean: HashMap<String, Vec<SizeRecord>>,
}

impl Index {
    fn insert(&mut self, size: SizeRecord) {
        for (map, name) in [
            (&mut self.by_sku, size.sku.clone()),
            (&mut self.by_ean, size.ean.clone()),
        ] {
            if let Some(name) = name {
                let entry = map.entry(name).or_default();
                entry.retain(|s| s.id != size.id);
                entry.push(size.clone());
            }
        }
    }

    fn get(&self, item: &ItemRef) -> Option<Lookup> {
        let found = match item {
            ItemRef::Sku(s) => self.by_sku.get(s),
            ItemRef::Ean(e) => self.by_ean.get(e),
        }?;
        Some(match found.as_slice() {
            [] => return None,
            [one] => Lookup::Known(one.clone()),
            many => Lookup::Ambiguous(many.to_vec()),
        })
    }

    fn len(&self) -> usize {
        let mut ids: Vec<u64> = self
            .by_sku
            .values()
            .chain(self.by_ean.values())
            .flatten()
            .map(|s| s.id)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids.len()
    }
}

enum LoadState {
    NotLoaded,
    Loaded,
    FailedAt(i64),
}

struct Pacer {
    tokens: f64,
    at_ms: i64,
}

/// The catalogue of Centra sizes intake and the pusher consult.
pub struct ItemCatalogue {
    index: RwLock<Index>,
    unknown_until: Mutex<HashMap<ItemRef, i64>>,
    pacer: Mutex<Pacer>,
    load: tokio::sync::Mutex<LoadState>,
    source: Option<Arc<dyn SizeSource>>,
    directory: Option<Arc<dyn SizeDirectory>>,
    settings: CatalogueSettings,
    clock: SharedClock,
}

impl ItemCatalogue {
    /// A catalogue holding `sizes`, with no snapshot to load and no Centra to ask.
    pub fn with_sizes(sizes: impl IntoIterator<Item = SizeRecord>, clock: SharedClock) -> Self {
        let catalogue = Self::new(None, None, CatalogueSettings::default(), clock);
        catalogue.insert_all(sizes);
        *catalogue.load.try_lock().expect("new catalogue") = LoadState::Loaded;
        catalogue
    }

    /// `source`: what to load on first use; `directory`: whom to ask about a name the catalogue lacks.
    pub fn new(
        source: Option<Arc<dyn SizeSource>>,
        directory: Option<Arc<dyn SizeDirectory>>,
        settings: CatalogueSettings,
        clock: SharedClock,
    ) -> Self {
        let now = clock.now_millis();
        Self {
            index: RwLock::new(Index::default()),
            unknown_until: Mutex::new(HashMap::new()),
            pacer: Mutex::new(Pacer {
                tokens: settings.lookup_burst,
                at_ms: now,
            }),
            load: tokio::sync::Mutex::new(if source.is_some() {
                LoadState::NotLoaded
            } else {
                LoadState::Loaded
            }),
            source,
            directory,
            settings,
            clock,
        }
    }

    pub fn insert_all(&self, sizes: impl IntoIterator<Item = SizeRecord>) {
        let mut index = self.index.write().expect("catalogue index");
        for size in sizes {
            index.insert(size);
        }
    }

    /// Sizes known in memory.
    pub fn len(&self) -> usize {
        self.index.read().expect("catalogue index").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What memory says of `item`, without loading or asking anyone.
    pub fn cached(&self, item: &ItemRef) -> Option<Lookup> {
        self.index.read().expect("catalogue index").get(item)
    }

    async fn ensure_loaded(&self) {
        let Some(source) = &self.source else {
            return;
        };
        let mut state = self.load.lock().await;
        let now = self.clock.now_millis();
        match *state {
            LoadState::Loaded => return,
            LoadState::FailedAt(at) if now - at < self.settings.reload_after_failure_ms => return,
            _ => {}
        }
        match source.load().await {
            Ok(Some(snapshot)) => {
                tracing::info!(
                    sizes = snapshot.sizes.len(),
                    taken_at_ms = snapshot.taken_at_ms,
                    "item catalogue loaded"
                );
                self.insert_all(snapshot.sizes);
                *state = LoadState::Loaded;
            }
            Ok(None) => {
                tracing::warn!("no catalogue snapshot yet (the SKU audit writes it); names are looked up in Centra");
                *state = LoadState::Loaded;
            }
            Err(e) => {
                tracing::warn!(error = %e, "item catalogue not loaded; names are looked up in Centra, and the load is tried again");
                *state = LoadState::FailedAt(now);
            }
        }
    }

    /// Loads the source now (instead of on first use).
    pub async fn preload(&self) {
        self.ensure_loaded().await;
    }

    fn take_lookup_token(&self, now_ms: i64) -> Result<(), CatalogueError> {
        let mut pacer = self.pacer.lock().expect("catalogue pacer");
        let elapsed_s = (now_ms - pacer.at_ms).max(0) as f64 / 1000.0;
        pacer.tokens = (pacer.tokens + elapsed_s * self.settings.lookups_per_second)
            .min(self.settings.lookup_burst);
        pacer.at_ms = now_ms;
        if pacer.tokens >= 1.0 {
            pacer.tokens -= 1.0;
            return Ok(());
        }
        let wait_s = (1.0 - pacer.tokens) / self.settings.lookups_per_second.max(0.001);
        Err(CatalogueError::Busy {
            retry_after_s: wait_s.ceil().clamp(1.0, 60.0) as u32,
        })
    }

    /// What Centra knows of `item`: from memory, else (once per name and pace) from Centra.
    pub async fn lookup(&self, item: &ItemRef) -> Result<Lookup, CatalogueError> {
        self.ensure_loaded().await;
        if let Some(found) = self.cached(item) {
            return Ok(found);
        }
        let now = self.clock.now_millis();
        if self
            .unknown_until
            .lock()
            .expect("unknown names")
            .get(item)
            .is_some_and(|until| *until > now)
        {
            return Ok(Lookup::Unknown);
        }
        let Some(directory) = &self.directory else {
            return Ok(Lookup::Unknown);
        };
        self.take_lookup_token(now)?;
        let sizes = match directory.sizes_named(item).await {
            Ok(sizes) => sizes,
            Err(CentraError::RateLimited { retry_at_ms }) => {
                let wait = retry_at_ms.map_or(5, |at| ((at - now).max(0) / 1000 + 1) as u32);
                return Err(CatalogueError::Busy {
                    retry_after_s: wait.clamp(1, 60),
                });
            }
            Err(e) => return Err(CatalogueError::Unavailable(e.to_string())),
        };
        if sizes.is_empty() {
            let mut unknown = self.unknown_until.lock().expect("unknown names");
            // Bounded: expired names go before a new one is remembered.
            if unknown.len() > 50_000 {
                unknown.retain(|_, until| *until > now);
            }
            unknown.insert(item.clone(), now + self.settings.unknown_ttl_ms);
            return Ok(Lookup::Unknown);
        }
        self.insert_all(sizes);
        Ok(self.cached(item).unwrap_or(Lookup::Unknown))
    }
}

/// The one name every part of the integration uses for a size: its Centra SKU (its EAN when it has none).
pub fn canonical(size: &SizeRecord) -> Option<ItemRef> {
    size.sku
        .clone()
        .map(ItemRef::Sku)
        .or_else(|| size.ean.clone().map(ItemRef::Ean))
}

/// Why an event's items could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolveError {
    /// A line names something Centra does not have, or names that disagree: 400.
    Invalid(ValidationError),
    /// Centra could not be asked now: 503, the sender retries.
    Catalogue(CatalogueError),
}

impl From<CatalogueError> for ResolveError {
    fn from(e: CatalogueError) -> Self {
        ResolveError::Catalogue(e)
    }
}

async fn known_size(
    catalogue: &ItemCatalogue,
    item: &ItemRef,
    field: &str,
) -> Result<SizeRecord, ResolveError> {
    match catalogue.lookup(item).await? {
        Lookup::Known(size) => Ok(size),
        Lookup::Unknown => Err(ResolveError::Invalid(invalid(
            "unknown_item",
            field,
            match item {
                ItemRef::Sku(s) => format!("Centra has no product size with SKU \"{}\"", clip(s)),
                ItemRef::Ean(e) => format!("Centra has no product size with EAN \"{}\"", clip(e)),
            },
        ))),
        Lookup::Ambiguous(sizes) => Err(ResolveError::Invalid(invalid(
            "ambiguous_item",
            field,
            format!(
                "{} names {} Centra sizes (ids {}); name the size by SKU",
                item,
                sizes.len(),
                sizes
                    .iter()
                    .map(|s| s.id.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ))),
    }
}

/// Resolves every line of `event` to its Centra size and renames it by the size's canonical name. A line
/// naming SKU and EAN of different sizes is refused on `lines[i].ean`; two lines of a count naming one size
/// (under any names) are refused too.
pub async fn resolve_event(
    event: &mut StockEvent,
    catalogue: &ItemCatalogue,
) -> Result<(), ResolveError> {
    for (i, line) in event.lines.iter_mut().enumerate() {
        let (by_name, name_field) = match &line.item {
            ItemRef::Sku(_) => (&line.item, format!("lines[{i}].sku")),
            ItemRef::Ean(_) => (&line.item, format!("lines[{i}].ean")),
        };
        let size = known_size(catalogue, by_name, &name_field).await?;
        if let (ItemRef::Sku(sku), Some(ean)) = (&line.item, &line.ean) {
            let ean_field = format!("lines[{i}].ean");
            let by_ean = match catalogue.lookup(&ItemRef::Ean(ean.clone())).await? {
                Lookup::Known(s) => Some(s),
                Lookup::Unknown => None,
                Lookup::Ambiguous(sizes) => sizes.into_iter().find(|s| s.id == size.id),
            };
            match by_ean {
                Some(s) if s.id == size.id => {}
                Some(other) => {
                    return Err(ResolveError::Invalid(invalid(
                        "identity_mismatch",
                        ean_field,
                        format!(
                            "EAN \"{}\" is Centra size {}, not SKU \"{}\"",
                            clip(ean),
                            canonical(&other).map_or(other.id.to_string(), |c| c.to_string()),
                            clip(sku)
                        ),
                    )))
                }
                None => {
                    return Err(ResolveError::Invalid(invalid(
                        "identity_mismatch",
                        ean_field,
                        format!(
                            "Centra has no size with EAN \"{}\"; SKU \"{}\" has {}",
                            clip(ean),
                            clip(sku),
                            size.ean
                                .as_deref()
                                .map_or("no EAN".to_string(), |e| format!("EAN \"{e}\""))
                        ),
                    )))
                }
            }
        }
        line.item = canonical(&size).ok_or_else(|| {
            ResolveError::Invalid(invalid(
                "unknown_item",
                name_field.clone(),
                format!("Centra size {} has neither SKU nor EAN", size.id),
            ))
        })?;
    }
    crate::events::store_events::check_counted_once(event.event_type, &event.lines)
        .and_then(|()| crate::events::store_events::check_item_sums(&event.lines))
        .map_err(ResolveError::Invalid)?;
    Ok(())
}

/// Merges a legacy row (named by a name that is not its size's canonical one, from before intake resolved
/// names) into the canonical row, exactly once however often it is interrupted: the legacy row first records
/// the merge and counts as pushed (so it never goes to Centra under its old name), then the canonical row
/// applies the merge (keyed, so a repeat is a duplicate), then the legacy row clears it. Movements that still
/// arrive for the legacy name are applied to the canonical row (`LedgerRow::retired_into`).
///
/// Returns false when the row cannot be merged now (a push holds it, or an operator must look at it first).
pub async fn merge_legacy_row(
    ledger: &dyn crate::stock::ports::LedgerStore,
    finance: &crate::finance::FinanceHooks,
    store: &crate::core::ids::StoreCode,
    legacy: &ItemRef,
    into: &ItemRef,
    now_ms: i64,
) -> Result<bool, crate::core::errors::BackendError> {
    use crate::core::errors::BackendError;
    use crate::stock::ledger::{absorb_merge, begin_merge, ApplyDecision};
    use crate::stock::ports::ApplyWrite;
    for _ in 0..20 {
        let Some(mut row) = ledger.get(store, legacy).await? else {
            return Ok(true);
        };
        let Some(merge) = row.merge.clone() else {
            if row.retired_into.is_some() {
                return Ok(true);
            }
            if row.lease.is_some() || row.blocked.is_some() {
                return Ok(false);
            }
            let rev = row.rev;
            begin_merge(&mut row, into, now_ms);
            ledger.put(&row, rev).await?;
            continue;
        };
        let target = ledger.get(store, &merge.into).await?;
        let expected = target.as_ref().map(|r| r.rev);
        let marker_expires = now_ms.div_euclid(1000) + crate::stock::apply::MOVEMENT_MARKER_TTL_S;
        let (written, stale) = match absorb_merge(target, store, &merge, now_ms) {
            ApplyDecision::Apply(r) => (r, false),
            ApplyDecision::Stale { row: r, .. } => (r, true),
        };
        match ledger
            .apply(&merge.movement_id, marker_expires, &written, expected)
            .await?
        {
            ApplyWrite::Conflict => continue,
            ApplyWrite::Written | ApplyWrite::Duplicate => {}
        }
        if stale {
            // Older than a count the canonical row holds: that count carried them to Centra.
            finance
                .posted(
                    store,
                    &merge.into,
                    &merge.pending,
                    crate::stock::apply::COVERED_BY_COUNT,
                    now_ms,
                )
                .await?;
        }
        let rev = row.rev;
        row.merge = None;
        if ledger.put(&row, rev).await? {
            return Ok(true);
        }
    }
    Err(BackendError::new(
        "ledger",
        format!("row {store} {legacy} kept changing during its merge"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::clock::ManualClock;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Directory {
        sizes: Vec<SizeRecord>,
        calls: AtomicUsize,
    }

    #[async_trait]
    impl SizeDirectory for Directory {
        async fn sizes_named(&self, item: &ItemRef) -> Result<Vec<SizeRecord>, CentraError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            Ok(self
                .sizes
                .iter()
                .filter(|s| match item {
                    ItemRef::Sku(v) => s.sku.as_deref() == Some(v),
                    ItemRef::Ean(v) => s.ean.as_deref() == Some(v),
                })
                .cloned()
                .collect())
        }
    }

    fn size(id: u64, sku: &str, ean: Option<&str>) -> SizeRecord {
        SizeRecord {
            id,
            sku: Some(sku.into()),
            ean: ean.map(str::to_string),
        }
    }

    #[tokio::test]
    async fn unknown_names_cost_a_bounded_number_of_lookups() {
        let clock = ManualClock::at(1_000_000);
        let directory = Arc::new(Directory {
            sizes: vec![size(7, "NEW-1", Some("7350000000999"))],
            calls: AtomicUsize::new(0),
        });
        let catalogue = ItemCatalogue::new(
            None,
            Some(directory.clone()),
            CatalogueSettings::default(),
            Arc::new(clock.clone()),
        );
        // A size created in Centra after the snapshot is found on its first miss, then served from memory.
        assert!(matches!(
            catalogue.lookup(&ItemRef::Sku("NEW-1".into())).await,
            Ok(Lookup::Known(s)) if s.id == 7
        ));
        assert!(matches!(
            catalogue
                .lookup(&ItemRef::Ean("7350000000999".into()))
                .await,
            Ok(Lookup::Known(_))
        ));
        assert_eq!(directory.calls.load(Ordering::SeqCst), 1);

        // 200 unknown names at once: the burst is asked, the rest told to retry; repeats are not asked again.
        let mut busy = 0;
        for i in 0..200 {
            match catalogue.lookup(&ItemRef::Sku(format!("nope-{i}"))).await {
                Ok(Lookup::Unknown) => {}
                Err(CatalogueError::Busy { .. }) => busy += 1,
                other => panic!("{other:?}"),
            }
        }
        let asked = directory.calls.load(Ordering::SeqCst) - 1;
        assert_eq!(asked, 4, "the burst of 5 less the first lookup");
        assert_eq!(busy, 196);
        assert!(matches!(
            catalogue.lookup(&ItemRef::Sku("nope-0".into())).await,
            Ok(Lookup::Unknown)
        ));
        assert_eq!(directory.calls.load(Ordering::SeqCst) - 1, asked);
        // One second later, one more lookup may go out.
        clock.advance_millis(1_000);
        assert!(matches!(
            catalogue.lookup(&ItemRef::Sku("nope-100".into())).await,
            Ok(Lookup::Unknown)
        ));
        assert_eq!(directory.calls.load(Ordering::SeqCst) - 1, asked + 1);
    }

    fn movement(
        id: &str,
        item: &ItemRef,
        movement: crate::core::ids::Movement,
        at: i64,
    ) -> crate::events::store_events::StockLineMessage {
        crate::events::store_events::StockLineMessage {
            event_id: id.into(),
            line: 0,
            event_type: match movement {
                crate::core::ids::Movement::Count(_) => {
                    crate::events::store_events::StockEventType::Count
                }
                _ => crate::events::store_events::StockEventType::Adjustment,
            },
            store: crate::core::ids::StoreCode::parse("LDN-01").unwrap(),
            item: item.clone(),
            movement,
            position: crate::core::ids::EventPosition {
                occurred_at_ms: at,
                sequence: None,
            },
            received_at_ms: at,
            reference: None,
            values: Vec::new(),
            business_date: None,
        }
    }

    /// Applies through the real applier (markers, retired-row forwarding).
    async fn apply(
        ledger: &Arc<crate::adapters::memory::MemoryLedgerStore>,
        msg: &crate::events::store_events::StockLineMessage,
    ) -> ItemRef {
        let applier = crate::stock::apply::StockApplier {
            ledger: ledger.clone(),
            push_queue: Arc::new(crate::adapters::memory::MemoryPushQueue::new()),
            exceptions: ledger.clone(),
            metrics: Arc::new(crate::telemetry::metrics::Metrics::new()),
            clock: Arc::new(ManualClock::at(msg.received_at_ms)),
            finance: Default::default(),
        };
        applier.apply(msg).await.unwrap().1
    }

    #[tokio::test]
    async fn a_legacy_ean_row_merges_into_its_sku_row_once_and_later_movements_follow() {
        use crate::core::ids::Movement::{Count, Delta};
        use crate::stock::ports::LedgerStore;
        let ledger = Arc::new(crate::adapters::memory::MemoryLedgerStore::new());
        let store = crate::core::ids::StoreCode::parse("LDN-01").unwrap();
        let (ean, sku) = (
            ItemRef::Ean("7350000000012".into()),
            ItemRef::Sku("A-M".into()),
        );
        // Before the upgrade: a count by SKU, then sales by EAN on their own row.
        apply(&ledger, &movement("c", &sku, Count(10), 100)).await;
        apply(&ledger, &movement("s1", &ean, Delta(-2), 200)).await;
        apply(&ledger, &movement("s2", &ean, Delta(-1), 300)).await;

        let finance = crate::finance::FinanceHooks::default();
        assert!(
            merge_legacy_row(ledger.as_ref(), &finance, &store, &ean, &sku, 1_000)
                .await
                .unwrap()
        );
        // Again (a redelivered key, a second pusher): nothing more moves.
        assert!(
            merge_legacy_row(ledger.as_ref(), &finance, &store, &ean, &sku, 1_001)
                .await
                .unwrap()
        );
        let row = ledger.get(&store, &sku).await.unwrap().unwrap();
        assert_eq!(
            row.store_quantity(),
            Some(7),
            "the count and both sales, once"
        );
        assert_eq!(
            row.pending
                .iter()
                .map(|p| p.event_id.as_str())
                .collect::<Vec<_>>(),
            ["c", "s1", "s2"],
            "the sales' own ids travel with them (finance posts them when Centra holds them)"
        );
        assert_eq!(row.pending[1].accepted_as, Some(ean.clone()));
        let legacy = ledger.get(&store, &ean).await.unwrap().unwrap();
        assert!(
            !legacy.has_unpushed(),
            "the legacy row never goes to Centra"
        );
        assert_eq!(legacy.retired_into, Some(sku.clone()));

        // A sale still queued under the EAN lands on the SKU row, and a stale one is stale there.
        assert_eq!(
            apply(&ledger, &movement("s3", &ean, Delta(-1), 400)).await,
            sku
        );
        apply(&ledger, &movement("old", &ean, Delta(-5), 50)).await;
        let row = ledger.get(&store, &sku).await.unwrap().unwrap();
        assert_eq!(row.store_quantity(), Some(6));
        assert_eq!(row.stale_ignored, 1);
    }

    #[tokio::test]
    async fn a_merge_interrupted_after_its_first_write_completes_once() {
        use crate::core::ids::Movement::Delta;
        use crate::stock::ports::LedgerStore;
        let ledger = Arc::new(crate::adapters::memory::MemoryLedgerStore::new());
        let store = crate::core::ids::StoreCode::parse("LDN-01").unwrap();
        let (ean, sku) = (
            ItemRef::Ean("7350000000012".into()),
            ItemRef::Sku("A-M".into()),
        );
        apply(&ledger, &movement("s1", &sku, Delta(-1), 100)).await;
        apply(&ledger, &movement("s2", &ean, Delta(-2), 200)).await;
        // The first step alone, as a crash right after it would leave it.
        let mut legacy = ledger.get(&store, &ean).await.unwrap().unwrap();
        let rev = legacy.rev;
        assert!(crate::stock::ledger::begin_merge(&mut legacy, &sku, 500));
        assert!(ledger.put(&legacy, rev).await.unwrap());
        let finance = crate::finance::FinanceHooks::default();
        for at in [600, 700] {
            assert!(
                merge_legacy_row(ledger.as_ref(), &finance, &store, &ean, &sku, at)
                    .await
                    .unwrap()
            );
        }
        let row = ledger.get(&store, &sku).await.unwrap().unwrap();
        assert_eq!(row.delta_applied, -3);
        assert!(ledger
            .get(&store, &ean)
            .await
            .unwrap()
            .unwrap()
            .merge
            .is_none());
    }
}
