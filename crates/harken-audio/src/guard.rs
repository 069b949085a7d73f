//! The SSRF guard: which IP addresses a user-supplied URL may reach.
//!
//! Owns two things:
//! - [`forbidden_reason`], the one classification of addresses we refuse (private, loopback,
//!   link-local including cloud metadata, CGNAT, unspecified, multicast, broadcast, documentation,
//!   IPv6 ULA / link-local, and IPv4-mapped / NAT64 / 6to4 forms of all of these);
//! - [`GuardedResolver`], a `reqwest` DNS resolver that resolves a name and then drops every
//!   forbidden address. Because reqwest asks the resolver for every connection (including the ones
//!   made while following redirects), a name that resolves — or later re-resolves (DNS rebinding) —
//!   to an internal address can never be connected to.
//!
//! Invariant: the check happens on the addresses we actually connect to, never on the host name.
//! Literal-IP hosts bypass DNS, so `fetch` checks them separately (before the first request and in
//! the redirect policy) with the same [`forbidden_reason`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Why an address is refused, as a phrase that completes "10.0.0.5 is a ...".
pub(crate) fn forbidden_reason(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_reason(v4),
        IpAddr::V6(v6) => v6_reason(v6),
    }
}

fn v4_reason(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    if ip.is_unspecified() || a == 0 {
        Some("unspecified (0.0.0.0/8) address")
    } else if ip.is_loopback() {
        Some("loopback address")
    } else if ip.is_private() {
        Some("private address")
    } else if a == 100 && (64..128).contains(&b) {
        Some("private (carrier-grade NAT, 100.64.0.0/10) address")
    } else if ip.is_link_local() {
        Some("link-local address (169.254.0.0/16, incl. cloud metadata)")
    } else if ip.is_multicast() {
        Some("multicast address")
    } else if ip.is_broadcast() || a >= 240 {
        Some("reserved address")
    } else if (a == 192 && b == 0 && c == 0) || (a == 198 && (b & 0xfe) == 18) {
        Some("reserved (IETF protocol / benchmarking) address")
    } else if (a == 192 && b == 0 && c == 2)
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113)
    {
        Some("documentation address")
    } else {
        None
    }
}

fn v6_reason(ip: Ipv6Addr) -> Option<&'static str> {
    let seg = ip.segments();
    // Embedded IPv4 forms are judged by the IPv4 address they carry.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_reason(v4); // ::ffff:a.b.c.d
    }
    if seg[..6] == [0, 0, 0, 0, 0, 0] && !ip.is_unspecified() && !ip.is_loopback() {
        let v4 = Ipv4Addr::new(
            (seg[6] >> 8) as u8,
            seg[6] as u8,
            (seg[7] >> 8) as u8,
            seg[7] as u8,
        );
        return v4_reason(v4).or(Some("reserved (IPv4-compatible) address")); // ::a.b.c.d
    }
    if seg[0] == 0x64 && seg[1] == 0xff9b {
        // NAT64 well-known prefix 64:ff9b::/96 reaches the embedded IPv4 address.
        let v4 = Ipv4Addr::new(
            (seg[6] >> 8) as u8,
            seg[6] as u8,
            (seg[7] >> 8) as u8,
            seg[7] as u8,
        );
        return v4_reason(v4);
    }
    if seg[0] == 0x2002 {
        // 6to4 2002:a.b.c.d::/48.
        let v4 = Ipv4Addr::new(
            (seg[1] >> 8) as u8,
            seg[1] as u8,
            (seg[2] >> 8) as u8,
            seg[2] as u8,
        );
        return v4_reason(v4);
    }
    if ip.is_unspecified() {
        Some("unspecified address")
    } else if ip.is_loopback() {
        Some("loopback address")
    } else if (seg[0] & 0xfe00) == 0xfc00 {
        Some("private (unique local, fc00::/7) address")
    } else if (seg[0] & 0xffc0) == 0xfe80 {
        Some("link-local (fe80::/10) address")
    } else if (seg[0] & 0xffc0) == 0xfec0 {
        Some("private (site-local, fec0::/10) address")
    } else if ip.is_multicast() {
        Some("multicast address")
    } else if seg[0] == 0x2001 && seg[1] == 0x0db8 {
        Some("documentation address")
    } else if seg[0] == 0x0100 && seg[1..4] == [0, 0, 0] {
        Some("reserved (discard-only) address")
    } else {
        None
    }
}

/// A resolved address was refused. Travels through reqwest/hyper as an error source and is
/// recovered by `fetch` with a downcast, so the user sees exactly this message.
#[derive(Debug, Clone)]
pub(crate) struct Refused {
    pub(crate) ip: IpAddr,
    pub(crate) reason: &'static str,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} is a {}", self.ip, self.reason)
    }
}

impl std::error::Error for Refused {}

/// Refuse a literal IP when the guard is on.
pub(crate) fn check_ip(ip: IpAddr, allow_private: bool) -> Result<(), Refused> {
    match forbidden_reason(ip) {
        Some(reason) if !allow_private => Err(Refused { ip, reason }),
        _ => Ok(()),
    }
}

/// Resolves with the system resolver, then keeps only addresses the guard allows. If every
/// address is refused the lookup fails with [`Refused`] (naming the first one).
#[derive(Debug, Clone)]
pub(crate) struct GuardedResolver {
    pub(crate) allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refused = None;
            let allowed: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|addr| match check_ip(addr.ip(), allow_private) {
                    Ok(()) => true,
                    Err(e) => {
                        tracing::warn!(audio.host = %host, audio.ip = %e.ip, "refused to connect: {e}");
                        refused.get_or_insert(e);
                        false
                    }
                })
                .collect();
            match (allowed.is_empty(), refused) {
                (true, Some(e)) => Err(Box::new(e) as Box<dyn std::error::Error + Send + Sync>),
                _ => Ok(Box::new(allowed.into_iter()) as Addrs),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(s: &str) -> bool {
        forbidden_reason(s.parse().unwrap()).is_some()
    }

    #[test]
    fn refuses_internal_addresses() {
        for ip in [
            "10.0.0.5",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "100.127.255.254",
            "127.0.0.1",
            "127.8.9.10",
            "169.254.169.254",
            "0.0.0.0",
            "0.1.2.3",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.5",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:c0a8:0101::1",
            "192.0.2.1",
        ] {
            assert!(refused(ip), "{ip} must be refused");
        }
    }

    #[test]
    fn allows_public_addresses() {
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(!refused(ip), "{ip} must be allowed");
        }
    }

    #[test]
    fn message_names_the_address() {
        let e = check_ip("10.0.0.5".parse().unwrap(), false).unwrap_err();
        assert_eq!(e.to_string(), "10.0.0.5 is a private address");
        assert!(check_ip("10.0.0.5".parse().unwrap(), true).is_ok());
    }
}
