//! Bluetooth LE jobs are written in chunks of at most the ATT payload, in order, with a
//! pause between chunks — checked against an in-memory GATT characteristic, since the
//! machine this runs on has no Bluetooth radio (the btleplug path is only built, and
//! tested to fail cleanly, in `transport_bounded_waits.rs`).
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

use std::time::Duration;

use kasir_devices::ble::{ChunkPlan, GattWrite, write_chunked};
use kasir_devices::encode::{PrinterProfile, encode};
use kasir_devices::receipt::{ReceiptOptions, layout};
use kasir_devices::transport::PrintError;

mod support;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    Write(Vec<u8>),
    Pause(Duration),
}

/// A characteristic that records writes and pauses; optionally fails the n-th write.
#[derive(Default)]
struct Recorder {
    events: Vec<Event>,
    fail_on: Option<usize>,
}

impl Recorder {
    fn writes(&self) -> Vec<&[u8]> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Write(w) => Some(w.as_slice()),
                Event::Pause(_) => None,
            })
            .collect()
    }
}

impl GattWrite for Recorder {
    async fn write_chunk(&mut self, chunk: &[u8]) -> Result<(), PrintError> {
        if self.fail_on == Some(self.writes().len()) {
            return Err(PrintError::Bluetooth {
                printer: "ble://memory".into(),
                message: "link lost".into(),
            });
        }
        self.events.push(Event::Write(chunk.to_vec()));
        Ok(())
    }

    async fn pause(&mut self, pace: Duration) {
        self.events.push(Event::Pause(pace));
    }
}

fn run<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

#[test]
fn ble_chunks_fit_the_mtu_keep_order_and_are_paced() {
    let receipt = layout(
        &support::warung(),
        &support::small_sale(),
        &ReceiptOptions {
            qr: Some(support::QRIS.into()),
            ..ReceiptOptions::default()
        },
    )
    .unwrap();
    let job = encode(&receipt, &PrinterProfile::mm58()).unwrap();
    for chunk in [20, 23, 180] {
        let plan = ChunkPlan {
            chunk,
            pace: Duration::from_millis(7),
        };
        let mut gatt = Recorder::default();
        let n = run(write_chunked(&mut gatt, &job, plan)).unwrap();
        let writes = gatt.writes();
        assert_eq!(n, job.len().div_ceil(chunk));
        assert_eq!(writes.len(), n);
        assert!(writes.iter().all(|w| !w.is_empty() && w.len() <= chunk));
        assert!(
            writes[..n - 1].iter().all(|w| w.len() == chunk),
            "only the last is short"
        );
        assert_eq!(writes.concat(), job, "order preserved, nothing lost");
        // Strictly alternating: write, pause, write, ..., write.
        for (i, e) in gatt.events.iter().enumerate() {
            match e {
                Event::Write(_) => assert_eq!(i % 2, 0, "write at {i}"),
                Event::Pause(p) => {
                    assert_eq!(i % 2, 1, "pause at {i}");
                    assert_eq!(*p, plan.pace);
                }
            }
        }
        assert!(matches!(gatt.events.last(), Some(Event::Write(_))));
    }
}

#[test]
fn ble_edge_sizes_and_default_chunk() {
    let plan = ChunkPlan::default();
    assert_eq!(plan.chunk, 20);
    for (len, chunks) in [(0, 0), (1, 1), (20, 1), (21, 2), (40, 2), (41, 3)] {
        let mut gatt = Recorder::default();
        let data = vec![0xAB; len];
        assert_eq!(run(write_chunked(&mut gatt, &data, plan)).unwrap(), chunks);
        assert_eq!(gatt.events.len(), (2 * chunks).saturating_sub(1));
    }
    // A zero chunk size is taken as the default payload, not an endless loop.
    let mut gatt = Recorder::default();
    let zero = ChunkPlan {
        chunk: 0,
        pace: Duration::ZERO,
    };
    assert_eq!(run(write_chunked(&mut gatt, &[1; 45], zero)).unwrap(), 3);
    assert!(
        gatt.events.iter().all(|e| matches!(e, Event::Write(_))),
        "no pause at pace 0"
    );
}

#[test]
fn ble_write_failure_stops_the_job() {
    let mut gatt = Recorder {
        fail_on: Some(2),
        ..Recorder::default()
    };
    let err = run(write_chunked(&mut gatt, &[7; 100], ChunkPlan::default())).unwrap_err();
    assert!(matches!(err, PrintError::Bluetooth { .. }), "{err:?}");
    assert_eq!(gatt.writes().len(), 2, "nothing written after the failure");
}
