"""``python -m services NAME [--port P]``: one service in the foreground (``services.launch``)."""

import sys

from services.launch import main

sys.exit(main())
