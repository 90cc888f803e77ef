"""``python -m flows.cli``: the ``privpipe`` command."""

import sys

from flows.cli import main

sys.exit(main())
