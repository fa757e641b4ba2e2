//! CSV imports through the API and the CLI: checked whole before anything is written, a bad
//! row named by its line and column, nothing imported when any row is bad, dry runs that
//! write nothing, and an asset export that can be edited and imported again.

use storefleet_controller::client::imports::ImportReport;
use storefleet_controller::client::Error;

use crate::common::Controller;

async fn import(
    ctl: &Controller,
    what: &str,
    csv: &str,
    dry_run: bool,
) -> Result<ImportReport, String> {
    match ctl
        .client()
        .import(what, csv.as_bytes().to_vec(), dry_run)
        .await
    {
        Ok(r) => Ok(r),
        Err(Error::Api { status, message }) => {
            assert_eq!(status, 422, "{message}");
            Err(message)
        }
        Err(e) => panic!("{e}"),
    }
}

fn counts(r: &ImportReport) -> (u32, u32, u32, u32) {
    (r.rows, r.created, r.updated, r.unchanged)
}

const STORES: &str = "code,name,region,timezone,trading_hours,tags,lat,lon\r\n\
N1,\"Hamburg, Altona\",north,Europe/Berlin,Mo-Sa 08:00-20:00,pilot;mall,53.55,9.93\r\n\
N2,Kiel,north,Europe/Berlin,,,54.32,10.12\r\n\
\r\n\
S1,Munich,south,Europe/Berlin,Mo-Su 07:00-22:00,,,\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_and_assets_import_from_csv_all_or_nothing_with_dry_runs() {
    let ctl = Controller::start(None);
    let dry = import(&ctl, "stores", STORES, true).await.unwrap();
    assert!(dry.dry_run);
    assert_eq!(counts(&dry), (3, 3, 0, 0));
    assert_eq!(
        ctl.get("/api/v1/stores").await,
        serde_json::json!([]),
        "a dry run writes nothing"
    );
    let done = import(&ctl, "stores", STORES, false).await.unwrap();
    assert_eq!(counts(&done), (3, 3, 0, 0));
    let n1 = ctl.get("/api/v1/stores/N1").await;
    assert_eq!(n1["name"], "Hamburg, Altona");
    assert_eq!(n1["tags"], serde_json::json!(["pilot", "mall"]));
    assert_eq!(n1["place"]["lat"], 53.55);
    assert_eq!(
        ctl.get("/api/v1/stores/S1").await["place"],
        serde_json::Value::Null
    );
    // Again: as they are. A row with only some fields changes those.
    assert_eq!(
        counts(&import(&ctl, "stores", STORES, false).await.unwrap()),
        (3, 0, 0, 3)
    );
    let r = import(&ctl, "stores", "code,address\nN2,Holstenstrasse 1\n", false)
        .await
        .unwrap();
    assert_eq!(counts(&r), (1, 0, 1, 0));
    assert_eq!(ctl.get("/api/v1/stores/N2").await["name"], "Kiel", "kept");

    // One good row among bad ones: nothing imported, each bad row named.
    let bad = "code,name,timezone,lat,lon\n\
N9,Good Store,UTC,,\n\
N10,Bad Zone,Mars/Olympus,,\n\
N11,Half a place,UTC,53.1,\n\
N9,Twice,UTC,,\n\
N12,,UTC,,\n\
N13,Off the map,UTC,95,10\n";
    let e = import(&ctl, "stores", bad, false).await.unwrap_err();
    for said in [
        "5 rows refused, nothing imported",
        "line 3: store N10",
        "line 4 lat: coordinates: give both",
        "line 5 code: store N9 is also on line 2",
        "line 6 name: store N12 is new: it needs a name",
        "line 7 lat: latitude 95",
    ] {
        assert!(e.contains(said), "{said:?} in {e}");
    }
    let (s, _) = ctl.call("GET", "/api/v1/stores/N9", None, true).await;
    assert_eq!(s, 404, "the good row was not imported either");
    let e = import(&ctl, "stores", "code,nmae\nX1,y\n", false)
        .await
        .unwrap_err();
    assert!(e.contains("line 1 nmae: unknown column"), "{e}");

    // New stores opening from a format: an unknown format or day is named; a store with an
    // opening changes its day alone.
    let (s, v) = ctl
        .call(
            "PUT",
            "/api/v1/formats/mini",
            Some(&serde_json::json!({"name": "mini", "devices": [{"class": "pos"}]})),
            true,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let opening = "code,name,timezone,format,opens_on\n\
O1,New One,Europe/Berlin,mini,2027-03-01\n\
O2,New Two,Europe/Berlin,maxi,2027-03-01\n\
O3,New Three,Europe/Berlin,mini,2027-02-30\n\
O4,New Four,Europe/Berlin,,2027-03-01\n";
    let e = import(&ctl, "stores", opening, false).await.unwrap_err();
    for said in [
        "line 3 format: no format \"maxi\"",
        "line 4 opens_on: opens_on",
        "line 5 format: an opening needs both",
    ] {
        assert!(e.contains(said), "{said:?} in {e}");
    }
    let good = opening.lines().take(2).collect::<Vec<_>>().join("\n");
    assert_eq!(
        counts(&import(&ctl, "stores", &good, false).await.unwrap()),
        (1, 1, 0, 0)
    );
    let r = import(&ctl, "stores", "code,opens_on\nO1,2027-03-08\n", false)
        .await
        .unwrap();
    assert_eq!(counts(&r), (1, 0, 1, 0));
    let board = ctl.get("/api/v1/openings").await;
    assert_eq!(board[0]["store"], "O1", "{board}");
    assert_eq!(board[0]["opens_on"], "2027-03-08", "{board}");
    assert_eq!(board[0]["format"], "mini");
    assert_eq!(
        counts(
            &import(&ctl, "stores", "code,opens_on\nO1,2027-03-08\n", false)
                .await
                .unwrap()
        ),
        (1, 0, 0, 1),
        "the same opening again is unchanged"
    );

    // Assets: new devices by store and slot, then the export edited and imported again.
    let devices = "store,slot,class,vendor,model,serial,lifecycle,purchase_date,warranty_end\n\
N1,printer-9,receipt-printer,Epson,TM-T88VI,X5E001,active,2026-01-15,2029-01-15\n\
N1,scale-2,scale,Bizerba,KH II,BZ77,spare,,\n";
    let r = import(&ctl, "assets", devices, true).await.unwrap();
    assert_eq!(counts(&r), (2, 2, 0, 0));
    assert_eq!(
        ctl.get("/api/v1/assets?store=N1").await["total"],
        0,
        "dry run"
    );
    assert_eq!(
        counts(&import(&ctl, "assets", devices, false).await.unwrap()),
        (2, 2, 0, 0)
    );
    let page = ctl.get("/api/v1/assets?store=N1").await;
    assert_eq!(page["total"], 2, "{page}");
    let printer = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["slot"] == "printer-9")
        .unwrap()
        .clone();
    assert_eq!(printer["warranty_end"], "2029-01-15");
    let (_, csv) = ctl
        .call("GET", "/api/v1/assets.csv?store=N1", None, true)
        .await;
    let csv = csv.as_str().unwrap().replace(",spare,", ",retired,");
    let r = import(&ctl, "assets", &csv, false).await.unwrap();
    assert_eq!(
        counts(&r),
        (2, 0, 1, 1),
        "the export, one field changed: {csv}"
    );
    let id = printer["id"].as_i64().unwrap();
    let history = ctl.get(&format!("/api/v1/assets/{id}/history")).await;
    assert!(
        history
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["field"] == "created" && h["after"].as_str().unwrap().contains("by import")),
        "{history}"
    );

    let bad = format!(
        "id,store,slot,class,purchase_date,lifecycle\n\
,N1,fridge-1,fridge,,\n\
,N404,pos-1,pos,,\n\
,N1,pos-2,,,\n\
{id},N2,,,,\n\
999999,,,,,\n\
,N1,pos-3,pos,2026-13-01,\n\
,N1,pos-4,pos,,lost\n"
    );
    let e = import(&ctl, "assets", &bad, false).await.unwrap_err();
    for said in [
        "6 rows refused",
        "line 3 store: no store \"N404\"",
        "line 4 class: N1/pos-2 is new: it needs a class",
        "line 5 store: asset",
        "line 6 id: no asset 999999",
        "line 7 purchase_date: \"2026-13-01\": YYYY-MM-DD",
        "line 8 lifecycle: \"lost\"",
    ] {
        assert!(e.contains(said), "{said:?} in {e}");
    }
    assert_eq!(
        ctl.get("/api/v1/assets?store=N1").await["total"],
        2,
        "the good fridge row was not imported"
    );

    // Only as CSV: JSON (or a cross-site form's text/plain) is refused.
    let (s, v) = ctl
        .call(
            "POST",
            "/api/v1/stores/import",
            Some(&serde_json::json!({"code": "X"})),
            true,
        )
        .await;
    assert_eq!(s, 415, "{v}");

    // The CLI: a dry run says what would happen; a bad file fails naming its lines.
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("stores.csv");
    std::fs::write(&good, "code,name\nE1,Essen\n").unwrap();
    let (ok, out, err) = ctl.cli(&["stores", "import", good.to_str().unwrap(), "--dry-run"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("1 stores would be created") && out.contains("dry run"),
        "{out}"
    );
    let wrong = dir.path().join("bad.csv");
    std::fs::write(&wrong, "code,name\nE2,\n").unwrap();
    let (ok, _, err) = ctl.cli(&["stores", "import", wrong.to_str().unwrap()]);
    assert!(!ok && err.contains("line 2 name"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_record_is_made_by_hand_in_the_api_the_cli_and_the_ui() {
    let ctl = Controller::start(None);
    crate::tickets::store(&ctl, "H1", "north").await;
    let (s, a) = ctl
        .call(
            "POST",
            "/api/v1/assets",
            Some(&serde_json::json!({"store": "H1", "slot": "scale-3", "class": "scale", "vendor": "Bizerba", "warranty_end": "2028-06-30"})),
            true,
        )
        .await;
    assert_eq!(s, 201, "{a}");
    assert_eq!(
        (a["kind"].as_str(), a["lifecycle"].as_str()),
        (Some("device"), Some("active"))
    );
    // The slot has its record now; unknown stores and bad fields are named.
    for (body, status, says) in [
        (
            serde_json::json!({"store": "H1", "slot": "scale-3", "class": "scale"}),
            409,
            "already has asset",
        ),
        (
            serde_json::json!({"store": "H9", "slot": "x", "class": "scale"}),
            404,
            "no store \"H9\"",
        ),
        (
            serde_json::json!({"store": "H1", "slot": "pos 1", "class": "pos"}),
            400,
            "slot \"pos 1\"",
        ),
        (
            serde_json::json!({"store": "H1", "slot": "pos-1", "class": " "}),
            400,
            "class",
        ),
        (
            serde_json::json!({"store": "H1", "slot": "pos-1", "class": "pos", "warranty_end": "soon"}),
            400,
            "warranty_end",
        ),
        (
            serde_json::json!({"store": "H1", "slot": "pos-1", "class": "pos", "colour": "red"}),
            400,
            "colour",
        ),
    ] {
        let (s, v) = ctl.call("POST", "/api/v1/assets", Some(&body), true).await;
        assert_eq!(s, status, "{body}: {v}");
        assert!(v["error"].as_str().unwrap().contains(says), "{body}: {v}");
    }
    let (ok, out, err) = ctl.cli(&[
        "assets",
        "add",
        "--store",
        "H1",
        "--slot",
        "printer-2",
        "--class",
        "receipt-printer",
        "--serial",
        "X5E9",
    ]);
    assert!(ok, "{err}");
    assert!(
        out.contains("created: receipt-printer printer-2 at H1"),
        "{out}"
    );
    // The registry's form, as a dispatcher's browser posts it.
    let cookie = ctl.admin_session().await;
    let form = "store=H1&slot=ups-2&class=ups&vendor=Eaton&model=&serial=GX1&lifecycle=spare&purchase_date=&warranty_end=";
    let r = ctl
        .send(
            storefleet_support::http::Request {
                method: "POST",
                url: &format!("{}/assets", ctl.url()),
                headers: vec![("cookie", cookie.clone()), ("origin", ctl.url())],
                body: Some((
                    "application/x-www-form-urlencoded",
                    form.as_bytes().to_vec(),
                )),
            },
            std::time::Duration::from_secs(30),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 303, "{}", r.text());
    let page = ctl.get("/api/v1/assets?store=H1").await;
    assert_eq!(page["total"], 3, "{page}");
    let ups = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["slot"] == "ups-2")
        .unwrap()
        .clone();
    assert_eq!(
        (ups["vendor"].as_str(), ups["lifecycle"].as_str()),
        (Some("Eaton"), Some("spare"))
    );
    let history = ctl
        .get(&format!("/api/v1/assets/{}/history", ups["id"]))
        .await;
    assert!(
        history[0]["after"].as_str().unwrap().contains("by hand"),
        "{history}"
    );
    assert_eq!(history[0]["actor"], "user:admin", "{history}");
    let (_, html) = ctl.page(&cookie, "/assets").await;
    assert!(
        html.contains("id=\"new-asset\""),
        "a dispatcher sees the form"
    );
}
