//! Spare parts on the ticket page: what the fix needs, what was ordered, what was fitted;
//! engineers (on their own tickets) and dispatchers add them and move them along.

use axum::extract::{Form, Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use serde::Deserialize;

use super::{fmt, PageError};
use crate::api::Principal;
use crate::service::tickets as service;
use crate::state::AppState;
use crate::tickets::parts::{NewPart, PartChange, PartState};
use crate::tickets::Ticket;

/// What moves a part on from each state.
fn next(s: PartState) -> &'static [PartState] {
    match s {
        PartState::Needed => &[PartState::Ordered, PartState::Used, PartState::Returned],
        PartState::Ordered => &[PartState::Used, PartState::Returned],
        PartState::Used => &[PartState::Returned],
        PartState::Returned => &[PartState::Needed],
    }
}

/// The parts section; with forms when the viewer may work the ticket.
pub(super) fn section(t: &Ticket, may_work: bool, now: i64) -> Markup {
    html! {
        section #parts {
            h2 { "Spare parts" }
            @if t.parts.is_empty() { p.muted { "None noted." } } @else {
                table {
                    tr { th { "Part" } th { "Qty" } th { "State" } th { "Note" } th { "By" } @if may_work { th {} } }
                    @for p in &t.parts {
                        tr {
                            td { (p.part) } td { (p.quantity) }
                            td { span class={"badge part-" (p.state.as_str())} { (p.state.as_str()) } }
                            td { (p.note) }
                            td.muted { (p.updated_by) ", " (fmt::ago(now, Some(p.updated_at))) }
                            @if may_work {
                                td {
                                    @for n in next(p.state) {
                                        form.inline method="post" action={"/tickets/" (t.id) "/parts/" (p.id)} {
                                            input type="hidden" name="state" value=(n.as_str());
                                            button type="submit" { (n.as_str()) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if may_work {
                form.filters #add-part method="post" action={"/tickets/" (t.id) "/parts"} {
                    label { "Part" input name="part" required maxlength="120" placeholder="Epson 2141001 cutter unit"; }
                    label { "Qty" input type="number" name="quantity" value="1" min="1" max="1000"; }
                    label { "State" select name="state" {
                        @for s in [PartState::Needed, PartState::Ordered, PartState::Used] { option value=(s.as_str()) { (s.as_str()) } }
                    } }
                    label { "Note" input name="note" maxlength="500" placeholder="order number, supplier"; }
                    button type="submit" { "Add part" }
                }
            }
        }
    }
}

/// The add form.
#[derive(Debug, Deserialize)]
pub(super) struct AddForm {
    part: String,
    quantity: u32,
    state: PartState,
    #[serde(default)]
    note: String,
}

pub(super) async fn add(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<i64>,
    Form(f): Form<AddForm>,
) -> Response {
    let n = NewPart {
        part: f.part,
        quantity: f.quantity,
        state: f.state,
        note: f.note,
    };
    match service::add_part(&s, &p, id, n).await {
        Ok(_) => Redirect::to(&format!("/tickets/{id}#parts")).into_response(),
        Err(e) => PageError::from(e).into_response(),
    }
}

/// A state button.
#[derive(Debug, Deserialize)]
pub(super) struct ChangeForm {
    state: PartState,
}

pub(super) async fn change(
    State(s): State<AppState>,
    p: Principal,
    Path((id, part)): Path<(i64, i64)>,
    Form(f): Form<ChangeForm>,
) -> Response {
    let ch = PartChange {
        state: f.state,
        note: None,
    };
    match service::change_part(&s, &p, id, part, ch).await {
        Ok(_) => Redirect::to(&format!("/tickets/{id}#parts")).into_response(),
        Err(e) => PageError::from(e).into_response(),
    }
}
