"""The data model every other part builds on: a dataset, its findings, box overlaps, the defaults."""
