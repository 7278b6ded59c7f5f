"""The search core: spaces, NB-101 graph hashing, the supernet and the Hessian. No I/O, no CLI.

May import: bench.errors only (and torch, numpy).
"""
