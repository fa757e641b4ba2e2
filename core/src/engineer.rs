//! A field engineer as dispatch sees them.

use serde::{Deserialize, Serialize};

/// A field engineer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Engineer {
    /// Id, also their web UI login (e.g. `jan.k`).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Skills, e.g. `printers`, `pos`, `network`, `refrigeration`.
    #[serde(default)]
    pub skills: Vec<String>,
    /// Regions covered; `*` for all.
    #[serde(default)]
    pub regions: Vec<String>,
    /// IANA time zone of the shift hours.
    #[serde(default = "utc")]
    pub timezone: String,
    /// Shift hours, as trading hours are written: `Mo-Fr 07:00-16:00`, `24/7`.
    #[serde(default = "always")]
    pub shift: String,
    /// Open tickets they can carry at once.
    #[serde(default = "five")]
    pub capacity: u32,
    /// `available`, or anything else (`off`, `sick`, `vacation`) to take them out.
    #[serde(default = "available")]
    pub status: String,
    /// Phone number for the store and the dispatcher.
    #[serde(default)]
    pub phone: String,
    /// Home base: where they start a day (dispatch weighs the drive from here, or from
    /// their last check-in of the day).
    #[serde(default)]
    pub home: Option<crate::geo::Coord>,
}

fn utc() -> String {
    "UTC".into()
}

fn always() -> String {
    "24/7".into()
}

fn five() -> u32 {
    5
}

fn available() -> String {
    "available".into()
}
