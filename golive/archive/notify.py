"""Tell the release notifier's webhooks (Slack, Feishu/Lark, DingTalk, WeCom, JSON) that a drill failed."""

from __future__ import annotations

from golive.model.archive import Drill
from golive.release.model import NotifyResult
from golive.release.notify import Summary, send_all


def notify_drill(values: list[str], at: str, drill: Drill) -> list[NotifyResult]:
    title = f"{'✅' if drill.status == 'passed' else '🚨'} golive drill of {at.rstrip('/').rsplit('/', 1)[-1]}: " \
            f"{drill.status.upper()}"
    lines = [f"Archive {at}", f"Moment {drill.target:%Y-%m-%d %H:%M:%S} UTC, RTO {drill.rto_seconds:.1f} s, "
                              f"RPO {drill.rpo_seconds} s"] + drill.problems[:5]
    summary = Summary(title=title, lines=lines, data={"source": "golive", "event": "drill", "archive": at,
                                                      **drill.model_dump(mode="json")})
    return send_all(values, summary)
