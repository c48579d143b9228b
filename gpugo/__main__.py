import sys

from gpugo.cli import main

sys.exit(main())
