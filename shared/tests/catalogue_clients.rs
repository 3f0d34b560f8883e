//! The catalogue and stock reads and the catalogue upserts of the Centra and Cloudshelf clients, against
//! the loopback simulators, and the audits of `shared::recon::compare` fed with what they read.

use std::collections::HashMap;
use std::time::Duration;

use shared::centra::catalogue::CentraStockRow;
use shared::centra::{CentraClient, CentraError};
use shared::cloudshelf::catalogue::{
    ProductInput, ProductVariantInput, UpsertVariantsInput, MAX_VARIANTS_PAGE_SIZE,
    MAX_VARIANT_STOCK_PAGE_SIZE, VARIANTS_CHUNK,
};
use shared::cloudshelf::CloudshelfClient;
use shared::recon::compare::{
    availability_diff, cloudshelf_in_stock_map, size_gid, sku_audit, upserts_for_missing,
    SkuFinding,
};
use simulators::centra::{CentraSim, CentraSimConfig};
use simulators::cloudshelf::{CloudshelfSim, CloudshelfSimConfig, VariantSeed};

const WH: u64 = 12;
const LOCATION: &str = "gid://external/CentraWarehouse/12";

async fn centra() -> CentraSim {
    let sim = CentraSim::start(CentraSimConfig {
        rate_limits_enabled: false,
        ..CentraSimConfig::default()
    })
    .await;
    sim.add_warehouse(WH, "Store Stockholm");
    sim
}

fn centra_client(sim: &CentraSim) -> CentraClient {
    CentraClient::new(sim.graphql_url(), sim.token(), Duration::from_secs(5))
}

fn cloudshelf_client(sim: &CloudshelfSim) -> CloudshelfClient {
    CloudshelfClient::new(sim.graphql_url(), sim.api_key(), Duration::from_secs(5))
}

/// Products `P0`…: variant `V1` with sizes S (active) and M (active when `i` is even).
fn seed_centra_products(sim: &CentraSim, n: usize) {
    for i in 0..n {
        sim.add_product(
            &format!("P{i}"),
            "V1",
            &[
                (
                    "S",
                    &format!("P{i}V1S"),
                    Some(&format!("73500000{i:05}")),
                    true,
                ),
                ("M", &format!("P{i}V1M"), None, i % 2 == 0),
            ],
        );
    }
}

#[tokio::test]
async fn centra_catalogue_pages_to_the_end_with_status_and_grouping() {
    let sim = centra().await;
    seed_centra_products(&sim, 7);
    let extra = sim.add_product("P0", "V2", &[("S", "P0V2S", None, true)]);
    sim.set_variant_status(extra.variant_id, "INACTIVE");
    let c = centra_client(&sim);

    let counts: Vec<usize> = {
        let mut v = Vec::new();
        for page in 1..=4 {
            v.push(c.product_page(page, 3).await.unwrap().products);
        }
        v
    };
    assert_eq!(counts, [3, 3, 1, 0]);

    let before = sim.request_count();
    let sizes = c.all_product_sizes(3).await.unwrap();
    assert_eq!(sim.request_count() - before, 3, "stops at the short page");
    assert_eq!(sizes.len(), 15);
    let p0v2 = sizes.iter().find(|s| s.sku == "P0V2S").unwrap();
    assert_eq!(
        (p0v2.product_id, p0v2.variant_id, p0v2.size_id),
        (extra.product_id, extra.variant_id, extra.size_ids[0])
    );
    assert!(!p0v2.active, "an inactive variant makes its sizes inactive");
    let p1m = sizes.iter().find(|s| s.sku == "P1V1M").unwrap();
    assert!(!p1m.active);
    assert_eq!(p1m.ean, None);
    assert_eq!(
        (
            p1m.product_number.as_str(),
            p1m.variant_number.as_str(),
            p1m.size_number.as_str()
        ),
        ("P1", "V1", "M")
    );
    let p2s = sizes.iter().find(|s| s.sku == "P2V1S").unwrap();
    assert!(p2s.active);
    assert_eq!(p2s.ean.as_deref(), Some("7350000000002"));
    assert_eq!(Some(p2s.size_id), sim.size_id("P2V1S"));

    // An inactive product is still read (the audit needs it), with every size inactive.
    let p3 = sizes.iter().find(|s| s.sku == "P3V1S").unwrap().product_id;
    sim.set_product_status(p3, "INACTIVE");
    let sizes = c.all_product_sizes(200).await.unwrap();
    assert_eq!(sizes.len(), 15);
    assert!(sizes
        .iter()
        .filter(|s| s.product_id == p3)
        .all(|s| !s.active));
    assert_eq!(
        c.product_sizes_page(3, 3).await.unwrap().len(),
        2,
        "one product, two sizes"
    );
}

