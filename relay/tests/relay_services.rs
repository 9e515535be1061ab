//! The test services themselves: tansu and PostgreSQL start, answer, pause and restart
//! the way the relay's other tests rely on.

mod support;

use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::Tansu;

/// What `tansu topic ...` did: its exit status was success, and what it printed.
#[derive(Debug, PartialEq)]
struct TopicOutput {
    ok: bool,
    stdout: String,
}

/// Runs `tansu topic ARGS --broker tcp://BROKERS`; `None` if it took longer than `limit`.
fn tansu_topic(tansu: &Tansu, args: &[&str], limit: Duration) -> Option<TopicOutput> {
    let mut child = Command::new(support::tansu_binary())
        .arg("topic")
        .args(args)
        .arg("--broker")
        .arg(format!("tcp://{}", tansu.brokers()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn tansu topic");
    let deadline = Instant::now() + limit;
    loop {
        if child.try_wait().expect("try_wait").is_some() {
            let out = child.wait_with_output().expect("output");
            return Some(TopicOutput {
                ok: out.status.success(),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            });
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The topic names `tansu topic list` printed.
fn topics(tansu: &Tansu, limit: Duration) -> Option<Vec<String>> {
    let out = tansu_topic(tansu, &["list"], limit)?;
    assert!(out.ok, "tansu topic list failed:\n{}", tansu.log());
    let value: serde_json::Value = serde_json::from_str(&out.stdout).expect("topic list is JSON");
    let names = value
        .as_array()
        .expect("topic list is a JSON array")
        .iter()
        .filter_map(|t| t["name"].as_str().map(str::to_owned))
        .collect();
    Some(names)
}

#[test]
fn tansu_serves_kafka_and_pause_keeps_topics() {
    let mut tansu = Tansu::start();
    assert_eq!(tansu.brokers(), format!("127.0.0.1:{}", tansu.port()));
    TcpStream::connect(tansu.brokers()).expect("broker port accepts connections");

    let long = Duration::from_secs(20);
    let create = ["create", "kasir.test", "--partitions", "2"];
    let created = tansu_topic(&tansu, &create, long).expect("create topic in time");
    assert!(created.ok, "create topic failed:\n{}", tansu.log());
    assert_eq!(topics(&tansu, long), Some(vec!["kasir.test".to_owned()]));
    let again = tansu_topic(&tansu, &create, long).expect("create again in time");
    assert!(!again.ok, "creating an existing topic must fail");

    // Paused: requests hang. Resumed: the topic is still there.
    tansu.pause();
    assert!(tansu.is_paused());
    assert_eq!(
        topics(&tansu, Duration::from_secs(2)),
        None,
        "a paused broker must not answer"
    );
    tansu.resume();
    assert_eq!(
        topics(&tansu, long),
        Some(vec!["kasir.test".to_owned()]),
        "a resumed broker keeps its topics"
    );

    // Stopped and started again: same port, memory storage forgot the topic.
    let port = tansu.port();
    tansu.stop();
    assert!(
        TcpStream::connect(tansu.brokers()).is_err(),
        "stopped broker still listens"
    );
    tansu.start_again();
    assert_eq!(tansu.port(), port);
    assert_eq!(
        topics(&tansu, long),
        Some(vec![]),
        "memory storage forgets topics when the broker stops"
    );
}

#[test]
fn shared_postgres_hands_out_separate_databases() {
    let a = support::fresh_database("Services A");
    let b = support::fresh_database("Services A");
    assert_ne!(a, b);
    let cluster = support::postgres();
    let prefix = format!("postgres://postgres@127.0.0.1:{}/", cluster.port());
    assert!(a.starts_with(&prefix), "{a}");
    let name_a = a.strip_prefix(&prefix).expect("prefix");
    assert!(name_a.starts_with("services_a_"), "{name_a}");

    TcpStream::connect(("127.0.0.1", cluster.port())).expect("postgres port accepts connections");

    // Through the psql client and the database URL, as any client would connect.
    let out = Command::new("psql")
        .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
        .arg(&a)
        .args(["-c", "select 1", "-c", "select current_database()"])
        .stdin(Stdio::null())
        .output()
        .expect("run psql");
    assert!(
        out.status.success(),
        "psql: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("1\n{name_a}\n")
    );

    // The databases are separate.
    let name_b = b.strip_prefix(&prefix).expect("prefix");
    cluster
        .psql(name_a, "CREATE TABLE only_in_a (x int)")
        .expect("create table");
    let in_b = cluster
        .psql(
            name_b,
            "SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'",
        )
        .expect("query b");
    assert_eq!(in_b, "0\n");
}

#[test]
fn private_postgres_restarts_on_its_port() {
    let mut pg = support::private_postgres();
    let url = pg
        .cluster
        .create_database("fault")
        .expect("create database");
    pg.cluster
        .psql("fault", "CREATE TABLE t (x int); INSERT INTO t VALUES (7)")
        .expect("write");
    pg.cluster.restart().expect("restart");
    assert_eq!(url, pg.cluster.url("fault"), "URL survives a restart");
    assert_eq!(
        pg.cluster.psql("fault", "SELECT x FROM t").expect("read"),
        "7\n"
    );
    assert!(pg.dir().join("data/PG_VERSION").exists());
}
