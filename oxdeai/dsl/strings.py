"""String literals: the one definition of `.oxp` escapes, both directions.

Contract: `unescape` decodes a literal's body (between the quotes) or raises
`EscapeError`; `quote` gives the canonical literal of any string, and
`unescape(quote(v)[1:-1]) == v` for every `v`.
"""

from __future__ import annotations

import re

_UNICODE_ESCAPE = re.compile(r"\\u\{([0-9A-Fa-f]{1,6})\}")


class EscapeError(ValueError):
    pass


def unescape(body: str) -> str:
    """Decode a string literal body: `\\\\`, `\\"`, `\\n`, `\\t`, `\\u{HEX}`; any other
    backslash is kept as it is, so regexes read naturally."""
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch != "\\" or i + 1 >= len(body):
            out.append(ch)
            i += 1
            continue
        nxt = body[i + 1]
        if nxt in '\\"':
            out.append(nxt)
            i += 2
        elif nxt == "n":
            out.append("\n")
            i += 2
        elif nxt == "t":
            out.append("\t")
            i += 2
        elif nxt == "u" and body.startswith("{", i + 2):
            m = _UNICODE_ESCAPE.match(body, i)
            if m is None:
                raise EscapeError("`\\u{...}` needs 1 to 6 hex digits")
            code = int(m.group(1), 16)
            if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                raise EscapeError(f"`\\u{{{m.group(1)}}}` is not a Unicode scalar value")
            out.append(chr(code))
            i = m.end()
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def quote(value: str) -> str:
    """The canonical literal for a string value; `unescape(quote(v)[1:-1]) == v`."""
    out: list[str] = []
    for i, ch in enumerate(value):
        if ch == "\\":
            nxt = value[i + 1] if i + 1 < len(value) else ""
            # a lone `\` is kept only where it cannot start an escape
            plain = nxt != "" and nxt not in '\\"ntu' and ord(nxt) >= 0x20 and ord(nxt) != 0x7F
            out.append("\\" if plain else "\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{{{ord(ch):X}}}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'
