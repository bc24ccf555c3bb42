"""Named, reproducible experiments; each writes CSV/JSON tables and PNG plots to a folder."""
