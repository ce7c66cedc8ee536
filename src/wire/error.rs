//! Why a frame was refused. Every variant is a counted drop reason.

/// Why [`crate::wire::parse_frame`] refused a frame. Each variant names one check; see [`ParseError::ALL`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum ParseError {
    /// Shorter than an Ethernet header (or its VLAN tag).
    TruncatedEthernet,
    /// The EtherType is neither IPv4 nor IPv6 (after at most one 802.1Q tag).
    NotIp,
    /// Shorter than the IP header it claims.
    TruncatedIp,
    /// IPv4 version nibble is not 4 (or IPv6's not 6).
    BadIpVersion,
    /// IPv4 IHL below 5.
    BadIhl,
    /// IP total / payload length beyond the frame, or shorter than the header.
    BadIpLength,
    /// IPv4 header checksum wrong.
    BadIpChecksum,
    /// IPv4 fragment (MF set or offset non-zero).
    Fragment,
    /// IPv4 options that do not parse: an option running past the header, or a length below 2.
    BadIpOptions,
    /// IPv4 loose or strict source route (RFC 791 §3.1): dropped, as Linux does with its default
    /// `accept_source_route=0`; a route chosen by the sender is a spoofing tool (RFC 1122 §3.3.5 lets a host
    /// refuse it).
    SourceRoute,
    /// IPv6 next header is not TCP (extension headers are not followed).
    Ipv6ExtensionHeader,
    /// IP protocol is not TCP.
    NotTcp,
    /// Shorter than a TCP header.
    TruncatedTcp,
    /// TCP data offset below 5 or past the end of the segment.
    BadDataOffset,
    /// TCP checksum wrong.
    BadTcpChecksum,
    /// SYN together with FIN or RST.
    BadFlags,
    /// Source or destination port 0.
    ZeroPort,
    /// Source address is multicast, broadcast, unspecified or loopback (never a valid TCP peer), or the source
    /// MAC is a group address.
    BadSourceAddress,
    /// An ICMP "too big" message that is truncated, fails its checksum, or quotes no TCP segment of its family.
    BadIcmp,
}

impl ParseError {
    /// Every variant, in a fixed order: `ALL[e.index()] == e`.
    pub const ALL: [ParseError; 19] = [
        ParseError::TruncatedEthernet,
        ParseError::NotIp,
        ParseError::TruncatedIp,
        ParseError::BadIpVersion,
        ParseError::BadIhl,
        ParseError::BadIpLength,
        ParseError::BadIpChecksum,
        ParseError::Fragment,
        ParseError::BadIpOptions,
        ParseError::SourceRoute,
        ParseError::Ipv6ExtensionHeader,
        ParseError::NotTcp,
        ParseError::TruncatedTcp,
        ParseError::BadDataOffset,
        ParseError::BadTcpChecksum,
        ParseError::BadFlags,
        ParseError::ZeroPort,
        ParseError::BadSourceAddress,
        ParseError::BadIcmp,
    ];

    /// Position in [`ParseError::ALL`], for counter arrays.
    #[inline]
    pub fn index(self) -> usize {
        self as usize
    }

    /// A short snake_case name for stats and metrics.
    pub fn name(self) -> &'static str {
        match self {
            ParseError::TruncatedEthernet => "truncated_ethernet",
            ParseError::NotIp => "not_ip",
            ParseError::TruncatedIp => "truncated_ip",
            ParseError::BadIpVersion => "bad_ip_version",
            ParseError::BadIhl => "bad_ihl",
            ParseError::BadIpLength => "bad_ip_length",
            ParseError::BadIpChecksum => "bad_ip_checksum",
            ParseError::Fragment => "fragment",
            ParseError::BadIpOptions => "bad_ip_options",
            ParseError::SourceRoute => "source_route",
            ParseError::Ipv6ExtensionHeader => "ipv6_extension_header",
            ParseError::NotTcp => "not_tcp",
            ParseError::TruncatedTcp => "truncated_tcp",
            ParseError::BadDataOffset => "bad_data_offset",
            ParseError::BadTcpChecksum => "bad_tcp_checksum",
            ParseError::BadFlags => "bad_flags",
            ParseError::ZeroPort => "zero_port",
            ParseError::BadSourceAddress => "bad_source_address",
            ParseError::BadIcmp => "bad_icmp",
        }
    }
}

impl core::fmt::Display for ParseError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::error::Error for ParseError {}

/// Why a `Repr` could not be emitted.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
pub enum EmitError {
    #[error("buffer of {have} bytes is too small for a {need}-byte frame")]
    BufferTooSmall { need: usize, have: usize },
    #[error("payload of {0} bytes does not fit in one IP packet")]
    PayloadTooLong(usize),
}
