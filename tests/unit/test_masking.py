"""Residents' mobiles and apprise secrets never leave the system in clear."""
from __future__ import annotations

import pytest

from notifications.masking import (
    harden_privacy_url,
    has_unmasked_mobile,
    mask_facts,
    mask_phone,
    mask_text,
    privacy_url,
    scrub,
    url_secrets,
)


@pytest.mark.parametrize("written, shown", [
    ("13812345678", "138****5678"),
    ("138 1234 5678", "138****5678"),
    ("138-1234-5678", "138****5678"),
    ("+86 13812345678", "+86 138****5678"),
    ("+8613812345678", "+86138****5678"),
    ("0086-199-0000-1234", "0086-199****1234"),
])
def test_a_mobile_number_is_masked_however_it_is_written(written, shown):
    assert mask_phone(written) == shown


def test_mobile_numbers_inside_free_text_notes_are_masked():
    note = "业主说白天打 15900001111,晚上打家里;邻居 186-1111-2222 可代收"
    assert mask_text(note) == "业主说白天打 159****1111,晚上打家里;邻居 186****2222 可代收"
    assert not has_unmasked_mobile(mask_text(note))


def test_longer_digit_runs_such_as_receipt_numbers_are_left_alone():
    text = "票据 202611271381234567890 与单号 WO-20261127-0001"
    assert mask_text(text) == text


def test_a_landline_keeps_only_its_first_three_and_last_four_digits():
    assert mask_phone("021-6543-2100") == "021****2100"


def test_facts_are_masked_deep_inside_lists_and_dicts():
    facts = {"phone": "13812345678", "notes": ["回电 13900001111"], "nested": {"x": "137 0000 2222"}, "n": 3}
    assert mask_facts(facts) == {"phone": "138****5678", "notes": ["回电 139****1111"],
                                 "nested": {"x": "137****2222"}, "n": 3}


def test_privacy_url_hides_the_webhook_key_and_custom_query_values():
    canary = "CANARYabc123xyz"
    shown = [privacy_url(f"wecombot://{canary}"), privacy_url(f"json://127.0.0.1:8080/hook?-token={canary}"),
             privacy_url(f"mailto://user:{canary}@smtp.example.com?to=a@example.com")]
    assert all(canary not in url for url in shown)
    assert shown[1].startswith("json://127.0.0.1:8080/")  # the path is a secret too (issue 18, defect 9)


def test_a_url_apprise_cannot_read_is_never_echoed():
    assert privacy_url("nosuchscheme://SECRET-TOKEN-1234") == "nosuchscheme://****"


def test_hardening_keeps_the_standard_arguments_readable():
    assert harden_privacy_url("json://h/p?method=POST&+Authorization=Bearer-abcdef") == \
        "json://h/...?method=POST&+Authorization=B...f"  # a generic webhook's path is elided (issue 18, defect 9)


def test_scrub_removes_known_secrets_and_every_url_from_an_error_text():
    error = "POST https://oapi.dingtalk.com/robot/send?access_token=TOKEN123456 failed for 13812345678"
    cleaned = scrub(error, url_secrets("dingtalk://TOKEN123456/"))
    assert "TOKEN123456" not in cleaned and "13812345678" not in cleaned
    assert cleaned.startswith("POST https://****")


def test_the_quick_scan_never_lets_a_number_through_that_the_full_pattern_would_mask():
    import random

    from notifications import masking

    alphabet = "0123456789" * 4 + "1111333888 -+*号\n"
    rng = random.Random(8)
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 40))) for _ in range(20_000)]
    texts += ["+86 13812345678", "0086-199-0000-1234", "138****5678 与 13900001111", "R-O001-20261126-017"]
    full = lambda t: masking._MOBILE.sub(lambda m: f"{m['prefix'] or ''}{m['head']}****{m['tail']}", t)  # noqa: E731
    assert [mask_text(t) for t in texts] == [full(t) for t in texts]
    assert [has_unmasked_mobile(t) for t in texts] == [masking._MOBILE.search(t) is not None for t in texts]
    assert sum(mask_text(t) != t for t in texts) > 100  # the random texts do hold numbers to mask


# -- issue 18, defect 4: the forms a clerk types a number in ------------------------------------------------

@pytest.mark.parametrize("written, shown", [
    ("１３９１２３４５６７８", "１３９****５６７８"),
    ("138.1234.5678", "138****5678"),
    ("138  8765  4321", "138****4321"),
    ("138 - 1234 - 5678", "138****5678"),
    ("+86 138.1234.5678", "+86 138****5678"),
    ("＋８６ １３９１２３４５６７８", "＋８６ １３９****５６７８"),
    ("0086 138  1234  5678", "0086 138****5678"),
])
def test_full_width_dotted_and_double_spaced_mobiles_are_masked(written, shown):
    assert mask_text(f"业主 刘女士{written}(白天)") == f"业主 刘女士{shown}(白天)"


@pytest.mark.parametrize("number", ["11010519900307123X", "110105199003071234", "44030420011231002x",
                                    "１１０１０５１９９００３０７１２３４"])
