"""Small learners of our own: gradient boosting on numpy, used by the box model."""
