"""The desk's commands (`bianmin desk ...`) and `bianmin orders show`: one transaction per command, no Prefect."""
from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

import typer
from rich.table import Table
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from commands.common import (command_group, console, emit, fail, local_text, locale, parse_amount, parse_at, runtime,
                               t)
from models import desk, rules
from models.calendar import CalendarError
from models.ledger.db import transaction, unusable
from models.errors import DomainError

T = TypeVar("T")

desk_app = command_group("The CS desk: register, issue, accept, collect, hand over, call back.")
receipts_app = command_group("Receipt books: issue, void, return.")
orders_app = command_group("Work orders.")
desk_app.add_typer(receipts_app, name="receipts")

JSON = typer.Option(False, "--json", help="One JSON object.")
AT = typer.Option(None, "--at", help="ISO time of the event (local unless an offset is given); default now.")
BY = typer.Option(..., "--by", help="Staff code of who does it.")


def desk_call(op: Callable[[Any], T]) -> T:
    """Run `op(session)` as one transaction; a refusal or database error is one line and exit 2."""
    rt = runtime()
    try:
        rt.calendar  # a broken override file is a bad argument, not a traceback
        with transaction(rt.sessions) as s:
            return op(s)
    except DomainError as exc:
        fail(exc.message(locale()))
    except CalendarError as exc:
        fail(str(exc))
    except IntegrityError as exc:
        # two desks numbering the same day at once: the unique constraint refused the second
        fail(t("cli.desk.conflict", name=type(exc.orig).__name__))
    except SQLAlchemyError as exc:  # the ledger failed mid-command (opening it is checked by the runtime)
        fail(unusable(exc, rt.settings.effective_database_url).message(locale()))


def _say(as_json: bool, data: dict[str, Any], code: str, **values: Any) -> None:
    emit(as_json, data, lambda: console.print(t(code, **values), markup=False, highlight=False, soft_wrap=True))


# -- desk ----------------------------------------------------------------------------------------------------
@desk_app.command("register")
def register_cmd(office: str = typer.Option(..., "--office"), by: str = BY,
                 channel: str = typer.Option(..., "--channel", help="phone|walk_in"),
                 resident: str = typer.Option(..., "--resident"), address: str = typer.Option(..., "--address"),
                 phone: str = typer.Option(..., "--phone"),
                 category: str = typer.Option(..., "--category", help="plumbing|electrical|cleaning|greening"),
                 description: str = typer.Option(..., "--description"),
                 price: str | None = typer.Option(None, "--price", help="Price-list code."),
                 fee: str | None = typer.Option(None, "--fee", help="Agreed fee, if not the price list's."),
                 preferred: str | None = typer.Option(None, "--preferred", help="Resident's preferred time, ISO."),
                 community: str | None = typer.Option(None, "--community"),
                 at: str | None = AT, as_json: bool = JSON) -> None:
    """Register a resident's request (登记表); CS only."""
    when, amount = parse_at(at), parse_amount(fee, "--fee")
    pref = parse_at(preferred, default_now=False, field="--preferred")
    reply_minutes = runtime().settings.reply_minutes

    def op(s) -> dict[str, Any]:
        r = desk.register(s, office=office, by=by, channel=channel, resident=resident, address=address, phone=phone,
                          category=category, description=description, at=when, price=price, fee=amount,
                          preferred=pref, community=community)
        due = rules.reply_due(r.received_at, reply_minutes=reply_minutes) if channel == "phone" else None
        return {"request": r.number, "state": "registered", "agreed_fee": r.agreed_fee, "received_at": when,
                "reply_due": due}

    d = desk_call(op)
    due = t("cli.desk.reply_due", due=local_text(d["reply_due"])) if d["reply_due"] else ""
    _say(as_json, d, "cli.desk.registered", request=d["request"], agreed_fee=d["agreed_fee"], due=due)


@desk_app.command("reply")
def reply_cmd(request: str = typer.Argument(..., help="Request number."), by: str = BY, at: str | None = AT,
              as_json: bool = JSON) -> None:
    """Record the phone reply to the resident (due within the reply minutes)."""
    when = parse_at(at)
    minutes = runtime().settings.reply_minutes

    def op(s) -> dict[str, Any]:
        r = desk.reply(s, request=request, by=by, at=when)
        late = when > rules.reply_due(r.received_at, reply_minutes=minutes)
        return {"request": r.number, "state": "replied", "replied_at": when, "late": late}

    d = desk_call(op)
    _say(as_json, d, "cli.desk.replied_late" if d["late"] else "cli.desk.replied", request=d["request"])


