"""Feature labels: per block, a label, category and confidence for each SAE feature."""
