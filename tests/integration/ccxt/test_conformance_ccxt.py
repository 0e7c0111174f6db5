"""The shared connector conformance suite, run on CcxtConnector for Kraken, Coinbase and Gemini.

Each venue runs ccxt's own code for that venue (request building, signing,
response parsing, error mapping) against the offline mock venue, which answers
with the venue's documented payloads (tests/integration/ccxt/mock_venue.py and
mock_accounts.py). Kraken and Coinbase replace in place (AmendOrder / edit);
Gemini has no replace and refuses it, so the executor cancels and places there.
"""

from __future__ import annotations

import base64
from decimal import Decimal

import pytest

from connectors.ccxt.connector import CcxtConnector, CcxtConnectorConfig, build_exchange
from connectors.ccxt.profiles import profile_for
from mmkit.connector import Connector, load_venue_rules
from mmkit.model import Fill, OrderAccepted, OrderCanceled, OrderRejected, OrderRequest, RejectReason, Side
from mmkit.testing.conformance import ConnectorConformance, Harness
from tests.integration.ccxt.conftest import FAST, MARKETS
from tests.integration.ccxt.mock_venue import MockVenueServer, point_exchange

pytestmark = [pytest.mark.integration, pytest.mark.shared_data]

#: Test credentials in each venue's shape (Coinbase's legacy HMAC key, Kraken's base64 secret).
CREDENTIALS = {
    "kraken": {"apiKey": "test-key", "secret": base64.b64encode(b"s" * 64).decode()},
    "coinbase": {"apiKey": "test-key", "secret": "coinbase-test-secret"},
    "gemini": {"apiKey": "account-test-key", "secret": "gemini-test-secret"},
}


async def make_venue_connector(
    server: MockVenueServer, venue: str, config: CcxtConnectorConfig = FAST
) -> CcxtConnector:
    profile = profile_for(venue)
    exchange = build_exchange(profile, CREDENTIALS[venue], markets=MARKETS[venue](), rateLimit=5)
    point_exchange(exchange, server, venue)
    return CcxtConnector(exchange, load_venue_rules(venue), profile, config)


