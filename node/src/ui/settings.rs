//! Pengaturan, for managers and owners: the store's profile and tax, this till's printer
//! and a test page, users and their PINs, and the store's devices (an invite shown as a
//! QR code for the new till to scan, an invite cancelled, a device revoked).
//!
//! Every write goes through the API's own operation (`SetProfile`, `AddUser`, `SetPin`,
//! `DisableUser`, `Invite`, `CancelInvite`, `Revoke`) for the logged-in user, so the
//! permission table and the audit trail are the API's; a cashier who opens the address
//! is refused by those, not only by the missing link. The printer is this till's own
//! setting (`printer.json`), checked by [`PrinterConfig::save`] and applied at once by
//! starting a new print queue.

use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use kasir_crdt::store::{StoreProfile, UserRole};
use maud::{Markup, PreEscaped, html};
use serde::Deserialize;

use super::{
    Lang, Msg, Nav, UiUser, bar, call, fail, html_response, lang, page, problem, run_op, t,
};
use crate::NodeError;
use crate::api::{
    AddUser, AddUserRequest, CancelInvite, CancelInviteRequest, DeviceInfo, Devices, Empty, Invite,
    InviteRequest, Operation, Revoke, RevokeRequest, SetPin, SetPinRequest, SetProfile, UserRef,
};
use crate::http::AppState;
use crate::node::Node;
use crate::people::{Action, Principal, UserInfo};
use crate::print::PrinterConfig;
use crate::profile::{ProfileUpdate, TAX_CODES, tax_code};
use kasir_crdt::store::ScaleLabels;

/// Whether `who` may open the settings at all (each write is checked again by its
/// operation).
fn may_manage(who: &Principal) -> bool {
    who.role() >= UserRole::Manager
}

/// What the settings page shows, read in one go.
struct Facts {
    profile: StoreProfile,
    printer: Result<Option<PrinterConfig>, NodeError>,
    users: Vec<UserInfo>,
    devices: Vec<DeviceInfo>,
    me: String,
    user_id: Option<String>,
}

/// The store's devices as `GET /v1/devices` lists them.
fn roster(n: &mut Node) -> Result<Vec<DeviceInfo>, NodeError> {
    Ok(Devices::run(n, &crate::api::OpContext::default(), Empty {})?.devices)
}

fn facts(n: &mut Node, who: &Principal) -> Result<Facts, NodeError> {
    Ok(Facts {
        user_id: who.user_id().map(str::to_owned),
        profile: n.profile().clone(),
        printer: PrinterConfig::read(n.dir()),
        users: n.users(),
        devices: roster(n)?,
        me: n.device_id().to_string(),
    })
}

