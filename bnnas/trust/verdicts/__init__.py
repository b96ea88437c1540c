"""Verdicts on one search: does its pick beat random archs of its budget, is there headroom to show it, did the
supernet learn, would another seed agree, did the op ranking settle early."""
