//! Helpers of the CLI's tests: the simulated QRIS acquirer on its own runtime, and a
//! sale's struk as `kasir receipt` prints it.
#![allow(dead_code)]

use std::path::Path;

use kasir_testkit::Till;
use serde_json::{Value, json};

/// The merchant's API key at the simulator.
pub(crate) const KEY: &str = "sk-test-merchant";
/// The callback secret.
pub(crate) const SECRET: &str = "whsec-test-0123456789";

/// A running simulator (`kasir_node::qris::sim`) and the runtime it runs on.
pub(crate) struct Sim {
    _rt: tokio::runtime::Runtime,
    pub(crate) sim: kasir_node::qris::sim::Simulator,
}

impl Sim {
    /// Starts one on a loopback port.
    pub(crate) fn start() -> Sim {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let sim = rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            kasir_node::qris::sim::start(listener, KEY, SECRET).expect("simulator")
        });
        Sim { _rt: rt, sim }
    }

    /// The customer's bank: `pay`, `fail`, `expire`, or `callback` (send it again).
    pub(crate) fn act(&self, charge: &str, action: &str, callback: bool) -> Value {
        ureq::post(&format!(
            "{}/sim/charges/{charge}/{action}?callback={callback}",
            self.sim.url()
        ))
        .send_empty()
        .expect("sim control")
        .body_mut()
        .read_json()
        .expect("sim json")
    }
}

impl Sim {
    /// Writes `qris.json` into a till's data directory: this simulator, callbacks to
    /// `base` (the till's daemon).
    pub(crate) fn configure(&self, data: &Path, base: &str) {
        std::fs::write(
            data.join("qris.json"),
            json!({"url": self.sim.url(), "key": KEY, "callback_secret": SECRET,
                   "callback_url": format!("{base}/v1/qris/callback")})
            .to_string(),
        )
        .expect("qris.json");
    }

    /// Every charge the simulator made.
    pub(crate) fn charges(&self) -> Vec<Value> {
        ureq::get(&format!("{}/sim/charges", self.sim.url()))
            .call()
            .expect("sim charges")
            .body_mut()
            .read_json()
            .expect("sim json")
    }
}

/// The struk of `sale` (its `sale_id`) as `kasir receipt` prints it.
pub(crate) fn receipt(till: &Till, sale: &Value) -> String {
    let out = till.run(&["receipt", sale["sale_id"].as_str().expect("sale id")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
