//! Mapping configuration: which Centra warehouse and Cloudshelf location each store code stands for.
//!
//! Loaded at start-up (and by `shelfsync validate`); an invalid mapping fails loudly naming the offending key,
//! at deploy or start, not at 3 a.m.

use crate::domain::StoreCode;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMappings {
    #[serde(default)]
    stores: BTreeMap<String, RawStore>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStore {
    centra_warehouse_id: i64,
    cloudshelf_location: String,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreMapping {
    pub store: StoreCode,
    pub name: Option<String>,
    pub centra_warehouse_id: u64,
    /// Cloudshelf `Location` GlobalId (Cloudshelf's own or `gid://external/<Namespace>/<id>`).
    pub cloudshelf_location: String,
}

#[derive(Debug, Clone, Default)]
pub struct Mappings {
    stores: BTreeMap<StoreCode, StoreMapping>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("mapping error at `{key}`: {message}")]
pub struct MappingError {
    pub key: String,
    pub message: String,
}

fn err(key: impl Into<String>, message: impl Into<String>) -> MappingError {
    MappingError {
        key: key.into(),
        message: message.into(),
    }
}

impl Mappings {
    pub fn from_toml(text: &str) -> Result<Self, MappingError> {
        let raw: RawMappings = toml::from_str(text).map_err(|e| {
            // toml names the key/line itself; keep its message.
            err("(file)", e.to_string().trim().replace('\n', " "))
        })?;
        if raw.stores.is_empty() {
            return Err(err("stores", "no store is mapped"));
        }
        let mut stores = BTreeMap::new();
        let mut warehouse_owner: BTreeMap<u64, String> = BTreeMap::new();
        for (code, store) in raw.stores {
            let key = format!("stores.{code}");
            let store_code =
                StoreCode::parse(&code).map_err(|m| err(&key, format!("store code {m}")))?;
            if store.centra_warehouse_id <= 0 {
                return Err(err(
                    format!("{key}.centra_warehouse_id"),
                    "must be a positive Centra warehouse id",
                ));
            }
            let warehouse = store.centra_warehouse_id as u64;
            if let Some(other) = warehouse_owner.insert(warehouse, code.clone()) {
                // Two stores writing one warehouse would each push their own deltas and counts over the other's.
                return Err(err(
                    format!("{key}.centra_warehouse_id"),
                    format!("warehouse {warehouse} is already mapped to store {other}"),
                ));
            }
            if !store.cloudshelf_location.starts_with("gid://")
                || store.cloudshelf_location.len() <= "gid://".len()
            {
                return Err(err(
                    format!("{key}.cloudshelf_location"),
                    "must be a Cloudshelf GlobalId such as gid://external/CentraWarehouse/12",
                ));
            }
            stores.insert(
                store_code.clone(),
                StoreMapping {
                    store: store_code,
                    name: store.name,
                    centra_warehouse_id: warehouse,
                    cloudshelf_location: store.cloudshelf_location,
                },
            );
        }
        Ok(Self { stores })
    }

    pub fn store(&self, code: &str) -> Option<&StoreMapping> {
        StoreCode::parse(code)
            .ok()
            .and_then(|c| self.stores.get(&c))
    }

    pub fn stores(&self) -> impl Iterator<Item = &StoreMapping> {
        self.stores.values()
    }

    /// The mappings the local run and tests use when none are given.
    pub fn embedded_default() -> Self {
        Self::from_toml(EMBEDDED_DEFAULT).expect("embedded mappings are valid")
    }
}

pub const EMBEDDED_DEFAULT: &str = include_str!("../../config/mappings.example.toml");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_defaults_are_valid() {
        let m = Mappings::embedded_default();
        assert!(m.store("LDN-01").is_some());
    }

    #[test]
    fn errors_name_the_key() {
        let e = Mappings::from_toml(
            "[stores.LDN-01]\ncentra_warehouse_id = 0\ncloudshelf_location = \"gid://x/1\"\n",
        )
        .unwrap_err();
        assert_eq!(e.key, "stores.LDN-01.centra_warehouse_id");

        let e = Mappings::from_toml(
            "[stores.A]\ncentra_warehouse_id = 3\ncloudshelf_location = \"gid://x/1\"\n\
             [stores.B]\ncentra_warehouse_id = 3\ncloudshelf_location = \"gid://x/2\"\n",
        )
        .unwrap_err();
        assert_eq!(e.key, "stores.B.centra_warehouse_id");
        assert!(e.message.contains("store A"));

        let e = Mappings::from_toml(
            "[stores.A]\ncentra_warehouse_id = 3\ncloudshelf_location = \"loc-1\"\n",
        )
        .unwrap_err();
        assert_eq!(e.key, "stores.A.cloudshelf_location");

        let e = Mappings::from_toml(
            "[stores.\"bad code\"]\ncentra_warehouse_id = 3\ncloudshelf_location = \"gid://x/1\"\n",
        )
        .unwrap_err();
        assert_eq!(e.key, "stores.bad code");

        let e = Mappings::from_toml("[stores.A]\ncentra_warehouse = 3\n").unwrap_err();
        assert!(e.message.contains("centra_warehouse"), "{e}");
    }
}
