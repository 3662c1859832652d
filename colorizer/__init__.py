"""Automatic photo colorization: Iizuka, Simo-Serra & Ishikawa, "Let there be Color!" (SIGGRAPH 2016)."""