/// `GET /ui/pengaturan`.
pub(crate) async fn settings_page(
    State(state): State<AppState>,
    UiUser(who): UiUser,
    headers: HeaderMap,
) -> Response {
    let lang = lang(&headers);
    let allowed = may_manage(&who);
    let read = call(&state, move |n| {
        let bar = bar(n, Some(&who));
        Ok((bar, if allowed { Some(facts(n, &who)?) } else { None }))
    })
    .await;
    let (bar, facts) = match read {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let printing = state.printer().is_some();
    let body = match facts {
        None => html! {
            div.card.center { h1 { (t(Msg::Settings, lang)) } p.error { (t(Msg::ManagersOnly, lang)) } }
        },
        Some(f) => html! {
            div.settings {
                (profile_card(lang, &f.profile, None))
                (printer_card(lang, &f.printer, printing, None))
                (users_card(lang, &f.users, f.user_id.as_deref(), None))
                (devices_card(lang, &f.devices, &f.me, None, None))
            }
        },
    };
    let mut r = html_response(page(
        lang,
        t(Msg::Settings, lang),
        &bar,
        Nav::Settings,
        body,
    ));
    if !allowed {
        *r.status_mut() = StatusCode::FORBIDDEN;
    }
    r
}

/// A message under a card's form: `Ok` says what was done, `Err` why not.
fn note(lang: Lang, id: &str, message: Option<&Result<String, NodeError>>) -> Markup {
    html! {
        @match message {
            Some(Ok(done)) => p.toast id=(id) { "✓ " (done) },
            Some(Err(e)) => p.toast.error id=(id) role="alert" { (problem(lang, e)) },
            None => p id=(id) {},
        }
    }
}

fn profile_card(
    lang: Lang,
    p: &StoreProfile,
    message: Option<&Result<String, NodeError>>,
) -> Markup {
    let zone = p.zone_name();
    let tax = tax_code(&p.tax_rule).unwrap_or("none");
    html! {
        div.card id="profile-card" {
            h2 { (t(Msg::StoreProfile, lang)) }
            form.settings-form id="profile-form" hx-post="/ui/pengaturan/toko" hx-target="#profile-card" hx-swap="outerHTML" {
                label { (t(Msg::StoreName, lang)) input name="name" value=(p.name) maxlength="120" required; }
                label { (t(Msg::Address, lang)) input name="address" value=[p.address.as_deref()] maxlength="200"; }
                label { (t(Msg::Phone, lang)) input name="phone" value=[p.phone.as_deref()] inputmode="tel" maxlength="40"; }
                label { "NPWP / NITKU" input name="npwp" value=[p.npwp.as_deref()] inputmode="numeric" maxlength="30"; }
                label { "NPWPD" input name="npwpd" value=[p.npwpd.as_deref()] maxlength="40"; }
                label { (t(Msg::Zone, lang))
                    select name="zone" {
                        @for z in ["WIB", "WITA", "WIT"] { option value=(z) selected[z == zone] { (z) } }
                    }
                }
                label { (t(Msg::Tax, lang))
                    select name="tax" id="tax" {
                        @for code in TAX_CODES { option value=(code) selected[*code == tax] { (tax_label(lang, code)) } }
                    }
                }
                label.check { input type="checkbox" name="tax_exclusive" checked[!p.tax_rule.inclusive]; (t(Msg::TaxExclusive, lang)) }
                label { (t(Msg::ServiceCharge, lang)) " (%)" input name="service_percent" inputmode="numeric" value=(p.tax_rule.service_bp / 100); }
                label.check { input type="checkbox" name="service_taxed" checked[p.tax_rule.service_taxed]; (t(Msg::ServiceTaxed, lang)) }
                label { (t(Msg::PbjtFood, lang)) input name="pbjt_percent" inputmode="numeric" value=(p.pbjt_bp / 100); }
                label { (t(Msg::CashRoundingTo, lang))
                    select name="cash_rounding" {
                        @for unit in rounding_units(p.cash_rounding.unit) {
                            option value=(unit) selected[unit == p.cash_rounding.unit || (unit == 0 && p.cash_rounding.unit <= 1)] {
                                @if unit == 0 { (t(Msg::NoRounding, lang)) } @else { (super::rp(unit)) }
                            }
                        }
                    }
                }
                label.check { input type="checkbox" name="round_down" checked[p.cash_rounding.down]; (t(Msg::RoundDown, lang)) }
                label { (t(Msg::ReceiptHeader, lang)) input name="header" value=[p.receipt_header.as_deref()] maxlength="120"; }
                label { (t(Msg::ReceiptFooter, lang)) input name="footer" value=[p.receipt_footer.as_deref()] maxlength="120"; }
                label { (t(Msg::ScaleLabels, lang))
                    select name="scale_labels" {
                        option value="weight" selected[p.scale_labels == ScaleLabels::Weight] { (t(Msg::ScaleWeight, lang)) }
                        option value="price" selected[p.scale_labels == ScaleLabels::Price] { (t(Msg::ScalePrice, lang)) }
                    }
                }
                label { (t(Msg::DiscountApproval, lang)) " (%)" input name="discount_approval_percent" inputmode="numeric" value=(p.discount_approval_percent); }
                label { (t(Msg::DayCutoff, lang)) input name="day_cutoff_hour" inputmode="numeric" value=(p.day_cutoff_hour); }
                div.actions { button.primary type="submit" id="profile-save" { (t(Msg::Save, lang)) } }
                (note(lang, "profile-result", message))
            }
        }
    }
}

/// The rounding units offered: the coins in circulation (`CashRounding::UNITS`), and
/// the store's own unit when it is another (from before the rule), so the page shows it.
fn rounding_units(current: i64) -> Vec<i64> {
    let mut units = kasir_crdt::money::CashRounding::UNITS.to_vec();
    if current > 1 && !units.contains(&current) {
        units.push(current);
        units.sort_unstable();
    }
    units
}

fn tax_label(lang: Lang, code: &str) -> &'static str {
    match code {
        "ppn11" => "PPN 11%",
        "ppn12" => "PPN 12% (DPP 11/12)",
        "pbjt5" => "PBJT 5%",
        "pbjt10" => "PBJT 10%",
        _ => t(Msg::NoTax, lang),
    }
}

