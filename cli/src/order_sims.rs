//! The Centra Order API and Cloudshelf simulators set up to match the embedded example mappings, for the local
//! run, `serve --simulate-centra` and the orders benchmark.

use shared::config::mappings::{Mappings, EMBEDDED_DEFAULT};
use shared::events::orders::KioskOrder;
use simulators::centra::CentraSim;
use simulators::cloudshelf::{CloudshelfSim, OrderSeed, OrderStatus};
use std::collections::HashMap;

/// Order-API plugin secret of every simulated Centra store (the plugin name doubles as the secret's suffix).
pub fn plugin_secret(name: &str) -> String {
    format!("order-api-secret-{name}")
}

/// Registers one Order-API plugin per `[order_api.*]`, the markets, pricelists and shipping options the
/// store mappings name, and returns mappings whose Order-API URLs point at the simulator.
pub fn seed_centra_orders(
    centra: &CentraSim,
) -> anyhow::Result<(Mappings, HashMap<String, String>)> {
    let mappings =
        shared::wiring::local_orders::mappings_with_order_api_bases(EMBEDDED_DEFAULT, |name| {
            centra.order_api_base(name)
        })?;
    let mut secrets = HashMap::new();
    for api in mappings.order_apis() {
        centra.add_order_plugin(&api.name, &plugin_secret(&api.name), api.centra_store_id);
        secrets.insert(api.name.clone(), plugin_secret(&api.name));
    }
    for store in mappings.stores() {
        let Some(o) = &store.orders else { continue };
        let store_id = mappings
            .order_api(&o.order_api)
            .map(|a| a.centra_store_id)
            .unwrap_or_default();
        centra.add_market(o.market_id, store_id);
        centra.add_pricelist(o.pricelist_id, store_id, &o.currency);
        for uri in o.shipping.values() {
            centra.add_shipping_option(uri, store_id);
        }
        if let Some(id) = o.payment_plugin_id {
            centra.set_payment_plugin(id);
        }
    }
    Ok((mappings, secrets))
}

/// Cloudshelf holds the basket the kiosk event describes (variant ids as our external gids).
pub fn seed_cloudshelf_order(cloudshelf: &CloudshelfSim, order: &KioskOrder) {
    cloudshelf.add_order(OrderSeed {
        id: order.cloudshelf_order_id.clone(),
        // The kiosk basket before checkout; order sync sets PAID / PLACED.
        status: OrderStatus::DraftBasket,
        lines: order
            .lines
            .iter()
            .map(|l| {
                (
                    format!("gid://external/CentraProductSize/{}", l.item.value()),
                    i64::from(l.quantity),
                    l.unit_price.to_f64(),
                    l.currency.clone(),
                )
            })
            .collect(),
        updated_at: chrono::Utc::now(),
        ..Default::default()
    });
}
