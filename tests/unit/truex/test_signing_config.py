"""Logon signing, signer loading, credentials and ids."""

from __future__ import annotations

import attrs
import pytest

from connectors.truex.config import Credentials, SessionEndpoint, TrueXConfig
from connectors.truex.ids import IdGenerator
from connectors.truex.signing import DEFAULT_SIGNER, LogonFields, hmac_sha256_base64, load_signer, verify
from mmkit.conf import ConfigError

FIELDS = LogonFields("20240809-00:00:00.123", "A", "1", "MMKIT_OE", "TRUEX_UAT_OE", "my-api-key")
#: Computed independently: printf '...' | openssl dgst -sha256 -hmac s3cr3t -binary | base64
EXPECTED = "KS8jA1Ec4FTLFgfhKCLb2hUEfCnSQivW8W/H04JkAKM="


def test_default_signature_matches_openssl_vector() -> None:
    assert hmac_sha256_base64(FIELDS, "s3cr3t") == EXPECTED


def test_signature_covers_every_field() -> None:
    base = hmac_sha256_base64(FIELDS, "s3cr3t")
    for name in ("sending_time", "msg_seq_num", "sender_comp_id", "target_comp_id", "username"):
        changed = attrs.evolve(FIELDS, **{name: "x"})
        assert hmac_sha256_base64(changed, "s3cr3t") != base, name


def test_verify_and_wrong_secret() -> None:
    assert verify(FIELDS, "s3cr3t", EXPECTED)
    assert not verify(FIELDS, "other", EXPECTED)


def test_signer_is_swappable_by_dotted_name() -> None:
    assert load_signer(DEFAULT_SIGNER) is hmac_sha256_base64
    assert load_signer("tests.unit.truex.test_signing_config:_upper_signer")(FIELDS, "k") == "SIG-MY-API-KEY"
    with pytest.raises(ValueError, match=r"package\.module:function"):
        load_signer("no_colon_here")
    with pytest.raises(ValueError, match="not a callable"):
        load_signer("tests.unit.truex.test_signing_config:EXPECTED")


def _upper_signer(fields: LogonFields, secret: str) -> str:
    return "SIG-" + fields.username.upper()


def _config() -> TrueXConfig:
    return TrueXConfig(
        oe=SessionEndpoint("127.0.0.1", 9876, "ME_OE", "TRUEX_UAT_OE"),
        md=SessionEndpoint("127.0.0.1", 9877, "ME_MD", "TRUEX_UAT_MD"),
        party_id="P1",
    )


def test_credentials_only_from_env_and_never_in_repr() -> None:
    creds = Credentials.from_env(_config(), {"TRUEX_API_KEY": "k", "TRUEX_SECRET_KEY": "s"})
    assert (creds.api_key, creds.secret) == ("k", "s")
    assert "k" not in repr(creds).replace("api_key", "") and "s3" not in repr(creds)
    with pytest.raises(ConfigError, match="TRUEX_SECRET_KEY"):
        Credentials.from_env(_config(), {"TRUEX_API_KEY": "k"})


def test_config_from_mapping_rejects_unknown_keys_and_bad_ports() -> None:
    data = {
        "oe": {"host": "h", "port": 1, "sender_comp_id": "a", "target_comp_id": "b"},
        "md": {"host": "h", "port": 2, "sender_comp_id": "c", "target_comp_id": "d"},
        "party_id": "p",
    }
    assert TrueXConfig.from_mapping(data).md.port == 2
    with pytest.raises(ConfigError, match="secret"):
        TrueXConfig.from_mapping({**data, "secret": "x"})
    with pytest.raises(ConfigError):
        TrueXConfig.from_mapping({**data, "oe": {**data["oe"], "port": 70000}})


def test_ids_are_short_and_unique() -> None:
    gen = IdGenerator(start_s=4_000_000_000)
    ids = [gen.next("c") for _ in range(5000)]
    assert len(set(ids)) == 5000
    assert all(len(i) <= 18 and i.startswith("c") for i in ids)
    assert IdGenerator(start_s=1).next("c") != IdGenerator(start_s=2).next("c")
