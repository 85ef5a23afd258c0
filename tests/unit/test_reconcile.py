"""The reconciliation's pure parts: months, cells that add up, Decimal money, hashing and changes."""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pandas as pd
import pytest

from models.errors import DomainError
from models.rules import mentions_out_of_scope
from models.tally.facts import CallbackLine, Discrepancy, Figures, KINDS, MonthTally, ratio, shift_month, total
from models.tally.rules import merge_cells, month_window, reportable_month
from notifications import report_content
from notifications.report_content import canonical_json, content_hash, content_texts, diff_content

UTC = timezone.utc
KEY = ["office", "department", "worker", "worker_name"]


def cell(office="A1", department="engineering", worker="PL1", **counts) -> Figures:
    return Figures(office=office, department=department, worker=worker, worker_name=worker, **counts)


def finding(kind="unpaid", reference="WO-1", office="A1", worker="PL1") -> Discrepancy:
    return Discrepancy(kind, office, reference, reference, "engineering", worker, worker,
                       datetime(2026, 10, 5, 2, 0, tzinfo=UTC))


def test_shift_month_crosses_year_ends_both_ways():
    assert shift_month("2026-12", 1) == "2027-01"
    assert shift_month("2026-01", -1) == "2025-12"
    assert shift_month("2026-10", -12) == "2025-10"


def test_a_month_runs_from_local_midnight_to_local_midnight(calendar):
    window = month_window("2026-10", calendar)
    assert window.start == datetime(2026, 9, 30, 16, 0, tzinfo=UTC)
    assert window.end == datetime(2026, 10, 31, 16, 0, tzinfo=UTC)
    assert window.previous == "2026-09"


def test_a_month_is_reportable_only_once_its_last_moment_has_passed(calendar):
    assert reportable_month("2026-9", calendar=calendar, as_of=datetime(2026, 10, 1, 0, 0, tzinfo=calendar.tz)) \
        == "2026-09"
    with pytest.raises(DomainError) as not_over:
        reportable_month("2026-09", calendar=calendar, as_of=datetime(2026, 9, 30, 23, 59, tzinfo=calendar.tz))
    assert not_over.value.code == "tally_month_not_over"
    with pytest.raises(DomainError) as malformed:
        reportable_month("2026-13", calendar=calendar, as_of=datetime(2027, 1, 1, tzinfo=UTC))
    assert malformed.value.code == "tally_bad_month"


def test_a_rate_with_nothing_to_rate_is_empty_not_zero():
    assert ratio(0, 0) is None
    assert ratio(1, 3) == Decimal("0.3333")


def test_department_rates_come_from_summed_counts_not_averaged_rates():
    quick = cell(worker="PL1", completed=1, completed_on_time=1)
    slow = cell(worker="EL1", completed=3, completed_on_time=1)
    department = total([quick, slow], office="A1")
    assert (quick.on_time_rate, slow.on_time_rate) == (Decimal("1.0000"), Decimal("0.3333"))
    assert department.on_time_rate == Decimal("0.5000")


def test_money_stays_exact_decimal_when_cells_are_merged_and_added():
    revenue = pd.DataFrame([dict(office="A1", department="engineering", worker="PL1", worker_name="PL1",
                                 receipts=2, revenue_cash=Decimal("0.10"), revenue_electronic=Decimal("0.20"))])
    [merged] = merge_cells([revenue], [])
    both = merged.plus(merged)
    assert both.revenue == Decimal("0.60") and isinstance(both.revenue_cash, Decimal)
    assert both.average_fee == Decimal("0.15")


def test_merged_cells_join_the_views_of_one_worker_and_count_their_findings():
    orders = pd.DataFrame([dict(office="A1", department="engineering", worker="PL1", worker_name="PL1", orders=3,
                                completed=2, completed_on_time=1, accepted=2, accepted_jobs=2)])
    callbacks = pd.DataFrame([dict(office="A1", department="engineering", worker="PL1", worker_name="PL1",
                                   callbacks_due=2, callbacks_on_time=1, callbacks_answered=1, satisfied=1),
                              dict(office="B2", department="cleaning", worker="CL1", worker_name="CL1",
                                   callbacks_due=1, callbacks_on_time=1, callbacks_answered=1, satisfied=0)])
    replies = pd.DataFrame(columns=KEY + ["phone_requests", "phone_replied_in_time"])
    cells = merge_cells([orders, callbacks, replies], [finding(reference="WO-1"), finding(reference="WO-2")])
    plumber, cleaner = cells
    assert (plumber.office, plumber.orders, plumber.callbacks_due, plumber.findings) == ("A1", 3, 2, 2)
    assert plumber.satisfaction_rate == Decimal("1.0000")
    assert (cleaner.office, cleaner.orders, cleaner.satisfaction_rate, cleaner.findings) == ("B2", 0, Decimal("0"), 0)


