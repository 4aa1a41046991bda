import sys

from simclr_lab.faces.cli import main

sys.exit(main())
