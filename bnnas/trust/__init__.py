"""How far to trust a search: indicator-vs-ground-truth rank correlation, early-bird stopping, space bias, seed
stability and searched-vs-random verification."""
