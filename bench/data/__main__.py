"""`python -m bench.data ...`: see bench/data/cli.py."""

import sys

from bench.data.cli import main

sys.exit(main())
