//! A real headless Chromium for the till app's tests: Debian's `chromium` driven through
//! `chromedriver` (W3C WebDriver, with `fantoccini`), each browser with a fresh profile.
//! The tests are synchronous; this wraps the async client in its own runtime.
//!
//! A missing `chromedriver` fails the test (`scripts/test` installs `chromium
//! chromium-driver`): nothing is skipped. Screenshots go to the directory the test names
//! (its `CARGO_TARGET_TMPDIR/ui-shots`), one PNG per screen and window size, so a
//! developer can open them.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::free_port;

/// Where Debian puts the driver.
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// Where Debian puts the browser.
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// Window sizes a cashier's device has: a phone, a tablet standing up, a laptop.
pub const SIZES: [(u32, u32); 3] = [(360, 640), (800, 1280), (1366, 768)];

/// One headless Chromium session.
pub struct Browser {
    rt: tokio::runtime::Runtime,
    client: Option<Client>,
    driver: Child,
    shots: PathBuf,
    name: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a browser; screenshots of test `name` go to `shots`.
    pub fn start(name: &str, shots: &Path) -> Browser {
        assert!(
            Path::new(CHROMEDRIVER).exists() && Path::new(CHROMIUM).exists(),
            "{CHROMEDRIVER} or {CHROMIUM} is missing: run scripts/test (it installs chromium and chromium-driver)"
        );
        std::fs::create_dir_all(shots).expect("screenshot dir");
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let profile = tempfile::tempdir().expect("profile dir");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let caps = json!({
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--disable-quic",
                    "--hide-scrollbars", "--lang=id-ID",
                    format!("--user-data-dir={}", profile.path().display()),
                    "--window-size=1366,768",
                ]
            }
        });
        let caps = match caps {
            Value::Object(m) => m,
            _ => unreachable!("a JSON object"),
        };
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            let attempt = rt.block_on(
                ClientBuilder::new(connector)
                    .capabilities(caps.clone())
                    .connect(&url),
            );
            match attempt {
                Ok(c) => break c,
                Err(e) if Instant::now() > deadline => panic!("chromedriver on {url}: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        };
        Browser {
            rt,
            client: Some(client),
            driver,
            shots: shots.to_owned(),
            name: name.to_owned(),
            _profile: profile,
        }
    }

    fn client(&self) -> &Client {
        self.client.as_ref().expect("browser session")
    }

    /// Opens `url`.
    pub fn goto(&self, url: &str) {
        self.rt
            .block_on(self.client().goto(url))
            .unwrap_or_else(|e| panic!("goto {url}: {e}"));
    }

    /// The element matching `css`, waited for up to 10 s.
    pub fn find(&self, css: &str) -> Element {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.rt.block_on(self.client().find(Locator::Css(css))) {
                Ok(e) => return e,
                Err(e) if Instant::now() > deadline => {
                    let url = self.rt.block_on(self.client().current_url()).ok();
                    panic!("no element {css} on {url:?}: {e}")
                }
                Err(_) => std::thread::sleep(Duration::from_millis(25)),
            }
        }
    }

    /// Runs `act` on the element matching `css`, again on a fresh lookup when htmx
    /// swapped the element out in between (a stale reference), for up to 10 s.
    fn on<T>(
        &self,
        css: &str,
        what: &str,
        act: impl Fn(
            Element,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<T, fantoccini::error::CmdError>>>,
        >,
    ) -> T {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let e = self.find(css);
            match self.rt.block_on(act(e)) {
                Ok(v) => return v,
                Err(err) if Instant::now() > deadline => panic!("{what} {css}: {err}"),
                Err(_) => std::thread::sleep(Duration::from_millis(25)),
            }
        }
    }

    /// Clicks the element matching `css`.
    pub fn click(&self, css: &str) {
        self.on(css, "click", |e| Box::pin(async move { e.click().await }));
    }

    /// Clicks the element matching `css` (a plain form's submit button or a link) and
    /// waits for the page it leads to: until then the old page, and any notice on it,
    /// is still there to be read.
    pub fn click_and_load(&self, css: &str) {
        self.execute("window.__kasirLeaving = true; return null");
        self.click(css);
        self.wait_until(&format!("the page after {css}"), |b| {
            let fresh = b.rt.block_on(b.client().execute(
                "return document.readyState === 'complete' && !window.__kasirLeaving",
                Vec::new(),
            ));
            matches!(fresh, Ok(Value::Bool(true)))
        });
    }

    /// Types `text` into the element matching `css` as a keyboard (or a scanner) does.
    pub fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css);
        self.rt
            .block_on(e.send_keys(text))
            .unwrap_or_else(|err| panic!("type into {css}: {err}"));
    }

    /// Taps `name` and `pin` into the till app's login at `base`, as a cashier does, and
    /// sends it (right or wrong).
    pub fn enter_pin(&self, base: &str, name: &str, pin: &str) {
        self.goto(&format!("{base}/ui/masuk"));
        self.click(&format!("input[name=name][value='{name}']"));
        for digit in pin.chars() {
            self.click(&format!("button[data-pin-key='{digit}']"));
        }
        self.click("#login-submit");
    }

    /// Logs `name` in with the right `pin` ([`Browser::enter_pin`]) and waits for the page
    /// after the login (so a `goto` next is not overtaken by it).
    pub fn log_in(&self, base: &str, name: &str, pin: &str) {
        self.enter_pin(base, name, pin);
        self.wait_until(&format!("{name} logged in"), |b| b.path() != "/ui/masuk");
    }

    /// Buka Kasir with `opening_cash` on the shift page a login lands on, and waits for
    /// the sell page.
    pub fn open_shift(&self, opening_cash: &str) {
        self.type_into("#opening_cash", opening_cash);
        self.click("#open-shift");
        self.find("#scan");
    }

    /// The visible text of the element matching `css`.
    pub fn text(&self, css: &str) -> String {
        self.on(css, "text of", |e| Box::pin(async move { e.text().await }))
    }

    /// How many elements match `css` now.
    pub fn count(&self, css: &str) -> usize {
        self.rt
            .block_on(self.client().find_all(Locator::Css(css)))
            .map_or(0, |v| v.len())
    }

    /// Waits up to 10 s for `ready` to hold.
    pub fn wait_until(&self, what: &str, mut ready: impl FnMut(&Browser) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !ready(self) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// The page's path (`/ui/kasir`).
    pub fn path(&self) -> String {
        self.rt
            .block_on(self.client().current_url())
            .map(|u| u.path().to_owned())
            .unwrap_or_default()
    }

    /// Runs `script` in the page; returns its value.
    pub fn execute(&self, script: &str) -> Value {
        self.rt
            .block_on(self.client().execute(script, Vec::new()))
            .unwrap_or_else(|e| panic!("script {script:?}: {e}"))
    }

    /// JavaScript errors the page collected (`window.__kasirErrors`, set by `kasir.js`).
    pub fn js_errors(&self) -> Vec<String> {
        match self.execute("return window.__kasirErrors || ['kasir.js did not run']") {
            Value::Array(v) => v.into_iter().map(|e| e.to_string()).collect(),
            other => vec![format!("unexpected {other}")],
        }
    }

    /// Slows the page's CPU `rate` times (Chrome DevTools' CPU throttling, through
    /// chromedriver's `goog/cdp/execute`): a cheap tablet on a fast machine.
    pub fn throttle_cpu(&self, rate: f64) {
        let cmd = Cdp {
            cmd: "Emulation.setCPUThrottlingRate",
            params: json!({ "rate": rate }),
        };
        self.rt
            .block_on(self.client().issue_cmd(cmd))
            .unwrap_or_else(|e| panic!("CPU throttling: {e}"));
    }

    /// Resizes the window to `(width, height)`.
    pub fn resize(&self, (w, h): (u32, u32)) {
        self.rt
            .block_on(self.client().set_window_size(w, h))
            .unwrap_or_else(|e| panic!("resize to {w}x{h}: {e}"));
    }

    /// Saves a PNG of the page as `<test>-<screen>-<w>x<h>.png` at every size in
    /// [`SIZES`], then goes back to a laptop's window; returns the files.
    pub fn screenshots(&self, screen: &str) -> Vec<PathBuf> {
        let mut files = Vec::new();
        for size in SIZES {
            self.resize(size);
            std::thread::sleep(Duration::from_millis(150));
            let png = self
                .rt
                .block_on(self.client().screenshot())
                .unwrap_or_else(|e| panic!("screenshot: {e}"));
            let file = self
                .shots
                .join(format!("{}-{screen}-{}x{}.png", self.name, size.0, size.1));
            std::fs::write(&file, png).expect("write screenshot");
            files.push(file);
        }
        self.resize((1366, 768));
        files
    }
}

/// A Chrome DevTools command sent through chromedriver.
#[derive(Debug)]
struct Cdp {
    cmd: &'static str,
    params: Value,
}

impl fantoccini::wd::WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/goog/cdp/execute",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        let body = json!({ "cmd": self.cmd, "params": self.params });
        (http::Method::POST, Some(body.to_string()))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(c) = self.client.take() {
            let _ = self.rt.block_on(c.close());
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
