//! Where things are: coordinates, the distance between two, and how long a drive takes.
//! Pure.
//!
//! There is no road network here: the drive is the great-circle distance times a detour
//! factor, at an average speed, plus the time to leave and to park. It ranks engineers and
//! tells a dispatcher "about 25 min", which is what it is for.

use serde::{Deserialize, Serialize};

/// A point on Earth, in degrees (WGS 84, as a phone or a map gives it).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Coord {
    /// Latitude, -90 to 90.
    pub lat: f64,
    /// Longitude, -180 to 180.
    pub lon: f64,
}

/// Roads are longer than the straight line.
pub const DETOUR: f64 = 1.3;
/// Average speed of a service van between stores, km/h.
pub const SPEED_KMH: f64 = 50.0;
/// Leaving, parking and walking in, minutes.
pub const OVERHEAD_MIN: u32 = 5;

impl Coord {
    /// Checks the ranges; the error names what is wrong.
    pub fn new(lat: f64, lon: f64) -> Result<Coord, String> {
        if !lat.is_finite() || !(-90.0..=90.0).contains(&lat) {
            return Err(format!("latitude {lat}: -90 to 90 degrees"));
        }
        if !lon.is_finite() || !(-180.0..=180.0).contains(&lon) {
            return Err(format!("longitude {lon}: -180 to 180 degrees"));
        }
        Ok(Coord { lat, lon })
    }

    /// From optional columns: both or none; one alone is an error.
    pub fn from_parts(lat: Option<f64>, lon: Option<f64>) -> Result<Option<Coord>, String> {
        match (lat, lon) {
            (None, None) => Ok(None),
            (Some(lat), Some(lon)) => Coord::new(lat, lon).map(Some),
            _ => Err("coordinates: give both latitude and longitude, or neither".into()),
        }
    }

    /// Great-circle distance to `other`, km (haversine, mean Earth radius).
    pub fn km_to(self, other: Coord) -> f64 {
        const R: f64 = 6371.0;
        let (p1, p2) = (self.lat.to_radians(), other.lat.to_radians());
        let dp = p2 - p1;
        let dl = (other.lon - self.lon).to_radians();
        let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
        2.0 * R * a.sqrt().min(1.0).asin()
    }
}

impl std::str::FromStr for Coord {
    type Err = String;

    /// `LAT,LON` in degrees, e.g. `53.5511,9.9937`.
    fn from_str(s: &str) -> Result<Coord, String> {
        let (lat, lon) = s
            .split_once(',')
            .ok_or_else(|| format!("{s:?}: expected LAT,LON in degrees, e.g. 53.5511,9.9937"))?;
        let num = |v: &str, what: &str| {
            v.trim()
                .parse::<f64>()
                .map_err(|_| format!("{what} {:?}: not a number", v.trim()))
        };
        Coord::new(num(lat, "latitude")?, num(lon, "longitude")?)
    }
}

/// A drive between two points.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Drive {
    /// Straight-line distance, km.
    pub km: f64,
    /// Estimated door-to-door time, minutes.
    pub minutes: u32,
}

impl Drive {
    /// From `from` to `to`.
    pub fn between(from: Coord, to: Coord) -> Drive {
        let km = from.km_to(to);
        // Bounded: the far side of the planet is 20,000 km, not a reason to overflow.
        let minutes = (km * DETOUR / SPEED_KMH * 60.0).round().min(1e6) as u32 + OVERHEAD_MIN;
        Drive { km, minutes }
    }

    /// For people: `12.4 km, about 24 min`.
    pub fn describe(&self) -> String {
        let time = if self.minutes < 90 {
            format!("{} min", self.minutes)
        } else {
            format!("{} h {} min", self.minutes / 60, self.minutes % 60)
        };
        format!("{:.1} km, about {time}", self.km)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_are_the_known_ones_and_drives_grow_with_them() {
        let hamburg = Coord::new(53.5511, 9.9937).unwrap();
        let berlin = Coord::new(52.5200, 13.4050).unwrap();
        let km = hamburg.km_to(berlin);
        assert!((250.0..260.0).contains(&km), "{km}");
        assert!(hamburg.km_to(hamburg).abs() < 1e-9);
        let near = Drive::between(hamburg, Coord::new(53.60, 10.05).unwrap());
        let far = Drive::between(hamburg, berlin);
        assert!(near.minutes < far.minutes);
        assert_eq!(Drive::between(hamburg, hamburg).minutes, OVERHEAD_MIN);
        assert!(far.describe().contains(" h "), "{}", far.describe());
        assert!(near.describe().ends_with("min"), "{}", near.describe());
        // Antipodes: bounded, no overflow.
        let d = Drive::between(
            Coord::new(0.0, 0.0).unwrap(),
            Coord::new(0.0, 180.0).unwrap(),
        );
        assert!((20_000.0..20_040.0).contains(&d.km), "{}", d.km);
    }

    #[test]
    fn out_of_range_or_half_given_coordinates_are_named() {
        assert!(Coord::new(91.0, 0.0).unwrap_err().contains("latitude"));
        assert!(Coord::new(0.0, -181.0).unwrap_err().contains("longitude"));
        assert!(Coord::new(f64::NAN, 0.0).is_err());
        assert!(Coord::from_parts(Some(1.0), None)
            .unwrap_err()
            .contains("both"));
        assert_eq!(Coord::from_parts(None, None), Ok(None));
        assert_eq!("53.5, 9.9".parse::<Coord>(), Coord::new(53.5, 9.9));
        assert!("53.5".parse::<Coord>().unwrap_err().contains("LAT,LON"));
        assert!("x,9".parse::<Coord>().unwrap_err().contains("latitude"));
        assert!("99,9".parse::<Coord>().unwrap_err().contains("-90 to 90"));
    }
}
