//! The Internet checksum (RFC 1071), its pseudo-headers, and incremental update (RFC 1624).
// TODO(wire)
