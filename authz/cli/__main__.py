"""``python -m authz.cli``: the ``authz`` command."""

import sys

from authz.cli import main

sys.exit(main())
