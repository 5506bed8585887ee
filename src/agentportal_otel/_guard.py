"""The one guard around every hook: our bugs must never break or slow a request.

:func:`guarded` wraps a sync or async hook so that any :class:`Exception` is logged
(once per hook and exception type, without the payload) and swallowed.
``BaseException`` (cancellation, ``KeyboardInterrupt``) always propagates.  Under
pytest the exception is re-raised so that our own bugs fail tests, as Logfire's
``handle_internal_errors`` does; :data:`RAISE_UNDER_PYTEST` turns that off for the one
test that proves the production path swallows.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

_logger = logging.getLogger("agentportal_otel")
_F = TypeVar("_F", bound=Callable[..., Any])
_seen: set[tuple[str, str]] = set()

RAISE_UNDER_PYTEST = True
"""Re-raise internal errors while running under pytest (tests may set this to False)."""


def _report(hook: str, error: Exception) -> None:
    internal_errors.count += 1
    if RAISE_UNDER_PYTEST and "PYTEST_CURRENT_TEST" in os.environ:
        raise error
    key = (hook, type(error).__name__)
    if key in _seen:
        return
    _seen.add(key)
    # No exc_info: a traceback's locals and messages may carry request data.
    _logger.error(
        "agentportal-otel: internal error in %s (%s); the request is unaffected, telemetry for this call "
        "is lost. Further %s errors in this hook are counted, not logged.",
        hook,
        type(error).__name__,
        type(error).__name__,
    )


class _Counter:
    count = 0


internal_errors = _Counter()
"""How many internal errors the guard swallowed (``internal_errors.count``)."""


def guarded(func: _F) -> _F:
    """Wrap ``func`` (sync or async) so no :class:`Exception` escapes it."""
    name = func.__qualname__
    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return await cast(Callable[..., Awaitable[Any]], func)(*args, **kwargs)
            except Exception as error:
                _report(name, error)
                return None

        return cast(_F, async_wrapper)

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except Exception as error:
            _report(name, error)
            return None

    return cast(_F, wrapper)
