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
        fail(t(f"与已有记录冲突,请重试:{type(exc.orig).__name__}",
               f"Conflicts with an existing record, please retry: {type(exc.orig).__name__}"))
    except SQLAlchemyError as exc:  # the ledger failed mid-command (opening it is checked by the runtime)
        fail(unusable(exc, rt.settings.effective_database_url).message(locale()))


def _say(as_json: bool, data: dict[str, Any], zh: str, en: str) -> None:
    emit(as_json, data, lambda: console.print(t(zh, en), markup=False, highlight=False, soft_wrap=True))


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
    due = f";{local_text(d['reply_due'])} 前回复" if d["reply_due"] else ""
    due_en = f"; reply due {local_text(d['reply_due'])}" if d["reply_due"] else ""
    _say(as_json, d, f"已登记 {d['request']},约定费用 {d['agreed_fee']} 元{due}",
         f"Registered {d['request']}, agreed fee {d['agreed_fee']}{due_en}")


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
    _say(as_json, d, f"{d['request']} 已回复" + (",已超时" if d["late"] else ""),
         f"{d['request']} replied" + (" (late)" if d["late"] else ""))


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
    _say(as_json, d, f"已开通知单 {d['order']}({d['department']},{worker},{local_text(sched)})",
         f"Work order {d['order']} issued ({d['department']}, {worker}, {local_text(sched)})")


@desk_app.command("complete")
def complete_cmd(order: str = typer.Argument(...), by: str = BY, at: str | None = AT, as_json: bool = JSON) -> None:
    """Record that the work is finished."""
    when = parse_at(at)
    d = desk_call(lambda s: {"order": desk.complete(s, order=order, by=by, at=when).number, "state": "completed",
                             "completed_at": when})
    _say(as_json, d, f"{d['order']} 已完工", f"{d['order']} completed")


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
    _say(as_json, d, f"{d['order']} 已验收({signed_by} 签字),{local_text(d['callback_due'])} 前回访",
         f"{d['order']} accepted (signed {signed_by}); callback due {local_text(d['callback_due'])}")


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
    _say(as_json, d, f"票据 {d['first']}–{d['last']}({d['count']} 张)已发给 {to}",
         f"Receipts {d['first']}–{d['last']} ({d['count']}) issued to {to}")


