"""Dataset operations that write a new folder: export, rebalance, backgrounds."""
