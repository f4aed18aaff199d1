"""The HTML report of an output folder (``hhsim report OUTDIR``): see ``page.write_report``."""

from hhsim.report.page import Section, write_report

__all__ = ["Section", "write_report"]
