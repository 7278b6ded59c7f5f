"""`python -m bench.spaces`: count the architectures of the three search spaces (bench/search/spaces.py)."""

from bench.search.spaces import main

if __name__ == "__main__":
    raise SystemExit(main())
