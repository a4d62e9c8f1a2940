"""``rnnlab forecast`` and its subcommands: parse, run, print, write (``main``, ``args``,
``predict``), what they print and draw (``report``, ``panel_report``, ``plots``, ``progress``).
"""
