import sys

from latentlab.cli import main

sys.exit(main())
