"""`python -m bench.blackbox ...`: see bench/blackbox/cli.py."""

import sys

from bench.blackbox.cli import main

sys.exit(main())
