"""The benchmark study: indicators against a published (or our own) table of trained archs, and how far the table
itself can be trusted; ``ground_truth`` writes our own table."""
