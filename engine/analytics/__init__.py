"""Analytics: figures counted with the work they count (counters), read back over windows
(queries) into what managers see: a journey's report (reports), the overview (overview), the
canvas's live figures (stats) and each channel's health (channel_health)."""
