"""Indicators that score candidate ops or subnets without training them: the BN indicator (mean |gamma|), SPOS's
held-out accuracy and the zero-cost proxies, behind one name registry."""
