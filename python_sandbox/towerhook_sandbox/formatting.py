"""``str.format`` and ``str.format_map`` without attribute escapes.

safe_eval's name check reads the names compiled into the code, but a format string
follows attribute chains at run time (``"{0.__init__.__globals__}".format(obj)``), out of
that check's sight. Every ``.format`` and ``.format_map`` a snippet reads is compiled as a
call to ``attribute()`` below (see ``rewrite.py``): on a string (or on ``str`` itself) it
gives a version that first checks every attribute the template names with safe_eval's own
rule, then formats with the real method, so templates that pass behave exactly as in
Python; on any other object it is the object's own attribute.

``%`` formatting needs no such check: it only looks up mapping keys, never attributes.
f-strings compile their attribute accesses into the code, where the name check sees them.
"""

import _string

from .validation import is_forbidden_name

FORMAT_ATTRIBUTES = frozenset(["format", "format_map"])


def check_template(template):
    """Raises NameError when a field of ``template`` reads a forbidden attribute."""
    for _literal, field, spec, _conversion in _string.formatter_parser(template):
        if field:
            _first, rest = _string.formatter_field_name_split(field)
            for is_attribute, key in rest:
                if is_attribute and is_forbidden_name(key):
                    raise NameError("Access to forbidden name %r" % key)
        if spec and "{" in spec:
            check_template(spec)


def safe_format(template, /, *args, **kwargs):
    if isinstance(template, str):
        check_template(template)
    return str.format(template, *args, **kwargs)


def safe_format_map(template, mapping, /):
    if isinstance(template, str):
        check_template(template)
    return str.format_map(template, mapping)


_UNBOUND = {"format": safe_format, "format_map": safe_format_map}


def attribute(obj, name):
    """``obj.format`` / ``obj.format_map`` as a snippet may have it."""
    if isinstance(obj, str):
        if name == "format":

            def format(*args, **kwargs):  # noqa: A001 - named as the method it stands for
                return safe_format(obj, *args, **kwargs)

            return format

        def format_map(mapping):
            return safe_format_map(obj, mapping)

        return format_map
    if isinstance(obj, type) and issubclass(obj, str):
        return _UNBOUND[name]
    return getattr(obj, name)
