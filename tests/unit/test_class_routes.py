"""mmkit.class_routes: the first matching route, memoized per exact class, never for an impostor class."""

from __future__ import annotations

from typing import Any

import pytest

from mmkit.class_routes import ClassRoutes


class Base:
    pass


class Child(Base):
    pass


class Other:
    pass


class Impostor:
    """Claims to be a Base (as a mock with spec= does) without being one."""

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        return Base


def test_first_route_wins_in_order_and_subclasses_take_their_parent_s() -> None:
    routes = ClassRoutes([(Base, "base"), ((Child, Other), "child-or-other")], "default")
    assert routes.of(Child()) == "base"  # Base comes first
    assert routes.of(Other()) == "child-or-other"
    assert routes.of(3) == "default"
    assert routes.memo == {Child: "base", Other: "child-or-other", int: "default"}


def test_an_object_claiming_another_class_is_classified_each_time_and_never_remembered() -> None:
    routes = ClassRoutes([(Base, "base")], "default")
    impostor: Any = Impostor()
    assert isinstance(impostor, Base)
    assert routes.of(impostor) == "base" and routes.memo == {}
    assert routes.classify(Impostor()) == "base" and routes.memo == {}


def test_the_memo_is_what_a_hot_path_reads() -> None:
    routes = ClassRoutes([(Base, "base")], "default")
    routes.classify(Base())
    assert routes.memo.get(Base) == "base" and routes.memo.get(Child) is None


def test_none_is_not_a_route_value() -> None:
    with pytest.raises(ValueError, match="may not be None"):
        ClassRoutes([(Base, None)], "default")
    with pytest.raises(ValueError, match="may not be None"):
        ClassRoutes([(Base, "x")], None)
