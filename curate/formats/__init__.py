"""Dataset formats. One module per format: a pure line parser kept apart from file I/O."""
