//! IP allowlists and trusted proxies (`allowed_ip_addresses`, `trusted_proxy_ips`), parsed
//! once when definitions load.

use std::net::IpAddr;
use std::str::FromStr;

use ipnetwork::IpNetwork;

/// A comma-separated list of addresses and networks (`allowed_ip_addresses`,
/// `trusted_proxy_ips`), parsed once when definitions load.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IpList {
    text: String,
    networks: Vec<IpNetwork>,
    invalid: Vec<String>,
}

impl IpList {
    /// Parses like the module: split on commas only, trim, skip empty tokens, accept
    /// networks with host bits set (`10.1.2.3/24`) and bare addresses (/32, /128).
    /// Tokens that parse as neither are kept aside as invalid.
    pub fn parse(text: &str) -> Self {
        let mut networks = Vec::new();
        let mut invalid = Vec::new();
        for token in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            match parse_token(token) {
                Some(network) => networks.push(network),
                None => invalid.push(token.to_string()),
            }
        }
        Self {
            text: text.trim().to_string(),
            networks,
            invalid,
        }
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// Tokens that are neither an address nor a network.
    pub fn invalid_entries(&self) -> &[String] {
        &self.invalid
    }

    pub fn is_unset(&self) -> bool {
        self.text.is_empty()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        // ipnetwork, like Python, never puts an IPv6 address inside an IPv4 network.
        self.networks.iter().any(|network| network.contains(ip))
    }

    /// The allowlist decision: no client address → deny; empty list → allow; a list whose
    /// entries are all invalid → deny (fail closed); otherwise membership.
    pub fn allows(&self, client: Option<IpAddr>) -> bool {
        let Some(ip) = client else {
            return false;
        };
        if self.is_unset() {
            return true;
        }
        self.contains(ip)
    }
}

fn parse_token(token: &str) -> Option<IpNetwork> {
    if let Ok(network) = IpNetwork::from_str(token) {
        return Some(network);
    }
    IpAddr::from_str(token).ok().map(IpNetwork::from)
}
