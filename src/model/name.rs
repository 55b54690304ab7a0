//! Child-name validation: `^[a-z0-9_]{1,64}$`, checked exactly.
//!
//! The reference's check is an unanchored regex that accepts nearly anything;
//! a DN is only unambiguous if a name can never contain the `.` separator.

/// The longest name a node may have.
pub const MAX_NAME_LEN: usize = 64;

/// `true` when `name` matches `^[a-z0-9_]{1,64}$`.
pub fn is_valid_name(name: &str) -> bool {
    (1..=MAX_NAME_LEN).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_exactly_the_alphabet() {
        assert!(is_valid_name("a"));
        assert!(is_valid_name("http_listener_0"));
        assert!(is_valid_name(&"x".repeat(64)));
        for bad in ["", "A", "a.b", "a-b", "a b", "é", "root\n", &"x".repeat(65)] {
            assert!(!is_valid_name(bad), "{bad:?} accepted");
        }
    }
}
