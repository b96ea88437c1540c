"""The bias study: the conv share a search picks in the biased vs the unbiased (BNNAS++) space."""
