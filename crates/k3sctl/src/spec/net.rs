//! Network types of the spec: CIDR blocks.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;

use ipnet::{IpNet, Ipv4Net};

use super::scalar::string_scalar;

/// A CIDR block such as `10.42.0.0/16` or `fd42::/56`, with no host bits set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr(IpNet);

/// Why a string is not a CIDR block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    /// Not `ADDRESS/PREFIX` at all.
    #[error("`{0}` is not a CIDR block: expected ADDRESS/PREFIX, for example 10.42.0.0/16")]
    Syntax(String),
    /// Host bits are set (`10.42.0.1/16`).
    #[error("`{input}` has host bits set: the network is {network}")]
    HostBits {
        /// What was written.
        input: String,
        /// The network it probably means.
        network: String,
    },
}

impl Cidr {
    /// K3s's default pod network, 10.42.0.0/16.
    pub const DEFAULT_CLUSTER: Cidr = Cidr(IpNet::V4(Ipv4Net::new_assert(
        Ipv4Addr::new(10, 42, 0, 0),
        16,
    )));
    /// K3s's default service network, 10.43.0.0/16.
    pub const DEFAULT_SERVICE: Cidr = Cidr(IpNet::V4(Ipv4Net::new_assert(
        Ipv4Addr::new(10, 43, 0, 0),
        16,
    )));

    /// The underlying network.
    pub fn net(&self) -> IpNet {
        self.0
    }

    /// Whether `address` is inside this block.
    pub fn contains(&self, address: &IpAddr) -> bool {
        self.0.contains(address)
    }

    /// Whether the two blocks share at least one address.
    pub fn overlaps(&self, other: &Cidr) -> bool {
        self.0.contains(&other.0.network()) || other.0.contains(&self.0.network())
    }
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let net: IpNet = input
            .parse()
            .map_err(|_| CidrError::Syntax(input.to_owned()))?;
        if net.trunc() != net {
            return Err(CidrError::HostBits {
                input: input.to_owned(),
                network: net.trunc().to_string(),
            });
        }
        Ok(Self(net))
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

string_scalar!(
    Cidr,
    "Cidr",
    "A CIDR block, for example 10.42.0.0/16.",
    pattern = r"^[0-9a-fA-F:.]+/[0-9]{1,3}$"
);

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(text: &str) -> Cidr {
        text.parse().expect("valid cidr")
    }

    #[test]
    fn parses_and_detects_overlap() {
        assert!(cidr("10.42.0.0/16").overlaps(&cidr("10.42.128.0/17")));
        assert!(cidr("10.0.0.0/8").overlaps(&cidr("10.43.0.0/16")));
        assert!(!cidr("10.42.0.0/16").overlaps(&cidr("10.43.0.0/16")));
        assert!(!cidr("10.42.0.0/16").overlaps(&cidr("fd42::/56")));
        assert!(cidr("10.43.0.0/16").contains(&"10.43.0.10".parse().expect("ip")));
    }

    #[test]
    fn rejects_host_bits_and_garbage() {
        assert!(matches!(
            "10.42.0.1/16".parse::<Cidr>(),
            Err(CidrError::HostBits { .. })
        ));
        for bad in ["10.42.0.0", "10.42.0.0/33", "banana/8", ""] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad:?}");
        }
    }
}
