"""Backoff delays computed by hand from the documented formula, independently of the code under
test: min(2^n + BACKOFF_BASE_SECONDS + J, BACKOFF_MAX_SECONDS), n the receive count, J a whole
number in [0, BACKOFF_JITTER_SECONDS - 1]. A test that took its bounds from
shared.backoff.delay_range_seconds would pass whatever that function computed.
"""

from __future__ import annotations

# The template's defaults: BackoffBaseSeconds 30, BackoffJitterSeconds 60 (J in 0..59),
# BackoffMaxSeconds 43200. Receive count -> (least, most) delay in seconds.
TEMPLATE_DEFAULTS = {
    1: (2 + 30, 2 + 30 + 59),  # 32..91
    2: (4 + 30, 4 + 30 + 59),  # 34..93
    3: (8 + 30, 8 + 30 + 59),  # 38..97
    4: (16 + 30, 16 + 30 + 59),  # 46..105
    9: (512 + 30, 512 + 30 + 59),  # 542..601
    15: (32_768 + 30, 32_768 + 30 + 59),  # 32798..32857
    16: (43_200, 43_200),  # 65536 + 30 is over the 12 h cap
}
assert TEMPLATE_DEFAULTS[1] == (32, 91)
assert TEMPLATE_DEFAULTS[3] == (38, 97)

# make run's and make soak's: base 1, jitter 3 (J in 0..2), the 12 h cap.
LOCAL_RUN = {
    1: (3, 5),
    2: (5, 7),
    3: (9, 11),
}
