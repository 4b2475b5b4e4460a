"""What fcrattack shows: the summary table of attack runs (``tables``), the HTML page of
attack results (``pages``) and the reproduction report (``reproduction``), all written with
the one document model of ``fcrattack.viz.document``.

    >>> from fcrattack import report
    >>> report.render("runs/repro")     # -> (runs/repro/report.md, runs/repro/report.html)
"""

from .pages import image_table, write_page
from .reproduction import render
from .tables import summary_markdown, summary_table

__all__ = ["image_table", "render", "summary_markdown", "summary_table", "write_page"]
