//! The caller's country from a MaxMind-format database (GeoLite2/GeoIP2 Country or City),
//! as Odoo's own GeoIP fills the log's `country_id`.

use std::net::IpAddr;
use std::path::Path;

use maxminddb::PathElement;

pub struct GeoIp {
    reader: maxminddb::Reader<Vec<u8>>,
}

/// The database cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("GeoIP database {}: {source}", path.display())]
pub struct GeoIpError {
    path: std::path::PathBuf,
    source: maxminddb::MaxMindDbError,
}

impl GeoIp {
    pub fn open(path: &Path) -> Result<Self, GeoIpError> {
        maxminddb::Reader::open_readfile(path)
            .map(|reader| Self { reader })
            .map_err(|source| GeoIpError {
                path: path.to_path_buf(),
                source,
            })
    }

    /// ISO 3166 code of the country, or of the country where the network is registered.
    pub fn country(&self, ip: IpAddr) -> Option<String> {
        let found = self.reader.lookup(ip).ok()?;
        ["country", "registered_country"].iter().find_map(|key| {
            found
                .decode_path::<String>(&[PathElement::Key(key), PathElement::Key("iso_code")])
                .ok()
                .flatten()
        })
    }
}

impl std::fmt::Debug for GeoIp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeoIp")
            .field("database_type", &self.reader.metadata().database_type)
            .finish()
    }
}
