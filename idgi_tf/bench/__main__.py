import sys

from .cli import main

if __name__ == "__main__":  # imported by the docs' inspection, it must not run the command
    sys.exit(main())
