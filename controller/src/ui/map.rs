//! The fleet on a map: each store with a place is a dot where it is, coloured by its
//! health, drawn from our own data as SVG (no map tiles from anywhere, no script). A store
//! that is not well is a link to its page, drawn over the well ones.

use std::collections::HashMap;

use maud::{html, Markup};

use super::url_encode;
use crate::fleet::Tally;
use storefleet_core::geo::Coord;

/// Width of the drawing, in its own units.
const WIDTH: f64 = 640.0;
/// Its height at most and at least.
const HEIGHT: (f64, f64) = (240.0, 640.0);
/// Room around the outermost stores.
const MARGIN: f64 = 12.0;

/// Where each store goes on the drawing: an equirectangular projection around the fleet's
/// middle latitude, scaled to fit. Returns the drawing's height and each store's x, y.
fn project(places: &HashMap<String, Coord>) -> (f64, Vec<(&str, f64, f64)>) {
    let (mut lat0, mut lat1, mut lon0, mut lon1) = (90.0_f64, -90.0_f64, 180.0_f64, -180.0_f64);
    for p in places.values() {
        lat0 = lat0.min(p.lat);
        lat1 = lat1.max(p.lat);
        lon0 = lon0.min(p.lon);
        lon1 = lon1.max(p.lon);
    }
    let k = f64::midpoint(lat0, lat1).to_radians().cos().max(0.05);
    // At least a few kilometres each way: one store, or stores of one street, still fit.
    let w = ((lon1 - lon0) * k).max(0.05);
    let h = (lat1 - lat0).max(0.05);
    let scale = ((WIDTH - 2.0 * MARGIN) / w).min((HEIGHT.1 - 2.0 * MARGIN) / h);
    let height = (h * scale + 2.0 * MARGIN).clamp(HEIGHT.0, HEIGHT.1);
    let mut out: Vec<(&str, f64, f64)> = places
        .iter()
        .map(|(code, p)| {
            (
                code.as_str(),
                MARGIN + (p.lon - lon0) * k * scale,
                MARGIN + (lat1 - p.lat) * scale,
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(b.0));
    (height, out)
}

/// The map of the stores in `places`, coloured by `tally`; nothing when no store has a place.
pub(super) fn fleet(places: &HashMap<String, Coord>, tally: &Tally) -> Markup {
    if places.is_empty() {
        return html! {};
    }
    let (height, dots) = project(places);
    let (well, unwell): (Vec<_>, Vec<_>) = dots
        .into_iter()
        .partition(|(code, _, _)| tally.health(code) == "ok");
    html! {
        figure.map #fleet-map {
            svg viewBox={"0 0 " (WIDTH) " " (height.round())} role="img" aria-label="Stores on a map, coloured by health" {
                rect.land x="0" y="0" width=(WIDTH) height=(height.round()) {}
                @for (_, x, y) in &well {
                    circle.ok cx=(format!("{x:.1}")) cy=(format!("{y:.1}")) r="3" {}
                }
                @for (code, x, y) in &unwell {
                    a href={"/stores/" (url_encode(code))} {
                        circle class=(tally.health(code)) data-store=(code) cx=(format!("{x:.1}")) cy=(format!("{y:.1}")) r="5" {
                            title { (code) ": " (tally.health(code)) }
                        }
                    }
                }
            }
            figcaption.muted {
                (well.len() + unwell.len()) " stores with a place; "
                (unwell.len()) " not well (red: gateway offline, amber: degraded, grey: no gateway), each a link."
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_land_inside_the_drawing_north_up_and_east_right() {
        let mut places = HashMap::new();
        places.insert("KIEL".to_owned(), Coord::new(54.3233, 10.1228).unwrap());
        places.insert("MUC".to_owned(), Coord::new(48.1351, 11.5820).unwrap());
        places.insert("CGN".to_owned(), Coord::new(50.9375, 6.9603).unwrap());
        let (h, dots) = project(&places);
        let at = |c: &str| dots.iter().find(|d| d.0 == c).map(|d| (d.1, d.2)).unwrap();
        for (_, x, y) in &dots {
            assert!(
                (0.0..=WIDTH).contains(x) && (0.0..=h).contains(y),
                "{x} {y} in {h}"
            );
        }
        assert!(at("KIEL").1 < at("MUC").1, "north is up");
        assert!(at("CGN").0 < at("MUC").0, "east is right");
        // One store alone is drawn, not divided by zero.
        let one: HashMap<_, _> = [("S1".to_owned(), Coord::new(0.0, 0.0).unwrap())].into();
        let (h, dots) = project(&one);
        assert!(dots[0].1.is_finite() && dots[0].2.is_finite() && h >= HEIGHT.0);
    }
}
