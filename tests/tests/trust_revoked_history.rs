//! A revoked till's history, as far as its revoker vouched for it, still reaches tills
//! that join later; nothing it wrote after that does, from any peer.
//!
//! Real `Node`s on SQLite files sync in memory through real sessions (`exchange`): the
//! owner O, a till D that sells (restarting between sales now and then, so it writes
//! with several actors), a till E that keeps syncing with D after O stopped hearing
//! from it, and a replacement J admitted after O revoked D. For any split of D's sales
//! into "O held them when it revoked D" and "only E held them":
//! - J ends with exactly the sales O vouched for, whether it syncs with O or with E;
//! - O refuses the later ones from E; E keeps what it merged before it knew;
//! - the sales J holds of D's keep their receipt numbers.
#![allow(missing_docs)]

use std::collections::BTreeSet;

use kasir_crdt::store::Role;
use kasir_crdt::{DeviceId, Qty};
use kasir_node::Node;
use kasir_node::api::{InitOptions, ProductInput, SaleItem, SaleRequest};
use kasir_sync::{Identity, exchange};
use proptest::prelude::*;

struct Till {
    dir: tempfile::TempDir,
    node: Node,
    id: DeviceId,
}

impl Till {
    /// The same till after a restart: a fresh actor.
    fn restart(self) -> Till {
        let Till { dir, node, id } = self;
        drop(node);
        let node = Node::open(dir.path()).expect("reopen");
        Till { dir, node, id }
    }

    fn sell(&mut self) -> String {
        self.node
            .sell(&SaleRequest {
                items: vec![SaleItem {
                    code: "KOPI".into(),
                    qty: Qty::units(1),
                    discount: 0,
                    discount_percent: None,
                    price: None,
                    unit: None,
                }],
                ..SaleRequest::default()
            })
            .expect("sell")
            .sale_id
    }

    /// The sales of till code `code` this till holds: id and receipt number.
    fn sales_of(&self, code: &str) -> BTreeSet<(String, String)> {
        self.node
            .sales(None)
            .expect("sales")
            .into_iter()
            .filter(|s| s.till_code == code)
            .map(|s| (s.sale_id, s.receipt_no))
            .collect()
    }
}

fn sync(a: &mut Till, b: &mut Till) {
    exchange(&mut a.node, a.id, &mut b.node, b.id, 10_000, |_, _| {});
}

fn joined(owner: &mut Till) -> Till {
    let dir = tempfile::tempdir().expect("tmp");
    let identity = Identity::generate();
    identity.store(dir.path()).expect("key");
    let secret = owner.node.create_invite(Role::Till, None).expect("invite");
    let admission = owner
        .node
        .admit(&secret, identity.device_id(), None, vec![])
        .expect("admit");
    let node =
        Node::init_joined(dir.path(), owner.node.store_id(), &admission.till_code).expect("joined");
    Till {
        dir,
        node,
        id: identity.device_id(),
    }
}

fn shop() -> (Till, Till, Till) {
    let dir = tempfile::tempdir().expect("tmp");
    let mut node = Node::init(
        dir.path(),
        &InitOptions {
            store_name: "Warung Cabut".into(),
            till_code: "T1".into(),
            encrypt: None,
        },
    )
    .expect("init");
    node.add_products(&[ProductInput {
        sku: "KOPI".into(),
        name: "Kopi".into(),
        price: 1_500,
        stock: Some(Qty::units(1_000)),
        ..ProductInput::default()
    }])
    .expect("product");
    let id = node.device_id();
    let mut owner = Till { dir, node, id };
    let mut d = joined(&mut owner);
    let mut e = joined(&mut owner);
    sync(&mut owner, &mut d);
    sync(&mut owner, &mut e);
    (owner, d, e)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn trust_revoked_history_reaches_later_tills_up_to_the_revocation(
        // Per sale of D: whether D restarted (a new actor) before it.
        vouched in proptest::collection::vec(any::<bool>(), 1..5),
        later in proptest::collection::vec(any::<bool>(), 0..4),
    ) {
        let (mut owner, mut d, mut e) = shop();
        let code = d.node.till_code().to_owned();
        let mut before = BTreeSet::new();
        for restart in &vouched {
            if *restart {
                d = d.restart();
            }
            before.insert(d.sell());
        }
        sync(&mut owner, &mut d);
        sync(&mut d, &mut e);
        let mut after = BTreeSet::new();
        for restart in &later {
            if *restart {
                d = d.restart();
            }
            after.insert(d.sell());
        }
        sync(&mut d, &mut e); // E hears of them; O does not
        let ids = |t: &Till| -> BTreeSet<String> {
            t.sales_of(&code).into_iter().map(|(id, _)| id).collect()
        };
        prop_assert_eq!(ids(&owner), before.clone());
        let all: BTreeSet<String> = before.union(&after).cloned().collect();
        prop_assert_eq!(ids(&e), all.clone());

        owner.node.revoke(d.id).expect("revoke");
        let mut j = joined(&mut owner);
        // J first meets E, which holds everything D sold and does not know of the
        // revocation yet: J needs the store document from O to know anyone, so O first.
        sync(&mut owner, &mut j);
        prop_assert_eq!(ids(&j), before.clone(), "from the revoker: the vouched history");
        sync(&mut e, &mut j);
        prop_assert_eq!(ids(&j), before.clone(), "from E: nothing after the revocation");
        sync(&mut e, &mut owner);
        prop_assert_eq!(ids(&owner), before.clone(), "O takes nothing later from E");
        prop_assert_eq!(ids(&e), all, "E keeps what it merged before it knew");
        // The receipts J holds of D's are D's own numbers.
        let on_e = e.sales_of(&code);
        for sale in j.sales_of(&code) {
            prop_assert!(on_e.contains(&sale), "{:?}", sale);
        }

        // A till that joins later still, knowing only J, gets the same history.
        let mut k = joined(&mut owner);
        sync(&mut owner, &mut k);
        let mut k_only_j = joined(&mut owner);
        sync(&mut owner, &mut j); // J learns of the admission
        sync(&mut j, &mut k_only_j);
        prop_assert_eq!(ids(&k), before.clone());
        prop_assert_eq!(ids(&k_only_j), before);
    }
}
