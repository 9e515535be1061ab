//! Bluetooth LE printers: find one by name, pick its "serial" characteristic, and write
//! a job in MTU-sized, paced chunks.
//!
//! Cheap BLE thermal printers expose a vendor UART-like GATT service and have tiny
//! buffers: writes larger than the ATT payload (20 bytes at the default MTU of 23) are
//! refused, and writes sent back to back without response overrun the buffer and print
//! half a receipt. So a job is cut into chunks of at most the payload size and a short
//! pause is made between chunks ([`write_chunked`]).
//!
//! That logic is written over the small [`GattWrite`] trait, not over btleplug, and is
//! tested against an in-memory characteristic. **The machine this was built on has no
//! Bluetooth radio**: the in-memory test is the only place chunking and pacing run;
//! the btleplug path ([`BleTransport`]) is compiled and, without an adapter or a system
//! D-Bus, returns [`PrintError::BluetoothUnavailable`] at once instead of hanging.

use std::future::Future;
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::transport::{PrintError, Transport, TransportOptions};

/// The ATT payload of the default MTU (23 − 3 bytes of header).
pub const DEFAULT_CHUNK: usize = 20;
/// The largest chunk used even when a bigger MTU was negotiated (printer buffers are small).
pub const MAX_CHUNK: usize = 180;

/// Known printer (service, characteristic) pairs, in order of preference.
pub const KNOWN_CHARACTERISTICS: [(Uuid, Uuid); 5] = [
    // "POS58"-style generic printers.
    (
        Uuid::from_u128(0x0000_18f0_0000_1000_8000_0080_5f9b_34fb),
        Uuid::from_u128(0x0000_2af1_0000_1000_8000_0080_5f9b_34fb),
    ),
    // Microchip/ISSC transparent UART.
    (
        Uuid::from_u128(0x4953_5343_fe7d_4ae5_8fa9_9faf_d205_e455),
        Uuid::from_u128(0x4953_5343_8841_43f4_a8d4_ecbe_3472_9bb3),
    ),
    // Another common vendor service.
    (
        Uuid::from_u128(0xe781_0a71_73ae_499d_8c15_faa9_aef0_c3f2),
        Uuid::from_u128(0xbef8_d6c9_9c21_4c9e_b632_bd58_c100_9f9f),
    ),
    // HM-10 style FFE0/FFE1.
    (
        Uuid::from_u128(0x0000_ffe0_0000_1000_8000_0080_5f9b_34fb),
        Uuid::from_u128(0x0000_ffe1_0000_1000_8000_0080_5f9b_34fb),
    ),
    // FF00/FF02.
    (
        Uuid::from_u128(0x0000_ff00_0000_1000_8000_0080_5f9b_34fb),
        Uuid::from_u128(0x0000_ff02_0000_1000_8000_0080_5f9b_34fb),
    ),
];

/// A GATT characteristic as far as choosing where to write is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GattChar {
    /// The service it belongs to.
    pub service: Uuid,
    /// The characteristic.
    pub uuid: Uuid,
    /// Supports write with response.
    pub write: bool,
    /// Supports write without response.
    pub write_without_response: bool,
}

/// The characteristic to print through: the first known printer pair present and
/// writable, else the first writable characteristic. `None` when nothing is writable.
pub fn pick_characteristic(chars: &[GattChar]) -> Option<GattChar> {
    let writable = |c: &&GattChar| c.write || c.write_without_response;
    KNOWN_CHARACTERISTICS
        .iter()
        .find_map(|(service, uuid)| {
            chars
                .iter()
                .filter(writable)
                .find(|c| c.service == *service && c.uuid == *uuid)
        })
        .or_else(|| chars.iter().find(writable))
        .copied()
}

/// One writable GATT characteristic.
pub trait GattWrite {
    /// Writes one chunk (at most the ATT payload size) to the characteristic.
    fn write_chunk(&mut self, chunk: &[u8]) -> impl Future<Output = Result<(), PrintError>> + Send;

    /// Waits between two chunks. Real characteristics sleep; test doubles record it.
    fn pause(&mut self, pace: Duration) -> impl Future<Output = ()> + Send {
        tokio::time::sleep(pace)
    }
}

/// How a job is cut and paced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkPlan {
    /// Bytes per write (the ATT payload: MTU − 3); 0 is taken as [`DEFAULT_CHUNK`].
    pub chunk: usize,
    /// Pause between writes.
    pub pace: Duration,
}

