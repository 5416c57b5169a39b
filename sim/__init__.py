"""Robot control tasks on PyBullet under the Gymnasium API."""
