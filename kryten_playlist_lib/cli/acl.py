"""`acl bless USER`, `acl unbless USER`, `acl list`: the blessed users, from the host."""

from __future__ import annotations

import argparse

from kryten_playlist_lib.auth.acl import Acl
from kryten_playlist_lib.cli.common import load, nats_session


def run_acl(args: argparse.Namespace) -> int:
    config = load(args)
    with nats_session(config) as session:
        acl = Acl(session.kv, config)
        if args.acl_verb == "bless":
            acl.bless(args.user)
        elif args.acl_verb == "unbless":
            acl.unbless(args.user)
        print("admins:  " + (", ".join(acl.admins()) or "(none)"))
        print("blessed: " + (", ".join(acl.blessed()) or "(none)"))
    return 0


def add_parsers(verbs: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    acl = verbs.add_parser("acl", parents=[common], help="blessed users (admins are config or KV)")
    actions = acl.add_subparsers(dest="acl_verb", metavar="ACTION")
    actions.required = True
    for name, text in (("bless", "make USER blessed"), ("unbless", "make USER a viewer again")):
        action = actions.add_parser(name, parents=[common], help=text)
        action.add_argument("user", metavar="USER")
        action.set_defaults(run=run_acl)
    actions.add_parser("list", parents=[common], help="list admins and blessed users").set_defaults(run=run_acl)
