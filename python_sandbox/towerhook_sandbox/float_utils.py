"""Odoo's ``float_compare`` (``odoo/tools/float_utils.py``, 18.0), re-implemented.

Same algorithm, so snippets get the same answers as on Odoo: both values are rounded
half-up to the precision (with Odoo's epsilon correction for IEEE-754 ties and its exact
inversion of small rounding factors), then their difference is compared with zero at that
precision. Precision errors raise AssertionError with Odoo's texts.
"""

import builtins
import math

# Exact inverses of the usual decimal steps (0.01 -> 100.0 ...), as Odoo tabulates them.
# Built from decimal literals so the keys are the floats Odoo's literals denote.
_INVERSES = {
    float("%de-%d" % (step, n)): float("%de%d" % (inverse, n - (step != 1)))
    for n in range(1, 11)
    for step, inverse in ((1, 1), (2, 5), (5, 2))
}


def _py2_round(value):
    # Odoo rounds halves away from zero and keeps a float (Python 2 semantics).
    rounded = builtins.round(value)
    if builtins.round(value + 1) - rounded != 1:
        return value + math.copysign(0.5, value)
    return math.copysign(rounded, value)


def _invert(value):
    inverse = _INVERSES.get(value)
    if inverse is None:
        coefficient, exponent = ("%.15e" % value).split("e")
        inverse = float("%se%d" % (coefficient, -int(exponent))) / float(coefficient) ** 2
    return inverse


def _precision(precision_digits=None, precision_rounding=None):
    if precision_rounding is not None and precision_digits is None:
        assert precision_rounding > 0, (
            "precision_rounding must be positive, got %s" % precision_rounding
        )
        return precision_rounding
    if precision_digits is not None and precision_rounding is None:
        assert float(precision_digits).is_integer() and precision_digits >= 0, (
            "precision_digits must be a non-negative integer, got %s" % precision_digits
        )
        return 10**-precision_digits
    raise AssertionError(
        "exactly one of precision_digits and precision_rounding must be specified"
    )


def float_round(value, precision_digits=None, precision_rounding=None):
    """Half-up rounding to the precision (Odoo's default rounding method)."""
    factor = _precision(precision_digits, precision_rounding)
    if factor == 0 or value == 0:
        return 0.0
    if factor < 1:
        # Multiplying by the exact inverse loses less than dividing by a small step.
        inverse = _invert(factor)
        normalized = value * inverse
        epsilon = 2 ** (math.log2(abs(normalized)) - 50)
        return _py2_round(normalized + math.copysign(epsilon, normalized)) / inverse
    normalized = value / factor
    epsilon = 2 ** (math.log2(abs(normalized)) - 50)
    return _py2_round(normalized + math.copysign(epsilon, normalized)) * factor


def float_is_zero(value, precision_digits=None, precision_rounding=None):
    epsilon = _precision(precision_digits, precision_rounding)
    return value == 0.0 or abs(float_round(value, precision_rounding=epsilon)) < epsilon


def float_compare(value1, value2, precision_digits=None, precision_rounding=None):
    """-1, 0 or 1 as ``value1`` is lower than, equal to or greater than ``value2``
    once both are rounded to the precision (digits or rounding step, exactly one)."""
    factor = _precision(precision_digits, precision_rounding)
    if value1 == value2:
        return 0
    value1 = float_round(value1, precision_rounding=factor)
    value2 = float_round(value2, precision_rounding=factor)
    delta = value1 - value2
    if float_is_zero(delta, precision_rounding=factor):
        return 0
    return -1 if delta < 0.0 else 1
