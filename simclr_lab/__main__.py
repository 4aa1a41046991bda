import sys

from simclr_lab.cli import main

sys.exit(main())
