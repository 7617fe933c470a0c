"""`python -m ivyzmq.sim ...` is `ivy sim ...`."""
import sys

from ivyzmq.sim.cli import main

sys.exit(main())
