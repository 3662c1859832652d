"""CIE Lab conversions, in PyTorch and in NumPy."""
