"""A bot whose roll onto a missing credentials Secret is held (review R31a of abb6dd1): what its
status and the account-sharing check say while its pod runs on the Secret it was rolled out
with, and that a pass with nothing to roll is no hold at all.

The hold makes "the spec names Secret B, the pod trades on Secret A" a state that lasts: the
operator records A in ``status.credentialsSecretInUse``, and the bot counts as on both accounts
for the status timer's ``AccountShared`` and for admission.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

import kopf
import pytest

from tests.operator.test_account_sharing import bot as sharing_bot
from tests.operator.test_credentials_secret import (
    NS,
    Kube,
    ctx_of,
    reconcile,
    reconciled,
    secret_path,
)
from tests.operator.test_reconcile import FakeRuntimeClients
from tests.operator.timer_writes import timer_status
from tradefleet_operator import admission, handlers, objects
from tradefleet_operator.account_sharing import (
    AccountKey,
    BotAccount,
    account_of,
    held_key,
    sharing_condition,
)
from tradefleet_operator.status_model import BotStatus

DEPLOYMENT = f"/apis/apps/v1/namespaces/{NS}/deployments/alpha"


@pytest.fixture(autouse=True)
def _no_events(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kopf, "event", lambda _body, **_kw: None)


def mounted_of(kube: Kube) -> str | None:
    return objects.mounted_credentials(kube.objects.get(DEPLOYMENT))


def _running_alpha(kube: Kube) -> dict[str, Any]:
    """alpha, a live ccxt bot on Binance trading BTC/USDT, rolled out on Secret 'binance-key'."""
    kube.add_secret("binance-key")
    alpha = sharing_bot("alpha", ["BTC/USDT"], secret="binance-key")
    alpha["metadata"]["annotations"] = {"tradefleet.io/runtime-address": "127.0.0.1:1"}
    alpha["status"], retried = reconcile(kube, alpha, "create")
    assert not retried and reconciled(alpha["status"])["status"] == "True"
    assert mounted_of(kube) == "binance-key"
    return alpha


def _held_alpha(kube: Kube) -> dict[str, Any]:
    """alpha, then edited to 'binance-key-v2', which does not exist: held, its pod still
    trading on 'binance-key'."""
    alpha = _running_alpha(kube)
    alpha["spec"]["broker"]["credentialsSecret"] = {"name": "binance-key-v2"}
    alpha["metadata"]["generation"] = 2
    written, retried = reconcile(kube, alpha, "update")
    alpha["status"] = {**alpha["status"], **written}
    assert retried and reconciled(alpha["status"])["reason"] == "CredentialsSecretMissing"
    assert mounted_of(kube) == "binance-key"  # the pod trades on the old Secret
    return alpha


def _tick(kube: Kube, body: dict[str, Any], index: dict[str, list[BotAccount]]) -> dict[str, Any]:
    patch = kopf.Patch()
    ctx = ctx_of(kube, FakeRuntimeClients())
    timer = cast(Any, handlers.poll_status)  # kopf's decorator types it as a TimerFn
    asyncio.run(
        timer(
            body=cast(kopf.Body, body),
            status=cast(kopf.Status, body.get("status") or {}),
            meta=cast(kopf.Meta, body["metadata"]),
            patch=patch,
            memo=kopf.Memo(tradefleet=ctx),
            logger=cast(kopf.Logger, logging.getLogger("test")),
            bot_accounts=cast(Any, index),
        )
    )
    return timer_status(patch, body)


def _account(body: dict[str, Any]) -> BotAccount:
    found = account_of(body)
    assert found is not None
    return found


# --- part 1: a pass with nothing to roll is not held --------------------------------------------


def test_a_resume_pass_with_the_spec_rolled_out_does_not_say_it_is_unapplied() -> None:
    """The bot runs on exactly its spec; its Secret is then deleted and the operator restarts
    (the resume handler runs a pass). Nothing is to be rolled: Reconciled stays True, with no
    retry (no failure counted every 2 s); the missing Secret is CredentialsSecretFound's."""
    kube = Kube()
    alpha = _running_alpha(kube)
    deployment = kube.objects[DEPLOYMENT]
    del kube.objects[secret_path("binance-key")]
    written, retried = reconcile(kube, alpha, "resume")
    condition = reconciled({**alpha["status"], **written})
    assert (condition["status"], retried) == ("True", False), condition["message"]
    assert kube.objects[DEPLOYMENT] == deployment  # the pod is not touched


