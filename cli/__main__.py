"""``python -m cli``: the ``coc`` command."""

import sys

from cli.main import main

sys.exit(main())
