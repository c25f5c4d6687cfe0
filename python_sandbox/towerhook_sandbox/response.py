"""The message a call answers with: masked, size-limited, as JSON and as text.

``message_json`` is ``json.dumps(message)`` (the module answers
``json.dumps({"message": message})``, so a success message that is a list or a dict keeps
its JSON type); ``message_text`` is ``str(message)`` for the log. Both are limited to
``max_message_chars`` characters: a longer message becomes a string ending with
``TRUNCATED``.
"""

import json

from .secrets import SPOILER, mask

TRUNCATED = "… [truncated]"


def render(outcome, status, message, spoil, limit):
    """``(outcome, status, message_json, message_text)``.

    Raises what ``str(message)`` raises (a snippet's object that cannot be shown), so that
    the caller can report it as the snippet's failure.
    """
    if spoil:
        message = _masked(message, spoil)
    text = message if isinstance(message, str) else str(message)
    if spoil:
        text = mask(text, spoil)
    encoded = None
    if len(text) <= limit:
        try:
            encoded = json.dumps(message)
        except (TypeError, ValueError, RecursionError):
            # Not JSON-serialisable (the module would crash here): answer the text.
            encoded = json.dumps(text)
        if len(encoded) > limit:
            encoded = None
    if encoded is None:
        encoded = _json_within(text, limit)
    if len(text) > limit:
        text = (text[: max(limit - len(TRUNCATED), 0)] + TRUNCATED)[:limit]
    return (outcome, status, encoded, text)


def _json_within(text, limit):
    # A JSON string of at most ``limit`` characters; escapes can make it longer than the
    # text, so cut again by the overshoot until it fits.
    keep = min(len(text), limit)
    while True:
        encoded = json.dumps(text[:keep] + TRUNCATED)
        if len(encoded) <= limit or keep == 0:
            return encoded
        keep = max(keep - (len(encoded) - limit), 0)


def _masked(message, spoil):
    # Masks inside the structure rather than in its JSON: a replacement in the encoded
    # text could cut across JSON syntax.
    if isinstance(message, str):
        return mask(message, spoil)
    if isinstance(message, dict):
        return {_masked(key, spoil): _masked(value, spoil) for key, value in message.items()}
    if isinstance(message, list):
        return [_masked(item, spoil) for item in message]
    if isinstance(message, tuple):
        return tuple(_masked(item, spoil) for item in message)
    if isinstance(message, (int, float)) and not isinstance(message, bool):
        # A secret used as a number (``int(#!cxtower.secret.pin!#)``) would reach the
        # JSON answer in clear: the whole number becomes the spoiler.
        shown = repr(message)
        if mask(shown, spoil) != shown:
            return SPOILER
    return message
