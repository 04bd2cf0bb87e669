"""Plays, now playing, likes and statistics (behaviour.md section 6, nats.md section 4).

`events` turns the robot's CyTube events into media changes, `plays` moves
now playing and counts each play once across replicas, `likes` counts likes
of the current item, and `stats` sums the daily documents into top lists.
"""
