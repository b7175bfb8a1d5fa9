//! Who counts as on duty, and as what: a unit's shifts as the on-duty walk follows them, the
//! roster unit a clone works for, and the kind of a unit missing from `units.csv`. Kept apart
//! from [`crate::context`], which builds the shifts, and [`crate::duty`], which walks them, so
//! that neither depends on the other for them.

/// Kind given to units missing from `units.csv`.
pub(crate) const UNKNOWN_KIND: &str = "unknown";

/// A unit's shift as the walk uses it: `[s, e)` on duty, and up to `g` (the end of the grace,
/// see [`JobContext::with_roster`](crate::context::JobContext::with_roster)) a fix still ends the shift's last interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shift {
    pub(crate) s: i64,
    pub(crate) e: i64,
    pub(crate) g: i64,
}

/// `<id>` of a unit `<id>-<n>` (n all digits), else None: a clone `patrol generate --units`
/// adds works the shifts of `<id>`.
pub(crate) fn base_unit(unit: &str) -> Option<&str> {
    let (base, n) = unit.rsplit_once('-')?;
    (!base.is_empty() && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())).then_some(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_name_their_base_unit() {
        assert_eq!(base_unit("B01-0002"), Some("B01"));
        assert_eq!(base_unit("a-1-2"), Some("a-1"));
        for plain in ["B01", "B01-", "-7", "B01-x2"] {
            assert_eq!(base_unit(plain), None, "{plain}");
        }
    }
}
