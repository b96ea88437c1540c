"""How far to trust a search: verdicts on one run (``verdicts``: beats random, headroom, learning, seed stability,
early bird), studies of an indicator against a ground truth (``studies``), and the rank statistics both share."""
