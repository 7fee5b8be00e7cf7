"""`python -m worker` is the calsync CLI."""

import sys

from worker.cli import main

sys.exit(main())
