//! The address of the client behind a request, for security decisions (the per-address login
//! throttle): the TCP peer, or, when the peer is a trusted proxy, the address the chain of
//! trusted proxies reports in `X-Forwarded-For`.
//!
//! `X-Forwarded-For` is written by the client as much as by proxies: each proxy appends the
//! address of its own peer to whatever it received. Only the entries appended by proxies we
//! trust can be believed, and those are the rightmost ones. So the header is read only when
//! the TCP peer is trusted, from the right, and the walk stops at the first entry that is not
//! a trusted proxy: that entry was appended by a trusted proxy about its peer, which is the
//! client. Anything further left is the client's own say and is never read.

use actix_web::HttpRequest;
use actix_web::http::header::X_FORWARDED_FOR;
use ipnet::IpNet;
use std::net::IpAddr;

/// The client's address: the TCP peer unless it is in `trusted_proxies`; then the rightmost
/// `X-Forwarded-For` entry (over every occurrence of the header, in order) that is not itself
/// trusted.
///
/// When the walk cannot reach an untrusted address, the answer is the furthest hop that could
/// still be vouched for: the leftmost trusted entry reached, else the peer. Every entry up to
/// there was appended by a trusted proxy, so that address is genuinely the client, or a
/// trusted machine that connected without a proxy of its own (a health checker, an operator
/// inside the network), and it keeps such clients apart from one another rather than charging
/// them all to the balancer. This happens when the header is missing (a request sent to the
/// node directly from a trusted address), when every entry is trusted, or at an entry that is
/// not a bare IP address (garbage, an empty entry, `unknown`, or `1.2.3.4:5678` and
/// `[2001:db8::1]`, which are not standard in `X-Forwarded-For`): a trusted proxy would not
/// write such an entry, so nothing at or beyond it is believed.
///
/// IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`, as a dual-stack listener reports IPv4 peers)
/// count as the IPv4 address, so that one client has one address whichever way it arrives.
/// `None` only when the connection has no peer address (not a TCP socket).
pub(crate) fn client_address(request: &HttpRequest, trusted_proxies: &[IpNet]) -> Option<IpAddr> {
    let peer = request.peer_addr()?.ip().to_canonical();
    let trusted = |ip: &IpAddr| trusted_proxies.iter().any(|net| net.contains(ip));
    if !trusted(&peer) {
        return Some(peer);
    }
    let mut vouched_for = peer;
    for value in request.headers().get_all(X_FORWARDED_FOR).rev() {
        // A value that is not visible ASCII reads as one empty entry: not an address.
        let text = value.to_str().unwrap_or_default();
        for entry in text.split(',').rev() {
            let Ok(ip) = entry.trim().parse::<IpAddr>() else {
                return Some(vouched_for);
            };
            let ip = ip.to_canonical();
            if !trusted(&ip) {
                return Some(ip);
            }
            vouched_for = ip;
        }
    }
    Some(vouched_for)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderValue;
    use actix_web::test::TestRequest;
    use std::net::SocketAddr;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().expect("a network")).collect()
    }

    /// The client address of a request from `peer` carrying one `X-Forwarded-For` header per
    /// item of `forwarded`.
    fn address(peer: &str, forwarded: &[&str], trusted: &[&str]) -> Option<IpAddr> {
        let peer: SocketAddr = peer.parse().expect("a peer address");
        let mut request = TestRequest::default().peer_addr(peer);
        for value in forwarded {
            request = request.append_header(("X-Forwarded-For", *value));
        }
        client_address(&request.to_http_request(), &nets(trusted))
    }

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().expect("an address"))
    }

    const BALANCER: &str = "10.0.0.2:41000";
    const PRIVATE: &[&str] = &["10.0.0.0/8"];

    #[test]
    fn without_trusted_proxies_the_peer_is_the_client_whatever_the_header_says() {
        assert_eq!(address(BALANCER, &[], &[]), ip("10.0.0.2"));
        assert_eq!(address(BALANCER, &["203.0.113.7"], &[]), ip("10.0.0.2"));
    }

    #[test]
    fn an_untrusted_peer_cannot_spoof_its_address_with_the_header() {
        assert_eq!(
            address("198.51.100.9:5000", &["203.0.113.7"], PRIVATE),
            ip("198.51.100.9")
        );
        assert_eq!(
            address("198.51.100.9:5000", &["10.0.0.2"], PRIVATE),
            ip("198.51.100.9")
        );
    }

    #[test]
    fn a_trusted_peer_without_the_header_is_the_client() {
        assert_eq!(address(BALANCER, &[], PRIVATE), ip("10.0.0.2"));
    }

    #[test]
    fn behind_a_trusted_balancer_the_rightmost_entry_is_the_client() {
        assert_eq!(
            address(BALANCER, &["203.0.113.7"], PRIVATE),
            ip("203.0.113.7")
        );
        // What the client wrote itself, left of what the balancer appended, is ignored.
        assert_eq!(
            address(BALANCER, &["192.0.2.1, 203.0.113.7"], PRIVATE),
            ip("203.0.113.7")
        );
    }

    #[test]
    fn a_chain_of_trusted_proxies_is_walked_from_the_right() {
        assert_eq!(
            address(
                BALANCER,
                &["192.0.2.1, 203.0.113.7, 10.1.0.5, 10.2.0.6"],
                PRIVATE
            ),
            ip("203.0.113.7")
        );
        // Several trusted networks: a /32 for one machine and a small range.
        assert_eq!(
            address(
                "127.0.0.1:9000",
                &["203.0.113.7,198.51.100.20"],
                &["127.0.0.1/32", "198.51.100.16/28"]
            ),
            ip("203.0.113.7")
        );
    }

    #[test]
    fn every_occurrence_of_the_header_counts_in_order() {
        assert_eq!(
            address(BALANCER, &["192.0.2.1", "203.0.113.7, 10.1.0.5"], PRIVATE),
            ip("203.0.113.7")
        );
        assert_eq!(
            address(BALANCER, &["203.0.113.7", "10.1.0.5"], PRIVATE),
            ip("203.0.113.7")
        );
    }

    #[test]
    fn when_every_entry_is_trusted_the_leftmost_is_the_client() {
        assert_eq!(
            address(BALANCER, &["10.9.9.9, 10.1.0.5"], PRIVATE),
            ip("10.9.9.9")
        );
    }

    #[test]
    fn the_walk_stops_at_an_entry_that_is_not_an_address() {
        for garbage in [
            "not-an-ip",
            "",
            "unknown",
            "1.2.3.4:5678",
            "[2001:db8::1]",
            "[2001:db8::1]:443",
            "300.1.1.1",
        ] {
            // Right of any untrusted entry: the last hop vouched for (the peer here).
            assert_eq!(
                address(BALANCER, &[&format!("203.0.113.7, {garbage}")], PRIVATE),
                ip("10.0.0.2"),
                "{garbage:?}"
            );
            // Behind trusted entries: the leftmost trusted one reached.
            assert_eq!(
                address(BALANCER, &[&format!("{garbage}, 10.1.0.5")], PRIVATE),
                ip("10.1.0.5"),
                "{garbage:?}"
            );
            // Left of the client's address: never reached.
            assert_eq!(
                address(BALANCER, &[&format!("{garbage}, 203.0.113.7")], PRIVATE),
                ip("203.0.113.7"),
                "{garbage:?}"
            );
        }
        assert_eq!(
            address(BALANCER, &["203.0.113.7,,"], PRIVATE),
            ip("10.0.0.2")
        );
    }

    #[test]
    fn a_header_that_is_not_text_is_not_an_address() {
        let request = TestRequest::default()
            .peer_addr(BALANCER.parse().expect("a peer"))
            .append_header((
                "X-Forwarded-For",
                HeaderValue::from_bytes(b"203.0.113.7\xff").expect("a header value"),
            ))
            .to_http_request();
        assert_eq!(client_address(&request, &nets(PRIVATE)), ip("10.0.0.2"));
    }

    #[test]
    fn ipv6_peers_entries_and_networks_work_alike() {
        let trusted = &["fd00::/8", "2001:db8:1::/48"];
        assert_eq!(
            address(
                "[fd00::2]:41000",
                &["2001:db8:2::7, 2001:db8:1::9"],
                trusted
            ),
            ip("2001:db8:2::7")
        );
        assert_eq!(
            address("[2001:db8:2::7]:41000", &["2001:db8:3::1"], trusted),
            ip("2001:db8:2::7")
        );
        // An IPv4 client behind an IPv6 balancer, and the other way round.
        assert_eq!(
            address("[fd00::2]:41000", &["203.0.113.7"], trusted),
            ip("203.0.113.7")
        );
        assert_eq!(
            address(BALANCER, &["2001:db8:2::7"], PRIVATE),
            ip("2001:db8:2::7")
        );
    }

    #[test]
    fn ipv4_mapped_addresses_count_as_ipv4() {
        assert_eq!(
            address("[::ffff:10.0.0.2]:41000", &["::ffff:203.0.113.7"], PRIVATE),
            ip("203.0.113.7")
        );
        assert_eq!(
            address("[::ffff:198.51.100.9]:5000", &["203.0.113.7"], PRIVATE),
            ip("198.51.100.9")
        );
    }
}
