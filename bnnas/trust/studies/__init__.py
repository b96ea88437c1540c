"""Studies of how well an indicator ranks against a ground truth (trained subnets, a benchmark table, a biased space);
the config, supernets, data split and indicator scoring they share sit here, below the studies."""
