"""Pick what to do with an object by an ordered list of classes, looked up once per exact class.

Why one place: the event router, the user stream and the order tracker each
route every event by a chain of isinstance checks (up to ten on the order
path). The answer depends only on the event's class, so it is kept per class
and later events of that class cost one dict lookup. An object whose
``__class__`` is not its type (a proxy or a mock claiming another class) is
classified afresh each time and never remembered, as the chain itself would
treat it.

Callers on a hot path read :attr:`ClassRoutes.memo` themselves (one dict
lookup, no call) and call :meth:`ClassRoutes.classify` on a miss; others call
:meth:`ClassRoutes.of`. No route value may be None (None means "not yet known").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Generic, TypeVar

T = TypeVar("T")


class ClassRoutes(Generic[T]):
    """The value of the first ``(classes, value)`` route an object is an instance of, else ``default``."""

    __slots__ = ("_default", "_routes", "memo")

    def __init__(self, routes: Sequence[tuple[type | tuple[type, ...], T]], default: T) -> None:
        if default is None or any(value is None for _, value in routes):
            raise ValueError("a route's value may not be None (None marks a class not classified yet)")
        self._routes = tuple(routes)
        self._default = default
        #: Exact class -> value, for the classes seen plainly (read it directly on a hot path).
        self.memo: dict[type, T] = {}

    def classify(self, obj: object) -> T:
        """The isinstance checks, in order; the answer is kept for ``type(obj)`` when ``obj`` is plainly of it."""
        value = self._default
        for classes, routed in self._routes:
            if isinstance(obj, classes):
                value = routed
                break
        if obj.__class__ is type(obj):
            self.memo[type(obj)] = value
        return value

    def of(self, obj: object) -> T:
        """The route of ``obj`` (memoized per class)."""
        value = self.memo.get(type(obj))
        return self.classify(obj) if value is None else value


__all__ = ["ClassRoutes"]
