import sys

from rollguard_sqlalchemy.cli import main

sys.exit(main())
