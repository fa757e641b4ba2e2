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
    /// How far their skills go: a ticket that needs a senior goes to a senior or a
    /// specialist.
    #[serde(default = "senior")]
    pub level: Level,
    /// Home base: where they start a day (dispatch weighs the drive from here, or from
    /// their last check-in of the day).
    #[serde(default)]
    pub home: Option<crate::geo::Coord>,
}

/// A skill level, lowest first.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Routine work; what a ticket needs when it says nothing.
    #[default]
    Junior,
    /// Most repairs; what an engineer is when they say nothing.
    Senior,
    /// The hard cases of their skills.
    Specialist,
}

impl Level {
    /// Every level, lowest first.
    pub const ALL: [Level; 3] = [Level::Junior, Level::Senior, Level::Specialist];

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Level::Junior => "junior",
            Level::Senior => "senior",
            Level::Specialist => "specialist",
        }
    }

    /// From its name.
    pub fn parse(s: &str) -> Option<Level> {
        Level::ALL.into_iter().find(|l| l.name() == s)
    }
}

impl std::str::FromStr for Level {
    type Err = String;

    fn from_str(s: &str) -> Result<Level, String> {
        Level::parse(s).ok_or_else(|| format!("level {s:?}: junior, senior or specialist"))
    }
}

fn senior() -> Level {
    Level::Senior
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
