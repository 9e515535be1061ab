//! Role checks on the local command line, and invites that really are one-time: a plain
//! till cannot revoke or invite (a patched binary would gain nothing either: its peers
//! refuse such changes, see `relay/tests/trust_hostile_member.rs`), and a cancelled
//! ticket admits no one.

use kasir_testkit::Till;

#[test]
fn a_till_cannot_revoke_or_invite_and_a_cancelled_ticket_admits_no_one() {
    let mut owner = Till::init_named("Warung Peran", "A1");
    owner.start(&[]);
    let till = Till::empty();
    owner.admit(&till);

    // The plain till, on its own data directory, is refused locally.
    let err = till.fails(&["revoke", &owner.endpoint_id()]);
    assert!(err.contains("owner or manager"), "{err}");
    let err = till.fails(&["invite"]);
    assert!(err.contains("owner or manager"), "{err}");

    // The owner cancels an unused ticket: nobody joins with it.
    let (status, v) = owner.post("/v1/invites", &serde_json::json!({}));
    assert_eq!(status, 201, "{v}");
    let ticket = v["ticket"].as_str().expect("ticket").to_owned();
    let cancelled = owner.ok(&["invite", "cancel", &ticket]);
    assert_eq!(cancelled["ok"], true, "{cancelled}");
    let late = Till::empty();
    let err = late.fails(&["join", &ticket]);
    assert!(err.contains("expired") || err.contains("refused"), "{err}");

    // An unused ticket still works, once.
    let (_, v) = owner.post("/v1/invites", &serde_json::json!({}));
    let ticket = v["ticket"].as_str().expect("ticket").to_owned();
    let first = Till::empty();
    first.ok(&["join", &ticket]);
    let second = Till::empty();
    let err = second.fails(&["join", &ticket]);
    assert!(err.contains("used") || err.contains("refused"), "{err}");
    let (_, devices) = owner.get("/v1/devices");
    assert_eq!(
        devices["devices"].as_array().map(Vec::len),
        Some(3),
        "owner, the till and the one redeemer: {devices}"
    );
}
