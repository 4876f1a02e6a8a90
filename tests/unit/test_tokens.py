"""Signed link tokens: the links in emails already sent must keep working."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from nurture.tokens import InvalidToken, Signer, day_number, expired

#: Signed by nurture before the signer was made faster; an upgrade must verify them.
PINNED = {
    ("click", "eyJzIjo0MiwidSI6Imh0dHBzOi8vZXhhbXBsZS5jb20vXHUwMGU5P2E9MSZiPTIifQ"): (
        "sSt2ExKxSHxd6VcJrl2GwvjmuNI",
        {"s": 42, "u": "https://example.com/é?a=1&b=2"},
    ),
    ("unsubscribe", "eyJzIjo3fQ"): ("fKiGgdWglqbYwtgIWKikWc3etdw", {"s": 7}),
}


@pytest.mark.parametrize("purpose, body", list(PINNED))
def test_tokens_signed_by_an_earlier_release_verify_and_are_signed_the_same(
    purpose: str, body: str
) -> None:
    mac, payload = PINNED[(purpose, body)]
    signer = Signer("pinned-key")
    assert signer.verify(purpose, f"{body}.{mac}") == payload
    assert signer.sign(purpose, payload) == f"{body}.{mac}"


def test_a_token_is_only_good_for_its_purpose_and_key() -> None:
    token = Signer("pinned-key").sign("open", {"s": 1})
    with pytest.raises(InvalidToken):
        Signer("pinned-key").verify("unsubscribe", token)
    with pytest.raises(InvalidToken):
        Signer("another-key").verify("open", token)
    altered = token[:-1] + ("B" if token.endswith("A") else "A")
    with pytest.raises(InvalidToken):
        Signer("pinned-key").verify("open", altered)


def test_one_signer_signs_from_many_threads() -> None:
    """Worker threads share the engine's signer (and its keyed HMAC)."""
    from concurrent.futures import ThreadPoolExecutor

    signer = Signer("pinned-key")
    expected = {n: Signer("pinned-key").sign("click", {"s": n}) for n in range(2000)}
    with ThreadPoolExecutor(4) as pool:
        signed = pool.map(lambda n: signer.sign("click", {"s": n}), expected)
        got = dict(zip(expected, signed, strict=True))
    assert got == expected


def test_a_rotated_key_still_verifies_the_links_it_signed() -> None:
    old = Signer("old-key-" + "x" * 24)
    sent = old.sign("unsubscribe", {"s": 42})
    rotated = Signer("new-key-" + "y" * 24, previous=["old-key-" + "x" * 24])
    assert rotated.verify("unsubscribe", sent) == {"s": 42}
    fresh = rotated.sign("unsubscribe", {"s": 43})
    assert Signer("new-key-" + "y" * 24).verify("unsubscribe", fresh) == {"s": 43}
    with pytest.raises(InvalidToken):  # new tokens are not signed with the old key
        old.verify("unsubscribe", fresh)
    with pytest.raises(InvalidToken):  # and a key no longer listed verifies nothing
        Signer("new-key-" + "y" * 24).verify("unsubscribe", sent)


def test_tracking_tokens_expire_after_a_year_and_older_ones_never() -> None:
    now = datetime(2026, 12, 2, tzinfo=UTC)
    assert not expired({"s": 1, "d": day_number(now) - 365}, now, 365)
    assert expired({"s": 1, "d": day_number(now) - 366}, now, 365)
    assert not expired({"s": 1}, now, 365)  # signed before tokens carried their day
