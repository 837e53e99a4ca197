import sys

from audioclr.cli import main

sys.exit(main())
