"""The search space and what is built from it: spaces as data, the arch record, candidate ops, the supernet and a
standalone subnet, per-op FLOPs/params/latency tables and the path samplers."""