#[tokio::test]
async fn centra_warehouse_stock_pages_to_the_end() {
    let sim = centra().await;
    seed_centra_products(&sim, 3);
    for (i, sku) in ["P0V1S", "P0V1M", "P1V1S", "P1V1M", "P2V1S"]
        .iter()
        .enumerate()
    {
        sim.set_physical(WH, sku, 10 + i as i64);
    }
    sim.set_allocated(WH, "P1V1S", 4);
    let c = centra_client(&sim);

    assert_eq!(c.warehouse_stock_page(WH, 1, 2).await.unwrap().len(), 2);
    assert_eq!(c.warehouse_stock_page(WH, 3, 2).await.unwrap().len(), 1);
    let before = sim.request_count();
    let rows = c.all_warehouse_stock(WH, 2).await.unwrap();
    assert_eq!(sim.request_count() - before, 3);
    assert_eq!(rows.len(), 5);
    let p1s = rows.iter().find(|r| r.sku == "P1V1S").unwrap();
    assert_eq!((p1s.physical, p1s.free_to_allocate), (12, 8));
    assert_eq!(p1s.ean.as_deref(), Some("7350000000001"));
    assert_eq!(Some(p1s.size_id), sim.size_id("P1V1S"));

    // A limit above Centra's cap is clamped rather than refused.
    assert_eq!(c.all_warehouse_stock(WH, 10_000).await.unwrap(), rows);
    match c.warehouse_stock_page(99, 1, 10).await {
        Err(CentraError::Protocol(m)) => assert!(m.contains("99"), "{m}"),
        other => panic!("unknown warehouse: {other:?}"),
    }
}

/// `n` products, each with `per` variants `SKU<i>-<j>` under our external gids.
fn seed_cloudshelf_products(sim: &CloudshelfSim, n: usize, per: usize) {
    for i in 0..n {
        let p = sim.add_product(
            Some(&format!("gid://external/CentraProduct/{i}")),
            &format!("Item {i}"),
        );
        for j in 0..per {
            let sku = format!("SKU{i}-{j}");
            sim.add_product_variant(
                &p,
                VariantSeed {
                    platform_provided_id: Some(size_gid(&sku)),
                    sku: Some(sku),
                    barcode: Some(format!("{i}{j:02}")),
                },
            );
        }
    }
}

#[tokio::test]
async fn cloudshelf_variants_page_to_the_end_within_the_complexity_limit() {
    let sim = CloudshelfSim::start(CloudshelfSimConfig::default()).await;
    seed_cloudshelf_products(&sim, 100, 2);
    let c = cloudshelf_client(&sim);

    // More than a page can hold within 500: clamped, and the simulator (which enforces the limit) answers.
    let (first_page, next) = c.variants_page(None, 1_000).await.unwrap();
    assert_eq!(first_page.len(), 2 * MAX_VARIANTS_PAGE_SIZE as usize);
    assert!(next.is_some());
    let v = &first_page[0];
    assert_eq!(v.sku.as_deref(), Some("SKU0-0"));
    assert_eq!(
        v.platform_provided_id.as_deref(),
        Some(size_gid("SKU0-0").as_str())
    );
    assert_eq!(
        v.product_platform_provided_id.as_deref(),
        Some("gid://external/CentraProduct/0")
    );
    assert_eq!(v.barcode.as_deref(), Some("000"));
    assert!(!v.is_in_stock && !v.available_to_purchase);
    assert!(v.stock_levels.is_empty());

    let mut after = None;
    let mut all = Vec::new();
    let mut pages = 0;
    loop {
        let (variants, next) = c.variants_page(after.clone(), 40).await.unwrap();
        all.extend(variants);
        pages += 1;
        match next {
            Some(cursor) => after = Some(cursor),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(all.len(), 200);
    let skus: std::collections::BTreeSet<String> =
        all.iter().filter_map(|v| v.sku.clone()).collect();
    assert_eq!(skus.len(), 200, "no variant twice");

    let before = sim.request_count();
    let with_stock = c.all_variants(true).await.unwrap();
    let expected_pages = 100_u64.div_ceil(u64::from(MAX_VARIANT_STOCK_PAGE_SIZE));
    assert_eq!(sim.request_count() - before, expected_pages);
    assert_eq!(with_stock.len(), 200);
    assert_eq!(c.all_variants(false).await.unwrap().len(), 200);

    let (locations, next) = c.locations_page(None, 10).await.unwrap();
    assert!(locations.is_empty() && next.is_none());
}

#[tokio::test]
async fn cloudshelf_upserts_are_visible_and_report_user_errors() {
    let sim = CloudshelfSim::start(CloudshelfSimConfig::default()).await;
    let c = cloudshelf_client(&sim);
    let errors = c
        .upsert_products(&[ProductInput {
            id: "gid://external/CentraProduct/7".into(),
            display_name: Some("Seven".into()),
            handle: None,
        }])
        .await
        .unwrap();
    assert!(errors.is_empty(), "{errors:?}");

    let variant = |sku: String| ProductVariantInput {
        id: size_gid(&sku),
        barcode: Some(format!("B{sku}")),
        sku: Some(sku),
        display_name: None,
        is_in_stock: None,
        available_to_purchase: Some(true),
    };
    // More variants than one call takes, for one product: split over several calls.
    let n = VARIANTS_CHUNK * 2 + 10;
    let before = sim.request_count();
    let errors = c
        .upsert_product_variants(&[
            UpsertVariantsInput {
                product_id: "gid://external/CentraProduct/7".into(),
                variants: (0..n).map(|i| variant(format!("S{i}"))).collect(),
            },
            UpsertVariantsInput {
                product_id: "gid://external/CentraProduct/404".into(),
                variants: vec![variant("LOST".into())],
            },
        ])
        .await
        .unwrap();
    assert_eq!(sim.request_count() - before, 3);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].code, "ENTITY_NOT_FOUND");

    let product = sim.product("gid://external/CentraProduct/7").unwrap();
    assert_eq!(product.display_name, "Seven");
    assert_eq!(product.variant_ids.len(), n);
    let v = sim.product_variant(&size_gid("S5")).unwrap();
    assert_eq!(v.barcode.as_deref(), Some("BS5"));
    assert!(v.available_to_purchase);
    assert!(sim.product_variant(&size_gid("LOST")).is_none());

    // And through the client's own read.
    let all = c.all_variants(false).await.unwrap();
    assert_eq!(all.len(), n);
    assert!(all.iter().all(|v| v.available_to_purchase));
}

