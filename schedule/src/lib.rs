//! Store time: a store's weekly trading hours in its own time zone, and the windows that
//! fleet tasks and maintenance routines may run in ("only while closed", "never at peak").
//!
//! Pure logic over [`jiff`]: no clock is read here; every question takes the instant.
//!
//! # Layout
//!
//! - [`hours`]: parsing trading hours (`Mo-Sa 08:00-20:00; Su 10:00-16:00`) and asking
//!   whether a local time is inside them.
//! - [`window`]: a store (hours and zone) and the window policies asked of it.

pub mod hours;
pub mod window;

pub use hours::{HoursError, TradingHours};
pub use window::{StoreTime, When, Window};
