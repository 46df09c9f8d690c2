"""``python -m sim`` is the ``netns-sim`` command (see `sim.cli`); signal handlers are
installed before `sim.cli` is imported (`sim.signals.entry`)."""

import sys

from sim.signals import entry

sys.exit(entry())
