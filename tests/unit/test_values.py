"""The value rules every door shares (models/ledger/values.py): money, text, moments."""
from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from models.ledger import values
from models.errors import DomainError
from models.errors import render
from models.ledger.tables import Callback, ServiceRequest

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 5, 12, 0, tzinfo=TZ)


@pytest.mark.parametrize("typed, amount", [
    ("80", "80.00"), ("80.5", "80.50"), ("0.01", "0.01"), ("¥80", "80.00"), ("80元", "80.00"),
    ("1,200.50", "1200.50"), ("８０．５", "80.50"), ("9999999999.99", "9999999999.99"), (80, "80.00"),
    (Decimal("12.30"), "12.30"), (80.1, "80.10"), (0.1 + 0.2, "0.30")])
def test_a_plain_amount_is_read_to_the_cent(typed, amount):
    assert values.money(typed, field="fee") == Decimal(amount)


@pytest.mark.parametrize("typed, code", [
    ("1e30", "money_malformed"), ("1e-30", "money_malformed"), ("80e2", "money_malformed"),
    ("NaN", "money_malformed"), ("inf", "money_malformed"), ("", "money_malformed"), ("1,2,3", "money_malformed"),
    ("eighty", "money_malformed"), (True, "money_malformed"), (float("nan"), "money_malformed"),
    ("0.001", "money_places"), ("80.005", "money_places"), (Decimal("1E-30"), "money_places"),
    ("99999999999999999999", "money_too_large"), ("10000000000", "money_too_large"),
    (Decimal("1E+30"), "money_too_large"), ("-0", "negative_amount"), ("-80", "negative_amount")])
def test_an_amount_that_is_not_plain_money_is_refused_naming_the_field(typed, code):
    with pytest.raises(DomainError) as refused:
        values.money(typed, field="--fee")
    assert refused.value.code == code
    assert "--fee" in refused.value.message("en") and "--fee" in refused.value.message("zh_CN")


def test_a_signed_amount_is_read_where_the_caller_asks_for_the_sign():
    assert values.money("-50", field="amount", signed=True) == Decimal("-50.00")


def test_the_money_limit_is_the_columns_own():
    assert values.MONEY_LIMIT == Decimal(10) ** 10  # Numeric(12, 2)


def test_a_name_longer_than_its_column_is_refused_with_the_columns_length():
    fits = "刘" * ServiceRequest.resident_name.type.length
    assert values.text(fits, field="resident", column=ServiceRequest.resident_name) == fits
    with pytest.raises(DomainError) as refused:
        values.text(fits + "刘", field="resident", column=ServiceRequest.resident_name)
    assert refused.value.code == "text_too_long" and refused.value.params["limit"] == 100


@pytest.mark.parametrize("typed", ["a\x1b[31mred", "a\x00b", "a\x07", "3栋\n501", "a\tb", "a\rb", "\u202eevil",
                                   "a\x9bb"])
def test_a_control_character_in_a_one_line_field_is_refused(typed):
    with pytest.raises(DomainError) as refused:
        values.text(typed, field="address", column=ServiceRequest.address)
    assert refused.value.code == "text_control"


def test_free_text_keeps_its_lines_but_not_escapes_and_has_a_length():
    assert values.text("还在滴水\r\n明天再来\t!", field="note", column=Callback.note) == "还在滴水\n明天再来\t!"
    with pytest.raises(DomainError):
        values.text("还在\x1b[2J滴水", field="note", column=Callback.note)
    with pytest.raises(DomainError) as refused:
        values.text("x" * (values.FREE_TEXT_MAX + 1), field="note", column=Callback.note)
    assert refused.value.code == "text_too_long"


def test_a_value_echoed_in_a_message_stays_on_one_line_and_short():
    message = render("not_found", "en", what="staff", ref="A\nB\x1b[31m" + "x" * 5000)
    assert "\n" not in message and "\x1b" not in message and len(message) < 300


@pytest.mark.parametrize("moment, code", [
    (datetime(1999, 12, 31, 23, 59, tzinfo=TZ), "time_out_of_range"),
    (datetime(1, 1, 1, tzinfo=TZ), "time_out_of_range"),
    (datetime(9999, 12, 31, 23, 59, tzinfo=TZ), "time_out_of_range"),
    (NOW + values.FUTURE_HORIZON + timedelta(minutes=1), "time_too_far")])
def test_a_moment_outside_the_ledgers_years_or_too_far_ahead_is_refused(moment, code):
    with pytest.raises(DomainError) as refused:
        values.moment(moment, field="--at", now=NOW)
    assert refused.value.code == code


def test_a_booking_months_ahead_is_taken():
    ahead = NOW + timedelta(days=120)
    assert values.moment(ahead, field="--scheduled", now=NOW) == ahead
