"""What online migration asks of an engine: change capture (``golive.go_live``)."""

from __future__ import annotations

from golive.dialects.base.concern import Concern


class Capture(Concern):
    """Change capture for online migration (``golive.go_live``)."""
