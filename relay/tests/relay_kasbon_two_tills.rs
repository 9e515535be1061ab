//! Kasbon across two tills that are apart: Bu Tini owes Rp50.000 from a credit sale both
//! tills know; then, each on its own, till A sells her more on credit (Rp30.000 kasbon
//! plus a down payment in cash) and till B takes Rp20.000 she pays back. When they meet
//! again, both tills and PostgreSQL say she owes exactly Rp60.000, and a void of the
//! first credit sale takes its Rp50.000 off everywhere.

mod support;

use serde_json::{Value, json};
use support::{RelayProc, Till, runtime, wait_for};

fn balance(till: &Till, customer: &str) -> Option<i64> {
    let (status, v) = till.get("/v1/customers");
    if status != 200 {
        return None;
    }
    v["customers"]
        .as_array()?
        .iter()
        .find(|c| c["customer_id"] == customer)?["balance"]
        .as_i64()
}

fn cli_balance(till: &Till, customer: &str) -> i64 {
    let v: Value = till.ok(&["customer", "list"]);
    v["customers"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["customer_id"] == customer))
        .and_then(|c| c["balance"].as_i64())
        .expect("the customer on this till")
}

#[test]
fn relay_kasbon_balance_is_exact_on_both_tills_and_in_postgres() {
    let rt = runtime();
    let db = support::fresh_database("kasbon_two_tills");
    let relay = RelayProc::start(&db, None);
    let tenant = relay.tenant("Toko Sumber Rejeki");
    let (_, mut a) = support::store_with_till(&relay, &tenant, "Warung Bu Sri");
    a.add_product("BERAS", "Beras 5kg", "50.000", "100", &[]);
    a.add_product("GULA", "Gulaku 1kg", "17.500", "100", &[]);
    a.add_product("MINYAK", "Minyak 2L", "35.000", "100", &[]);
    let tini = a.ok(&[
        "customer",
        "add",
        "--name",
        "Bu Tini",
        "--phone",
        "0812-1111-2222",
    ]);
    let tini = tini["customer_id"]
        .as_str()
        .expect("customer id")
        .to_owned();
    // A credit sale without its customer, or for more than the total, is refused.
    let why = a.fails(&["sell", "--item", "BERAS", "--pay", "kasbon=50000"]);
    assert!(why.contains("customer"), "{why}");
    let first = a.ok(&[
        "sell",
        "--item",
        "BERAS",
        "--customer",
        &tini,
        "--pay",
        "kasbon=50000",
        "--due",
        "2099-01-31",
    ]);
    let first = first["sale_id"].as_str().expect("sale").to_owned();
    a.start(&[]);
    let mut b = Till::empty();
    a.admit(&b);
    b.start(&[a.peer_arg()]);
    wait_for(60, "B to know Bu Tini's kasbon", || {
        (balance(&b, &tini) == Some(50_000)).then_some(())
    });

    // Apart: A sells on credit with a down payment, B takes a repayment.
    a.stop();
    b.stop();
    let sale = a.ok(&[
        "sell",
        "--item",
        "GULA",
        "--item",
        "MINYAK",
        "--customer",
        &tini,
        "--pay",
        "kasbon=30000",
        "--pay",
        "tunai=25000",
    ]);
    assert_eq!(sale["total"], 52_500);
    assert_eq!(sale["change"], 2_500);
    let paid = b.ok(&[
        "customer", "pay", &tini, "--amount", "20.000", "--method", "tunai",
    ]);
    assert_eq!(paid["balance"], 30_000, "B knows 50.000 − 20.000");
    assert_eq!(cli_balance(&a, &tini), 80_000, "A knows 50.000 + 30.000");
    let why = b.fails(&["customer", "pay", &tini, "--amount", "40000"]);
    assert!(
        why.contains("more than"),
        "B refuses more than it knows is owed: {why}"
    );

    // Together again: the same balance everywhere.
    a.start(&[]);
    b.start(&[a.peer_arg()]);
    for (name, till) in [("A", &a), ("B", &b)] {
        wait_for(60, &format!("{name} to hold 60.000"), || {
            (balance(till, &tini) == Some(60_000)).then_some(())
        });
    }
    // The repayment is money into B's drawer, not a sale, in either till's Z-report.
    for till in [&a, &b] {
        let (status, z) = till.get("/v1/reports/z");
        assert_eq!(status, 200, "{z}");
        assert_eq!(z["store"]["kasbon_repaid"], 20_000, "{z}");
    }
    let pg_balance = || -> Option<i64> {
        rt.block_on(async {
            let pool = sqlx::PgPool::connect(&db).await.ok()?;
            let b =
                sqlx::query_scalar("SELECT balance FROM customer_balances WHERE customer_id = $1")
                    .bind(&tini)
                    .fetch_optional(&pool)
                    .await
                    .ok()?;
            pool.close().await;
            b
        })
    };
    wait_for(60, "PostgreSQL to hold 60.000", || {
        (pg_balance() == Some(60_000)).then_some(())
    });

    // The first credit sale is voided (the owner's till approves itself): 50.000 off.
    let (status, v) = a.post(
        &format!("/v1/sales/{first}/void"),
        &json!({"reason": "salah catat"}),
    );
    assert!(status == 200 || status == 201, "void: {status} {v}");
    for (name, till) in [("A", &a), ("B", &b)] {
        wait_for(60, &format!("{name} to hold 10.000"), || {
            (balance(till, &tini) == Some(10_000)).then_some(())
        });
    }
    wait_for(60, "PostgreSQL to hold 10.000", || {
        (pg_balance() == Some(10_000)).then_some(())
    });
    drop((a, b));
}
