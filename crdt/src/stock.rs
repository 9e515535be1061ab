//! Stock as a sum: on-hand of a SKU is Σ of every distinct stock effect in every ledger.
//!
//! Effects are deduplicated by movement id, which makes the sum a set union: applying
//! the same ledger twice, or two voids of the same sale, counts once.

use std::collections::{BTreeMap, HashSet};

use crate::ledger::{LedgerDoc, StockEffect};
use crate::money::Qty;

/// On-hand quantity per SKU.
pub type StockLevels = BTreeMap<String, Qty>;

/// Folds stock effects into levels, counting each movement id once.
#[derive(Debug, Default, Clone)]
pub struct StockTally {
    seen: HashSet<String>,
    levels: StockLevels,
}

impl StockTally {
    /// Applies one effect; `false` if its movement id was already counted.
    pub fn apply(&mut self, effect: &StockEffect) -> bool {
        if !self.seen.insert(effect.movement_id.clone()) {
            return false;
        }
        let entry = self.levels.entry(effect.sku.clone()).or_default();
        entry.0 += effect.qty.0;
        true
    }

    /// Applies every effect of a ledger.
    pub fn apply_ledger(&mut self, ledger: &LedgerDoc) {
        for e in ledger.stock_effects().0 {
            self.apply(&e);
        }
    }

    /// The levels so far.
    pub fn levels(&self) -> &StockLevels {
        &self.levels
    }

    /// On-hand of one SKU.
    pub fn on_hand(&self, sku: &str) -> Qty {
        self.levels.get(sku).copied().unwrap_or_default()
    }
}

/// Stock levels over a set of ledgers.
pub fn stock_levels<'a>(ledgers: impl IntoIterator<Item = &'a LedgerDoc>) -> StockLevels {
    let mut tally = StockTally::default();
    for l in ledgers {
        tally.apply_ledger(l);
    }
    tally.levels
}

/// The delta an opname records: what was counted minus what the counting till knew.
/// Sales the till had not yet seen still apply on top of it when they arrive.
pub fn opname_delta(counted: Qty, known_on_hand: Qty) -> Qty {
    Qty(counted.0 - known_on_hand.0)
}
