"""Secret placeholders (``#!cxtower.secret.REF!#``) and the masking of their values.

Placeholders are found as the module finds them (``cx.tower.key._extract_key_strings``):
each occurrence of ``#!cxtower`` up to the next ``!#``; a candidate is a secret when,
with spaces and ``!#`` removed, it splits on ``.`` into exactly ``#!cxtower``, ``secret``
and the reference. Every candidate is replaced, an unknown secret or a malformed
candidate by ``None``. Code of 14 characters or less is not scanned.

The module pastes the value into the source between double quotes, unescaped: a quote or
a backslash in a secret corrupts the code or injects into it, and the value then shows in
error texts that quote the code. towerhook pastes a unique identifier instead and swaps
it for the value in the syntax tree, before the tree is compiled:

- used as a value (``token = #!cxtower.secret.TOKEN!#``, inside f-string braces), the
  placeholder becomes a string constant (``None`` for an unknown secret), whatever the
  value contains;
- inside a string literal, it becomes ``"value"`` within that string, which is what the
  module's pasting gives there (``'{"token": #!cxtower.secret.T!#}'``);
- anywhere else (as an assignment target, glued to a name...), where the module's code
  would not compile either, the snippet is refused with a message naming the placeholder.
"""

import ast
import json
import os

PREFIX = "#!cxtower"
TERMINATOR = "!#"
SPOILER = "*****"
_MIN_SCANNED = len(PREFIX) + 3 + len(TERMINATOR)


def placeholders(code):
    """The distinct placeholder candidates in ``code``, in order of appearance."""
    found = []
    if not code or len(code) <= _MIN_SCANNED:
        return found
    start = code.find(PREFIX)
    while start >= 0:
        end = code.find(TERMINATOR, start)
        if end > 0:
            end += len(TERMINATOR)
            candidate = code[start:end]
            if candidate not in found:
                found.append(candidate)
            start = code.find(PREFIX, end)
        else:
            start = code.find(PREFIX, start + len(PREFIX))
    return found


def reference(candidate):
    """The secret reference a candidate names, or None when it names no secret."""
    parts = candidate.replace(" ", "").replace(TERMINATOR, "").split(".")
    if len(parts) == 3 and parts[0] == PREFIX and parts[1] == "secret" and parts[2]:
        return parts[2]
    return None


def secret_references(code):
    """References of the secrets ``code`` uses, each once, in order of appearance."""
    references = []
    for candidate in placeholders(code):
        ref = reference(candidate)
        if ref is not None and ref not in references:
            references.append(ref)
    return references


class Inlined:
    """Source with identifiers in place of placeholders, and what they stand for."""

    __slots__ = ("code", "stem", "values", "placeholders")

    def __init__(self, code, stem, values, originals):
        self.code = code
        # common start of the identifiers, random per snippet so no name collides with it
        self.stem = stem
        # identifier -> secret value (None: unknown)
        self.values = values
        # identifier -> placeholder text, for messages
        self.placeholders = originals


def inline(code, secrets):
    """Replaces every placeholder candidate of ``code`` by a unique identifier."""
    candidates = placeholders(code)
    if not candidates:
        return Inlined(code, None, {}, {})
    stem = "cxtower_secret_%s_" % os.urandom(6).hex()
    values = {}
    originals = {}
    # Longest first: a candidate never eats into a longer one that contains it.
    for number, candidate in enumerate(sorted(candidates, key=len, reverse=True)):
        # The trailing "_" keeps identifier 1 from being the start of identifier 10.
        identifier = "%s%d_" % (stem, number)
        ref = reference(candidate)
        value = (secrets or {}).get(ref) if ref is not None else None
        if value is not None and not isinstance(value, str):
            value = str(value)
        values[identifier] = value
        originals[identifier] = candidate
        code = code.replace(candidate, identifier)
    return Inlined(code, stem, values, originals)


class PlaceholderError(SyntaxError):
    """A placeholder used where no value can stand."""


