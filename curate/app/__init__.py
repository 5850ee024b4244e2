"""The command line, the recipe pipeline, the process environment and the worker child."""
