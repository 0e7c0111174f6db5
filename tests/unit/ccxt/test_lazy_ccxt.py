"""connectors.ccxt imports ccxt's error classes and the configured exchanges only, and stays ccxt-compatible."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def _run(code: str) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def test_building_three_venues_imports_those_exchanges_only() -> None:
    out = _run(
        "import json, sys\n"
        "from connectors.ccxt import build_exchange, profile_for\n"
        "built = [build_exchange(profile_for(v)) for v in ('kraken', 'coinbase', 'gemini')]\n"
        "exchanges = sorted({m.rsplit('.', 1)[-1] for m in sys.modules\n"
        "                    if m.startswith(('ccxt.pro.', 'ccxt.async_support.', 'ccxt.abstract.'))\n"
        "                    and m.count('.') == 2 and m.rsplit('.', 1)[-1] not in ('base',)})\n"
        "print(json.dumps({'ids': [b.id for b in built], 'exchanges': exchanges,\n"
        "                  'sync': sorted(m for m in sys.modules if m.count('.') == 1 and m.startswith('ccxt.')\n"
        "                                 and m not in ('ccxt.base', 'ccxt.async_support', 'ccxt.pro',\n"
        "                                               'ccxt.abstract', 'ccxt.static_dependencies'))}))\n"
    )
    assert out["ids"] == ["kraken", "coinbase", "gemini"]
    assert out["exchanges"] == ["coinbase", "gemini", "kraken"]  # not the ~100 others
    assert out["sync"] == []  # no sync exchange module (ccxt/__init__ imports them all)


def test_ccxt_still_works_as_a_whole_after_the_light_import() -> None:
    """Code that imports ccxt itself afterwards gets every name: the real __init__ runs on first use."""
    out = _run(
        "import json\n"
        "from connectors.ccxt.errors import ccxt_exc, classify, ErrorKind\n"
        "from connectors.ccxt.lazy import pro_exchange_class\n"
        "kraken = pro_exchange_class('kraken')\n"
        "import ccxt, ccxt.pro\n"
        "print(json.dumps({'same_errors': ccxt.NetworkError is ccxt_exc.NetworkError,\n"
        "                  'binance': ccxt.binance.__name__, 'pro_kraken': ccxt.pro.kraken is kraken,\n"
        "                  'pro_binance': ccxt.pro.binance.__name__,\n"
        "                  'kind': classify(ccxt.OrderNotFound('x')).kind.name}))\n"
    )
    assert out == {"same_errors": True, "binance": "binance", "pro_kraken": True, "pro_binance": "binance",
                   "kind": "DEFINITIVE"}


def test_exchange_id_is_checked() -> None:
    from connectors.ccxt.lazy import pro_exchange_class

    with pytest.raises(ValueError, match="not a ccxt exchange id"):
        pro_exchange_class("../etc")
    with pytest.raises(ModuleNotFoundError):
        pro_exchange_class("no_such_exchange_here")
