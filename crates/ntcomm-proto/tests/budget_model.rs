//! The ledger against a plain model: every sequence of charges and releases
//! keeps each bound, refuses exactly when the model says a bound would be
//! passed, and gives back exactly what was taken.

use std::collections::HashMap;

use ntcomm_proto::budget::{Ledger, Refused};
use proptest::prelude::*;

const N: usize = 4;

#[derive(Clone, Debug)]
enum Op {
    Charge(u8, u64),
    Release(u8, u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![(0u8..6, 0u64..40).prop_map(|(k, n)| Op::Charge(k, n)), (0u8..6, 0u64..40).prop_map(|(k, n)| Op::Release(k, n)),]
}

proptest! {
    #[test]
    fn ledger_matches_model(per_key in 1u64..50, total in 1u64..120, ops in proptest::collection::vec(op(), 0..200)) {
        let mut l: Ledger<u8, N> = Ledger::new(per_key, total);
        let mut model: HashMap<u8, u64> = HashMap::new();
        for o in ops {
            match o {
                Op::Charge(k, n) => {
                    let held = model.get(&k).copied().unwrap_or(0);
                    let used: u64 = model.values().sum();
                    let expect = if n > per_key || n > total {
                        Err(Refused::TooLarge)
                    } else if held + n > per_key {
                        Err(Refused::PerKey { used: held, limit: per_key })
                    } else if used + n > total {
                        Err(Refused::Total { used, limit: total })
                    } else if n > 0 && held == 0 && model.len() == N {
                        Err(Refused::Holders)
                    } else {
                        Ok(())
                    };
                    prop_assert_eq!(l.charge(k, n), expect);
                    if expect.is_ok() && n > 0 {
                        *model.entry(k).or_insert(0) += n;
                    }
                }
                Op::Release(k, n) => {
                    let held = model.get(&k).copied().unwrap_or(0);
                    let back = n.min(held);
                    prop_assert_eq!(l.release(k, n), back);
                    if held > 0 {
                        if held == back { model.remove(&k); } else { model.insert(k, held - back); }
                    }
                }
            }
            let used: u64 = model.values().sum();
            prop_assert_eq!(l.used(), used);
            prop_assert!(used <= total);
            prop_assert_eq!(l.holders(), model.len());
            for (k, v) in &model {
                prop_assert!(*v <= per_key);
                prop_assert_eq!(l.held_by(*k), *v);
            }
        }
        // Releasing everything returns the ledger to exactly empty.
        for (k, v) in model.drain() {
            prop_assert_eq!(l.release(k, v), v);
        }
        prop_assert_eq!((l.used(), l.holders()), (0, 0));
    }
}