impl Default for ChunkPlan {
    /// 20-byte chunks, 8 ms apart.
    fn default() -> ChunkPlan {
        ChunkPlan {
            chunk: DEFAULT_CHUNK,
            pace: Duration::from_millis(8),
        }
    }
}

/// Writes `data` through `gatt` in order, in chunks of at most `plan.chunk` bytes with
/// `plan.pace` between consecutive chunks (none after the last). Returns the number of
/// chunks written; stops at the first failed write.
pub async fn write_chunked<G: GattWrite + Send>(
    gatt: &mut G,
    data: &[u8],
    plan: ChunkPlan,
) -> Result<usize, PrintError> {
    let size = if plan.chunk == 0 {
        DEFAULT_CHUNK
    } else {
        plan.chunk
    };
    let mut written = 0;
    for chunk in data.chunks(size) {
        if written > 0 && !plan.pace.is_zero() {
            gatt.pause(plan.pace).await;
        }
        gatt.write_chunk(chunk).await?;
        written += 1;
    }
    Ok(written)
}

/// A Bluetooth LE printer found by advertised name (case-insensitive) or address.
#[derive(Debug, Clone)]
pub struct BleTransport {
    name: String,
    opts: TransportOptions,
}

impl BleTransport {
    /// A transport to the printer called `name`, with these limits.
    pub fn new(name: String, opts: TransportOptions) -> BleTransport {
        BleTransport { name, opts }
    }
}

/// Android has no BlueZ, and btleplug there needs the app's Java half: its Bluetooth
/// printers are the app's (`app://NAME`, through `AppLink`).
#[cfg(target_os = "android")]
impl Transport for BleTransport {
    fn describe(&self) -> String {
        format!("ble://{}", self.name)
    }

    fn send(&mut self, _bytes: &[u8]) -> Result<(), PrintError> {
        let _ = self.opts;
        Err(PrintError::BluetoothUnavailable(
            "on Android the app reaches Bluetooth printers: use app://NAME".into(),
        ))
    }
}

/// The btleplug path (BlueZ over D-Bus on Linux, CoreBluetooth, WinRT).
#[cfg(not(target_os = "android"))]
mod btle {
    use super::*;
    use btleplug::api::{
        Central as _, CharPropFlags, Characteristic, Manager as _, Peripheral as _, ScanFilter,
        WriteType,
    };
    use btleplug::platform::{Manager, Peripheral};

    impl Transport for BleTransport {
        fn describe(&self) -> String {
            format!("ble://{}", self.name)
        }

