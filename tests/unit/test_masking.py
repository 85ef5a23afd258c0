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
    assert shown[1].startswith("json://127.0.0.1:8080/hook")


def test_a_url_apprise_cannot_read_is_never_echoed():
    assert privacy_url("nosuchscheme://SECRET-TOKEN-1234") == "nosuchscheme://****"


def test_hardening_keeps_the_standard_arguments_readable():
    assert harden_privacy_url("json://h/p?method=POST&+Authorization=Bearer-abcdef") == \
        "json://h/p?method=POST&+Authorization=B...f"


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
