"""``python -m cli``: the ``coc`` command, as the local stack starts the services."""

import sys

from cli.main import main

sys.exit(main())
