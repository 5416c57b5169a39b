"""A3C: asynchronous actor-learners on one machine (processes, shared memory) or several (Ray)."""
