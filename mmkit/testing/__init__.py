"""The test kit: FakeConnector, the engine harness, the connector conformance suite, pytest fixtures."""

from mmkit.testing.fake_connector import FakeConnector
from mmkit.testing.harness import Harness, ScriptedFairValue

__all__ = ["FakeConnector", "Harness", "ScriptedFairValue"]