class SecretInliner(ast.NodeTransformer):
    """Swaps the placeholder identifiers of ``inlined`` for the secret values."""

    def __init__(self, inlined):
        self._inlined = inlined
        self._stem = inlined.stem

    def visit_Name(self, node):
        if node.id not in self._inlined.values:
            return node
        if not isinstance(node.ctx, ast.Load):
            raise self._misuse(node.id)
        return ast.copy_location(ast.Constant(self._inlined.values[node.id]), node)

    def visit_Constant(self, node):
        if isinstance(node.value, str) and self._stem in node.value:
            node.value = self._in_literal(node.value, lambda text: text)
        elif isinstance(node.value, bytes) and self._stem.encode() in node.value:
            node.value = self._in_literal(node.value, lambda text: text.encode("utf-8"))
        return node

    def _in_literal(self, literal, convert):
        # What the module's pasting leaves inside a string literal.
        for identifier, value in self._inlined.values.items():
            pasted = "None" if value is None else ('"%s"' % value if value else "")
            literal = literal.replace(convert(identifier), convert(pasted))
        return literal

    def check_leftovers(self, tree):
        """Refuses placeholders that ended up inside a name (glued to other text...)."""
        for node in ast.walk(tree):
            for _field, value in ast.iter_fields(node):
                if isinstance(value, str) and self._stem in value:
                    for identifier in self._inlined.values:
                        if identifier in value:
                            raise self._misuse(identifier)
                    raise self._misuse(None)

    def _misuse(self, identifier):
        shown = self._inlined.placeholders.get(identifier, "a secret placeholder")
        return PlaceholderError(
            "secret placeholder %s can only be used as a value, for example "
            "token = #!cxtower.secret.REFERENCE!#" % shown
        )


def apply(tree, inlined):
    """Puts the secret values of ``inlined`` into ``tree`` (in place) and returns it."""
    if not inlined.values:
        return tree
    inliner = SecretInliner(inlined)
    tree = inliner.visit(tree)
    inliner.check_leftovers(tree)
    return tree


def needles(values):
    """Every form in which a secret value can show in a message, longest first.

    The value itself, and the value as it shows inside ``repr()`` (either quote style) or
    JSON text, once or twice over: an exception text quoting ``repr(value)`` is quoted
    again by the ``repr()`` of the exception. Also its UTF-8 bytes as ``repr()`` shows them.
    """
    found = set()
    for value in values:
        if not value or not isinstance(value, str):
            continue
        encoded = value.encode("utf-8", "surrogatepass")
        bytes_form = repr(encoded + b"'\"")[2:-1][:-3]
        forms = {value, bytes_form, bytes_form.replace("\\'", "'"), *_numeric_forms(value)}
        for _round in range(2):
            forms = set().union(*(_escaped(form) for form in forms))
        found |= forms
    found.discard("")
    return tuple(sorted(found, key=len, reverse=True))


def _numeric_forms(value):
    """How a secret used as a number shows: ``int("0042")`` is ``42``, ``float("1e3")``
    ``1000.0``."""
    forms = set()
    try:
        forms.add(str(int(value)))
    except ValueError:
        pass
    try:
        number = float(value)
    except ValueError:
        return forms
    if number == number and number not in (float("inf"), float("-inf")):
        forms.add(repr(number))
        if number.is_integer():
            forms.add(str(int(number)))
    return forms


def _escaped(text):
    # repr() escapes the quote it is delimited with: force both quotes in, strip them off.
    quoted = repr(text + "'\"")[1:-1][:-3]
    return {
        text,
        quoted,
        quoted.replace("\\'", "'"),
        json.dumps(text)[1:-1],
        json.dumps(text, ensure_ascii=False)[1:-1],
    }


def mask(text, spoil):
    """``text`` with every needle of ``spoil`` replaced by the spoiler."""
    for needle in spoil:
        if needle in text:
            text = text.replace(needle, SPOILER)
    return text


def mask_bytes(data, spoil):
    """``data`` with the UTF-8 form of every needle of ``spoil`` replaced by the spoiler."""
    for needle in spoil:
        encoded = needle.encode("utf-8", "surrogatepass")
        if encoded in data:
            data = data.replace(encoded, SPOILER.encode())
    return data
