"""kryten-playlist: catalog search, playlists and marathons for a CyTube channel."""

from importlib.metadata import PackageNotFoundError, version


def package_version() -> str:
    """The version from the installed package metadata (single source: setup.cfg)."""
    try:
        return version("kryten-playlist")
    except PackageNotFoundError:
        return "0.0.0+unknown"


__version__ = package_version()
