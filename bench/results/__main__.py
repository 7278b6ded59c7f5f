"""`python -m bench.results pack|verify|unpack`: see bench/share.py."""

import sys

from bench.share import main

sys.exit(main())
