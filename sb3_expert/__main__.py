"""``python -m sb3_expert``: the ``sb3-expert`` command."""

import sys

from sb3_expert.cli import main

sys.exit(main())
