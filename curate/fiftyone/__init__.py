"""The FiftyOne bridge: load and diff datasets, tags and views, the review App, proposals in the App."""
