"""Start Knowledge Bot's chat server (what `make run` and Hugging Face Spaces run).

Usage: python launch.py [--host HOST] [--port PORT] [--share] [other `kbot serve` flags]
"""

import sys

from bot.cli import main

if __name__ == "__main__":
    sys.exit(main(["serve", *sys.argv[1:]]))
