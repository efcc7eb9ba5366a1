"""Webhook signatures: the header formats, verification, and the README's receiver snippet."""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from pathlib import Path
from typing import Any

from services.webhooks.signing import (
    SAVVYCAL_SIGNATURE,
    SCHED_SIGNATURE,
    WEBHOOK_ID,
    savvycal_signature,
    sched_signature,
    signed_headers,
    verify_savvycal_signature,
    verify_sched_signature,
)

SECRET = "whsec_current"
OLD_SECRET = "whsec_previous"
BODY = b'{"type":"link.created","id":"evt_1","version":1,"occurred_at":"2026-05-04T09:30:15.000000Z","payload":{}}'
README = Path(__file__).resolve().parents[2] / "README.md"


def mac(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def readme_verifier() -> Any:
    """`verify_webhook` exactly as README.md's Webhooks section shows it to receivers."""
    text = README.read_text()
    section = text[text.index("## Webhooks"):]
    blocks = re.findall(r"```python\n(.*?)```", section, re.DOTALL)
    assert blocks, "README.md's Webhooks section has no python block"
    namespace: dict[str, Any] = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)  # noqa: S102 - our own README, on purpose
    return namespace["verify_webhook"]


def test_savvycal_signature_is_the_hex_hmac_of_the_raw_body():
    assert savvycal_signature([SECRET], BODY) == f"sha256={mac(SECRET, BODY)}"


def test_sched_signature_signs_the_timestamp_dot_body():
    assert sched_signature([SECRET], BODY, 1_777_887_015) == f"t=1777887015,v1={mac(SECRET, b'1777887015.' + BODY)}"


def test_during_a_grace_period_both_secrets_sign_newest_first():
    headers = signed_headers("whk_1", [SECRET, OLD_SECRET], BODY, 1_777_887_015)
    assert headers[WEBHOOK_ID] == "whk_1"
    assert headers["content-type"] == "application/json"
    assert headers[SAVVYCAL_SIGNATURE] == f"sha256={mac(SECRET, BODY)},sha256={mac(OLD_SECRET, BODY)}"
    assert headers[SCHED_SIGNATURE].count("v1=") == 2
    assert headers[SCHED_SIGNATURE].startswith("t=1777887015,v1=" + mac(SECRET, b"1777887015." + BODY))


def test_verification_accepts_either_secret_and_refuses_tampering_and_stale_stamps():
    now = 1_777_887_015
    header = sched_signature([SECRET, OLD_SECRET], BODY, now)
    assert verify_sched_signature(SECRET, BODY, header, now)
    assert verify_sched_signature(OLD_SECRET, BODY, header, now + 299)
    assert not verify_sched_signature("whsec_other", BODY, header, now)
    assert not verify_sched_signature(SECRET, BODY + b" ", header, now)
    assert not verify_sched_signature(SECRET, BODY, header, now + 301)  # replayed after 5 minutes
    assert not verify_sched_signature(SECRET, BODY, header, now - 301)
    assert not verify_sched_signature(SECRET, BODY, header.replace("t=", "x="), now)
    assert not verify_sched_signature(SECRET, BODY, f"t={now}," + header, now)  # two timestamps
    assert verify_savvycal_signature(OLD_SECRET, BODY, savvycal_signature([SECRET, OLD_SECRET], BODY))
    assert not verify_savvycal_signature(SECRET, BODY, savvycal_signature([OLD_SECRET], BODY))


def test_the_readme_receiver_verifies_what_the_dispatcher_signs():
    verify_webhook = readme_verifier()
    now = int(time.time())
    headers = signed_headers("whk_1", [SECRET], BODY, now)
    assert verify_webhook(SECRET, BODY, headers)
    assert not verify_webhook("whsec_other", BODY, headers)
    assert not verify_webhook(SECRET, BODY.replace(b"evt_1", b"evt_2"), headers)
    assert not verify_webhook(SECRET, BODY, signed_headers("whk_1", [SECRET], BODY, now - 600))
    rotated = signed_headers("whk_1", [SECRET, OLD_SECRET], BODY, now)
    assert verify_webhook(SECRET, BODY, rotated) and verify_webhook(OLD_SECRET, BODY, rotated)
    # Each header is checked: a good sched signature does not excuse a bad savvycal one.
    mixed = {**headers, SAVVYCAL_SIGNATURE: savvycal_signature(["whsec_other"], BODY)}
    assert not verify_webhook(SECRET, BODY, mixed)
