//! `kasir-relay`: the cloud hub (see `kasir_relay` for the parts).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use kasir_crdt::StoreId;
use kasir_relay::metrics::RelayMetrics;
use kasir_relay::{api, auth, db, net, publisher};
use kasir_sync::Identity;
use serde_json::{Value, json};
use sqlx::Row;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Kasir's cloud relay.
#[derive(Parser)]
#[command(
    name = "kasir-relay",
    version,
    about = "Kasir cloud relay: serves the stores' tills, materialises into PostgreSQL, publishes to Kafka"
)]
struct Cli {
    /// PostgreSQL URL.
    #[arg(long, env = "DATABASE_URL", global = true)]
    database_url: Option<String>,
    /// Kafka bootstrap brokers; enables the outbox publisher.
    #[arg(long, env = "KAFKA_BROKERS", global = true)]
    kafka_brokers: Option<String>,
    /// CA certificate (PEM) for Kafka over TLS; the brokers' certificates must chain to
    /// it and name the host.
    #[arg(long, env = "KAFKA_TLS_CA", global = true)]
    kafka_tls_ca: Option<PathBuf>,
    /// Client certificate (PEM) for brokers that require mutual TLS.
    #[arg(
        long,
        env = "KAFKA_TLS_CERT",
        global = true,
        requires = "kafka_tls_key"
    )]
    kafka_tls_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(
        long,
        env = "KAFKA_TLS_KEY",
        global = true,
        requires = "kafka_tls_cert"
    )]
    kafka_tls_key: Option<PathBuf>,
    /// Any other librdkafka setting, `KEY=VALUE` (repeatable), e.g. `sasl.mechanism=SCRAM-SHA-512`.
    #[arg(long = "kafka-option", global = true, value_parser = parse_kafka_option)]
    kafka_options: Vec<(String, String)>,
    /// Print JSON.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Applies the migrations.
    Migrate,
    /// Tenants.
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
    /// Stores.
    Store {
        #[command(subcommand)]
        command: StoreCommand,
    },
    /// Head-office users of the dashboard.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Webhooks that receive the tenant's alerts.
    Webhook {
        #[command(subcommand)]
        command: WebhookCommand,
    },
    /// Mints a head-office API token.
    Token {
        /// Tenant id.
        #[arg(long)]
        tenant: Uuid,
        /// owner or analyst.
        #[arg(long)]
        role: String,
        /// Validity in hours.
        #[arg(long, default_value_t = 24 * 30)]
        ttl_hours: u64,
    },
    /// Runs the relay daemon.
    Run {
        /// Sync endpoint address.
        #[arg(long, default_value = "0.0.0.0:7420")]
        listen: SocketAddr,
        /// Head-office HTTP API address.
        #[arg(long, default_value = "127.0.0.1:7480")]
        http: SocketAddr,
        /// Address tills should dial (`host:port`), when the listen address is not it.
        #[arg(long)]
        advertise: Vec<String>,
        /// Serve the HTTP API over TLS with this PEM certificate chain (with `--tls-key`).
        #[arg(long, env = "KASIR_RELAY_TLS_CERT", requires = "tls_key")]
        tls_cert: Option<std::path::PathBuf>,
        /// The PEM private key of `--tls-cert`.
        #[arg(long, env = "KASIR_RELAY_TLS_KEY", requires = "tls_cert")]
        tls_key: Option<std::path::PathBuf>,
    },
    /// Endpoint id, stores and lag.
    Status,
    /// Re-materialises a store's tables (sales, lines, stock, products, customers...)
    /// from its documents in PostgreSQL: for a lost, truncated or damaged table.
    Rebuild {
        /// The store.
        #[arg(long)]
        store: Uuid,
    },
}

