"""What the status timer writes, read from its kopf patch (tests' helper).

The timer writes through patch functions applied to the freshest object
(:func:`tradefleet_operator.status_model.guarded_status_write`), not a merge patch: these
helpers apply them to a copy of the object the tick read and return the status keys that
changed, which is the merge patch the timer sent before. A change handler's pass writes its
status the same way (``written_status``).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, cast

import kopf


def applied(patch: kopf.Patch, body: Mapping[str, Any]) -> dict[str, Any]:
    """``body`` (a copy) with ``patch`` applied as kopf would: merge keys, then functions."""
    result = copy.deepcopy(dict(body))
    status = dict(result.get("status") or {})
    status.update(dict(patch.get("status") or {}))
    result["status"] = status
    for fn in patch.fns:
        fn(cast(Any, result))
    return result


def timer_status(patch: kopf.Patch, body: Mapping[str, Any]) -> dict[str, Any]:
    """The status keys the tick changed on ``body``, with their new values."""
    before = dict(body.get("status") or {})
    after = dict(applied(patch, body).get("status") or {})
    changed = {key: value for key, value in after.items() if before.get(key) != value}
    changed.update({key: None for key in before if key not in after})
    return changed


def written_status(patch: kopf.Patch, body: Mapping[str, Any]) -> dict[str, Any]:
    """The status keys a change handler's pass changed on ``body``, with their new values: its
    one write, the conditions it changed by type onto the freshest list
    (:func:`tradefleet_operator.status_model.handler_status_write`)."""
    return timer_status(patch, body)


def poll_tick(
    ctx: Any, body: Mapping[str, Any], index: Any = None, patch: kopf.Patch | None = None
) -> kopf.Patch:
    """One status timer tick of the operator whose context is ``ctx`` (kopf's memo shares it
    between the timer and the change handlers), over ``body``; its patch."""
    import asyncio
    import logging

    from tradefleet_operator import handlers

    patch = kopf.Patch() if patch is None else patch
    asyncio.run(
        cast(Any, handlers.poll_status)(  # kopf's decorator types it as a TimerFn
            body=cast(kopf.Body, body),
            status=cast(kopf.Status, body.get("status") or {}),
            meta=cast(kopf.Meta, body["metadata"]),
            patch=patch,
            memo=kopf.Memo(tradefleet=ctx),
            logger=cast(kopf.Logger, logging.getLogger("timer")),
            bot_accounts=index,
        )
    )
    return patch
