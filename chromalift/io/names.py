"""How the tool's lines show file names: every name the file system accepts works, but a name holding a line
break, a carriage return or a terminal escape must not print as more than one line or as the tool's own words
(a file named "x\\ncolorize: error: ..."). Control characters are shown escaped, as Python writes them."""
from __future__ import annotations


def one_line(text: str) -> str:
    """text with every character that is not printable (controls, line and paragraph separators, escapes)
    written as Python escapes it: \\n, \\r, \\x1b, \\u2028."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
