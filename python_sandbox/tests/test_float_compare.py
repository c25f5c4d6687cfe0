"""float_compare and its rounding, checked against Odoo's own expectations."""

import unittest

from towerhook_sandbox.float_utils import float_compare, float_is_zero, float_round

from .support import SandboxTestCase, run


def float_repr(value, digits):
    if float_is_zero(value, precision_digits=digits):
        value = 0.0
    return "%.*f" % (digits, value)


class FloatRoundTest(unittest.TestCase):
    def test_odoo_rounding_table(self):
        # The extended range check of odoo/tools/float_utils.py.
        fractions = [0.0, 0.015, 0.01499, 0.675, 0.67499, 0.4555, 0.4555, 0.45555]
        expected = [".00", ".02", ".01", ".68", ".67", ".46", ".456", ".4556"]
        precisions = [2, 2, 2, 2, 2, 2, 3, 4]
        errors = []
        for magnitude in range(7):
            for fraction, exp, digits in zip(fractions, expected, precisions):
                for sign in (-1, 1):
                    for x in range(0, 10000, 97):
                        n = x * 10**magnitude
                        value = sign * (n + fraction)
                        want = ("-" if value != 0 and sign == -1 else "") + str(n) + exp
                        got = float_repr(float_round(value, precision_digits=digits), digits)
                        if got != want:
                            errors.append((value, want, got))
        self.assertEqual(errors, [])

    def test_rounding_steps(self):
        self.assertEqual(float_round(1.3, precision_rounding=0.5), 1.5)
        self.assertEqual(float_round(2.675, precision_digits=2), 2.68)
        self.assertEqual(float_round(-2.675, precision_digits=2), -2.68)
        self.assertEqual(float_round(1234.5, precision_rounding=10), 1230.0)
        self.assertEqual(float_round(1235, precision_rounding=10), 1240.0)
        self.assertEqual(float_round(0.0, precision_digits=2), 0.0)


class FloatCompareTest(unittest.TestCase):
    def test_compare(self):
        self.assertEqual(float_compare(1.432, 1.431, precision_digits=2), 0)
        self.assertEqual(float_compare(0.006, 0.002, precision_digits=2), 1)
        self.assertEqual(float_compare(0.002, 0.006, precision_digits=2), -1)
        self.assertEqual(float_compare(1.0, 1.0, precision_rounding=0.01), 0)
        self.assertEqual(float_compare(0.1 + 0.2, 0.3, precision_digits=10), 0)
        self.assertEqual(float_compare(-0.005, 0, precision_digits=2), -1)
        self.assertEqual(float_compare(10, 11, precision_rounding=5), 0)
        self.assertEqual(float_compare(7, 8, precision_digits=0), -1)

    def test_precision_errors(self):
        with self.assertRaisesRegex(AssertionError, "exactly one of precision_digits"):
            float_compare(1, 2)
        with self.assertRaisesRegex(AssertionError, "exactly one of precision_digits"):
            float_compare(1, 2, precision_digits=2, precision_rounding=0.01)
        with self.assertRaisesRegex(AssertionError, "precision_rounding must be positive"):
            float_compare(1, 2, precision_rounding=0)
        with self.assertRaisesRegex(AssertionError, "non-negative integer"):
            float_compare(1, 2, precision_digits=1.5)


class FloatCompareInSnippetTest(SandboxTestCase):
    def test_assertion_text(self):
        answer = run(webhook="float_compare(1, 2)")
        self.assertWebhookFailed(
            answer,
            "AssertionError('exactly one of precision_digits and precision_rounding must be specified')",
        )
