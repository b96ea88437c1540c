"""Subnet search under a cost budget: evolutionary (the paper's), exact (multiple-choice knapsack), random."""

from .common import SearchResult, check_budget, num_choices, sample_under_budget
from .evolution import evolutionary_search
from .exact import exact_search
from .random_search import random_search

__all__ = ["SearchResult", "check_budget", "evolutionary_search", "exact_search", "num_choices", "random_search",
           "sample_under_budget"]
