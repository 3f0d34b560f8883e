//! Every GraphQL document the clients send validates against the published schema of its API
//! (`schema/`), and the `UNVERIFIED` elements of the Centra schema those documents rely on are exactly the
//! integration's declared assumptions (what `shelfsync centra-check` confirms on a customer's instance).

use std::collections::{BTreeMap, BTreeSet};

use shared::graphql_documents::{all, Api};
use simulators::schema::{
    centra_schema, cloudshelf_schema, unverified_used, validate_document, ServedSchema,
};

/// Documents known to fail today, with why; none. An entry here that starts to validate fails the test, so
/// the list cannot go stale.
const KNOWN_FAILURES: [(&str, &str); 0] = [];

/// The UNVERIFIED schema elements (fields, arguments, and input fields or enum values written in the
/// document) each Centra document uses. Input fields sent through variables are not in the text: e.g.
/// `StockChangeProductSizeInput.deliveredQuantity` (UNVERIFIED) is what `ChangeStock` sends in `$input`.
const DECLARED_ASSUMPTIONS: [(&str, &[&str]); 9] = [
    (
        "ChangeStock",
        &[
            "Mutation.changeStock",
            "UserError.message",
            "UserError.path",
            "UserWarning.message",
            "UserWarning.path",
        ],
    ),
    (
        "SetStock",
        &[
            "Mutation.setStock",
            "UserError.message",
            "UserError.path",
            "UserWarning.message",
            "UserWarning.path",
        ],
    ),
    (
        "StockChanges",
        &[
            "ProductSize.EAN",
            "ProductSize.SKU",
            "Query.stockChangeConnection",
            "StockChangeConnection.edges",
            "StockChangeEdge.node",
        ],
    ),
    (
        "SizeLookup",
        &["ProductSize.EAN", "ProductSize.SKU", "Query.productSizes"],
    ),
    (
        "CatalogueSizes",
        &[
            "Product.id",
            "Product.productNumber",
            "Product.status",
            "Product.variants",
            "ProductSize.EAN",
            "ProductSize.SKU",
            "ProductSize.isActive",
            "ProductSize.sizeNumber",
            "ProductVariant.id",
            "ProductVariant.productSizes",
            "ProductVariant.status",
            "ProductVariant.variantNumber",
            "Query.products",
        ],
    ),
    (
        "WarehouseStock",
        &[
            "ProductSize.EAN",
            "ProductSize.SKU",
            "Query.warehouses",
            "Stock.productSize",
            "Warehouse.stock",
            "WarehouseFilter.id",
        ],
    ),
    (
        "Orders",
        &[
            "Order.paymentHistory",
            "Order.shipments",
            "Order.store",
            "Query.orders",
            "Store.id",
        ],
    ),
    ("Lookup(shipments)", &["Query.shipments", "Shipment.order"]),
    (
        "Lookup(returns)",
        &["Query.returns", "Query.returns(limit:)", "Return.order"],
    ),
];

fn schema_of(api: Api) -> std::sync::Arc<ServedSchema> {
    match api {
        Api::Centra => centra_schema(),
        Api::Cloudshelf => cloudshelf_schema(),
    }
}

#[test]
fn every_client_document_validates_against_the_schema_of_its_api() {
    let mut failures = BTreeMap::new();
    for doc in all() {
        if let Err(errors) = validate_document(&schema_of(doc.api), &doc.text) {
            let messages: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
            failures.insert(doc.name, messages.join("; "));
        }
    }
    let mut unexpected = Vec::new();
    for (name, why) in &failures {
        match KNOWN_FAILURES.iter().find(|(n, _)| n == name) {
            Some((_, expected)) if why.contains(expected) => {}
            _ => unexpected.push(format!("{name}: {why}")),
        }
    }
    for (name, _) in KNOWN_FAILURES {
        if !failures.contains_key(name) {
            unexpected.push(format!("{name} validates now: take it off KNOWN_FAILURES"));
        }
    }
    assert!(unexpected.is_empty(), "{}", unexpected.join("\n"));
}

#[test]
fn centra_documents_use_exactly_the_declared_unverified_elements() {
    let schema = centra_schema();
    let documents: Vec<_> = all().into_iter().filter(|d| d.api == Api::Centra).collect();
    let names: BTreeSet<&str> = documents.iter().map(|d| d.name).collect();
    let declared: BTreeSet<&str> = DECLARED_ASSUMPTIONS.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, declared, "every Centra document has its entry");

    let mut differences = Vec::new();
    for doc in &documents {
        let used = unverified_used(&schema, &doc.text).expect("every document validates");
        let expected: BTreeSet<String> = DECLARED_ASSUMPTIONS
            .iter()
            .find(|(n, _)| *n == doc.name)
            .map(|(_, list)| list.iter().map(|s| s.to_string()).collect())
            .unwrap_or_default();
        if used != expected {
            differences.push(format!(
                "{}:\n  uses     {:?}\n  declared {:?}",
                doc.name, used, expected
            ));
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}
