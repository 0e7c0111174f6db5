from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import attrs
import pytest

from mmkit.conf import ConfigError, load_yaml, read_yaml


@attrs.frozen
class Inner:
    spread: Decimal
    levels: int = 1


@attrs.frozen
class Outer:
    name: str
    inner: Inner
    api_key: str = ""
    items: list[Inner] = attrs.Factory(list)
    checked: Checked | None = None


@attrs.frozen
class Checked:
    """Checks across its fields from the class, as many config sections do (cattrs reports the section)."""

    low: int = 0
    high: int = 1

    def __attrs_post_init__(self) -> None:
        if self.low < 0:
            raise ValueError(f"low must not be negative, got {self.low}")
        if self.high <= self.low:
            raise ValueError(f"need low < high, got {self.low} / {self.high}")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yml"
    path.write_text(text)
    return path


def test_numbers_are_exact_decimals(tmp_path: Path) -> None:
    cfg = load_yaml(write(tmp_path, "name: a\ninner: {spread: 0.1, levels: 3}\n"), Outer)
    assert cfg.inner.spread == Decimal("0.1")  # not 0.1000000000000000055...
    assert isinstance(read_yaml(write(tmp_path, "x: 1.10")), dict)
    assert read_yaml(write(tmp_path, "x: 1.10"))["x"] == Decimal("1.10")


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        ("name: a\ninner: {spread: 1, levles: 2}\n", "inner", "unknown key(s) 'levles'"),
        ("name: a\ninner: {spread: 1}\nextra: 1\n", "<root>", "unknown key(s) 'extra'"),
        ("name: a\ninner: {spread: wide}\n", "inner.spread", "not a number: 'wide'"),
        ("name: a\ninner: {spread: 1, levels: 2.5}\n", "inner.levels", "expected an integer"),
        ("name: a\ninner: {levels: 2}\n", "inner.spread", "required key missing"),
        ("name: a\ninner: {spread: 1}\nitems: [{spread: 1}, {spread: 2, x: 1}]\n", "items[1]", "unknown key(s) 'x'"),
        # a check raised by the class that names a field: the field's own dotted key, not only the section's
        ("name: a\ninner: {spread: 1}\nchecked: {low: -1, high: 2}\n", "checked.low", "low must not be negative"),
        # one that names no field of its own (two of them) keeps the section
        ("name: a\ninner: {spread: 1}\nchecked: {low: 3, high: 2}\n", "checked", "need low < high"),
    ],
)
def test_errors_name_file_key_path_and_reason(tmp_path: Path, text: str, key: str, reason: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_yaml(path, Outer)
    assert info.value.file == str(path)
    assert info.value.key_path == key
    assert reason in info.value.reason
    assert str(path) in str(info.value) and key in str(info.value)


def test_invalid_yaml_and_missing_file_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="invalid YAML"):
        read_yaml(write(tmp_path, "a: [1, 2"))
    with pytest.raises(ConfigError, match="cannot read"):
        read_yaml(tmp_path / "missing.yml")


def test_secrets_only_from_environment_and_only_where_allowed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "name: a\ninner: {spread: 1}\napi_key: ${MMKIT_TEST_KEY}\n")
    monkeypatch.delenv("MMKIT_TEST_KEY", raising=False)
    with pytest.raises(ConfigError) as info:
        load_yaml(path, Outer, secret_paths={"api_key"})
    assert info.value.key_path == "api_key" and "MMKIT_TEST_KEY is not set" in info.value.reason
    monkeypatch.setenv("MMKIT_TEST_KEY", "s3cret")
    assert load_yaml(path, Outer, secret_paths={"api_key"}).api_key == "s3cret"
    with pytest.raises(ConfigError, match="only allowed for secrets"):
        load_yaml(write(tmp_path, "name: ${MMKIT_TEST_KEY}\ninner: {spread: 1}\n"), Outer, secret_paths={"api_key"})


@pytest.mark.parametrize(
    ("written", "yaml_reads"),
    [("010", "8"), ("0x10", "16"), ("0b11", "3"), ("1:30", "90"), ("-010", "-8"), ("0_10", "8")],
)
def test_an_integer_yaml_would_read_in_another_base_is_refused(tmp_path: Path, written: str, yaml_reads: str) -> None:
    """YAML 1.1 reads ``max_position: 010`` as 8 (octal), ``1:30`` as 90 (base 60): a silent other number."""
    path = write(tmp_path, f"name: a\ninner:\n  spread: 1\n  levels: {written}\n")
    with pytest.raises(ConfigError) as info:
        read_yaml(path)
    assert info.value.line == 4
    assert f"{written} would be read as {yaml_reads}" in str(info.value)
    assert "write the number in decimal" in str(info.value)


@pytest.mark.parametrize(("written", "value"), [("0", 0), ("10", 10), ("-3", -3), ("+5", 5), ("1_000", 1000)])
def test_plain_decimal_integers_still_read(tmp_path: Path, written: str, value: int) -> None:
    assert read_yaml(write(tmp_path, f"x: {written}\n"))["x"] == value