@desk_app.command("issue")
def issue_cmd(request: str = typer.Argument(...), by: str = BY, worker: str = typer.Option(..., "--worker"),
              scheduled: str = typer.Option(..., "--scheduled", help="Agreed visiting time, ISO."),
              at: str | None = AT, as_json: bool = JSON) -> None:
    """Issue the work order (通知单) to the category's department; prints its number."""
    when, sched = parse_at(at), parse_at(scheduled, default_now=False, field="--scheduled")

    def op(s) -> dict[str, Any]:
        o = desk.issue_order(s, request=request, by=by, worker=worker, scheduled=sched, at=when)
        return {"order": o.number, "request": request, "state": "issued", "department": o.department,
                "worker": worker, "scheduled_for": sched, "fee": o.fee}

    d = desk_call(op)
    _say(as_json, d, "cli.desk.issued", order=d["order"], department=d["department"], worker=worker,
         sched=local_text(sched))


@desk_app.command("complete")
def complete_cmd(order: str = typer.Argument(...), by: str = BY, at: str | None = AT, as_json: bool = JSON) -> None:
    """Record that the work is finished."""
    when = parse_at(at)
    d = desk_call(lambda s: {"order": desk.complete(s, order=order, by=by, at=when).number, "state": "completed",
                             "completed_at": when})
    _say(as_json, d, "cli.desk.completed", order=d['order'])


@desk_app.command("accept")
def accept_cmd(order: str = typer.Argument(...),
               signed_by: str = typer.Option(..., "--signed-by", help="The resident's name as signed."),
               at: str | None = AT, as_json: bool = JSON) -> None:
    """The resident's acceptance signature; the callback becomes owed."""
    when = parse_at(at)
    rt = runtime()

    def op(s) -> dict[str, Any]:
        o = desk.accept(s, order=order, signed_by=signed_by, at=when, calendar=rt.calendar,
                        callback_workdays=rt.settings.callback_workdays)
        due = rules.callback_due(when, rt.calendar, workdays=rt.settings.callback_workdays)
        return {"order": o.number, "state": "accepted", "accepted_by": signed_by, "callback_due": due}

    d = desk_call(op)
    _say(as_json, d, "cli.desk.accepted", order=d["order"], signed_by=signed_by,
         callback_due=local_text(d["callback_due"]))


@receipts_app.command("issue")
def receipts_issue(by: str = BY, to: str = typer.Option(..., "--to"),
                   first: str = typer.Option(..., "--first", help="First receipt number (digits)."),
                   count: int = typer.Option(..., "--count"), at: str | None = AT, as_json: bool = JSON) -> None:
    """Hand a run of pre-numbered receipts to a worker (or a CS clerk)."""
    when = parse_at(at)

    def op(s) -> dict[str, Any]:
        book = desk.issue_receipts(s, by=by, to=to, first=first, count=count, at=when)
        width = len(first.strip())
        last = f"{book.first_serial + book.count - 1:0{width}d}"
        return {"first": first.strip(), "last": last, "count": book.count, "holder": to, "state": "issued"}

    d = desk_call(op)
    _say(as_json, d, "cli.desk.receipts_issued", first=d['first'], last=d['last'], count=d['count'], to=to)


def _retire(kind: str, number: str, by: str, reason: str | None, at: str | None, as_json: bool) -> None:
    when = parse_at(at)
    fn = desk.void_receipt if kind == "void" else desk.return_receipt
    d = desk_call(lambda s: {"receipt": fn(s, number=number, by=by, at=when, reason=reason).number,
                             "state": "voided" if kind == "void" else "returned"})
    _say(as_json, d, "cli.desk.receipt_voided" if kind == "void" else "cli.desk.receipt_returned", number=number)


@receipts_app.command("void")
def receipts_void(number: str = typer.Argument(...), by: str = BY,
                  reason: str | None = typer.Option(None, "--reason"), at: str | None = AT,
                  as_json: bool = JSON) -> None:
    """Void an unused receipt."""
    _retire("void", number, by, reason, at, as_json)


