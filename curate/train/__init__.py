"""`curate train-and-compare`: identical training on two datasets, one test set, a bootstrap verdict, history."""
