"""`python -m keras_minent train ...`."""

import sys

from keras_minent.cli import main

sys.exit(main())
