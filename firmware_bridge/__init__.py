"""Serial link between a robot computer and its actuator firmware."""
