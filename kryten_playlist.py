"""Entry point: `python kryten_playlist.py` and the `kryten-playlist` console script."""

import sys

from kryten_playlist_lib.cli import main

if __name__ == "__main__":
    sys.exit(main())
