"""``python -m wisp_local`` (what ``make run`` runs): the whole stack, see :mod:`wisp_local.stack`."""
from __future__ import annotations

import logging
import os
import sys

from wisp_local.stack import main

status = main()
# Everything main() started has stopped by now. Skip the interpreter's teardown, which spends
# seconds freeing moto's thousands of modules and objects.
logging.shutdown()
sys.stdout.flush()
sys.stderr.flush()
os._exit(status)
