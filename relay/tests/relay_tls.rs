//! TLS on the relay's connections, with certificates from a test CA made by the real
//! `openssl`:
//! - to PostgreSQL when `DATABASE_URL` asks (`sslmode=verify-full&sslrootcert=CA`):
//!   against a real cluster with `ssl = on`, a till's sale reaches PostgreSQL through
//!   connections PostgreSQL reports as TLS, and a relay given another CA does not
//!   connect at all (the certificate is verified, not only used);
//! - on its HTTP API (`--tls-cert`, `--tls-key`): real `curl` trusting the CA gets
//!   `/v1/health` over HTTPS, one trusting another CA is refused, and plain HTTP on the
//!   port gets no answer.

mod support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Command;

use kasir_testkit::tls::certificates;
use serde_json::json;
use support::{RelayProc, Till, pg_sales, private_postgres, relay_bin, runtime, wait_for};

fn curl(args: &[&str]) -> (bool, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .args(args)
        .output()
        .expect("curl (Debian: curl)");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn relay_tls_to_postgres_and_on_the_http_api() {
    let rt = runtime();
    let mut pg = private_postgres();
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = certificates(dir.path());
    let data = pg.cluster.data_dir().to_owned();
    std::fs::copy(&certs.cert, data.join("server.crt")).expect("copy cert");
    std::fs::copy(&certs.key, data.join("server.key")).expect("copy key");
    // The server runs as the data directory's owner (`postgres` when the tests run as
    // root), which must own its key, unreadable to others.
    let owner = std::fs::metadata(&data).expect("data dir");
    for f in ["server.crt", "server.key"] {
        std::os::unix::fs::chown(data.join(f), Some(owner.uid()), Some(owner.gid()))
            .expect("chown");
    }
    std::fs::set_permissions(
        data.join("server.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .expect("chmod key");
    pg.cluster
        .psql("postgres", "ALTER SYSTEM SET ssl = on")
        .expect("ssl on");
    pg.cluster.restart().expect("restart with ssl");
    let db = pg.cluster.create_database("tls").expect("database");
    let trusting =
        |ca: &std::path::Path| format!("{db}?sslmode=verify-full&sslrootcert={}", ca.display());

    // Another CA: the relay does not connect.
    let out = Command::new(relay_bin())
        .args(["--json", "migrate"])
        .env("DATABASE_URL", trusting(&certs.other_ca))
        .output()
        .expect("kasir-relay");
    assert!(!out.status.success(), "connected trusting the wrong CA");
    let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(err.contains("certificate") || err.contains("tls"), "{err}");

    // The right CA: a sale through the relay over TLS, and the API on HTTPS.
    let cert = certs.cert.display().to_string();
    let key = certs.key.display().to_string();
    let relay = RelayProc::start_with(
        &trusting(&certs.ca),
        None,
        &[
            ("KASIR_RELAY_TLS_CERT", cert.as_str()),
            ("KASIR_RELAY_TLS_KEY", key.as_str()),
        ],
    );
    let tenant = relay.tenant("Warung Aman");
    let mut till = Till::init_named("Warung Aman", "T1");
    till.ok(&[
        "product", "add", "--sku", "TEH", "--name", "Teh", "--price", "4000", "--stock", "9",
    ]);
    let ticket = relay.adopt_ticket(&tenant, &till.store_id());
    assert_eq!(till.ok(&["join", &ticket])["adopted"], true);
    till.start(&[]);
    let (status, v) = till.post("/v1/sales", &json!({"lines": [{"sku": "TEH", "qty": 1}]}));
    assert_eq!(status, 201, "{v}");
    wait_for(120, "the sale in PostgreSQL", || {
        (pg_sales(&rt, &trusting(&certs.ca)) == 1).then_some(())
    });
    let seen = pg
        .cluster
        .psql(
            "postgres",
            "SELECT count(*) || ' ' || count(*) FILTER (WHERE s.ssl)
               FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
              WHERE a.datname = 'tls'",
        )
        .expect("pg_stat_ssl");
    let (all, tls) = seen.trim().split_once(' ').expect("two counts");
    assert!(all.parse::<i64>().expect("count") >= 1, "{seen}");
    assert_eq!(
        all, tls,
        "every connection to the relay's database is TLS: {seen}"
    );

    let https = relay.http_url().replace("http://", "https://");
    let ca = certs.ca.display().to_string();
    let (ok, body) = curl(&["--cacert", &ca, &format!("{https}/v1/health")]);
    assert!(ok && body.contains("ok"), "{body}");
    let other = certs.other_ca.display().to_string();
    let (ok, body) = curl(&["--cacert", &other, &format!("{https}/v1/health")]);
    assert!(!ok, "trusted with another CA: {body}");
    let (ok, body) = curl(&[&format!("{}/v1/health", relay.http_url())]);
    assert!(!ok || !body.contains("ok"), "plain HTTP answered: {body}");
}
