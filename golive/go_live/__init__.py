"""The whole go-live as one resumable sequence: pre-check → backup of the source → migrate the database →
validate → migrate the uploads → verify them → rewrite the file paths → final report.

``config`` (golive.toml, validated), ``state`` (the journal of done steps), ``precheck`` (what must hold
before anything is written). The steps themselves are golive's other capabilities (``golive.backup``,
``golive.migrate``, ``golive.validation``, ``golive.files``); the flow ``flows/go_live.py`` runs them as
subflows, in order, and skips the steps a previous run finished.
"""

from golive.go_live.config import EXAMPLE, GoLiveConfig, load_config
from golive.go_live.state import Journal

__all__ = ["EXAMPLE", "GoLiveConfig", "Journal", "load_config"]