        /// Runs the btleplug job on a private single-threaded runtime (callers are
        /// synchronous; an async caller runs this on its blocking pool).
        fn send(&mut self, bytes: &[u8]) -> Result<(), PrintError> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| PrintError::Bluetooth {
                    printer: self.describe(),
                    message: format!("cannot start the Bluetooth runtime: {e}"),
                })?;
            let total = self.opts.total;
            let printer = self.describe();
            runtime.block_on(async {
                match tokio::time::timeout(total, self.send_async(bytes)).await {
                    Ok(result) => result,
                    Err(_) => Err(PrintError::Deadline {
                        printer,
                        after: total,
                    }),
                }
            })
        }
    }

    /// btleplug's peripheral and characteristic as a [`GattWrite`].
    struct BtleGatt<'a> {
        peripheral: &'a Peripheral,
        characteristic: Characteristic,
        write_type: WriteType,
        stall: Duration,
        printer: String,
    }

    impl GattWrite for BtleGatt<'_> {
        async fn write_chunk(&mut self, chunk: &[u8]) -> Result<(), PrintError> {
            let write = self
                .peripheral
                .write(&self.characteristic, chunk, self.write_type);
            match tokio::time::timeout(self.stall, write).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(PrintError::Bluetooth {
                    printer: self.printer.clone(),
                    message: format!("write failed: {e}"),
                }),
                Err(_) => Err(PrintError::Stalled {
                    printer: self.printer.clone(),
                    after: self.stall,
                }),
            }
        }
    }

    impl BleTransport {
        fn err(&self, what: &str, e: impl std::fmt::Display) -> PrintError {
            PrintError::Bluetooth {
                printer: self.describe(),
                message: format!("{what}: {e}"),
            }
        }

        async fn send_async(&self, bytes: &[u8]) -> Result<(), PrintError> {
            let unavailable = |e: btleplug::Error| PrintError::BluetoothUnavailable(e.to_string());
            let manager = Manager::new().await.map_err(unavailable)?;
            let central = manager
                .adapters()
                .await
                .map_err(unavailable)?
                .into_iter()
                .next()
                .ok_or_else(|| PrintError::BluetoothUnavailable("no Bluetooth adapter".into()))?;
            central
                .start_scan(ScanFilter::default())
                .await
                .map_err(unavailable)?;
            let found = self.find(&central).await;
            let _ = central.stop_scan().await;
            let peripheral = found?;

            let connect = tokio::time::timeout(self.opts.connect, peripheral.connect());
            match connect.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(self.err("connect", e)),
                Err(_) => {
                    return Err(PrintError::ConnectTimeout {
                        printer: self.describe(),
                        after: self.opts.connect,
                    });
                }
            }
            let result = self.write_job(&peripheral, bytes).await;
            let _ = peripheral.disconnect().await;
            result
        }

        /// Scans until a peripheral advertises our name (or address) or the scan time ends.
        async fn find(
            &self,
            central: &btleplug::platform::Adapter,
        ) -> Result<Peripheral, PrintError> {
            let started = Instant::now();
            loop {
                let peripherals = central
                    .peripherals()
                    .await
                    .map_err(|e| self.err("scan", e))?;
                for p in peripherals {
                    let Ok(Some(props)) = p.properties().await else {
                        continue;
                    };
                    let named = [props.local_name, props.advertisement_name]
                        .into_iter()
                        .flatten()
                        .any(|n| n.trim().eq_ignore_ascii_case(&self.name));
                    if named || props.address.to_string().eq_ignore_ascii_case(&self.name) {
                        return Ok(p);
                    }
                }
                if started.elapsed() >= self.opts.scan {
                    return Err(PrintError::NotFound {
                        name: self.name.clone(),
                        after: self.opts.scan,
                    });
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }

        async fn write_job(&self, peripheral: &Peripheral, bytes: &[u8]) -> Result<(), PrintError> {
            match tokio::time::timeout(self.opts.connect, peripheral.discover_services()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(self.err("discover services", e)),
                Err(_) => {
                    return Err(PrintError::ConnectTimeout {
                        printer: self.describe(),
                        after: self.opts.connect,
                    });
                }
            }
            let all: Vec<Characteristic> = peripheral.characteristics().into_iter().collect();
            let brief: Vec<GattChar> = all
                .iter()
                .map(|c| GattChar {
                    service: c.service_uuid,
                    uuid: c.uuid,
                    write: c.properties.contains(CharPropFlags::WRITE),
                    write_without_response: c
                        .properties
                        .contains(CharPropFlags::WRITE_WITHOUT_RESPONSE),
                })
                .collect();
            let chosen = pick_characteristic(&brief)
                .ok_or_else(|| PrintError::NotAPrinter(self.name.clone()))?;
            let characteristic = all
                .into_iter()
                .find(|c| c.service_uuid == chosen.service && c.uuid == chosen.uuid)
                .ok_or_else(|| PrintError::NotAPrinter(self.name.clone()))?;
            let write_type = if chosen.write_without_response {
                WriteType::WithoutResponse
            } else {
                WriteType::WithResponse
            };
            let plan = ChunkPlan {
                chunk: usize::from(peripheral.mtu())
                    .saturating_sub(3)
                    .clamp(DEFAULT_CHUNK, MAX_CHUNK),
                pace: self.opts.ble_pace,
            };
            let mut gatt = BtleGatt {
                peripheral,
                characteristic,
                write_type,
                stall: self.opts.stall,
                printer: self.describe(),
            };
            write_chunked(&mut gatt, bytes, plan).await.map(|_| ())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch(service: Uuid, uuid: Uuid, write: bool, wwr: bool) -> GattChar {
        GattChar {
            service,
            uuid,
            write,
            write_without_response: wwr,
        }
    }

    #[test]
    fn known_printer_characteristic_is_preferred_over_any_writable_one() {
        let battery = Uuid::from_u128(0x180f_0000_1000_8000_0080_5f9b_34fb);
        let level = Uuid::from_u128(0x2a19_0000_1000_8000_0080_5f9b_34fb);
        let (issc, issc_tx) = KNOWN_CHARACTERISTICS[1];
        let chars = [
            ch(battery, level, true, false),
            ch(issc, issc_tx, false, true),
        ];
        assert_eq!(pick_characteristic(&chars), Some(chars[1]));
        // A known pair that cannot be written is skipped.
        let chars = [
            ch(issc, issc_tx, false, false),
            ch(battery, level, true, false),
        ];
        assert_eq!(pick_characteristic(&chars), Some(chars[1]));
        assert_eq!(
            pick_characteristic(&[ch(battery, level, false, false)]),
            None
        );
        assert_eq!(pick_characteristic(&[]), None);
    }
}