def test_an_identity_card_number_inside_a_note_is_masked(number):
    masked = mask_text(f"身份证{number},住3栋501")
    assert masked == f"身份证{number[:3]}***********{number[-4:]},住3栋501"
    assert not has_unmasked_mobile(masked)
    assert has_unmasked_mobile(number)


@pytest.mark.parametrize("text", [
    "回访逾期 WO-D1-20261027-003,返修单 WO-D1-20261027-003-R1",
    "电话登记 R-D2-20261030-005,应于 2026-10-29 17:30 前",
    "票据 000101-000150 已领,000104 作废",
    "金额 1,380.00 元,另收 13800.00;实收 ¥ 1388.5",
    "日期 2026.10.29 13:45,2026年10月29日",
    "IP 192.168.100.123,端口 13812",
    "交款 H-A1-20261130-0012,收据 20261127138",
    "编号 callback-overdue:WO-D1-20261027-003:1@cs-supervisor",
    "订单号 202611271381234567890 与 990105199003071234567",
    "十八位非身份证号 123456789012345678",
])
def test_order_receipt_request_numbers_dates_and_money_are_left_alone(text):
    assert mask_text(text) == text


def test_an_already_masked_text_is_left_as_it_is():
    text = "业主 张阿姨 139****5792,身份证 110***********1234"
    assert mask_text(text) == text and not has_unmasked_mobile(text)


def test_the_quick_checks_never_skip_a_text_that_holds_a_number():
    import random

    from notifications import masking

    rng = random.Random(18)
    pieces = ["1", "3", "8", "9", "0", "2", "5", " ", "  ", ".", "-", "１", "３", "８", "X", "号", "+86", "19900307",
              "20011231"]
    texts = ["".join(rng.choice(pieces) for _ in range(rng.randrange(1, 30))) for _ in range(20_000)]
    slow = lambda t: masking._MOBILE.sub(masking._mask_mobile, masking._ID_CARD.sub(masking._mask_id, t))  # noqa: E731
    assert [mask_text(t) for t in texts] == [slow(t) for t in texts]
    assert sum(mask_text(t) != t for t in texts) > 100


# -- issue 18, defect 9: a generic webhook's secret path ----------------------------------------------------

@pytest.mark.parametrize("scheme", ["json", "jsons", "xml", "xmls", "form", "forms"])
def test_a_generic_webhook_url_is_shown_without_its_path_but_with_scheme_host_and_port(scheme):
    canary = "CANARYpath5f3a9c"
    shown = privacy_url(f"{scheme}://127.0.0.1:8088/hook/{canary}?-token=CANARYquery77&method=POST")
    assert canary not in shown and "CANARYquery77" not in shown
    assert shown.startswith(f"{scheme}://127.0.0.1:8088/")


def test_a_generic_webhook_password_is_hidden_and_its_user_kept():
    shown = privacy_url("json://robot:CANARYpw9912@hooks.example.com:8443/in/CANARYsecret")
    assert "CANARYpw9912" not in shown and "CANARYsecret" not in shown
    assert shown.startswith("json://robot:")


def test_config_tags_show_a_json_webhook_without_its_secret_path(tmp_path):
    from notifications.delivery import config_tags

    config = tmp_path / "apprise.yml"
    config.write_text("urls:\n  - json://127.0.0.1:9/hook/CANARYsecretpath42:\n      tag: ops\n", encoding="utf-8")
    [url] = config_tags(config)["ops"].urls
    assert "CANARYsecretpath42" not in url and url.startswith("json://127.0.0.1:9/")


def test_showing_a_url_in_privacy_form_logs_nothing_of_it_even_with_apprise_at_debug():
    import subprocess
    import sys

    code = ("import logging; logging.basicConfig(level=logging.DEBUG); "
            "logging.getLogger('apprise').setLevel(logging.DEBUG); "
            "from notifications.masking import privacy_url; "
            "print(privacy_url('nosuchscheme://CANARYraw31337/x'), privacy_url('json://127.0.0.1:9/h/CANARYjs4242'))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "CANARY" not in done.stdout + done.stderr


@pytest.mark.parametrize("url, shown", [
    ("postgresql://bianmin:CANARYpw77@db.example.com:5432/ledger",
     "postgresql://bianmin:****@db.example.com:5432/ledger"),
    ("postgresql://bianmin@db:5432/ledger?password=CANARYpw77&sslmode=require",
     "postgresql://bianmin@db:5432/ledger?password=****&sslmode=require"),
    ("postgresql+psycopg://u@h/db?sslpassword=CANARYpw77", "postgresql+psycopg://u@h/db?sslpassword=****"),
    ("sqlite:////srv/bianmin/var/bianmin.db", "sqlite:////srv/bianmin/var/bianmin.db"),
])
def test_a_database_url_is_shown_without_its_password_wherever_it_rides(url, shown):
    from notifications.masking import mask_url_password

    assert mask_url_password(url) == shown
