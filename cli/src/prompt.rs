//! Asking a person at a terminal: the owner's PIN at `kasir init`, typed twice and not
//! echoed. Never asked when standard input is not a terminal (a script, a pipe), so
//! nothing waits for input that will not come.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Context, Result, bail};
use rustix::termios::{LocalModes, OptionalActions, tcgetattr, tcsetattr};

/// One line from the terminal with echo off (restored whatever happens).
fn read_hidden(prompt: &str) -> Result<String> {
    let stdin = std::io::stdin();
    let mut err = std::io::stderr();
    // Echo goes off before the prompt shows: a PIN typed (or pasted) the moment the
    // prompt appears is never echoed.
    let saved = tcgetattr(&stdin).context("reading the terminal's settings")?;
    let mut quiet = saved.clone();
    quiet.local_modes.remove(LocalModes::ECHO);
    tcsetattr(&stdin, OptionalActions::Now, &quiet).context("turning echo off")?;
    let shown = write!(err, "{prompt}").and_then(|()| err.flush());
    if let Err(e) = shown {
        let _ = tcsetattr(&stdin, OptionalActions::Now, &saved);
        return Err(e.into());
    }
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    tcsetattr(&stdin, OptionalActions::Now, &saved).context("turning echo back on")?;
    writeln!(err)?;
    read.context("reading the PIN")?;
    Ok(line.trim().to_owned())
}

/// The owner's PIN, asked on a terminal (empty: no owner user for now); `None` when
/// standard input is not a terminal.
pub(crate) fn owner_pin(owner_name: &str) -> Result<Option<String>> {
    if !std::io::stdin().is_terminal() {
        return Ok(None);
    }
    let pin = read_hidden(&format!(
        "PIN untuk {owner_name} (4-12 angka, kosong = nanti dengan `kasir user add`): "
    ))?;
    if pin.is_empty() {
        return Ok(None);
    }
    kasir_node::people::validate_pin(&pin)?;
    if read_hidden("Ulangi PIN: ")? != pin {
        bail!("the two PINs differ: nothing was created");
    }
    Ok(Some(pin))
}

/// The passphrase that seals a backup: `$KASIR_BACKUP_PASSPHRASE` (scripts, the daemon's
/// schedule), else asked on a terminal (twice when `confirm`, for a new backup).
pub(crate) fn backup_passphrase(confirm: bool) -> Result<String> {
    if let Ok(p) = std::env::var("KASIR_BACKUP_PASSPHRASE")
        && !p.is_empty()
    {
        return Ok(p);
    }
    if !std::io::stdin().is_terminal() {
        bail!("no backup passphrase: set KASIR_BACKUP_PASSPHRASE or run on a terminal");
    }
    let p = read_hidden("Kata sandi cadangan: ")?;
    if confirm && read_hidden("Ulangi kata sandi: ")? != p {
        bail!("the two passphrases differ: nothing was written");
    }
    Ok(p)
}
