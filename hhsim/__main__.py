import sys

from hhsim.cli import main

sys.exit(main())
