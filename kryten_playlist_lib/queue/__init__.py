"""Queue apply: pushing a playlist into the CyTube queue through the robot (behaviour.md section 5)."""