@receipts_app.command("return")
def receipts_return(number: str = typer.Argument(...), by: str = BY,
                    reason: str | None = typer.Option(None, "--reason"), at: str | None = AT,
                    as_json: bool = JSON) -> None:
    """Return an unused receipt to the desk."""
    _retire("return", number, by, reason, at, as_json)


@desk_app.command("collect")
def collect_cmd(order: str = typer.Argument(...), by: str = BY, receipt: str = typer.Option(..., "--receipt"),
                amount: str = typer.Option(..., "--amount"),
                method: str = typer.Option(..., "--method", help="cash|wechat|alipay|card"),
                reason: str | None = typer.Option(None, "--reason", help="Why the amount differs from the fee."),
                at: str | None = AT, as_json: bool = JSON) -> None:
    """Collect the fee after acceptance, on a receipt."""
    when, paid = parse_at(at), parse_amount(amount, "--amount")
    rt = runtime()

    def op(s) -> dict[str, Any]:
        r = desk.collect(s, order=order, by=by, receipt=receipt, amount=paid, method=method, at=when, reason=reason)
        due = rules.cash_due(when, rt.calendar, cutoff=rt.settings.cash_cutoff) if method == "cash" else None
        return {"receipt": r.number, "order": order, "amount": r.amount, "method": method, "state": "used",
                "cash_due": due}

    d = desk_call(op)
    due = t("cli.desk.cash_due", due=local_text(d["cash_due"])) if d["cash_due"] else ""
    _say(as_json, d, "cli.desk.collected", order=order, amount=d["amount"], method=method, receipt=d["receipt"],
         due=due)


@desk_app.command("handover")
def handover_cmd(by: str = BY, cashier: str = typer.Option(..., "--cashier"),
                 receipts: str = typer.Option(..., "--receipts", help="N1,N2,..."),
                 counted: str = typer.Option(..., "--counted", help="What the cashier counted."),
                 at: str | None = AT, as_json: bool = JSON) -> None:
    """Hand cash to a finance cashier; a shortfall is recorded."""
    when, amount = parse_at(at), parse_amount(counted, "--counted")
    numbers = [n.strip() for n in receipts.split(",") if n.strip()]

    def op(s) -> dict[str, Any]:
        h = desk.handover(s, by=by, cashier=cashier, receipts=numbers, counted=amount, at=when)
        return {"handover": h.number, "receipts": numbers, "declared": h.declared_amount,
                "counted": h.counted_amount, "shortfall": h.declared_amount - h.counted_amount,
                "state": "confirmed"}

    d = desk_call(op)
    short = t("cli.desk.short_by", shortfall=d["shortfall"]) if d["shortfall"] else ""
    _say(as_json, d, "cli.desk.handover", handover=d["handover"], declared=d["declared"], counted=d["counted"],
         short=short)


@desk_app.command("callback")
def callback_cmd(order: str = typer.Argument(...), by: str = BY,
                 outcome: str = typer.Option(..., "--outcome", help="satisfied|unsatisfied|unreachable"),
                 note: str | None = typer.Option(None, "--note"), at: str | None = AT, as_json: bool = JSON) -> None:
    """Record the return visit; unsatisfied prints the free rework order's number."""
    when = parse_at(at)
    rt = runtime()

    def op(s) -> dict[str, Any]:
        out = desk.callback(s, order=order, by=by, outcome=outcome, at=when, calendar=rt.calendar, note=note,
                            callback_workdays=rt.settings.callback_workdays,
                            rework_within=timedelta(hours=rt.settings.rework_due_hours))
        rework = out.rework_order
        return {"order": order, "outcome": outcome, "state": "done",
                "rework_order": rework.number if rework else None,
                "rework_scheduled": rework.scheduled_for if rework else None}

    d = desk_call(op)
    if d["rework_order"]:
        _say(as_json, d, "cli.desk.callback_rework", order=order, rework_order=d['rework_order'])
    else:
        _say(as_json, d, "cli.desk.callback", order=order, outcome=outcome)