/// The settings form as typed: text fields and checkboxes (absent when unticked).
#[derive(Deserialize)]
pub(crate) struct ProfileForm {
    name: String,
    #[serde(default)]
    address: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    npwp: String,
    #[serde(default)]
    npwpd: String,
    #[serde(default)]
    service_taxed: Option<String>,
    #[serde(default)]
    pbjt_percent: String,
    #[serde(default)]
    day_cutoff_hour: String,
    zone: String,
    tax: String,
    #[serde(default)]
    tax_exclusive: Option<String>,
    #[serde(default)]
    service_percent: String,
    #[serde(default)]
    cash_rounding: String,
    #[serde(default)]
    round_down: Option<String>,
    #[serde(default)]
    header: String,
    #[serde(default)]
    footer: String,
    #[serde(default)]
    discount_approval_percent: String,
    #[serde(default)]
    scale_labels: String,
}

/// A whole number typed into a form (empty is 0).
fn number<T: std::str::FromStr + Default>(what: &str, text: &str) -> Result<T, NodeError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(T::default());
    }
    text.parse()
        .map_err(|_| NodeError::Invalid(format!("{what}: {text:?} is not a whole number")))
}

impl ProfileForm {
    fn update(self) -> Result<ProfileUpdate, NodeError> {
        Ok(ProfileUpdate {
            name: Some(self.name),
            address: Some(self.address),
            phone: Some(self.phone),
            npwp: Some(self.npwp),
            npwpd: Some(self.npwpd),
            service_taxed: Some(self.service_taxed.is_some()),
            pbjt_percent: Some(number("PBJT", &self.pbjt_percent)?),
            day_cutoff_hour: Some(number("business day", &self.day_cutoff_hour)?),
            zone: Some(self.zone),
            tax: Some(self.tax),
            tax_exclusive: Some(self.tax_exclusive.is_some()),
            service_percent: Some(number("service", &self.service_percent)?),
            cash_rounding: Some(number("rounding", &self.cash_rounding)?),
            round_down: Some(self.round_down.is_some()),
            header: Some(self.header),
            footer: Some(self.footer),
            discount_approval_percent: Some(number(
                "discount approval",
                &self.discount_approval_percent,
            )?),
            scale_labels: Some(self.scale_labels).filter(|s| !s.is_empty()),
            ..ProfileUpdate::default()
        })
    }
}

/// `POST /ui/pengaturan/toko`: the profile through `SetProfile`.
pub(crate) async fn save_profile(
    State(state): State<AppState>,
    UiUser(who): UiUser,
    headers: HeaderMap,
    Form(form): Form<ProfileForm>,
) -> Response {
    let lang = lang(&headers);
    let saved = call(&state, move |n| {
        let outcome = form
            .update()
            .and_then(|u| run_op::<SetProfile>(n, &who, u))
            .map(|_| t(Msg::Saved, lang).to_owned());
        Ok((n.profile().clone(), outcome))
    })
    .await;
    match saved {
        Ok((profile, outcome)) => html_response(profile_card(lang, &profile, Some(&outcome))),
        Err(e) => fail(e),
    }
}

