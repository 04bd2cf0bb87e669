"""Stand-ins for the outside systems this service talks to, for the tests, the demo and the benchmarks."""

from kryten_playlist_lib.standin.robot import RobotStandIn

__all__ = ["RobotStandIn"]