class CcxtConformance(ConnectorConformance):
    """Hooks shared by the three venues: the mock plays each venue's account."""

    venue = ""

    async def make_connector(self) -> Connector:
        self.server = MockVenueServer()
        await self.server.start()
        return await make_venue_connector(self.server, self.venue)

    async def close_connector(self, connector: Connector) -> None:
        await super().close_connector(connector)
        await self.server.stop()

    async def venue_fill(self, connector: Connector, order: OrderRequest) -> None:
        assert order.price is not None
        self.server.fill(self.venue, order.client_id, order.qty, order.price, maker=True)

    async def venue_lose_order(self, connector: Connector, client_id: str) -> None:
        self.server.lose(self.venue, client_id)

    async def drop_connection(self, connector: Connector) -> None:
        """The venue becomes unreachable: REST answers 503 and sockets close; the poller notices."""
        self.server.set_rest_down(True)
        await self.server.drop_connections()
        for _ in range(200):
            if not connector.connected:
                return
            await self.pump(connector)

    async def restore_connection(self, connector: Connector) -> None:
        """The venue answers again; ``connect`` returns once a probe of its own was answered.

        No wait after it: a poll sent while the venue was down that comes back 503 after
        ``connect`` is older than that probe and leaves the session up (connectors/ccxt/
        session_health.py; the race itself: tests/integration/ccxt/test_session_health.py).
        The suite's ``connected`` check after this is what would catch it coming back.
        """
        self.server.set_rest_down(False)
        await connector.connect()

    async def reference_mid(self, connector: Connector) -> Decimal:
        bids, asks = self.server.books[self.venue].top(1)
        return (bids[0][0] + asks[0][0]) / 2

    def expected_fee(self, connector: Connector, fill: Fill) -> Decimal:
        """The venue's own fee for the trade: the mock charges its maker rate on the notional."""
        return fill.notional * self.server.maker_fee

    # -- venue-specific cases on top of the shared suite ------------------------------

    async def test_partial_fills_book_each_venue_trade_once(self, h: Harness) -> None:
        order, _ = await h.place_resting(Side.BUY)
        assert order.price is not None
        first = (order.qty / 3).quantize(h.instrument.lot_for(order.price))
        self.server.fill(self.venue, order.client_id, first, order.price)
        one = await h.wait_for_order(order.client_id, Fill)
        self.server.fill(self.venue, order.client_id, order.qty - first, order.price)
        two = await h.wait_for_order(order.client_id, Fill)
        assert isinstance(one, Fill) and isinstance(two, Fill)
        assert (one.qty, two.qty) == (first, order.qty - first)
        assert one.trade_id != two.trade_id
        # The venue's trade ids: the same ones restart recovery reads from the fill history.
        history = await h.connector.fetch_fills(self.symbol, 0)
        assert {f.trade_id for f in history} == {one.trade_id, two.trade_id}
        for _ in range(20):  # further polls of the same state book nothing more
            await h.collect()
        assert len([e for e in h.events if isinstance(e, Fill)]) == 2

    async def test_post_only_that_would_cross_is_not_left_resting(self, h: Harness) -> None:
        _bids, asks = self.server.books[self.venue].top(1)
        price = asks[0][0]  # a buy at the best ask would take
        order = h.request(Side.BUY, price, post_only=True)
        h.connector.place(order)
        event = await h.wait_for_order(order.client_id, OrderRejected, OrderCanceled)
        if isinstance(event, OrderRejected):
            assert event.reason is RejectReason.POST_ONLY_WOULD_CROSS
        else:  # Kraken accepts, then cancels with "Post only order"
            assert self.venue == "kraken"
            assert any(isinstance(e, OrderAccepted) and e.client_id == order.client_id for e in h.events)
        assert order.client_id not in self.server.open_client_ids(self.venue)

    async def test_insufficient_funds_and_rate_limit_answers_map_to_reasons(self, h: Harness) -> None:
        for injected, reason in (("insufficient_funds", RejectReason.INSUFFICIENT_FUNDS),
                                 ("rate_limit", RejectReason.RATE_LIMIT)):
            if self.venue == "kraken":
                self.server.fail_next("EOrder:Insufficient funds" if injected == "insufficient_funds"
                                      else "EOrder:Rate limit exceeded")
            else:
                self.server.fail_account_next(self.venue, injected)
            order = h.request(Side.BUY, await h.resting_price(Side.BUY))
            h.connector.place(order)
            event = await h.wait_for_order(order.client_id, OrderAccepted, OrderRejected)
            assert isinstance(event, OrderRejected) and event.reason is reason, event

    async def test_client_ids_outside_the_venue_rule_are_refused_locally(self, h: Harness) -> None:
        price = await h.resting_price(Side.BUY)
        bad = OrderRequest("bad id/with spaces", h.connector.venue, self.symbol, Side.BUY, h.valid_qty(price), price)
        h.connector.place(bad)
        event = await h.wait_for_order(bad.client_id, OrderAccepted, OrderRejected)
        assert isinstance(event, OrderRejected) and event.reason is RejectReason.INVALID_MESSAGE


class TestCcxtKrakenConformance(CcxtConformance):
    symbol = "BTC/USD"
    venue = "kraken"

    def expected_fee(self, connector: Connector, fill: Fill) -> Decimal:
        """Kraken reports a trade's fee rounded to 6 decimals of the quote currency."""
        return super().expected_fee(connector, fill).quantize(Decimal("0.000001"))

    async def test_rejects_under_min_notional(self, h: Harness) -> None:
        """Kraken's rules leave no on-lot order under min notional (0.0001 BTC min size is ~$6 > $0.50)."""
        instrument = h.instrument
        price = await h.resting_price(Side.BUY)
        assert price * instrument.min_qty >= instrument.min_notional


class TestCcxtCoinbaseConformance(CcxtConformance):
    symbol = "BTC-USD"
    venue = "coinbase"


class TestCcxtGeminiConformance(CcxtConformance):
    symbol = "BTCUSD"
    venue = "gemini"

    async def test_rejects_under_min_notional(self, h: Harness) -> None:
        """Gemini publishes a minimum size (0.00001 BTC), not a minimum notional: nothing to refuse."""
        assert h.instrument.min_notional == 0
