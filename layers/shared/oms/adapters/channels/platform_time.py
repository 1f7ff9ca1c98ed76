"""Poll-window bounds in each platform's own time format (CHANNELS.md design fact 7)."""

from __future__ import annotations

from datetime import datetime

from oms.normalizers._fields import CHINA_TIME, US_PACIFIC

_LOCAL_FORMAT = "%Y-%m-%d %H:%M:%S"


def china_text(moment: datetime) -> str:
    """`yyyy-MM-dd HH:mm:ss` in GMT+8 (Taobao, JD, and the TOP `timestamp` parameter)."""
    return moment.astimezone(CHINA_TIME).strftime(_LOCAL_FORMAT)


def pacific_text(moment: datetime) -> str:
    """`yyyy-MM-dd HH:mm:ss` in US Pacific time (AliExpress order queries)."""
    return moment.astimezone(US_PACIFIC).strftime(_LOCAL_FORMAT)


def epoch_seconds(moment: datetime) -> int:
    """Whole epoch seconds (PDD and Douyin windows, Douyin's `timestamp`)."""
    return int(moment.timestamp())


def epoch_millis(moment: datetime) -> int:
    """Epoch milliseconds (Kuaishou windows and `timestamp`, AliExpress IOP `timestamp`)."""
    return int(moment.timestamp() * 1000)
