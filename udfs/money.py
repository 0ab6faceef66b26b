"""The one place where money is rounded and where decimals cross the wire.

Arithmetic on amounts happens in a *local* decimal context (`money_context()`), never the global one: a
PyFlink worker runs our code next to other user code, and the global context is thread-local mutable state
that anybody can change. 50 significant digits is far beyond any quantity x price we bill (a 10^15 token
count times a 10^-9 unit price still keeps every digit), so exact products stay exact, and `exact()` raises
if one ever is not; the context traps instead of silently producing NaN or Infinity.
"""

from __future__ import annotations

import re
import threading
from decimal import (
    ROUND_HALF_UP,
    Clamped,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
    getcontext,
    localcontext,
    setcontext,
)

from schemas.wire import decimal_to_wire

MONEY_PRECISION_DIGITS = 50
MAX_AMOUNT_PRECISION = 8

_CONTEXT = Context(
    prec=MONEY_PRECISION_DIGITS,
    rounding=ROUND_HALF_UP,
    traps=[InvalidOperation, DivisionByZero, Overflow, Clamped],
)
_WIRE = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]*[1-9])?")


class ExactnessError(ArithmeticError):
    """An operation that must be exact was not (more digits than the money context holds)."""


def money_context():
    """A fresh local decimal context for money arithmetic: `with money_context(): ...`."""
    return localcontext(_CONTEXT)


_THREAD = threading.local()


def _thread_money_context() -> Context:
    """One copy of the money context per thread, reused: `localcontext()` copies a context on every call, which
    made up a third of the per-window rating time."""
    ctx = getattr(_THREAD, "context", None)
    if ctx is None:
        ctx = _THREAD.context = _CONTEXT.copy()
    return ctx


def exact(operation):
    """Run `operation()` in the money context and fail loudly if the result had to be rounded.

    Why: the line-item invariant (lines sum to the period total) relies on unrounded intermediate amounts
    being exact; an inexact intermediate would be a silent billing error.
    """
    ctx = _thread_money_context()
    previous = getcontext()
    setcontext(ctx)
    try:
        ctx.clear_flags()
        result = operation()
        if ctx.flags[Inexact]:
            raise ExactnessError(f"decimal operation exceeded {MONEY_PRECISION_DIGITS} significant digits")
    finally:
        setcontext(previous)
    return result


def round_amount(amount: Decimal, precision: int) -> Decimal:
    """Round an exact amount to `precision` decimal places, half away from zero (ROUND_HALF_UP).

    Why half-up and not banker's rounding: invoices are read by people and checked against spreadsheets and
    tax rules that round half away from zero; half-even would make 0.125 USD bill as 0.12 and look like a bug.
    Half-up is symmetric around zero in Python's decimal (it rounds -0.125 to -0.13), so a negative line is
    the mirror image of a positive one. Rounding happens only here, and only on period-to-date totals;
    line amounts are differences of rounded totals, so they never need rounding themselves.
    """
    if not 0 <= precision <= MAX_AMOUNT_PRECISION:
        raise ValueError(f"amount precision must be 0..{MAX_AMOUNT_PRECISION}, got {precision}")
    with money_context():
        rounded = amount.quantize(Decimal(1).scaleb(-precision), rounding=ROUND_HALF_UP)
    return _without_negative_zero(rounded)


def to_wire(value: Decimal) -> str:
    """Canonical string for a decimal: plain notation, no exponent, no trailing fractional zeros, no "-0".

    One spelling per value means equal amounts compare equal as strings and hash equally downstream.
    Examples: Decimal("1E+3") -> "1000", Decimal("12.50") -> "12.5", Decimal("-0.00") -> "0".
    """
    if not isinstance(value, Decimal):
        raise TypeError(f"to_wire expects Decimal, got {type(value).__name__}")
    return decimal_to_wire(value)


def from_wire(text: str) -> Decimal:
    """Parse a canonical wire decimal; reject anything `to_wire` would not have produced.

    Strictness catches producers that send floats' repr ("1e-05"), whitespace or NaN before they reach money.
    """
    if not isinstance(text, str) or not _WIRE.fullmatch(text) or text == "-0":
        raise ValueError(f"not a canonical wire decimal: {text!r}")
    return Decimal(text)


def _without_negative_zero(value: Decimal) -> Decimal:
    return value.copy_abs() if value.is_zero() else value
