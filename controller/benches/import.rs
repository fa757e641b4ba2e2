//! CSV imports at a chain's scale: 1,000 stores, then 10,000 device asset records, each
//! file checked whole and written in one transaction, on SQLite (the state directory's
//! database) and, with `STOREFLEET_TEST_PG`, on PostgreSQL. Then the same 10,000 rows with
//! one bad row at the end: the time to refuse them, and that nothing was written.
//!
//! ```sh
//! cargo bench -p storefleet-controller --bench import
//! STOREFLEET_TEST_PG=postgres://postgres@127.0.0.1:5432/postgres cargo bench -p storefleet-controller --bench import
//! ```

use std::fmt::Write as _;
use std::time::Instant;

use storefleet_controller::db::Db;
use storefleet_storage::SqlExt as _;

const STORES: usize = 1_000;
const ASSETS: usize = 10_000;

fn files() -> (String, String) {
    let mut stores = String::from("code,name,region,timezone,trading_hours,lat,lon\n");
    for n in 1..=STORES {
        let _ = writeln!(
            stores,
            "B{n:04},Store {n},r{},Europe/Berlin,Mo-Sa 08:00-20:00,{:.4},{:.4}",
            n % 8,
            48.0 + (n % 60) as f64 * 0.1,
            7.0 + (n / 60) as f64 * 0.3
        );
    }
    let mut assets =
        String::from("store,slot,class,vendor,model,serial,lifecycle,purchase_date,warranty_end\n");
    for i in 0..ASSETS {
        let _ = writeln!(
            assets,
            "B{:04},dev-{},receipt-printer,Epson,TM-T88VI,X5E{i:07},active,2026-01-15,2029-01-15",
            i % STORES + 1,
            i / STORES
        );
    }
    (stores, assets)
}

fn count(db: &Db) -> i64 {
    rt().block_on(db.read(|c| c.int("SELECT COUNT(*) AS n FROM assets", &[], "n")))
        .unwrap()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn run(backend: &str, db: &Db) {
    let (stores, assets) = files();
    let rt = rt();
    let t = Instant::now();
    let s = stores.clone().into_bytes();
    let r = rt
        .block_on(
            db.write(move |c| storefleet_controller::import::stores(c, &s, false, "bench", 1)),
        )
        .unwrap()
        .unwrap();
    println!(
        "{backend}: {} stores imported in {:.2} s",
        r.created,
        t.elapsed().as_secs_f64()
    );

    // One bad row at the very end: all 10,000 checked, nothing written.
    let bad = format!("{assets}B0001,dev-x,,,,,,,\n").into_bytes();
    let t = Instant::now();
    let refused = rt
        .block_on(db.write(move |c| {
            storefleet_controller::assets::import::import(c, &bad, false, "bench", 2)
        }))
        .unwrap()
        .unwrap_err();
    println!(
        "{backend}: {ASSETS} asset rows and one bad one refused in {:.2} s ({} error: line {}), {} assets written",
        t.elapsed().as_secs_f64(),
        refused.len(),
        refused[0].row,
        count(db)
    );
    assert_eq!(count(db), 0, "half-imported");

    let a = assets.clone().into_bytes();
    let t = Instant::now();
    let r =
        rt.block_on(db.write(move |c| {
            storefleet_controller::assets::import::import(c, &a, true, "bench", 3)
        }))
        .unwrap()
        .unwrap();
    println!(
        "{backend}: dry run of {} asset rows in {:.2} s",
        r.rows,
        t.elapsed().as_secs_f64()
    );
    let a = assets.into_bytes();
    let t = Instant::now();
    let r = rt
        .block_on(db.write(move |c| {
            storefleet_controller::assets::import::import(c, &a, false, "bench", 4)
        }))
        .unwrap()
        .unwrap();
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{backend}: {} asset records imported in {secs:.2} s ({:.0} rows/s), {} in the database",
        r.created,
        f64::from(r.created) / secs,
        count(db)
    );
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let db = storefleet_controller::db::open(&dir.path().join("bench.db"), false).unwrap();
    run("SQLite", &db);
    drop(db);
    if let Some(test) = storefleet_storage::postgres::testing::database("import bench") {
        let db = storefleet_controller::db::connect(&test.url, None).unwrap();
        run("PostgreSQL", &db);
    }
}
