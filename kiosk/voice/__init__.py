"""Voice guidance for the public touchscreens: every screen speaks what it
shows and how to choose, in the person's language, from audio prepared ahead
into a cache (``python -m kiosk voice build``), so speaking never delays a
screen. ``docs/voice.md`` describes the parts; the PIN is never spoken."""