def _retire(kind: str, number: str, by: str, reason: str | None, at: str | None, as_json: bool) -> None:
    when = parse_at(at)
    fn = desk.void_receipt if kind == "void" else desk.return_receipt
    d = desk_call(lambda s: {"receipt": fn(s, number=number, by=by, at=when, reason=reason).number,
                             "state": "voided" if kind == "void" else "returned"})
    _say(as_json, d, f"票据 {number} 已{'作废' if kind == 'void' else '交回'}",
         f"Receipt {number} {d['state']}")


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
    due = f";现金须于 {local_text(d['cash_due'])} 前交财务" if d["cash_due"] else ""
    due_en = f"; cash due at finance by {local_text(d['cash_due'])}" if d["cash_due"] else ""
    _say(as_json, d, f"{order} 收费 {d['amount']} 元({method}),票据 {d['receipt']}{due}",
         f"{order}: {d['amount']} collected ({method}) on receipt {d['receipt']}{due_en}")


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
    short = f",短款 {d['shortfall']} 元" if d["shortfall"] else ""
    short_en = f", short by {d['shortfall']}" if d["shortfall"] else ""
    _say(as_json, d, f"交款 {d['handover']}:应交 {d['declared']} 元,实点 {d['counted']} 元{short}",
         f"Handover {d['handover']}: declared {d['declared']}, counted {d['counted']}{short_en}")


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
        _say(as_json, d, f"{order} 回访:不满意;已开无偿返修单 {d['rework_order']}",
             f"{order} callback: unsatisfied; free rework order {d['rework_order']}")
    else:
        _say(as_json, d, f"{order} 回访:{outcome}", f"{order} callback: {outcome}")


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
    _say(as_json, d, f"已记录部门工作 {d['report']}", f"Department report {d['report']} recorded")


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
    line(t(f"登记 {r.number}({r.office},{'来电' if r.channel == 'phone' else '来访'})",
           f"Request {r.number} ({r.office}, {r.channel})"), "bold")
    line(t(f"  {local_text(r.received_at)} {r.received_by} 登记:{r.resident},{r.address},{r.phone};"
           f"{r.category}:{r.description};约定 {r.agreed_fee} 元",
           f"  {local_text(r.received_at)} registered by {r.received_by}: {r.resident}, {r.address}, {r.phone}; "
           f"{r.category}: {r.description}; agreed fee {r.agreed_fee}"))
    if r.channel == "phone":
        line(t(f"  回复:{local_text(r.replied_at) or '未回复'} {r.replied_by or ''}",
               f"  replied: {local_text(r.replied_at) or 'not yet'} {r.replied_by or ''}"))
    for o in story.orders:
        kind = t(f"返修单(返修自 {o.rework_of})", f"rework order (of {o.rework_of})") if o.rework_of else \
            t("通知单", "work order")
        line(t(f"{kind} {o.number}:{o.department},{o.worker},费用 {o.fee} 元",
               f"{kind[:1].upper()}{kind[1:]} {o.number}: {o.department}, {o.worker}, fee {o.fee}"), "bold")
        line(t(f"  开单 {local_text(o.issued_at)},约定 {local_text(o.scheduled_for)},"
               f"完工 {local_text(o.completed_at) or '—'},验收 {local_text(o.accepted_at) or '—'} {o.accepted_by or ''}",
               f"  issued {local_text(o.issued_at)}, scheduled {local_text(o.scheduled_for)}, "
               f"completed {local_text(o.completed_at) or '-'}, accepted {local_text(o.accepted_at) or '-'} "
               f"{o.accepted_by or ''}"))
    for x in story.receipts:
        why = f" ({x.reason})" if x.reason else ""
        line(t(f"票据 {x.number}:{x.order} 收 {x.amount} 元({x.method}),{local_text(x.collected_at)} "
               f"{x.collected_by},{x.state}{why};交款 {x.handover or '未交'}",
               f"Receipt {x.number}: {x.order} {x.amount} ({x.method}) {local_text(x.collected_at)} by "
               f"{x.collected_by}, {x.state}{why}; handover {x.handover or 'not yet'}"))
    for h in story.handovers:
        line(t(f"交款 {h.number}:{h.handed_by} → {h.cashier},{local_text(h.handed_at)},应交 {h.declared},"
               f"实点 {h.counted}" + (",财务已确认" if h.confirmed_at else ""),
               f"Handover {h.number}: {h.handed_by} -> {h.cashier}, {local_text(h.handed_at)}, declared {h.declared}, "
               f"counted {h.counted}" + (", confirmed by finance" if h.confirmed_at else "")))
    for c in story.callbacks:
        after = t(f",返修单 {c.rework_order}", f", rework {c.rework_order}") if c.rework_order else ""
        note = f" ({c.note})" if c.note else ""
        if c.done_at:
            line(t(f"回访 {c.order}:{local_text(c.done_at)} {c.done_by} {c.outcome}{note}{after}"
                   f"(应于 {local_text(c.due_at)} 前)",
                   f"Callback {c.order}: {local_text(c.done_at)} {c.done_by} {c.outcome}{note}{after} "
                   f"(due {local_text(c.due_at)})"))
        else:
            line(t(f"回访 {c.order}:待办,应于 {local_text(c.due_at)} 前", f"Callback {c.order}: owed by {local_text(c.due_at)}"))
    tb = Table(title=t("操作记录", "Audit trail"), title_justify="left")
    for c in (t("时间", "at"), t("操作人", "actor"), t("操作", "action"), t("对象", "entity")):
        tb.add_column(c, overflow="fold")
    for e in story.events:
        tb.add_row(local_text(e.at), e.actor, e.action, f"{e.entity} {e.ref}")
    console.print(tb)


def register(root: typer.Typer, run: typer.Typer) -> None:
    """Add this module's commands to the root app and the `run` group."""
    root.add_typer(desk_app, name="desk")
    root.add_typer(orders_app, name="orders")
