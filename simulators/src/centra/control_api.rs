//! The control API under `/_sim` (see [`crate::control`] for the routes and types): what tests do in
//! process through [`super::CentraSim`]'s methods, over HTTP for a simulator in another process.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use serde_json::json;

use super::{Fault, Inner, SizeRefusal};
use crate::control::{
    ConfigPatch, Counters, FaultSpec, RefuseSizeSpec, SizeCreated, SizeSpec, StockRow, StockSpec,
    UnrelatedChangesAdded, UnrelatedChangesSpec, WarehouseSpec,
};

type St = State<Arc<Inner>>;

pub(super) fn router() -> Router<Arc<Inner>> {
    Router::new()
        .route("/warehouses", post(add_warehouse))
        .route("/sizes", post(add_size))
        .route("/stock", post(set_stock).get(stock))
        .route("/stock-changes", get(stock_changes))
        .route("/stock-changes/unrelated", post(add_unrelated))
        .route("/faults", post(inject).delete(clear_faults))
        .route("/config", post(configure))
        .route("/refuse-size", post(refuse_size))
        .route("/requests", get(requests))
        .route("/counters", get(counters))
        .route("/wait-idle", post(wait_idle))
}

fn fail(status: StatusCode, message: String) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

fn ok() -> Response {
    Json(json!({})).into_response()
}

async fn add_warehouse(State(inner): St, Json(spec): Json<WarehouseSpec>) -> Response {
    inner.lock().store.add_warehouse(spec.id, &spec.name);
    ok()
}

async fn add_size(State(inner): St, Json(spec): Json<SizeSpec>) -> Response {
    let mut st = inner.lock();
    if st.store.size_by_sku(&spec.sku).is_some() {
        return fail(
            StatusCode::BAD_REQUEST,
            format!("a size with SKU {:?} exists", spec.sku),
        );
    }
    let id = st.add_lone_size(
        &spec.sku,
        spec.ean.as_deref(),
        spec.upc.as_deref(),
        spec.active,
    );
    Json(SizeCreated { id }).into_response()
}

async fn set_stock(State(inner): St, Json(spec): Json<StockSpec>) -> Response {
    let mut st = inner.lock();
    if !st.store.has_warehouse(spec.warehouse) {
        return fail(
            StatusCode::NOT_FOUND,
            format!("no warehouse {}", spec.warehouse),
        );
    }
    if st.store.size_by_sku(&spec.sku).is_none() {
        return fail(StatusCode::NOT_FOUND, format!("no size {:?}", spec.sku));
    }
    st.store
        .set_physical(spec.warehouse, &spec.sku, spec.physical);
    if let Some(allocated) = spec.allocated {
        st.store.set_allocated(spec.warehouse, &spec.sku, allocated);
    }
    ok()
}

async fn stock(State(inner): St) -> Json<Vec<StockRow>> {
    let rows = inner
        .lock()
        .store
        .stock_table()
        .into_iter()
        .map(|(warehouse, size_id, sku, l)| StockRow {
            warehouse,
            size_id,
            sku,
            physical: l.physical,
            allocated: l.allocated,
            free_to_allocate: l.free_to_allocate,
        })
        .collect();
    Json(rows)
}

async fn stock_changes(State(inner): St) -> Response {
    Json(inner.lock().store.stock_changes()).into_response()
}

async fn add_unrelated(State(inner): St, Json(spec): Json<UnrelatedChangesSpec>) -> Response {
    let mut st = inner.lock();
    if !st.store.has_warehouse(spec.warehouse) {
        return fail(
            StatusCode::NOT_FOUND,
            format!("no warehouse {}", spec.warehouse),
        );
    }
    let ids = st
        .store
        .add_unrelated_stock_changes(spec.warehouse, spec.count, Utc::now());
    Json(UnrelatedChangesAdded { ids }).into_response()
}

async fn inject(State(inner): St, Json(spec): Json<FaultSpec>) -> Response {
    let fault: Fault = spec.fault.into();
    inner.lock().faults.push_back((spec.target, fault));
    ok()
}

async fn clear_faults(State(inner): St) -> Response {
    inner.lock().faults.clear();
    ok()
}

async fn configure(State(inner): St, Json(patch): Json<ConfigPatch>) -> Response {
    let mut st = inner.lock();
    if let Some(on) = patch.rate_limits_enabled {
        st.rate_limits_enabled = on;
    }
    if let Some(style) = patch.retry_after_style {
        st.retry_after_style = style;
    }
    if let Some(ms) = patch.latency_ms {
        st.latency = Duration::from_millis(ms);
    }
    if let Some(d) = patch.duplicate_sizes {
        st.store.behaviour.duplicate_sizes = d;
    }
    if let Some(u) = patch.unknown_sizes {
        st.store.behaviour.unknown_sizes = u;
    }
    if let Some(p) = patch.path_style {
        st.store.behaviour.path_style = p;
    }
    let mut rebuild = patch.reset_rate_limits == Some(true);
    if let Some(tier) = patch.tier {
        st.tier = tier;
        rebuild = true;
    }
    if let Some(ms) = patch.short_window_ms {
        if ms == 0 {
            return fail(
                StatusCode::BAD_REQUEST,
                "short_window_ms must be > 0".into(),
            );
        }
        st.short_window = Duration::from_millis(ms);
        rebuild = true;
    }
    if rebuild {
        st.rebuild_limiter();
    }
    ok()
}

async fn refuse_size(State(inner): St, Json(spec): Json<RefuseSizeSpec>) -> Response {
    let mut st = inner.lock();
    if st.store.size_by_sku(&spec.sku).is_none() {
        return fail(StatusCode::NOT_FOUND, format!("no size {:?}", spec.sku));
    }
    match spec.kind {
        Some(kind) => {
            let message = spec
                .message
                .unwrap_or_else(|| format!("Product size SKU \"{}\" is refused", spec.sku));
            st.store
                .refusals
                .insert(spec.sku, SizeRefusal { kind, message });
        }
        None => {
            st.store.refusals.remove(&spec.sku);
        }
    }
    ok()
}

async fn requests(State(inner): St) -> Response {
    let log: Vec<_> = inner.lock().log.iter().cloned().collect();
    Json(log).into_response()
}

async fn counters(State(inner): St) -> Json<Counters> {
    let pending_faults = inner.lock().faults.len();
    Json(Counters {
        requests: inner.requests.load(Ordering::SeqCst),
        mutations: inner.mutations.load(Ordering::SeqCst),
        rate_limited: inner.rate_limited.load(Ordering::SeqCst),
        order_api_requests: inner.order_api_requests.load(Ordering::SeqCst),
        order_creates: inner.order_creates.load(Ordering::SeqCst),
        pending_faults,
        in_flight: *inner.in_flight.borrow(),
    })
}

async fn wait_idle(State(inner): St) -> Response {
    crate::http::wait_idle(&inner.in_flight).await;
    ok()
}
