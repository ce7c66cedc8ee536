//! Flags that take seconds. Each is finite, not negative and at most a year, checked on the command line:
//! `Duration::from_secs_f64` panics on NaN, infinity and overflow, and a role that panics after attaching its
//! XDP program or building its namespaces would leave them behind.

/// The longest time any flag accepts.
pub const MAX_SECS: f64 = 365.0 * 86_400.0;

/// Seconds, zero allowed.
pub fn parse_secs(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && (0.0..=MAX_SECS).contains(&v) => Ok(v),
        _ => Err(format!("`{s}` is not a number of seconds from 0 to {MAX_SECS}")),
    }
}

/// Seconds, more than zero.
pub fn parse_positive_secs(s: &str) -> Result<f64, String> {
    match parse_secs(s) {
        Ok(v) if v > 0.0 => Ok(v),
        _ => Err(format!("`{s}` is not a positive number of seconds (at most {MAX_SECS})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_duration_would_panic_on_is_refused() {
        for bad in ["nan", "NaN", "inf", "-inf", "1e30", "-1", "", "x", "31536001"] {
            assert!(parse_secs(bad).is_err(), "{bad:?}");
            assert!(parse_positive_secs(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_secs("0"), Ok(0.0));
        assert!(parse_positive_secs("0").is_err());
        assert_eq!(parse_positive_secs(" 2.5 "), Ok(2.5));
        assert_eq!(parse_secs("31536000"), Ok(MAX_SECS));
        for ok in ["0.001", "60", "31536000"] {
            let v = parse_positive_secs(ok).unwrap();
            let _ = std::time::Duration::from_secs_f64(v); // never panics on what the parser lets through
        }
    }
}
