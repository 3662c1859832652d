"""The network: its configuration, the PyTorch model, and weights files."""
