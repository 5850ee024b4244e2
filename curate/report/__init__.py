"""Reports: the audit's HTML and Markdown, thumbnails and plots; the comparison's page."""
