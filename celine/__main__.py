import sys

from celine.cli import main

sys.exit(main())
