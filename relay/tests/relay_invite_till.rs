//! Head office adds a till to a store (`POST /v1/stores/{store}/invites`, an owner's
//! token): the relay writes a one-time invite into the store's roster and answers with a
//! ticket; a new, empty tablet joins with `kasir join` through the relay alone and is
//! that till, with the store's documents. The ticket is used once; an analyst may not
//! invite; a till code in use, an owner's role, a malformed till code or body, and a
//! store of another tenant are refused with their own status.

mod support;

use serde_json::json;
use support::{RelayProc, Till, api, kasir_bin, token};

#[test]
fn relay_invite_till_adds_a_tablet_to_a_store_from_head_office() {
    let db = support::fresh_database("invite_till");
    let relay = RelayProc::start(&db, None);
    let tenant = relay.tenant("PT Tambah Kasir");
    let (store, a) = support::store_with_till(&relay, &tenant, "Minimarket Tambah");
    let owner = token(&relay, &tenant, "owner");
    let analyst = token(&relay, &tenant, "analyst");
    let path = format!("/v1/stores/{store}/invites");

    let (status, v) = api(
        &relay,
        &analyst,
        "POST",
        &path,
        Some(&json!({"till_code": "T2"})),
    );
    assert_eq!(status, 403, "an analyst invites nobody: {v}");
    let owner_code = a.ok(&["status"])["till_code"]
        .as_str()
        .expect("till_code")
        .to_owned();
    let (status, v) = api(
        &relay,
        &owner,
        "POST",
        &path,
        Some(&json!({"till_code": owner_code})),
    );
    assert_eq!(status, 409, "the owner's till code is taken: {v}");
    for bad in [
        json!({"till_code": "T2", "role": "owner"}),
        json!({"till_code": "T 2"}),
        json!({"till_code": ""}),
        json!({"code": "T2"}),
    ] {
        let (status, v) = api(&relay, &owner, "POST", &path, Some(&bad));
        assert_eq!(status, 400, "{bad}: {v}");
    }
    let other = relay.tenant("PT Lain");
    let other_owner = token(&relay, &other, "owner");
    let (status, v) = api(
        &relay,
        &other_owner,
        "POST",
        &path,
        Some(&json!({"till_code": "T2"})),
    );
    assert_eq!(
        status, 404,
        "another tenant's store does not exist for it: {v}"
    );

    let (status, v) = api(
        &relay,
        &owner,
        "POST",
        &path,
        Some(&json!({"till_code": "T2"})),
    );
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["store_id"], store.as_str());
    assert_eq!(v["till_code"], "T2");
    assert_eq!(v["role"], "till");
    let ticket = v["ticket"].as_str().expect("ticket").to_owned();

    // The new tablet joins through the relay: till T2, with the store's documents.
    let b = Till::empty();
    let joined = b.ok(&["join", &ticket]);
    assert_eq!(joined["store_id"], store.as_str(), "{joined}");
    assert_eq!(joined["till_code"], "T2", "{joined}");
    assert_eq!(joined["role"], "till", "{joined}");
    assert_eq!(b.ok(&["store", "show"])["name"], "Minimarket Tambah");

    // Used once.
    let c = Till::empty();
    let out = std::process::Command::new(kasir_bin())
        .arg("--data")
        .arg(c.path())
        .args(["join", &ticket])
        .output()
        .expect("kasir join");
    assert!(
        !out.status.success(),
        "a used ticket admitted a second tablet"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already used"), "{err}");

    // T2 is taken now; a manager's invite for another code is fine.
    let (status, v) = api(
        &relay,
        &owner,
        "POST",
        &path,
        Some(&json!({"till_code": "T2"})),
    );
    assert_eq!(status, 409, "{v}");
    let (status, v) = api(
        &relay,
        &owner,
        "POST",
        &path,
        Some(&json!({"till_code": "MGR", "role": "manager"})),
    );
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["role"], "manager");
}
