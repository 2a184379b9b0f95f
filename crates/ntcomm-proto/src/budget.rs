//! Bounded resources: the pure accounting behind the driver's limits.
//!
//! A [`Ledger`] counts what each holder (a handle, keyed by anything `Copy +
//! Eq`) has taken from one shared pool, against three limits checked before
//! anything is allocated: at most `per_key` units per holder, at most
//! `total` units over all holders, and at most `N` holders at once. It is
//! plain data with no locking and no allocation, so the same code runs in
//! the kernel (inside a spin lock, see `ntcomm_km::quota`) and in host
//! tests; `charge` either takes all of `n` units or nothing, and `release`
//! gives back exactly what was taken.

/// Why a [`Ledger::charge`] was refused. Nothing was taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// The request alone is larger than one holder may ever hold.
    TooLarge,
    /// This holder would exceed its share (`used` of `limit` now).
    PerKey {
        /// Units this holder holds now.
        used: u64,
        /// Units one holder may hold.
        limit: u64,
    },
    /// All holders together would exceed the pool (`used` of `limit` now).
    Total {
        /// Units held now over all holders.
        used: u64,
        /// Units of the pool.
        limit: u64,
    },
    /// As many holders as the ledger tracks hold units already.
    Holders,
}

/// Per-holder and total accounting of one bounded resource, for at most
/// `N` holders at once.
#[derive(Clone, Debug)]
pub struct Ledger<K, const N: usize> {
    slots: [Option<(K, u64)>; N],
    used: u64,
    per_key: u64,
    total: u64,
}

impl<K: Copy + Eq, const N: usize> Ledger<K, N> {
    /// An empty ledger: `per_key` units per holder, `total` over all.
    pub const fn new(per_key: u64, total: u64) -> Self {
        Self { slots: [None; N], used: 0, per_key, total }
    }

    /// Takes `n` units for `key`, or nothing and the reason.
    pub fn charge(&mut self, key: K, n: u64) -> Result<(), Refused> {
        if n > self.per_key || n > self.total {
            return Err(Refused::TooLarge);
        }
        let now = self.held_by(key);
        if now.checked_add(n).is_none_or(|v| v > self.per_key) {
            return Err(Refused::PerKey { used: now, limit: self.per_key });
        }
        if self.used.checked_add(n).is_none_or(|v| v > self.total) {
            return Err(Refused::Total { used: self.used, limit: self.total });
        }
        if n == 0 {
            return Ok(());
        }
        if let Some((_, held)) = self.slots.iter_mut().flatten().find(|(k, _)| *k == key) {
            *held += n;
        } else if let Some(slot) = self.slots.iter_mut().find(|s| s.is_none()) {
            *slot = Some((key, n));
        } else {
            return Err(Refused::Holders);
        }
        self.used += n;
        Ok(())
    }

    /// Gives back `n` units of `key` (at most what it holds; the holder is
    /// forgotten when it holds nothing). Returns the units given back.
    pub fn release(&mut self, key: K, n: u64) -> u64 {
        let Some(slot) = self.slots.iter_mut().find(|s| s.is_some_and(|(k, _)| k == key)) else {
            return 0;
        };
        let Some((_, held)) = slot.as_mut() else { return 0 };
        let back = n.min(*held);
        *held -= back;
        if *held == 0 {
            *slot = None;
        }
        self.used -= back;
        back
    }

    /// Units `key` holds.
    pub fn held_by(&self, key: K) -> u64 {
        self.slots.iter().flatten().find(|(k, _)| *k == key).map_or(0, |(_, n)| *n)
    }

    /// Units held over all holders.
    pub const fn used(&self) -> u64 {
        self.used
    }

    /// Holders holding anything.
    pub fn holders(&self) -> usize {
        self.slots.iter().flatten().count()
    }

    /// The per-holder limit.
    pub const fn per_key_limit(&self) -> u64 {
        self.per_key
    }

    /// The total limit.
    pub const fn total_limit(&self) -> u64 {
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_in_order() {
        let mut l: Ledger<u32, 3> = Ledger::new(10, 25);
        assert_eq!(l.charge(1, 11), Err(Refused::TooLarge));
        assert_eq!(l.charge(1, 6), Ok(()));
        assert_eq!(l.charge(1, 5), Err(Refused::PerKey { used: 6, limit: 10 }));
        assert_eq!(l.charge(1, 4), Ok(()));
        assert_eq!(l.charge(2, 10), Ok(()));
        assert_eq!(l.charge(3, 6), Err(Refused::Total { used: 20, limit: 25 }));
        assert_eq!(l.charge(3, 5), Ok(()));
        assert_eq!(l.used(), 25);
        assert_eq!(l.release(2, 10), 10);
        assert_eq!(l.holders(), 2);
        assert_eq!(l.charge(4, 1), Ok(()));
        assert_eq!(l.release(9, 1), 0, "an unknown holder gives back nothing");
        assert_eq!(l.release(1, 100), 10, "never more than held");
        assert_eq!(l.release(3, 5) + l.release(4, 1), 6);
        assert_eq!((l.used(), l.holders()), (0, 0));
    }

    #[test]
    fn holder_slots_are_a_bound() {
        let mut l: Ledger<u32, 2> = Ledger::new(5, 100);
        l.charge(1, 1).unwrap();
        l.charge(2, 1).unwrap();
        assert_eq!(l.charge(3, 1), Err(Refused::Holders));
        assert_eq!(l.used(), 2, "a refusal takes nothing");
        l.release(1, 1);
        l.charge(3, 1).unwrap();
        assert_eq!(l.charge(0, 0), Ok(()), "nothing is always possible");
        assert_eq!(l.holders(), 2);
    }

    #[test]
    fn no_overflow() {
        let mut l: Ledger<u8, 2> = Ledger::new(u64::MAX, u64::MAX);
        l.charge(1, u64::MAX).unwrap();
        assert_eq!(l.charge(1, 1), Err(Refused::PerKey { used: u64::MAX, limit: u64::MAX }));
        assert_eq!(l.charge(2, 1), Err(Refused::Total { used: u64::MAX, limit: u64::MAX }));
    }
}
