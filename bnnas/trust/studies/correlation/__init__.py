"""The ranking study: indicator scores of K sampled subnets against their from-scratch accuracy (tau, rho, CIs)."""
