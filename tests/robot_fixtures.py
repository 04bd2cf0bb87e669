"""The `robot` fixture: a Kryten-Robot stand-in for the `config` fixture's domain and channel.

Import it into a test module with `from tests.robot_fixtures import robot  # noqa: F401`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kryten_playlist_lib.bus.natsserver import NatsServerProcess
from kryten_playlist_lib.config import Config
from kryten_playlist_lib.standin import RobotStandIn


@pytest.fixture
def robot(nats_server: NatsServerProcess, config: Config) -> Iterator[RobotStandIn]:
    """A started stand-in on the session server; its userlist starts empty (known, nobody in it), its queue
    empty with nothing playing. Its knobs are the real robot's (8 s silent timeout, staff add rate limit):
    a test that drops adds silently sets `robot.silent_timeout_seconds` small."""
    standin = RobotStandIn(nats_server.url, domain=config.cytube_domain, channel=config.cytube_channel,
                           prefix=config.nats_subject_prefix)
    standin.start()
    yield standin
    standin.stop()
