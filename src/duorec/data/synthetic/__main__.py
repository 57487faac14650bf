"""``python -m duorec.data.synthetic``: see :func:`duorec.data.synthetic.cli.main`."""

import sys

from duorec.data.synthetic.cli import main

sys.exit(main())