#[tokio::test]
async fn sku_audit_of_both_simulators_finds_gaps_and_the_upserts_close_them() {
    let centra_sim = centra().await;
    seed_centra_products(&centra_sim, 4);
    let cs = CloudshelfSim::start(CloudshelfSimConfig::default()).await;
    // Cloudshelf has P0 fully, P1 with a wrong barcode, a variant Centra lacks; P2, P3 are missing.
    let p0 = cs.add_product(Some("gid://external/CentraProduct/1001"), "P0 shirt");
    for (sku, ean) in [("P0V1S", Some("7350000000000")), ("P0V1M", None)] {
        cs.add_product_variant(
            &p0,
            VariantSeed {
                platform_provided_id: Some(size_gid(sku)),
                sku: Some(sku.into()),
                barcode: ean.map(str::to_string),
            },
        );
    }
    let p1 = cs.add_product(Some("gid://external/CentraProduct/1002"), "P1 shirt");
    cs.add_product_variant(
        &p1,
        VariantSeed {
            platform_provided_id: Some(size_gid("P1V1S")),
            sku: Some("P1V1S".into()),
            barcode: Some("999".into()),
        },
    );
    let stray = cs.add_product_variant(
        &p1,
        VariantSeed {
            platform_provided_id: Some(size_gid("OLD1")),
            sku: Some("OLD1".into()),
            barcode: None,
        },
    );
    // P1V1M is inactive in Centra (odd product) but available to purchase in Cloudshelf.
    let p1m = cs.add_product_variant(
        &p1,
        VariantSeed {
            platform_provided_id: Some(size_gid("P1V1M")),
            sku: Some("P1V1M".into()),
            barcode: None,
        },
    );
    cs.set_variant_flags(&p1m, false, true);

    let cc = centra_client(&centra_sim);
    let sc = cloudshelf_client(&cs);
    let report = sku_audit(
        cc.all_product_sizes(200).await.unwrap(),
        sc.all_variants(false).await.unwrap(),
    );
    let kinds: Vec<(&str, String)> = report
        .findings
        .iter()
        .map(|f| {
            let detail = match f {
                SkuFinding::MissingInCloudshelf { size } => size.sku.clone(),
                SkuFinding::MissingInCentra { sku, .. } => sku.clone(),
                SkuFinding::InactiveButSellable { sku, .. } => sku.clone(),
                SkuFinding::EanConflict { sku, .. } => sku.clone(),
                other => format!("{other:?}"),
            };
            (f.kind(), detail)
        })
        .collect();
    assert_eq!(
        kinds,
        [
            // By product, variant and size id.
            ("missing_in_cloudshelf", "P2V1S".to_string()),
            ("missing_in_cloudshelf", "P2V1M".to_string()),
            ("missing_in_cloudshelf", "P3V1S".to_string()),
            ("missing_in_centra", "OLD1".to_string()),
            ("inactive_but_sellable", "P1V1M".to_string()),
            ("ean_conflict", "P1V1S".to_string()),
        ],
        "{:#?}",
        report.findings
    );
    assert!(report.findings.contains(&SkuFinding::MissingInCentra {
        sku: "OLD1".into(),
        variant_id: stray
    }));

    let upserts = upserts_for_missing(&report);
    assert_eq!(upserts.products.len(), 2, "P2 and P3 are new, P0/P1 exist");
    assert!(sc
        .upsert_products(&upserts.products)
        .await
        .unwrap()
        .is_empty());
    assert!(sc
        .upsert_product_variants(&upserts.variants)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        cs.product("gid://external/CentraProduct/1001")
            .unwrap()
            .display_name,
        "P0 shirt"
    );
    assert_eq!(
        cs.product("gid://external/CentraProduct/1003")
            .unwrap()
            .display_name,
        "P2"
    );

    let again = sku_audit(
        cc.all_product_sizes(200).await.unwrap(),
        sc.all_variants(false).await.unwrap(),
    );
    assert_eq!(
        again.missing_in_cloudshelf().count(),
        0,
        "{:#?}",
        again.findings
    );
    assert_eq!(
        again.counts().values().sum::<usize>(),
        3,
        "the other findings stay"
    );
    assert!(upserts_for_missing(&again).is_empty());
}