fn printer_card(
    lang: Lang,
    config: &Result<Option<PrinterConfig>, NodeError>,
    running: bool,
    message: Option<&Result<String, NodeError>>,
) -> Markup {
    let current = config.as_ref().ok().and_then(Option::as_ref);
    let profile = current.and_then(|c| c.profile.as_deref()).unwrap_or("58");
    html! {
        div.card id="printer-card" {
            h2 { (t(Msg::Printer, lang)) }
            @match config {
                Err(e) => p.toast.error { (e.to_string()) },
                Ok(None) => p.hint { (t(Msg::NoPrinter, lang)) },
                Ok(Some(c)) => p.hint { (c.uri) " · " (profile) " mm" },
            }
            form.settings-form id="printer-form" hx-post="/ui/pengaturan/printer" hx-target="#printer-card" hx-swap="outerHTML" {
                label { (t(Msg::PrinterAddress, lang))
                    input name="uri" value=[current.map(|c| c.uri.as_str())] placeholder="tcp://192.168.1.50:9100" autocomplete="off";
                }
                label { (t(Msg::PaperWidth, lang))
                    select name="profile" {
                        @for (code, label) in [("58", "58 mm (32)"), ("58b", "58 mm (42)"), ("80", "80 mm (48)"), ("80b", "80 mm (64)"), ("80-512", "80 mm (42)")] {
                            option value=(code) selected[code == profile] { (label) }
                        }
                    }
                }
                label.check { input type="checkbox" name="open_drawer" checked[current.is_some_and(|c| c.open_drawer)]; (t(Msg::DrawerOnPrinter, lang)) }
                div.actions {
                    button.primary type="submit" id="printer-save" { (t(Msg::Save, lang)) }
                    @if running {
                        button type="button" id="test-print" hx-post="/ui/pengaturan/printer/tes" hx-target="#printer" hx-swap="outerHTML" { (t(Msg::TestPrint, lang)) }
                    }
                }
                (note(lang, "printer-result", message))
                p id="printer" {}
            }
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct PrinterForm {
    #[serde(default)]
    uri: String,
    #[serde(default)]
    profile: String,
    #[serde(default)]
    open_drawer: Option<String>,
}

/// `POST /ui/pengaturan/printer`: writes `printer.json` and starts the new queue (an
/// empty address removes the printer).
pub(crate) async fn save_printer(
    State(state): State<AppState>,
    UiUser(who): UiUser,
    headers: HeaderMap,
    Form(form): Form<PrinterForm>,
) -> Response {
    let lang = lang(&headers);
    let saved = call(&state, move |n| {
        let outcome = (|| {
            n.authorize(&who, Action::EditSettings, None)?;
            let dir = n.dir().to_owned();
            let uri = form.uri.trim();
            if uri.is_empty() {
                PrinterConfig::remove(&dir)?;
                n.record_audit_detail(
                    "printer_change",
                    who.user_name(),
                    None,
                    None,
                    Some("removed"),
                )?;
                return Ok(None);
            }
            printer_reachable_from_the_web(uri)?;
            // Keep what the form does not show (QR payload, retries) from the file.
            let mut config = PrinterConfig::read(&dir).ok().flatten().unwrap_or_default();
            config.uri = uri.to_owned();
            config.profile = Some(form.profile.trim().to_owned()).filter(|p| !p.is_empty());
            config.open_drawer = form.open_drawer.is_some();
            let settings = config.save(&dir)?;
            n.record_audit_detail("printer_change", who.user_name(), None, None, Some(uri))?;
            Ok(Some(settings))
        })();
        Ok((PrinterConfig::read(n.dir()), outcome))
    })
    .await;
    match saved {
        Ok((config, outcome)) => {
            let outcome = outcome.map(|settings| {
                state.replace_printer(settings);
                t(Msg::Saved, lang).to_owned()
            });
            let running = state.printer().is_some();
            html_response(printer_card(lang, &config, running, Some(&outcome)))
        }
        Err(e) => fail(e),
    }
}

/// Refuses a printer address a page may not set: a `file://` printer must be a device
/// under `/dev` (`/dev/usb/lp0`), never a file — else a manager's PIN could have the
/// till overwrite its own database or a login script with receipt bytes. Any path stays
/// possible in `printer.json`, for whoever has the machine itself.
fn printer_reachable_from_the_web(uri: &str) -> Result<(), NodeError> {
    use std::os::unix::fs::FileTypeExt;
    let parsed: kasir_devices::transport::PrinterUri = uri.parse().map_err(NodeError::from)?;
    if let kasir_devices::transport::PrinterUri::File { path } = &parsed {
        let device = path.starts_with("/dev/")
            && !path
                .components()
                .any(|c| c == std::path::Component::ParentDir)
            && std::fs::metadata(path).is_ok_and(|m| m.file_type().is_char_device());
        if !device {
            return Err(NodeError::Invalid(format!(
                "{} is not a printer device under /dev (set other paths in printer.json)",
                path.display()
            )));
        }
    }
    Ok(())
}

/// `POST /ui/pengaturan/printer/tes`: a test page through the queue; the printer's
/// toast follows it.
pub(crate) async fn test_print(
    State(state): State<AppState>,
    UiUser(who): UiUser,
    headers: HeaderMap,
) -> Response {
    let lang = lang(&headers);
    if !may_manage(&who) {
        return StatusCode::FORBIDDEN.into_response();
    }
    match state.printer() {
        None => html_response(html! { p.toast.error id="printer" { (t(Msg::NoPrinter, lang)) } }),
        Some(q) => match q.test_page() {
            Ok(_) => html_response(super::pay::printer_toast(
                lang,
                &q,
                super::pay::Toast::Queued,
            )),
            Err(e) => html_response(html! { p.toast.error id="printer" { (problem(lang, &e)) } }),
        },
    }
}

fn role_label(lang: Lang, role: UserRole) -> &'static str {
    t(
        match role {
            UserRole::Cashier => Msg::RoleCashier,
            UserRole::Supervisor => Msg::RoleSupervisor,
            UserRole::Manager => Msg::RoleManager,
            UserRole::Owner => Msg::RoleOwner,
        },
        lang,
    )
}

fn pin_inputs(lang: Lang) -> Markup {
    html! {
        label { (t(Msg::Pin, lang)) " (4–12 " (t(Msg::Digits, lang)) ")"
            input name="pin" type="password" inputmode="numeric" autocomplete="new-password" minlength="4" maxlength="12" required;
        }
        label { (t(Msg::PinAgain, lang))
            input name="pin2" type="password" inputmode="numeric" autocomplete="new-password" minlength="4" maxlength="12" required;
        }
    }
}

fn users_card(
    lang: Lang,
    users: &[UserInfo],
    me: Option<&str>,
    message: Option<&Result<String, NodeError>>,
) -> Markup {
    html! {
        div.card id="users-card" {
            h2 { (t(Msg::Users, lang)) }
            (note(lang, "users-result", message))
            table.list id="users" {
                tr { th { (t(Msg::Name, lang)) } th { (t(Msg::Role, lang)) } th {} }
                @for u in users {
                    tr.user.inactive[!u.active] data-name=(u.name) {
                        td { (u.name) @if !u.active { br; small.error { (t(Msg::Inactive, lang)) } } }
                        td { (role_label(lang, u.role)) }
                        td {
                            @if u.active {
                                details {
                                    summary.btn { (t(Msg::ChangePin, lang)) }
                                    form.settings-form hx-post=(format!("/ui/pengaturan/pengguna/{}/pin", u.user_id)) hx-target="#users-card" hx-swap="outerHTML" {
                                        (pin_inputs(lang))
                                        button.primary type="submit" { (t(Msg::Save, lang)) }
                                    }
                                }
                                @if Some(u.user_id.as_str()) != me { details {
                                    summary.btn { (t(Msg::Disable, lang)) }
                                    button.danger hx-post=(format!("/ui/pengaturan/pengguna/{}/nonaktif", u.user_id)) hx-target="#users-card" hx-swap="outerHTML" {
                                        (t(Msg::DisableConfirm, lang)) " " (u.name)
                                    }
                                } }
                            }
                        }
                    }
                }
            }
            details.add-user {
                summary.btn.primary { (t(Msg::AddUser, lang)) }
                form.settings-form id="user-form" hx-post="/ui/pengaturan/pengguna" hx-target="#users-card" hx-swap="outerHTML" {
                    label { (t(Msg::Name, lang)) input name="name" maxlength="60" required autocomplete="off"; }
                    label { (t(Msg::Role, lang))
                        select name="role" {
                            @for r in [UserRole::Cashier, UserRole::Supervisor, UserRole::Manager, UserRole::Owner] {
                                option value=(r.as_str()) { (role_label(lang, r)) }
                            }
                        }
                    }
                    (pin_inputs(lang))
                    button.primary type="submit" id="user-save" { (t(Msg::AddUser, lang)) }
                }
            }
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct UserForm {
    name: String,
    role: String,
    pin: String,
    pin2: String,
}

#[derive(Deserialize)]
pub(crate) struct PinForm {
    pin: String,
    pin2: String,
}

/// The two PIN fields agree (a typo would lock the user out).
fn same_pins(lang: Lang, pin: &str, pin2: &str) -> Result<(), NodeError> {
    if pin == pin2 {
        Ok(())
    } else {
        Err(NodeError::Invalid(t(Msg::PinsDiffer, lang).to_owned()))
    }
}

/// Runs a user change and answers with the users card and what happened.
async fn user_change(
    state: AppState,
    headers: HeaderMap,
    who: Principal,
    change: impl FnOnce(&mut Node, &Principal, Lang) -> Result<String, NodeError> + Send + 'static,
) -> Response {
    let lang = lang(&headers);
    let me = who.user_id().map(str::to_owned);
    let done = call(&state, move |n| {
        let outcome = change(n, &who, lang);
        Ok((n.users(), outcome))
    })
    .await;
    match done {
        Ok((users, outcome)) => {
            html_response(users_card(lang, &users, me.as_deref(), Some(&outcome)))
        }
        Err(e) => fail(e),
    }
}

/// `POST /ui/pengaturan/pengguna`: a new user (`AddUser`).
pub(crate) async fn add_user(
    State(state): State<AppState>,
    UiUser(who): UiUser,
    headers: HeaderMap,
    Form(f): Form<UserForm>,
) -> Response {
    user_change(state, headers, who, move |n, who, lang| {
        same_pins(lang, &f.pin, &f.pin2)?;
        let role = f.role.parse::<UserRole>().map_err(NodeError::Invalid)?;
        let user = run_op::<AddUser>(
            n,
            who,
            AddUserRequest {
                name: f.name.trim().to_owned(),
                role,
                pin: f.pin,
            },
        )?;
        Ok(format!("{} {}", t(Msg::UserAdded, lang), user.name))
    })
    .await
}

/// `POST /ui/pengaturan/pengguna/{user}/pin`: a new PIN (`SetPin`).
pub(crate) async fn set_pin(
    State(state): State<AppState>,
    UiUser(who): UiUser,
    headers: HeaderMap,
    Path(user_id): Path<String>,
    Form(f): Form<PinForm>,
) -> Response {
    user_change(state, headers, who, move |n, who, lang| {
        same_pins(lang, &f.pin, &f.pin2)?;
        run_op::<SetPin>(
            n,
            who,
            SetPinRequest {
                user_id,
                pin: f.pin,
            },
        )?;
        Ok(t(Msg::PinChanged, lang).to_owned())
    })
    .await
}

/// `POST /ui/pengaturan/pengguna/{user}/nonaktif`: the user may no longer log in
/// (`DisableUser`).
pub(crate) async fn disable_user(
    State(state): State<AppState>,
    UiUser(who): UiUser,
    headers: HeaderMap,
    Path(user_id): Path<String>,
) -> Response {
    user_change(state, headers, who, move |n, who, lang| {
        run_op::<crate::api::DisableUser>(n, who, UserRef { user_id })?;
        Ok(t(Msg::UserDisabled, lang).to_owned())
    })
    .await
}

/// An invite just made: its ticket as text and as a QR code.
struct Ticket {
    text: String,
    qr: Option<String>,
}

/// The ticket as an SVG QR code (`None` if it were too long for one).
fn devices_card(
    lang: Lang,
    devices: &[DeviceInfo],
    me: &str,
    ticket: Option<&Ticket>,
    message: Option<&Result<String, NodeError>>,
) -> Markup {
    html! {
        div.card id="devices-card" {
            h2 { (t(Msg::Devices, lang)) }
            (note(lang, "devices-result", message))
            table.list id="devices" {
                tr { th { (t(Msg::Till, lang)) } th { (t(Msg::Role, lang)) } th { "ID" } th {} }
                @for d in devices {
                    tr.device.inactive[d.revoked] data-till=(d.till_code) {
                        td { (d.till_code) @if d.endpoint_id == me { " " small.badge { (t(Msg::ThisTill, lang)) } } }
                        td { (d.role) }
                        td { code { (d.endpoint_id.get(..10).unwrap_or(&d.endpoint_id)) "…" } }
                        td {
                            @if d.revoked {
                                small.error { (t(Msg::Revoked, lang)) }
                            } @else if d.endpoint_id != me {
                                details {
                                    summary.btn { (t(Msg::Revoke, lang)) }
                                    p.hint { (t(Msg::RevokeHint, lang)) }
                                    button.danger hx-post=(format!("/ui/pengaturan/perangkat/{}/cabut", d.endpoint_id)) hx-target="#devices-card" hx-swap="outerHTML" {
                                        (t(Msg::Revoke, lang)) " " (d.till_code)
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if let Some(ticket) = ticket {
                div.invite id="invite" {
                    p { (t(Msg::InviteHint, lang)) }
                    @if let Some(svg) = &ticket.qr { div.qr { (PreEscaped(svg)) } }
                    textarea id="invite-ticket" readonly rows="4" { (ticket.text) }
                    form hx-post="/ui/pengaturan/undang/batal" hx-target="#devices-card" hx-swap="outerHTML" {
                        input type="hidden" name="ticket" value=(ticket.text);
                        button type="submit" id="invite-cancel" { (t(Msg::CancelInvite, lang)) }
                    }
                }
            }
            details.add-device {
                summary.btn.primary { (t(Msg::InviteTill, lang)) }
                form.settings-form id="invite-form" hx-post="/ui/pengaturan/undang" hx-target="#devices-card" hx-swap="outerHTML" {
                    label { (t(Msg::TillCode, lang)) input name="till_code" maxlength="16" placeholder="T2" autocomplete="off"; }
                    label { (t(Msg::Role, lang))
                        select name="role" {
                            option value="till" { (t(Msg::RoleTill, lang)) }
                            option value="manager" { (t(Msg::RoleManagerDevice, lang)) }
                        }
                    }
                    button.primary type="submit" id="invite-make" { (t(Msg::MakeInvite, lang)) }
                }
            }
        }
    }
}

/// Runs a device change and answers with the devices card (with a new invite, if made).
async fn device_change(
    state: AppState,
    headers: HeaderMap,
    change: impl FnOnce(&mut Node, Lang) -> Result<(String, Option<String>), NodeError> + Send + 'static,
) -> Response {
    let lang = lang(&headers);
    let done = call(&state, move |n| {
        let outcome = change(n, lang);
        let devices = roster(n)?;
        Ok((devices, n.device_id().to_string(), outcome))
    })
    .await;
    match done {
        Ok((devices, me, outcome)) => {
            let (message, ticket) = match outcome {
                Ok((done, ticket)) => (Ok(done), ticket),
                Err(e) => (Err(e), None),
            };
            let ticket = ticket.map(|text| Ticket {
                qr: super::qr_svg(&text, 240, qrcode::EcLevel::L),
                text,
            });
            html_response(devices_card(
                lang,
                &devices,
                &me,
                ticket.as_ref(),
                Some(&message),
            ))
        }
        Err(e) => fail(e),
    }
}

#[derive(Deserialize)]
pub(crate) struct InviteForm {
    #[serde(default)]
    till_code: String,
    #[serde(default)]
    role: String,
}

/// `POST /ui/pengaturan/undang`: a one-time invite (`Invite`), shown as a QR code.
pub(crate) async fn invite(
    State(state): State<AppState>,
    UiUser(who): UiUser,
    headers: HeaderMap,
    Form(f): Form<InviteForm>,
) -> Response {
    // The ticket names this till's sync addresses, as the API's invite does.
    let mut ctx = state.ctx();
    ctx.principal = Some(who);
    device_change(state, headers, move |n, lang| {
        let req = InviteRequest {
            till_code: Some(f.till_code.trim().to_owned()).filter(|c| !c.is_empty()),
            role: Some(f.role.trim().to_owned()).filter(|r| !r.is_empty()),
        };
        let made = Invite::run(n, &ctx, req)?;
        Ok((t(Msg::InviteMade, lang).to_owned(), Some(made.ticket)))
    })
    .await
}

#[derive(Deserialize)]
pub(crate) struct CancelForm {
    ticket: String,
}

/// `POST /ui/pengaturan/undang/batal`: the invite can no longer be used (`CancelInvite`).
pub(crate) async fn cancel_invite(
    State(state): State<AppState>,
    UiUser(who): UiUser,
    headers: HeaderMap,
    Form(f): Form<CancelForm>,
) -> Response {
    device_change(state, headers, move |n, lang| {
        run_op::<CancelInvite>(n, &who, CancelInviteRequest { ticket: f.ticket })?;
        Ok((t(Msg::InviteCancelled, lang).to_owned(), None))
    })
    .await
}

/// `POST /ui/pengaturan/perangkat/{endpoint}/cabut`: the device is out of the store
/// (`Revoke`): its changes from now on are refused everywhere.
pub(crate) async fn revoke(
    State(state): State<AppState>,
    UiUser(who): UiUser,
    headers: HeaderMap,
    Path(endpoint_id): Path<String>,
) -> Response {
    device_change(state, headers, move |n, lang| {
        run_op::<Revoke>(n, &who, RevokeRequest { endpoint_id })?;
        Ok((t(Msg::DeviceRevoked, lang).to_owned(), None))
    })
    .await
}
