"""``python -m sim`` is the ``netns-sim`` command (see `sim.cli`)."""

import sys

from sim.cli import main

sys.exit(main())
