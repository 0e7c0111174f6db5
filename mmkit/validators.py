"""attrs validators shared by every config class (framework, connectors and strategies).

Each error names the field and the value, so that a config error read from
YAML says exactly what is wrong (the loader adds the file and key path).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import attrs

Number = Decimal | int | float


def positive(_: object, attribute: attrs.Attribute[Any], value: Number) -> None:
    if value <= 0:
        raise ValueError(f"{attribute.name} must be positive, got {value}")


def non_negative(_: object, attribute: attrs.Attribute[Any], value: Number) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must not be negative, got {value}")


def optional_positive(_: object, attribute: attrs.Attribute[Any], value: Number | None) -> None:
    if value is not None and value <= 0:
        raise ValueError(f"{attribute.name} must be positive when set, got {value}")


def fraction(_: object, attribute: attrs.Attribute[Any], value: Number) -> None:
    if not 0 <= value <= 1:
        raise ValueError(f"{attribute.name} must be between 0 and 1, got {value}")
