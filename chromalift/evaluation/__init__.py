"""Quality metrics beside the grey baseline."""
