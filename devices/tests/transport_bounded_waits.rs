//! Printer transports deliver every byte, and every way a printer can misbehave — refuse,
//! accept and stop reading, never answer a status query, block a device write — ends
//! in an error (or "status unknown") within seconds instead of hanging.
//!
//! The printers are emulated on loopback with std listeners in threads.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use kasir_devices::encode::PrinterStatus;
use kasir_devices::transport::{
    FileTransport, PrintError, PrinterUri, TcpTransport, Transport, TransportOptions, print,
};

/// Short limits so failing cases end quickly.
fn quick() -> TransportOptions {
    TransportOptions {
        connect: Duration::from_secs(2),
        stall: Duration::from_secs(1),
        total: Duration::from_secs(8),
        scan: Duration::from_secs(1),
        ..TransportOptions::default()
    }
}

/// A printer that records everything until the client closes; returns the bytes.
fn recording_printer() -> (u16, mpsc::Receiver<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut got = Vec::new();
        stream.read_to_end(&mut got).unwrap();
        tx.send(got).unwrap();
    });
    (port, rx)
}

#[test]
fn tcp_printer_receives_exactly_the_bytes() {
    let (port, rx) = recording_printer();
    let job: Vec<u8> = (0..200_000u32).map(|i| (i * 31 % 251) as u8).collect();
    let uri: PrinterUri = format!("tcp://127.0.0.1:{port}").parse().unwrap();
    print(&uri, &job, quick()).unwrap();
    let got = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(got.len(), job.len());
    assert!(got == job, "bytes arrive unchanged and in order");
}

#[test]
fn tcp_printer_that_refuses_fails_at_once() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let started = Instant::now();
    let err = TcpTransport::new("127.0.0.1", port, quick())
        .send(b"\x1b@hello\n")
        .unwrap_err();
    assert!(matches!(err, PrintError::Connect { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(
        err.to_string()
            .starts_with(&format!("cannot connect to printer tcp://127.0.0.1:{port}")),
        "{err}"
    );
}

#[test]
fn tcp_printer_that_accepts_and_never_reads_stalls_into_an_error() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (hold_tx, hold_rx) = mpsc::channel::<()>();
    thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        // Hold the connection open without reading until the test ends.
        let _ = hold_rx.recv();
        drop(stream);
    });
    // Larger than both ends' socket buffers, so the stall shows (see transport docs).
    let job = vec![b'x'; 48 << 20];
    let started = Instant::now();
    let err = TcpTransport::new("127.0.0.1", port, quick())
        .send(&job)
        .unwrap_err();
    assert!(
        matches!(
            err,
            PrintError::Stalled { .. } | PrintError::Deadline { .. }
        ),
        "{err:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "ended in {:?}",
        started.elapsed()
    );
    drop(hold_tx);
}

#[test]
fn tcp_status_of_a_silent_printer_is_unknown_not_an_error() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut sink = Vec::new();
        let _ = stream.read_to_end(&mut sink);
    });
    let started = Instant::now();
    let status = TcpTransport::new("127.0.0.1", port, quick())
        .status(Duration::from_millis(200))
        .unwrap();
    assert_eq!(status, None);
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// A printer answering `DLE EOT 4` (paper) with `paper_byte` and the rest with "ready".
fn answering_printer(paper_byte: u8) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut req = [0u8; 3];
        while stream.read_exact(&mut req).is_ok() {
            assert_eq!(&req[..2], &[0x10, 0x04]);
            let answer = match req[2] {
                4 => paper_byte,
                _ => 0x12,
            };
            stream.write_all(&[answer]).unwrap();
        }
    });
    port
}

#[test]
fn tcp_status_reports_what_the_printer_answers() {
    let ready = TcpTransport::new("127.0.0.1", answering_printer(0x12), quick())
        .status(Duration::from_secs(2))
        .unwrap()
        .unwrap();
    assert!(ready.ready());
    let out = TcpTransport::new("127.0.0.1", answering_printer(0x72), quick())
        .status(Duration::from_secs(2))
        .unwrap()
        .unwrap();
    assert_eq!(
        out,
        PrinterStatus {
            paper_out: true,
            ..PrinterStatus::default()
        }
    );
    assert!(!out.ready());
}

#[test]
fn file_printer_gets_exactly_the_bytes_and_bad_paths_fail() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lp0");
    let job: Vec<u8> = (0..10_000u32).map(|i| (i % 256) as u8).collect();
    let uri: PrinterUri = format!("file://{}", path.display()).parse().unwrap();
    print(&uri, &job, quick()).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), job);

    let missing = dir.path().join("no-such-dir").join("lp0");
    let err = FileTransport::new(missing, quick()).send(b"x").unwrap_err();
    assert!(matches!(err, PrintError::Io { .. }), "{err:?}");
}

#[test]
fn device_that_blocks_forever_fails_within_seconds() {
    // Opening a FIFO for writing blocks until a reader comes — none will, like a USB
    // printer whose writes never complete.
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("stuck");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let started = Instant::now();
    let err = FileTransport::new(fifo, quick())
        .send(b"\x1b@")
        .unwrap_err();
    assert!(matches!(err, PrintError::Stalled { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn ble_printer_without_a_radio_fails_cleanly() {
    // This machine has no Bluetooth: btleplug answers at once that there is no system
    // bus or no adapter. On a machine with a radio the scan finds no such printer.
    let uri: PrinterUri = "ble://KASIR-TEST-NO-SUCH-PRINTER".parse().unwrap();
    let started = Instant::now();
    let err = print(&uri, b"\x1b@", quick()).unwrap_err();
    assert!(
        matches!(
            err,
            PrintError::BluetoothUnavailable(_) | PrintError::NotFound { .. }
        ),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}
