"""Results out: the atomic result directory and its ownership marker, provenance, the one
confidence interval, and the reader that turns a result directory into DataFrames."""
