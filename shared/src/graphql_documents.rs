//! Every GraphQL document the clients can send, in one list, so a test can validate each against the schema
//! of the API it goes to (`schema/`) and `shelfsync centra-check` can say which of them a live schema breaks.

/// Which API a document is sent to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// Centra Integration API (`schema/centra/integration-subset.graphql`).
    Centra,
    /// Cloudshelf GraphQL API (`schema/cloudshelf.graphql`).
    Cloudshelf,
}

/// One document as sent (operation name, text).
#[derive(Debug, Clone)]
pub struct Document {
    pub api: Api,
    pub name: &'static str,
    pub text: String,
}

fn doc(api: Api, name: &'static str, text: impl Into<String>) -> Document {
    Document {
        api,
        name,
        text: text.into(),
    }
}

/// Every document, including each variant of the ones built at run time.
pub fn all() -> Vec<Document> {
    use Api::*;
    vec![
        doc(Centra, "ChangeStock", crate::centra::CHANGE_STOCK),
        doc(Centra, "SetStock", crate::centra::SET_STOCK),
        doc(Centra, "StockChanges", crate::centra::STOCK_CHANGES),
        doc(Centra, "SizeLookup", crate::centra::SIZE_LOOKUP),
        doc(
            Centra,
            "CatalogueSizes",
            crate::centra::catalogue::CATALOGUE_PAGE,
        ),
        doc(
            Centra,
            "WarehouseStock",
            crate::centra::catalogue::WAREHOUSE_STOCK_PAGE,
        ),
        doc(Centra, "Orders", crate::centra::order_reads::orders_query()),
        doc(
            Centra,
            "Lookup(shipments)",
            crate::centra::order_reads::lookup_query("shipments"),
        ),
        doc(
            Centra,
            "Lookup(returns)",
            crate::centra::order_reads::lookup_query("returns"),
        ),
        doc(Cloudshelf, "Order", crate::cloudshelf::ORDER),
        doc(
            Cloudshelf,
            "OrdersByUpdatedAt",
            crate::cloudshelf::ORDERS_BY_UPDATED_AT,
        ),
        doc(Cloudshelf, "UpsertOrders", crate::cloudshelf::UPSERT_ORDERS),
        doc(
            Cloudshelf,
            "UpsertStockLevels",
            crate::cloudshelf::UPSERT_STOCK_LEVELS,
        ),
        doc(
            Cloudshelf,
            "CatalogueVariants",
            crate::cloudshelf::catalogue::VARIANTS_PAGE,
        ),
        doc(
            Cloudshelf,
            "CatalogueVariantStock",
            crate::cloudshelf::catalogue::VARIANT_STOCK_PAGE,
        ),
        doc(
            Cloudshelf,
            "Locations",
            crate::cloudshelf::catalogue::LOCATIONS_PAGE,
        ),
        doc(
            Cloudshelf,
            "UpsertProducts",
            crate::cloudshelf::catalogue::UPSERT_PRODUCTS,
        ),
        doc(
            Cloudshelf,
            "UpsertProductVariants",
            crate::cloudshelf::catalogue::UPSERT_PRODUCT_VARIANTS,
        ),
    ]
}
