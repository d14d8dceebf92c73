"""``python -m hf_logme.cli``: the same as the ``hf-logme`` command."""

import sys

from . import main

sys.exit(main())
