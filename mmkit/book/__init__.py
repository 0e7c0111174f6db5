"""L2 order book (integers inside, Decimal at the edge) and the tracker that keeps it valid."""

from mmkit.book.book import IntLevel, OffGridError, OrderBook
from mmkit.book.tracker import ChecksumFn, OrderBookTracker

__all__ = ["ChecksumFn", "IntLevel", "OffGridError", "OrderBook", "OrderBookTracker"]