type Read = (
    Vec<(String, CentraStockRow)>,
    HashMap<(String, String), bool>,
);

/// Centra's stock of the store (as its Cloudshelf location) and what Cloudshelf shows.
async fn read(cc: &CentraClient, sc: &CloudshelfClient) -> Read {
    let rows = cc
        .all_warehouse_stock(WH, 200)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (LOCATION.to_string(), r))
        .collect();
    let shown = cloudshelf_in_stock_map(&sc.all_variants(true).await.unwrap());
    (rows, shown)
}

#[tokio::test]
async fn availability_diff_of_both_simulators_pushes_then_agrees() {
    let centra_sim = centra().await;
    seed_centra_products(&centra_sim, 2);
    centra_sim.set_physical(WH, "P0V1S", 3);
    centra_sim.set_physical(WH, "P0V1M", 2);
    centra_sim.set_allocated(WH, "P0V1M", 2);
    centra_sim.set_physical(WH, "P1V1S", 1);
    let cs = CloudshelfSim::start(CloudshelfSimConfig::default()).await;
    cs.add_location(Some(LOCATION));
    let cc = centra_client(&centra_sim);
    let sc = cloudshelf_client(&cs);

    // Catalogue first, through the audit's own upserts.
    let report = sku_audit(
        cc.all_product_sizes(200).await.unwrap(),
        sc.all_variants(false).await.unwrap(),
    );
    let upserts = upserts_for_missing(&report);
    assert!(sc
        .upsert_products(&upserts.products)
        .await
        .unwrap()
        .is_empty());
    assert!(sc
        .upsert_product_variants(&upserts.variants)
        .await
        .unwrap()
        .is_empty());

    let (rows, shown) = read(&cc, &sc).await;
    let mut pushed = HashMap::new();
    let (updates, mismatches) = availability_diff(rows, &shown, &pushed, 1);
    let got: Vec<(String, i64)> = updates
        .iter()
        .map(|u| (u.product_variant_id.clone(), u.quantity))
        .collect();
    assert_eq!(
        got,
        [
            (size_gid("P0V1M"), 0),
            (size_gid("P0V1S"), 3),
            (size_gid("P1V1S"), 1),
        ]
    );
    // Cloudshelf has no stock levels yet: the two sellable ones disagree.
    assert_eq!(mismatches.len(), 2, "{mismatches:?}");
    assert!(mismatches.iter().all(|m| m.corrected_by_push));

    assert!(sc.upsert_stock_levels(&updates).await.unwrap().is_empty());
    for u in &updates {
        pushed.insert(
            (u.location_id.clone(), u.product_variant_id.clone()),
            u.quantity,
        );
    }
    let (rows, shown) = read(&cc, &sc).await;
    let (updates, mismatches) = availability_diff(rows, &shown, &pushed, 1);
    assert!(updates.is_empty(), "{updates:?}");
    assert!(mismatches.is_empty(), "{mismatches:?}");

    // A sale in Centra: only that level is pushed again.
    centra_sim.set_allocated(WH, "P0V1S", 3);
    let (rows, shown) = read(&cc, &sc).await;
    let (updates, mismatches) = availability_diff(rows, &shown, &pushed, 1);
    assert_eq!(updates.len(), 1);
    assert_eq!(
        (updates[0].product_variant_id.as_str(), updates[0].quantity),
        (size_gid("P0V1S").as_str(), 0)
    );
    assert_eq!(mismatches.len(), 1);
    assert_eq!(mismatches[0].cloudshelf_in_stock, Some(true));
}
