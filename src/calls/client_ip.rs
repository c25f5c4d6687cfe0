//! The effective client address, as the module's authenticator computes it — except that
//! X-Forwarded-For is walked from the right (documented difference: the left-most entry is
//! whatever the client wrote).

use std::net::IpAddr;
use std::str::FromStr;

use crate::calls::request::RequestHeaders;
use crate::definitions::IpList;

/// The address the allowlist is checked against and that the log records.
///
/// The TCP peer, unless the peer is a trusted proxy: then X-Forwarded-For is read from the
/// right, skipping tokens that are not addresses and addresses of trusted proxies; the first
/// other address is the client. If every address in it is a trusted proxy, the left-most one
/// is the client (the chain started at a trusted host). Without a usable X-Forwarded-For the
/// same rule applies to X-Real-IP, and without that the peer stays the client.
///
/// `trusted` is the authenticator's `trusted_proxy_ips` plus the deployment's own proxies
/// (`trusted_proxies` setting): a proxy in front of towerhook is transparent, and the
/// module's rule then applies to the address that proxy saw.
pub fn effective_client_ip(
    peer: Option<IpAddr>,
    headers: &RequestHeaders,
    trusted: &[&IpList],
) -> Option<IpAddr> {
    let peer = peer?;
    let trusted_proxies = Trusted(trusted);
    if !trusted_proxies.contains(peer) {
        return Some(peer);
    }
    [headers.forwarded_for(), headers.real_ip()]
        .into_iter()
        .flatten()
        .find_map(|value| client_from_chain(value, &trusted_proxies))
        .or(Some(peer))
}

struct Trusted<'a>(&'a [&'a IpList]);

impl Trusted<'_> {
    fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|list| list.contains(ip))
    }
}

fn client_from_chain(value: &str, trusted_proxies: &Trusted<'_>) -> Option<IpAddr> {
    let hops: Vec<IpAddr> = value
        .split(',')
        .filter_map(|token| IpAddr::from_str(token.trim()).ok())
        .collect();
    hops.iter()
        .rev()
        .find(|hop| !trusted_proxies.contains(**hop))
        .or(hops.first())
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn headers(pairs: &[(&str, &str)]) -> RequestHeaders {
        RequestHeaders::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn mixed_v4_v6_addresses_and_networks() {
        let list = IpList::parse("203.0.113.5,2001:db8::42,198.51.100.0/24,2001:db8:abcd::/48");
        for allowed in [
            "203.0.113.5",
            "2001:db8::42",
            "198.51.100.99",
            "2001:db8:abcd::abcd",
        ] {
            assert!(list.allows(Some(ip(allowed))), "{allowed}");
        }
        for denied in ["203.0.113.99", "2001:db8:ffff::1"] {
            assert!(!list.allows(Some(ip(denied))), "{denied}");
        }
    }

    #[test]
    fn host_bits_netmasks_and_spaces() {
        let list = IpList::parse(" 10.1.2.3/24 , 192.168.0.0/255.255.0.0,,");
        assert!(list.allows(Some(ip("10.1.2.200"))));
        assert!(list.allows(Some(ip("192.168.7.7"))));
        assert!(list.invalid_entries().is_empty());
    }

    #[test]
    fn invalid_entries_are_skipped_and_all_invalid_denies() {
        let list = IpList::parse("garbage, 10.0.0.1, 10.0.0.0/33");
        assert_eq!(list.invalid_entries(), ["garbage", "10.0.0.0/33"]);
        assert!(list.allows(Some(ip("10.0.0.1"))));
        let broken = IpList::parse("nope, 300.1.1.1");
        assert!(!broken.allows(Some(ip("10.0.0.1"))));
    }

    #[test]
    fn empty_list_allows_but_a_missing_client_never_passes() {
        assert!(IpList::parse("").allows(Some(ip("8.8.8.8"))));
        assert!(!IpList::parse("").allows(None));
    }

    #[test]
    fn ipv4_mapped_ipv6_is_not_inside_ipv4_networks() {
        let list = IpList::parse("10.0.0.0/8");
        assert!(!list.contains(ip("::ffff:10.0.0.1")));
    }

    #[test]
    fn proxy_headers_are_ignored_unless_the_peer_is_trusted() {
        let h = headers(&[
            ("X-Forwarded-For", "203.0.113.7, 10.0.0.5"),
            ("X-Real-Ip", "203.0.113.7"),
        ]);
        let client = effective_client_ip(Some(ip("10.0.0.5")), &h, &[&IpList::parse("")]);
        assert_eq!(client, Some(ip("10.0.0.5")));
    }

    #[test]
    fn forwarded_chain_is_walked_from_the_right() {
        let trusted = IpList::parse("10.0.0.5, 10.0.0.6");
        let h = headers(&[("X-Forwarded-For", "198.51.100.1, 203.0.113.7, 10.0.0.6")]);
        let client = effective_client_ip(Some(ip("10.0.0.5")), &h, &[&trusted]);
        // The spoofable left-most entry is not taken.
        assert_eq!(client, Some(ip("203.0.113.7")));
    }

    #[test]
    fn invalid_forwarded_tokens_fall_back_to_real_ip_then_peer() {
        let trusted = IpList::parse("10.0.0.5");
        let peer = Some(ip("10.0.0.5"));
        let h = headers(&[
            ("X-Forwarded-For", "garbage, not_an_ip"),
            ("X-Real-Ip", "203.0.113.8"),
        ]);
        assert_eq!(
            effective_client_ip(peer, &h, &[&trusted]),
            Some(ip("203.0.113.8"))
        );
        let h = headers(&[
            ("X-Forwarded-For", "not_an_ip, also_bad"),
            ("X-Real-Ip", "bad_ip_value"),
        ]);
        assert_eq!(effective_client_ip(peer, &h, &[&trusted]), peer);
    }

    #[test]
    fn deployment_proxies_are_transparent() {
        let deployment = IpList::parse("172.30.0.10");
        let none = IpList::parse("");
        // nginx (trusted by the deployment) appended the address it saw.
        let h = headers(&[("X-Forwarded-For", "198.51.100.7")]);
        let peer = Some(ip("172.30.0.10"));
        assert_eq!(
            effective_client_ip(peer, &h, &[&none, &deployment]),
            Some(ip("198.51.100.7"))
        );
        // An authenticator trusting an upstream balancer behind nginx sees through it too.
        let balancer = IpList::parse("10.0.0.5");
        let h = headers(&[("X-Forwarded-For", "203.0.113.7, 10.0.0.5")]);
        assert_eq!(
            effective_client_ip(peer, &h, &[&balancer, &deployment]),
            Some(ip("203.0.113.7"))
        );
        // ...and one that does not trust it sees the balancer, as the module would.
        assert_eq!(
            effective_client_ip(peer, &h, &[&none, &deployment]),
            Some(ip("10.0.0.5"))
        );
    }

    #[test]
    fn a_chain_of_trusted_hops_yields_its_origin() {
        let trusted = IpList::parse("10.0.0.0/8");
        let h = headers(&[("X-Forwarded-For", "10.1.1.1, 10.2.2.2")]);
        assert_eq!(
            effective_client_ip(Some(ip("10.0.0.5")), &h, &[&trusted]),
            Some(ip("10.1.1.1"))
        );
    }
}
