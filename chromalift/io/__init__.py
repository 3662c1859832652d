"""Photos in and out: formats, metadata, 16-bit, atomic files."""