def test_a_pass_on_the_rolled_out_config_that_would_change_the_pod_is_held() -> None:
    """Same config, but the pod template differs (here a hand edit of its image; a repair roll
    or an operator setting alike): writing it would replace the pod by one that cannot mount
    the missing Secret. Held: the Deployment is left as it is, the pass retried."""
    kube = Kube()
    alpha = _running_alpha(kube)
    kube.objects[DEPLOYMENT]["spec"]["template"]["spec"]["containers"][0]["image"] = "x:edited"
    del kube.objects[secret_path("binance-key")]
    written, retried = reconcile(kube, alpha, "resume")
    condition = reconciled({**alpha["status"], **written})
    assert (condition["status"], condition["reason"], retried) == (
        "False",
        "CredentialsSecretMissing",
        True,
    )
    assert "its pod runs this spec's config" in condition["message"]
    assert kube.objects[DEPLOYMENT]["spec"]["template"]["spec"]["containers"][0]["image"] == (
        "x:edited"
    )


# --- part 2: a held bot counts on both accounts -------------------------------------------------


def test_the_held_pass_records_the_pods_secret_and_the_roll_clears_it() -> None:
    kube = Kube()
    alpha = _held_alpha(kube)
    assert alpha["status"]["credentialsSecretInUse"] == "binance-key"
    kube.add_secret("binance-key-v2")
    written, retried = reconcile(kube, alpha, "update")
    assert not retried and mounted_of(kube) == "binance-key-v2"
    assert "credentialsSecretInUse" in written and written["credentialsSecretInUse"] is None


def test_a_held_bot_sharing_its_running_account_is_marked_account_shared() -> None:
    """alpha's pod trades BTC/USDT on 'binance-key'; beta trades BTC/USDT on 'binance-key'
    too: the status timer marks alpha AccountShared=True (it was keyed by its held spec's
    'binance-key-v2' alone, NoSharedSymbol)."""
    kube = Kube()
    alpha = _held_alpha(kube)
    beta = sharing_bot("beta", ["BTC/USDT"], secret="binance-key")
    written = _tick(kube, alpha, {NS: [_account(alpha), _account(beta)]})
    conditions = BotStatus.read({**alpha["status"], **written}).conditions or []
    (shared,) = [c for c in conditions if c.type == "AccountShared"]
    assert shared.status == "True", shared.message
    assert "'binance-key'" in shared.message
    # ...and beta, seen from its side, shares with alpha.
    assert sharing_condition(_account(beta), [_account(alpha)])[0]


def test_admission_refuses_a_bot_on_the_account_a_held_bot_still_trades() -> None:
    """beta created on 'binance-key' trading BTC/USDT while alpha (held, spec on
    'binance-key-v2') still trades BTC/USDT on 'binance-key': refused, as had alpha's spec
    not been edited; and one on 'binance-key-v2' too (alpha's spec's account)."""
    kube = Kube()
    alpha = _held_alpha(kube)
    for secret in ("binance-key", "binance-key-v2"):
        beta = sharing_bot("beta", ["BTC/USDT"], secret=secret)
        with pytest.raises(kopf.AdmissionError, match="alpha"):
            admission.admit(beta, admission.default_registry(), None, [_account(alpha)])


def test_the_index_reads_the_secret_in_use_again_without_a_new_generation() -> None:
    """A status write changes no generation: the index's memo must not keep the account it
    parsed before the held pass recorded the pod's Secret."""
    body = sharing_bot("alpha", ["BTC/USDT"], secret="binance-key-v2")
    memo = kopf.Memo()
    index = cast(Any, handlers.bot_accounts)  # kopf's decorator types it as an IndexingFn
    (before,) = index(body=body, memo=memo).values()
    assert before.held is None
    body["status"] = {"credentialsSecretInUse": "binance-key"}
    (after,) = index(body=body, memo=memo).values()
    assert after.held is not None and after.held.secret == "binance-key"


def test_held_key_is_the_specs_account_on_the_pods_secret() -> None:
    key = AccountKey(NS, "ccxt", "v2", (("exchange", "binance"),))
    assert held_key(key, "v1") == AccountKey(NS, "ccxt", "v1", (("exchange", "binance"),))
    assert held_key(key, "v2") is None  # the same Secret: one account
    assert held_key(key, None) is None
    assert held_key(None, "v1") is None  # the spec reaches no account (paper, backtest)


def test_a_share_on_both_accounts_names_both() -> None:
    spec_key = AccountKey(NS, "ccxt", "v2")
    pod_key = AccountKey(NS, "ccxt", "v1")
    held = BotAccount("alpha", spec_key, ("BTC/USDT",), ("BTCUSDT",), held=pod_key)
    on_v1 = BotAccount("beta", pod_key, ("BTC/USDT",), ("BTCUSDT",))
    on_v2 = BotAccount("gamma", spec_key, ("BTCUSDT",), ("BTCUSDT",))
    shared, _reason, message = sharing_condition(held, [on_v1, on_v2])
    assert shared
    assert "accounts (broker ccxt, Secret 'v1'; broker ccxt, Secret 'v2')" in message
