"""`curate audit`: the runner, its checks and the box model they share."""