#[derive(Subcommand)]
enum WebhookCommand {
    /// Sends every alert of the tenant to URL as JSON, signed with SECRET
    /// (`X-Kasir-Signature: sha256=<hex HMAC-SHA256 of the body>`).
    Add {
        /// Tenant id.
        #[arg(long)]
        tenant: Uuid,
        /// Where to POST (http:// or https://).
        #[arg(long)]
        url: String,
        /// The signing secret (at least 16 characters).
        #[arg(long)]
        secret: String,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Adds a user who logs in to the dashboard with an e-mail address and a password.
    Add {
        /// Tenant id.
        #[arg(long)]
        tenant: Uuid,
        /// E-mail address (the login).
        #[arg(long)]
        email: String,
        /// Password (at least 10 characters).
        #[arg(long)]
        password: String,
        /// owner (reads and changes) or analyst (reads).
        #[arg(long)]
        role: String,
    },
}

#[derive(Subcommand)]
enum TenantCommand {
    /// Creates a tenant.
    Create {
        /// Its name.
        #[arg(long)]
        name: String,
    },
}

#[derive(Subcommand)]
enum StoreCommand {
    /// Creates a store served by this relay; prints a `kasir join` ticket for its first till.
    Create {
        /// Tenant id.
        #[arg(long)]
        tenant: Uuid,
        /// Store name.
        #[arg(long)]
        name: String,
        /// Relay address for the ticket (default: running instances' addresses).
        #[arg(long)]
        addr: Vec<String>,
    },
    /// Takes over a store that began on a till; prints the ticket to give `kasir join` there.
    Adopt {
        /// Tenant id.
        #[arg(long)]
        tenant: Uuid,
        /// The store id (`kasir status` on the till shows it).
        #[arg(long)]
        store_id: Uuid,
        /// Store name for head office.
        #[arg(long)]
        name: Option<String>,
        /// Relay address for the ticket (default: running instances' addresses).
        #[arg(long)]
        addr: Vec<String>,
    },
}

/// `KEY=VALUE` for `--kafka-option`.
fn parse_kafka_option(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.to_owned())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

fn print(json_out: bool, value: &Value, text: impl FnOnce() -> String) {
    if json_out {
        println!("{value}");
    } else {
        println!("{}", text());
    }
}

async fn pool(cli: &Cli) -> Result<sqlx::PgPool> {
    let Some(url) = &cli.database_url else {
        bail!("no database: pass --database-url or set DATABASE_URL");
    };
    db::connect(url)
        .await
        .with_context(|| "cannot connect to PostgreSQL")
}

async fn relay_addrs(pool: &sqlx::PgPool, given: &[String]) -> Result<Vec<String>> {
    for a in given {
        a.parse::<SocketAddr>()
            .with_context(|| format!("{a} is not an ip:port address"))?;
    }
    if !given.is_empty() {
        return Ok(given.to_vec());
    }
    let addrs = db::instance_addrs(pool, Duration::from_secs(7 * 24 * 3600)).await?;
    if addrs.is_empty() {
        bail!(
            "no relay instance has run yet: start `kasir-relay run` first or pass --addr HOST:PORT"
        );
    }
    Ok(addrs)
}

fn main() {
    let cli = Cli::parse();
    let filter = std::env::var("KASIR_LOG").unwrap_or_else(|_| {
        if matches!(cli.command, Command::Run { .. }) {
            "info".into()
        } else {
            "warn".into()
        }
    });
    let logs = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr);
    // One JSON object per line for a log collector (`KASIR_LOG_FORMAT=json`); otherwise
    // text, coloured only on a terminal so logs kept in files stay greppable.
    if std::env::var("KASIR_LOG_FORMAT").is_ok_and(|f| f == "json") {
        logs.json().init();
    } else {
        logs.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init();
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = rt.block_on(run(cli)) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> Result<()> {
    match &cli.command {
        Command::Migrate => {
            let pool = pool(&cli).await?;
            db::migrate(&pool).await?;
            let identity = Identity::from_secret_bytes(db::identity(&pool).await?.secret_key);
            let adopted = net::adopt_legacy_history(&pool, &identity).await?;
            print(
                cli.json,
                &json!({"migrated": true, "adopted_changes": adopted}),
                || format!("migrated; {adopted} changes from before signatures adopted"),
            );
            Ok(())
        }
        Command::Tenant {
            command: TenantCommand::Create { name },
        } => {
            let pool = pool(&cli).await?;
            let id = db::create_tenant(&pool, name).await?;
            print(cli.json, &json!({"tenant_id": id}), || id.to_string());
            Ok(())
        }
        Command::User {
            command:
                UserCommand::Add {
                    tenant,
                    email,
                    password,
                    role,
                },
        } => {
            let role: auth::ApiRole = role.parse()?;
            let pool = pool(&cli).await?;
            let id = kasir_relay::users::add(&pool, *tenant, email, password, role).await?;
            print(cli.json, &json!({"user_id": id}), || id.to_string());
            Ok(())
        }
        Command::Webhook {
            command:
                WebhookCommand::Add {
                    tenant,
                    url,
                    secret,
                },
        } => {
            let pool = pool(&cli).await?;
            let id = kasir_relay::alerts::add_webhook(&pool, *tenant, url, secret).await?;
            print(cli.json, &json!({"webhook_id": id}), || id.to_string());
            Ok(())
        }
        Command::Store { command } => {
            let pool = pool(&cli).await?;
            let identity = Identity::from_secret_bytes(db::identity(&pool).await?.secret_key);
            match command {
                StoreCommand::Create { tenant, name, addr } => {
                    let addrs = relay_addrs(&pool, addr).await?;
                    let (store, ticket) =
                        net::create_store(&pool, &identity, addrs, *tenant, name).await?;
                    print(
                        cli.json,
                        &json!({"store_id": store.to_string(), "ticket": ticket}),
                        || {
                            format!(
                                "store {store}\nticket for its first till (kasir join):\n{ticket}"
                            )
                        },
                    );
                }
                StoreCommand::Adopt {
                    tenant,
                    store_id,
                    name,
                    addr,
                } => {
                    let addrs = relay_addrs(&pool, addr).await?;
                    let store = StoreId(*store_id);
                    let ticket = net::adopt_store(
                        &pool,
                        identity.device_id(),
                        addrs,
                        *tenant,
                        store,
                        name.as_deref(),
                    )
                    .await?;
                    print(
                        cli.json,
                        &json!({"store_id": store.to_string(), "ticket": ticket}),
                        || {
                            format!(
                                "on an owner or manager till of store {store}, run:\nkasir join {ticket}"
                            )
                        },
                    );
                }
            }
            Ok(())
        }
        Command::Token {
            tenant,
            role,
            ttl_hours,
        } => {
            let role: auth::ApiRole = role.parse()?;
            let pool = pool(&cli).await?;
            let exists: Option<Uuid> =
                sqlx::query_scalar("SELECT tenant_id FROM tenants WHERE tenant_id = $1")
                    .bind(tenant)
                    .fetch_optional(&pool)
                    .await?;
            if exists.is_none() {
                bail!("no tenant {tenant}");
            }
            let secret = db::identity(&pool).await?.jwt_secret;
            let token = auth::mint(
                &secret,
                *tenant,
                role,
                Duration::from_secs(ttl_hours.saturating_mul(3600)),
            )?;
            print(cli.json, &json!({"token": token}), || token.clone());
            Ok(())
        }
        Command::Rebuild { store } => {
            let pool = pool(&cli).await?;
            let store = StoreId(*store);
            let row = db::store(&pool, store)
                .await?
                .with_context(|| format!("store {store} is not served by this relay"))?;
            let signer = Identity::from_secret_bytes(db::identity(&pool).await?.secret_key);
            let chunks = db::chunks_after(&pool, store, 0).await?;
            let sigs = db::sigs(&pool, store, None).await?;
            let mut replica = kasir_relay::replica::StoreReplica::load(
                store,
                row.tenant,
                row.adopted_by,
                signer,
                chunks,
                sigs,
            );
            let writes = replica.all_records();
            let stats =
                kasir_relay::materialise::rebuild(&pool, row.tenant, store, &writes).await?;
            let out = json!({
                "store_id": store.to_string(),
                "docs": writes.len(),
                "sales": stats.sales,
                "movements": stats.movements,
                "refused": stats.refused,
            });
            print(cli.json, &out, || {
                format!(
                    "store {store} rebuilt from {} documents: {} sales, {} stock movements",
                    writes.len(),
                    stats.sales,
                    stats.movements
                )
            });
            Ok(())
        }
        Command::Status => {
            let pool = pool(&cli).await?;
            let status = status(&pool).await?;
            print(cli.json, &status, || {
                serde_json::to_string_pretty(&status).unwrap_or_default()
            });
            Ok(())
        }
        Command::Run {
            listen,
            http,
            advertise,
            tls_cert,
            tls_key,
        } => {
            let tls = match (tls_cert, tls_key) {
                (Some(cert), Some(key)) => Some(kasir_relay::tls::server_config(cert, key)?),
                _ => None,
            };
            serve(&cli, *listen, *http, advertise, tls).await
        }
    }
}

async fn status(pool: &sqlx::PgPool) -> Result<Value> {
    let identity = Identity::from_secret_bytes(db::identity(pool).await?.secret_key);
    let rows = sqlx::query(
        "SELECT s.store_id, s.tenant_id, s.name,
                (SELECT count(*) FROM sales x WHERE x.store_id = s.store_id) AS sales,
                (SELECT max(materialised_at) FROM sales x WHERE x.store_id = s.store_id) AS last_materialised
         FROM stores s ORDER BY s.created_at",
    )
    .fetch_all(pool)
    .await?;
    let mut stores = Vec::new();
    for r in rows {
        let last: Option<chrono::DateTime<chrono::Utc>> = r.try_get("last_materialised")?;
        stores.push(json!({
            "store_id": r.try_get::<Uuid, _>("store_id")?,
            "tenant_id": r.try_get::<Uuid, _>("tenant_id")?,
            "name": r.try_get::<String, _>("name")?,
            "sales": r.try_get::<i64, _>("sales")?,
            "last_materialised_at": last.map(|t| t.to_rfc3339()),
        }));
    }
    let outbox = sqlx::query(
        "SELECT count(*) AS pending,
                COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)::float8 AS oldest
         FROM outbox WHERE published_at IS NULL",
    )
    .fetch_one(pool)
    .await?;
    let instances = db::instance_addrs(pool, Duration::from_secs(60)).await?;
    let pending: i64 = outbox.try_get("pending")?;
    let oldest: f64 = outbox.try_get("oldest")?;
    Ok(json!({
        "endpoint_id": identity.device_id().to_string(),
        "stores": stores,
        "instances": instances,
        "outbox_pending": pending,
        "outbox_oldest_pending_s": oldest,
        "lag": {"outbox_pending": pending, "outbox_oldest_pending_s": oldest},
    }))
}

async fn serve(
    cli: &Cli,
    listen: SocketAddr,
    http: SocketAddr,
    advertise: &[String],
    tls: Option<Arc<rustls::ServerConfig>>,
) -> Result<()> {
    let pool = pool(cli).await?;
    db::migrate(&pool).await?;
    let identity = db::identity(&pool).await?;
    // A database from before signed changes is upgraded here if `migrate` did not.
    let adopted =
        net::adopt_legacy_history(&pool, &Identity::from_secret_bytes(identity.secret_key)).await?;
    if adopted > 0 {
        tracing::info!(adopted, "adopted history from before signed changes");
    }
    // KASIR_RELAY_IDLE_UNLOAD_S: how long an idle store stays in memory (tests shorten it).
    let idle = std::env::var("KASIR_RELAY_IDLE_UNLOAD_S")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(net::IDLE_UNLOAD, Duration::from_secs);
    // KASIR_RELAY_PARK_AFTER_S: how long a closed day's ledger stays in memory after its
    // last use (0: for ever; tests and the fleet bench shorten it).
    let park_after = match std::env::var("KASIR_RELAY_PARK_AFTER_S")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        Some(0) => None,
        Some(s) => Some(Duration::from_secs(s)),
        None => Some(net::PARK_AFTER),
    };
    let metrics = RelayMetrics::new();
    let relay = net::Relay::with_memory(
        pool.clone(),
        Identity::from_secret_bytes(identity.secret_key),
        metrics.clone(),
        idle,
        park_after,
    );
    let endpoint = relay.serve(identity.secret_key, listen).await?;
    let mut addrs: Vec<String> = advertise.to_vec();
    if addrs.is_empty() {
        for s in endpoint.bound_sockets() {
            let a = if s.ip().is_unspecified() {
                SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), s.port())
            } else {
                s
            };
            if a.is_ipv4() {
                addrs.push(a.to_string());
            }
        }
    }
    let instance = Uuid::now_v7();
    db::register_instance(&pool, instance, &addrs).await?;
    let cancel = CancellationToken::new();
    {
        let pool = pool.clone();
        let addrs = addrs.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(10)) => {}
                }
                if let Err(e) = db::register_instance(&pool, instance, &addrs).await {
                    tracing::debug!(error = %e, "instance heartbeat failed");
                }
            }
        });
    }
    // KASIR_RELAY_ALERT_EVERY_MS: how often alerts are looked for (tests shorten it).
    let alert_every = std::env::var("KASIR_RELAY_ALERT_EVERY_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(Duration::from_secs(60), Duration::from_millis);
    tokio::spawn(kasir_relay::alerts::watch(
        pool.clone(),
        kasir_relay::alerts::AlertOptions {
            every: alert_every,
            kafka: cli.kafka_brokers.is_some(),
            // KASIR_RELAY_SILENT_S: how long a till may go without syncing (tests shorten it).
            silent: std::env::var("KASIR_RELAY_SILENT_S")
                .ok()
                .and_then(|v| v.parse().ok())
                .map_or(Duration::from_secs(6 * 3600), Duration::from_secs),
        },
        cancel.clone(),
    ));
    tokio::spawn(kasir_relay::alerts::deliver(pool.clone(), cancel.clone()));
    if let Some(brokers) = &cli.kafka_brokers {
        let mut kafka = publisher::KafkaOptions::plain(brokers.clone());
        kafka.tls_ca = cli.kafka_tls_ca.clone();
        kafka.tls_cert = cli.kafka_tls_cert.clone();
        kafka.tls_key = cli.kafka_tls_key.clone();
        kafka.extra = cli.kafka_options.clone();
        let producer = publisher::producer(&kafka)?;
        tokio::spawn(publisher::run(
            pool.clone(),
            kafka,
            producer,
            metrics.clone(),
            cancel.clone(),
        ));
        tracing::info!(%brokers, tls = cli.kafka_tls_ca.is_some(), "publishing the outbox to Kafka");
    } else {
        tracing::info!("no KAFKA_BROKERS: events wait in the outbox");
    }
    let state = api::ApiState {
        pool: pool.clone(),
        jwt_secret: Arc::new(identity.jwt_secret.clone()),
        metrics,
        relay: Some(relay.clone()),
    };
    let listener = tokio::net::TcpListener::bind(http)
        .await
        .with_context(|| format!("cannot listen on {http}"))?;
    let http_addr = listener.local_addr()?;
    let endpoint_id = Identity::from_secret_bytes(identity.secret_key).device_id();
    tracing::info!(%endpoint_id, sync = ?addrs, http = %http_addr, "relay running");
    println!(
        "{}",
        json!({"endpoint_id": endpoint_id.to_string(), "sync_addrs": addrs, "http": http_addr.to_string(),
               "tls": tls.is_some()})
    );
    let shutdown = cancel.clone();
    let stopped = async move { shutdown.cancelled().await };
    let served = async {
        match tls {
            Some(config) => {
                let listener = kasir_relay::tls::TlsListener::bind(listener, config)?;
                axum::serve(listener, api::router(state))
                    .with_graceful_shutdown(stopped)
                    .await
            }
            None => {
                axum::serve(listener, api::router(state))
                    .with_graceful_shutdown(stopped)
                    .await
            }
        }
    };
    tokio::select! {
        r = served => r?,
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate() => {}
    }
    cancel.cancel();
    relay.shutdown();
    endpoint.close().await;
    Ok(())
}

async fn terminate() {
    #[cfg(unix)]
    {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
            return;
        }
    }
    std::future::pending::<()>().await;
}