def tally_of(cells, discrepancies=()) -> MonthTally:
    start = datetime(2026, 9, 30, 16, tzinfo=UTC)
    return MonthTally("2026-10", "*", start, datetime(2026, 10, 31, 16, tzinfo=UTC), tuple(cells),
                      tuple(discrepancies), ())


def test_an_office_view_keeps_only_that_office_and_the_group_lists_every_office():
    group = tally_of([cell(office="A1", accepted=2), cell(office="B2", accepted=5)],
                     [finding(office="A1"), finding(office="B2", reference="WO-9")])
    a1 = group.for_office("A1")
    assert (a1.total.accepted, len(a1.discrepancies), a1.office) == (2, 1, "A1")
    assert group.offices == ("A1", "B2") and group.total.accepted == 7
    assert [w.office for w in group.by_worker()] == ["A1", "B2"]


def test_the_contents_of_group_and_offices_at_once_equal_each_content_alone():
    group = tally_of([cell(office="A1", accepted=2), cell(office="B2", accepted=5)],
                     [finding(office="A1"), finding(office="B2", reference="WO-9"), finding("receipt-gap", "000103")])
    assert group.split() == {"A1": group.for_office("A1"), "B2": group.for_office("B2")}
    contents = group.contents()
    assert contents == {"*": group.content(), "A1": group.for_office("A1").content(),
                        "B2": group.for_office("B2").content()}
    assert [f["reference"] for f in contents["A1"]["findings"]] == ["WO-1", "000103"]


def callback_line(office: str, n: int, *, done: bool = True) -> CallbackLine:
    due = datetime(2026, 10, 3, 2, 0, tzinfo=UTC)
    return CallbackLine(office, f"WO-{office}-{n:05d}", None, "engineering", "PL1", "王师傅", due,
                        due if done else None, "satisfied" if done else None, None)


def test_each_report_text_in_pieces_is_the_canonical_json_of_its_content_and_hashes_the_same():
    lines = [callback_line("A1", n, done=n % 3 > 0) for n in range(report_content._LINES_PER_PIECE + 2)]
    lines += [callback_line("B2", n) for n in range(3)]
    group = MonthTally("2026-10", "*", datetime(2026, 9, 30, 16, tzinfo=UTC), datetime(2026, 10, 31, 16, tzinfo=UTC),
                       (cell(office="A1", accepted=2), cell(office="B2", accepted=5), cell(office="C3", accepted=1)),
                       (finding(office="B2", reference="WO-9"), finding("receipt-gap", "000103")), tuple(lines))
    offices = group.split()
    texts = content_texts(group, offices)
    assert set(texts) == {"*", "A1", "B2", "C3"}
    for office, tally in [*offices.items(), ("*", group)]:
        content = tally.content()
        assert texts[office].text == canonical_json(content)
        assert texts[office].hash == content_hash(content)
        assert texts[office].figures == {k: v for k, v in content.items() if k != "callbacks"}
    assert len(json_lines(texts["*"].text)) == len(lines) and json_lines(texts["C3"].text) == []


def json_lines(text: str) -> list:
    import json

    return json.loads(text)["callbacks"]


def test_every_kind_is_counted_even_when_none_was_found():
    counts = tally_of([], [finding("receipt-gap", "000103")]).findings_by_kind()
    assert list(counts) == list(KINDS) and counts["receipt-gap"] == 1 and sum(counts.values()) == 1


def test_the_content_hash_ignores_key_order_but_not_a_cent():
    content = tally_of([cell(revenue_cash=Decimal("80.00"), receipts=1)]).content()
    reordered = dict(reversed(list(content.items())))
    assert content_hash(reordered) == content_hash(content)
    cent_more = tally_of([cell(revenue_cash=Decimal("80.01"), receipts=1)]).content()
    assert content_hash(cent_more) != content_hash(content)


def test_changes_between_versions_name_the_figure_and_the_findings_added_or_gone():
    before = tally_of([cell(accepted=2)], [finding(reference="WO-1")]).content()
    after = tally_of([cell(accepted=3)], [finding(reference="WO-2")]).content()
    changes = {(c.section, c.item, c.metric, c.before, c.after) for c in diff_content(before, after)}
    assert ("departments", "*/engineering/", "accepted", "2", "3") in changes
    assert ("findings", "unpaid:WO-1", "", "x", "") in changes
    assert ("findings", "unpaid:WO-2", "", "", "x") in changes
    assert diff_content(before, before) == []


@pytest.mark.parametrize("description", ["顺便修了空调", "冰箱不制冷", "卫生间翻新", "Fix the washing machine"])
def test_appliance_and_renovation_work_is_out_of_scope(description):
    assert mentions_out_of_scope(description)


@pytest.mark.parametrize("description", ["厨房水龙头漏水", "热水器进水管漏水", "更换插座", None])
def test_plumbing_electrical_and_cleaning_work_is_in_scope(description):
    assert not mentions_out_of_scope(description)
