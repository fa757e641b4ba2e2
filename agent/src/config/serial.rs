//! A serial line's settings (Modbus RTU over RS-485 or RS-232).

use serde::{Deserialize, Serialize};

/// Bit rates a serial line may run at.
pub const BAUDS: [u32; 8] = [1200, 2400, 4800, 9600, 19_200, 38_400, 57_600, 115_200];

/// Parity of a serial line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Parity {
    /// Even (Modbus RTU's default).
    #[default]
    Even,
    /// Odd.
    Odd,
    /// None (Modbus asks for two stop bits then; many devices use one).
    None,
}

pub(super) fn default_baud() -> u32 {
    9600
}

pub(super) fn default_stop_bits() -> u8 {
    1
}

/// What is wrong with a line's settings, as `(key, expected)`.
pub fn check(
    port: &std::path::Path,
    baud: u32,
    stop_bits: u8,
) -> Result<(), (&'static str, String)> {
    if !port.is_absolute() {
        return Err(("port", "the serial port's path, e.g. /dev/ttyUSB0".into()));
    }
    if !BAUDS.contains(&baud) {
        return Err(("baud", format!("one of {BAUDS:?}")));
    }
    if !(1..=2).contains(&stop_bits) {
        return Err(("stop_bits", "1 or 2".into()));
    }
    Ok(())
}
