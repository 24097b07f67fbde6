"""Point-in-time recovery: the continuous archive, restores to a moment, drills (``golive.archive``)."""
