"""Execution: the Executor (targets vs. live orders), its rate limiter and circuit breaker."""

from mmkit.execution.circuit_breaker import BreakerState, CircuitBreaker
from mmkit.execution.executor import ExecAction, ExecActionKind, Executor
from mmkit.execution.rate_limiter import ActionKind, RateLimiter

__all__ = ["ActionKind", "BreakerState", "CircuitBreaker", "ExecAction", "ExecActionKind", "Executor", "RateLimiter"]
