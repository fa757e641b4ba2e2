//! Alert rules ([`storefleet_core::alerts`]: what counts as a fault, the pure state
//! machine) and [`observe`], which reads each rule's condition from the database.

pub use storefleet_core::alerts::*;

pub mod observe;