@desk_app.command("report")
def report_cmd(by: str = BY, dept: str = typer.Option(..., "--dept", help="engineering|cleaning"),
               worker: str = typer.Option(..., "--worker"), address: str = typer.Option(..., "--address"),
               description: str = typer.Option(..., "--description"),
               order: str | None = typer.Option(None, "--order"), fee: str | None = typer.Option(None, "--fee"),
               at: str | None = AT, as_json: bool = JSON) -> None:
    """A department's own record of a job, for the monthly reconciliation."""
    when, amount = parse_at(at), parse_amount(fee, "--fee")
    d = desk_call(lambda s: {"report": desk.department_report(
        s, by=by, department=dept, worker=worker, address=address, description=description, at=when, order=order,
        fee=amount).reference, "department": dept, "order": order, "state": "recorded"})
    _say(as_json, d, "cli.desk.report_recorded", report=d['report'])


# -- orders show ---------------------------------------------------------------------------------------------
@orders_app.command("show")
def orders_show(order: str = typer.Argument(..., help="Work order (or request) number."),
                as_json: bool = JSON) -> None:
    """The whole story of a job: request, orders and rework, receipts, handover, callbacks, audit trail."""
    from models.desk.story import order_story

    story = desk_call(lambda s: order_story(s, number=order))
    emit(as_json, story, lambda: _render_story(story))


def _render_story(story) -> None:
    def line(text: str, style: str | None = None) -> None:
        console.print(text, style=style, markup=False, highlight=False, soft_wrap=True)

    r = story.request
    line(t("cli.story.request_phone" if r.channel == "phone" else "cli.story.request_walk_in", number=r.number,
           office=r.office), "bold")
    line(t("cli.story.registered", received_at=local_text(r.received_at), received_by=r.received_by,
           resident=r.resident, address=r.address, phone=r.phone, category=r.category, description=r.description,
           agreed_fee=r.agreed_fee))
    if r.channel == "phone":
        line(t("cli.story.replied", replied_at=local_text(r.replied_at) or t("cli.story.not_replied"),
               replied_by=r.replied_by or ""))
    for o in story.orders:
        kind = t("cli.story.rework_order", rework_of=o.rework_of) if o.rework_of else \
            t("cli.story.work_order")
        # the kind starts the line: capitalised in English ("Work order ..."); Chinese has no case
        line(t("cli.story.order", kind=kind[:1].upper() + kind[1:], number=o.number, department=o.department,
               worker=o.worker, fee=o.fee), "bold")
        none = t("cli.story.no_time")
        line(t("cli.story.order_times", issued_at=local_text(o.issued_at), scheduled_for=local_text(o.scheduled_for),
               completed_at=local_text(o.completed_at) or none, accepted_at=local_text(o.accepted_at) or none,
               accepted_by=o.accepted_by or ""))
    for x in story.receipts:
        why = f" ({x.reason})" if x.reason else ""
        line(t("cli.story.receipt", number=x.number, order=x.order, amount=x.amount, method=x.method,
               collected_at=local_text(x.collected_at), collected_by=x.collected_by, state=x.state, why=why,
               handover=x.handover or t("cli.story.not_handed_over")))
    for h in story.handovers:
        line(t("cli.story.handover", number=h.number, handed_by=h.handed_by, cashier=h.cashier,
               handed_at=local_text(h.handed_at), declared=h.declared, counted=h.counted)
             + (t("cli.story.confirmed") if h.confirmed_at else ""))
    for c in story.callbacks:
        after = t("cli.story.rework", rework_order=c.rework_order) if c.rework_order else ""
        note = f" ({c.note})" if c.note else ""
        if c.done_at:
            line(t("cli.story.callback_done", order=c.order, done_at=local_text(c.done_at), done_by=c.done_by,
                   outcome=c.outcome, note=note, after=after, due_at=local_text(c.due_at)))
        else:
            line(t("cli.story.callback_owed", order=c.order, due_at=local_text(c.due_at)))
    tb = Table(title=t("cli.story.audit_trail"), title_justify="left")
    for c in (t("cli.story.at"), t("cli.story.actor"), t("cli.story.action"), t("cli.story.entity")):
        tb.add_column(c, overflow="fold")
    for e in story.events:
        tb.add_row(local_text(e.at), e.actor, e.action, f"{e.entity} {e.ref}")
    console.print(tb)


def register(root: typer.Typer, run: typer.Typer) -> None:
    """Add this module's commands to the root app and the `run` group."""
    root.add_typer(desk_app, name="desk")
    root.add_typer(orders_app, name="orders")
